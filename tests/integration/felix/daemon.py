"""Run the real gingham-felix in a test namespace and talk to it (gRPC, HTTP)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from felix.netns import socket_in_netns
from gingham.datastore import open_datastore
from gingham.model.base import KINDS
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.support.netns import Netns
from tests.support.poll import wait_for

FELIX = str(Path(sys.executable).with_name("gingham-felix"))
HTTP_PORT = 9099


def resource(kind: str, name: str, spec: dict[str, object]):  # type: ignore[no-untyped-def]
    import gingham.model  # noqa: F401

    doc = {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return KINDS[kind].model_validate(doc)


async def seed(url: str, objects: list[object]) -> None:
    """Create `objects` (resources) in the datastore at `url`."""
    ds = open_datastore(url)
    try:
        for obj in objects:
            await ds.create(obj)  # type: ignore[arg-type]
    finally:
        await ds.close()


class Felix:
    """One gingham-felix process inside a node namespace, killed by PID."""

    def __init__(self, ns: Netns, url: str, run_dir: Path, log: Path, node: str = "node1") -> None:
        self.ns, self.url, self.run_dir, self.log, self.node = ns, url, run_dir, log, node
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def sock(self) -> Path:
        return self.run_dir / "felix.sock"

    def start(self) -> None:
        args = ["ip", "netns", "exec", self.ns.name, FELIX, "--node", self.node,
                "--datastore", self.url, "--run-dir", str(self.run_dir),
                "--http", f"127.0.0.1:{HTTP_PORT}", "--resync", "0.5"]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        # Generous: the shared test machine has run at load 100 on 2 cores.
        wait_for(self.healthy, timeout=120, what="felix serving health")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"felix exited {self.proc.returncode}:\n{self.log.read_text()}")
        if not self.sock.exists():
            return False
        with grpc.insecure_channel(f"unix:{self.sock}") as ch:
            try:
                reply = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def http(self, path: str) -> int:
        s = socket_in_netns(self.ns.path, socket.AF_INET, socket.SOCK_STREAM)
        with s:
            s.settimeout(3)
            s.connect(("127.0.0.1", HTTP_PORT))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return int(s.recv(4096).split()[1])


def add(prefix: object, hop: str, node: str) -> pb.RouteUpdate:
    return pb.RouteUpdate(type=pb.ADD, prefix=str(prefix), peer=hop,
                          next_hops=[pb.NextHop(address=hop, node=node)])  # fmt: skip


async def push_snapshot(sock: Path, routes: list[pb.RouteUpdate]):  # type: ignore[no-untyped-def]
    """Open a feed stream, send a full snapshot, wait for felix's ack; (channel, call)."""
    channel = grpc.aio.insecure_channel(f"unix:{sock}")
    call = pb_grpc.RouteFeedStub(channel).SyncRoutes()
    for msg in [
        pb.RouteUpdate(type=pb.SNAPSHOT_BEGIN),
        *routes,
        pb.RouteUpdate(type=pb.SNAPSHOT_END),
    ]:
        await call.write(msg)
    ack = await call.read()
    assert ack.in_sync and not ack.error, ack
    return channel, call
