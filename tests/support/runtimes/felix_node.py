"""Run the real `gingham-felix` for a test "node" (a netns), with a seeded SQLite datastore.

Used by every test that needs pods actually wired (CNI spec success paths with
reachability, the gingham variants of the runtime tests, bench/cni.py). felix is
started inside the node netns with `nsenter --net` (the host mount namespace
stays shared so felix can open the pod netns paths runtimes hand it) and is
stopped by PID.

`felix_unavailable()` gives the skip reason while the daemon does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.poll import wait_for

FELIX = Path(sys.executable).parent / "gingham-felix"
POOL_CIDR = "10.251.0.0/16"


def felix_unavailable() -> str | None:
    """Why the real felix cannot be used here, or None when it can."""
    if not FELIX.exists():
        return "felix daemon not available (no gingham-felix console script yet)"
    return None


async def _seed(url: str, pool_cidr: str) -> None:
    from gingham.datastore import AlreadyExists, open_datastore
    from gingham.model.documents import parse_resource

    store = open_datastore(url)
    try:
        pool = parse_resource(
            {
                "apiVersion": "gingham.io/v1",
                "kind": "IPPool",
                "metadata": {"name": "test-pool"},
                "spec": {"cidr": pool_cidr, "blockSize": 26},
            }
        )
        with contextlib.suppress(AlreadyExists):
            await store.create(pool)
    finally:
        await store.close()


class FelixNode:
    def __init__(
        self,
        root: Path,
        node_netns: str,
        node_name: str = "node1",
        pool_cidr: str = POOL_CIDR,
        log_level: str = "INFO",
        *,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.root, self.node_netns, self.node_name = root, node_netns, node_name
        self.pool_cidr, self.log_level = pool_cidr, log_level
        # More gingham-felix options, e.g. ("--resync", "1") for a fast periodic resync.
        self.extra_args = extra_args
        self.run_dir = root / "run"
        self.socket = self.run_dir / "felix.sock"
        self.datastore = f"sqlite://{root / 'datastore.db'}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A node has an address: without one it cannot source packets to its pods.
        subprocess.run(
            ["nsenter", f"--net={self.node_netns}", "ip", "addr", "replace", "198.51.100.1/32",
             "dev", "lo"],
            check=True, capture_output=True,
        )  # fmt: skip
        asyncio.run(_seed(self.datastore, self.pool_cidr))
        log = open(self.root / "felix.log", "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net={self.node_netns}",
                str(FELIX),
                "--node",
                self.node_name,
                "--datastore",
                self.datastore,
                "--run-dir",
                str(self.run_dir),
                "--log-level",
                self.log_level,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self.ready, timeout=timeout, what=f"felix ready on {self.socket}")

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"felix exited: {self.log_tail()}")
        if not self.socket.exists():
            return False
        import grpc

        from gingham.v1 import dataplane_pb2 as pb
        from gingham.v1 import dataplane_pb2_grpc as pb_grpc

        with grpc.insecure_channel(f"unix:{self.socket}") as channel:
            try:
                status = pb_grpc.DataplaneStub(channel).Status(pb.StatusRequest(), timeout=2)
            except grpc.RpcError:
                return False
        return bool(status.datastore_synced)

    def add_workload_unavailable(self) -> str | None:
        """Why AddWorkload cannot wire pods yet (felix answers UNIMPLEMENTED), or None.

        Probes with a netns that does not exist, so a working felix refuses it
        (INVALID_ARGUMENT) without wiring anything.
        """
        from cni import h2grpc, wire

        request = wire.encode(
            "AddWorkloadRequest",
            {
                "container_id": "gingham-probe",
                "netns": "/nonexistent/netns",
                "interface_name": "eth0",
            },
        )
        try:
            h2grpc.unary_call(
                str(self.socket), "/gingham.v1.Dataplane/AddWorkload", request, timeout=10
            )
        except h2grpc.GrpcStatus as exc:
            if exc.code == 12:  # UNIMPLEMENTED
                return f"felix's AddWorkload does not work yet: {exc.message}"
            return None
        delete = wire.encode(
            "DeleteWorkloadRequest", {"container_id": "gingham-probe", "interface_name": "eth0"}
        )
        h2grpc.unary_call(str(self.socket), "/gingham.v1.Dataplane/DeleteWorkload", delete, 10)
        return None

    def log_tail(self) -> str:
        try:
            return (self.root / "felix.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


@contextmanager
def running_felix(root: Path, node_netns: str) -> Iterator[FelixNode]:
    """A started FelixNode that can wire pods, stopped by PID afterwards (even on failure).

    Skips the calling test (pytest.skip) while felix's AddWorkload is not implemented.
    """
    import pytest

    felix = FelixNode(root, node_netns)
    try:
        felix.start()
        reason = felix.add_workload_unavailable()
        if reason:
            pytest.skip(reason)
        yield felix
    finally:
        felix.stop()
