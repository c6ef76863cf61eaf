"""A node for end-to-end tests: the installed CNI plugin exec'd against the real felix.

felix (`gingham-felix`, a SQLite datastore with one IPPool and the Node) runs in
a test-made node netns with a fast periodic resync; pods are namespaces the
test makes (`PodNamespaces` removes every one of them, even on failure).
Everything a test asks felix or the datastore goes through the same APIs a
user has: the plugin, felix's gRPC, `gingham.ipam.check`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cni.install import install
from gingham.datastore import Datastore, open_datastore
from tests.support.cni_exec import PluginRun, exec_plugin
from tests.support.names import unique_prefix
from tests.support.runtimes.felix_node import FelixNode, felix_unavailable
from tests.support.runtimes.netns import node_netns

T = TypeVar("T")
NODE = "node1"


@dataclass
class CniNode:
    netns: str
    felix: FelixNode
    plugin: Path

    def config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.1.0",
            "name": "gingham",
            "type": "gingham",
            "felix_socket": str(self.felix.socket),
        }

    def add(self, pod: str, cid: str, pod_name: str = "") -> PluginRun:
        return self._run("ADD", pod, cid, pod_name)

    def delete(self, pod: str, cid: str, pod_name: str = "") -> PluginRun:
        return self._run("DEL", pod, cid, pod_name)

    def _run(self, command: str, pod: str, cid: str, pod_name: str) -> PluginRun:
        args = f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod_name}" if pod_name else None
        return exec_plugin(
            self.plugin, command, self.config(), container_id=cid, netns=pod, cni_args=args
        )

    def store(self, read: Callable[[Datastore], Awaitable[T]]) -> T:
        """`read` run against felix's datastore (a connection of its own)."""

        async def run() -> T:
            store = open_datastore(self.felix.datastore)
            try:
                return await read(store)
            finally:
                await store.close()

        return asyncio.run(run())

    def held(self) -> dict[str, list[str]]:
        """Every allocated address by IPAM handle."""
        from gingham.ipam.query import allocations

        held: dict[str, list[str]] = {}
        for h in self.store(allocations):
            held.setdefault(h.allocation.handle_id or "", []).append(str(h.allocation.address))
        return held

    def endpoints(self) -> dict[str, list[str]]:
        """container ID -> addresses, from this node's WorkloadEndpoints."""
        from gingham.model.workload import WorkloadEndpoint

        async def read(store: Datastore) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for w in (await store.list(WorkloadEndpoint.kind)).items:
                assert isinstance(w, WorkloadEndpoint)
                out[w.spec.container_id] = [str(n.network_address) for n in w.spec.ip_networks]
            return out

        return self.store(read)

    def ipam_problems(self) -> list[str]:
        """What `gingham ipam check` would report (empty: clean)."""
        from gingham.ipam.check import check

        return self.store(check).lines()

    def listed(self) -> set[str]:
        """The container IDs felix lists as its workloads (gRPC ListWorkloads)."""
        import grpc

        from gingham.v1 import dataplane_pb2 as pb
        from gingham.v1 import dataplane_pb2_grpc as pb_grpc

        with grpc.insecure_channel(f"unix:{self.felix.socket}") as channel:
            reply = pb_grpc.DataplaneStub(channel).ListWorkloads(
                pb.ListWorkloadsRequest(), timeout=10
            )
        return {w.id.container_id for w in reply.workloads}

    def problems(self) -> list[str]:
        """What felix's Status reports as wrong (failed kernel ops among them)."""
        import grpc

        from gingham.v1 import dataplane_pb2 as pb
        from gingham.v1 import dataplane_pb2_grpc as pb_grpc

        with grpc.insecure_channel(f"unix:{self.felix.socket}") as channel:
            reply = pb_grpc.DataplaneStub(channel).Status(pb.StatusRequest(), timeout=10)
        return list(reply.problems)

    def route_to(self, ip: str) -> str:
        return subprocess.run(
            ["ip", "-n", os.path.basename(self.netns), "-4", "route", "show", ip],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    @property
    def felix_pid(self) -> int:
        assert self.felix.proc is not None
        return self.felix.proc.pid

    def felix_rss_kib(self) -> int:
        with open(f"/proc/{self.felix_pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for felix")

    def felix_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.felix_pid}/fd"))


async def _seed_node(store: Datastore) -> None:
    from gingham.datastore import AlreadyExists
    from gingham.model.documents import parse_resource

    node = parse_resource(
        {"apiVersion": "gingham.io/v1", "kind": "Node", "metadata": {"name": NODE}, "spec": {}}
    )
    with suppress(AlreadyExists):
        await store.create(node)


@contextmanager
def cni_node(root: Path, resync: float = 1.0) -> Iterator[CniNode]:
    """The real felix (periodic resync every `resync` s) and the installed plugin."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    reason = felix_unavailable()
    if reason:
        pytest.skip(reason)
    with node_netns("fx") as netns:
        felix = FelixNode(root / "felix", netns, NODE, extra_args=("--resync", str(resync)))
        try:
            felix.start()
            node = CniNode(netns, felix, root / "bin" / "gingham")
            node.store(_seed_node)
            install(root / "bin", root / "conf", run_dir=str(felix.run_dir))
            yield node
        finally:
            felix.stop()


@dataclass
class PodNamespaces:
    """Pod namespaces made one by one; `close` removes all that are left."""

    made: set[str] = field(default_factory=set)

    def make(self) -> str:
        name = unique_prefix("p")
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.made.add(name)
        return f"/var/run/netns/{name}"

    def remove(self, path: str) -> None:
        name = os.path.basename(path)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.made.discard(name)

    def close(self) -> None:
        for name in sorted(self.made):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.made.clear()


@contextmanager
def pod_namespaces() -> Iterator[PodNamespaces]:
    pods = PodNamespaces()
    try:
        yield pods
    finally:
        pods.close()
