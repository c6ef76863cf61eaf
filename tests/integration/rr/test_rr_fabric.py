"""Route reflection end to end: 6 nodes, 2 route reflectors of one cluster, mesh off.

Six node namespaces on one bridge, one sqlite datastore, `gingham node run`
in each (felix, the speaker and, on the two RR nodes, gingham-rr). Configured
the Calico way: the RR nodes carry the `route-reflector` label and the same
`routeReflectorClusterID`; BGPPeers `nodeSelector: !has(route-reflector)` +
`peerSelector: has(route-reflector)` (clients ↔ RRs) and RR ↔ RR; the
node-to-node mesh is off. A pod on every node (felix's AddWorkload).

Checks: every pod reaches every other (clients' blocks only ever travel
through the reflectors, with ORIGINATOR_ID / CLUSTER_LIST, next hop kept);
`gingham node status` shows the peer types and the reflector's table; one
RR stopped → every remaining pod still reaches every other through the
second RR; a client's block released → gone from every kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path

import grpc
import pytest

from gingham.datastore import open_datastore
from gingham.ipam.allocator import IPAM
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.integration.felix.daemon import resource, seed
from tests.support.netns import Netns, Topology
from tests.support.poll import async_wait_for, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

GINGHAM = str(Path(sys.executable).with_name("gingham"))
POOL = "10.67.0.0/16"
CLUSTER_ID = "224.0.0.1"
RRS = ("node1", "node2")
NODES = tuple(f"node{i}" for i in range(1, 7))


def address(node: str) -> str:
    return f"192.0.2.{int(node.removeprefix('node'))}"


@dataclass
class Fabric:
    topo: Topology
    url: str
    tmp: Path
    nodes: dict[str, Netns] = field(default_factory=dict)
    pods: dict[str, Netns] = field(default_factory=dict)
    ips: dict[str, str] = field(default_factory=dict)
    runs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run_dir(self, node: str) -> Path:
        return self.tmp / node

    def start(self, node: str) -> None:
        run = self.run_dir(node)
        run.mkdir(parents=True, exist_ok=True)
        cmd = ["ip", "netns", "exec", self.nodes[node].name, GINGHAM, "--datastore", self.url,
               "node", "run", "--node", node, "--run-dir", str(run)]  # fmt: skip
        with (run / "node-run.log").open("ab") as out:
            self.runs[node] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self, node: str) -> None:
        proc = self.runs.get(node)
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    async def add_pod(self, node: str, suffix: str = "") -> None:
        sock = self.run_dir(node) / "felix.sock"
        await asyncio.to_thread(wait_for, sock.exists, 180, 0.1, f"{node}'s felix socket")
        async with grpc.aio.insecure_channel(f"unix:{sock}") as ch:
            stub = pb_grpc.DataplaneStub(ch)  # type: ignore[no-untyped-call]
            reply = await stub.AddWorkload(
                pb.AddWorkloadRequest(
                    container_id=f"c-{node}{suffix}",
                    netns=self.pods[node].path,
                    interface_name="eth0",
                    pod_namespace="default",
                    pod_name=f"pod-{node}{suffix}",
                ),
                timeout=60,
                wait_for_ready=True,
            )
        self.ips[node] = reply.ips[0].address.split("/")[0]

    async def delete_pod(self, node: str, suffix: str = "") -> None:
        sock = self.run_dir(node) / "felix.sock"
        async with grpc.aio.insecure_channel(f"unix:{sock}") as ch:
            stub = pb_grpc.DataplaneStub(ch)  # type: ignore[no-untyped-call]
            await stub.DeleteWorkload(
                pb.DeleteWorkloadRequest(
                    container_id=f"c-{node}{suffix}",
                    netns=self.pods[node].path,
                    interface_name="eth0",
                ),
                timeout=60,
            )
        del self.ips[node]

    def reaches_all(self, nodes: tuple[str, ...]) -> bool:
        return all(
            self.pods[a].ping(self.ips[b], timeout=1.0) for a in nodes for b in nodes if a != b
        )

    def status(self, node: str) -> str:
        cmd = [GINGHAM, "node", "status", "--run-dir", str(self.run_dir(node))]
        return self.nodes[node].exec(cmd, check=False).stdout

    def logs(self) -> str:
        parts = []
        for path in sorted(self.tmp.glob("node*/logs/*.log")) + sorted(
            self.tmp.glob("node*/node-run.log")
        ):
            parts.append(f"--- {path.relative_to(self.tmp)}\n{path.read_text()[-2500:]}")
        return "\n".join(parts)


def calico_rr_resources() -> list[object]:
    objects: list[object] = [
        resource("IPPool", "default", {"cidr": POOL}),
        resource("BGPConfiguration", "default", {"nodeToNodeMeshEnabled": False, "holdTime": "9s"}),
        resource(
            "BGPPeer",
            "peer-with-route-reflectors",
            {"nodeSelector": "!has(route-reflector)", "peerSelector": "has(route-reflector)"},
        ),
        resource(
            "BGPPeer",
            "rr-mesh",
            {"nodeSelector": "has(route-reflector)", "peerSelector": "has(route-reflector)"},
        ),
    ]
    for node in NODES:
        bgp: dict[str, object] = {"ipv4Address": f"{address(node)}/24"}
        if node in RRS:
            bgp["routeReflectorClusterID"] = CLUSTER_ID
        doc = resource("Node", node, {"bgp": bgp})
        if node in RRS:
            doc.metadata.labels["route-reflector"] = "true"
        objects.append(doc)
    return objects


@pytest.fixture
async def fabric(tmp_path: Path) -> AsyncIterator[Fabric]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Topology() as topo:
        seg = topo.netns("rrbr")
        bridge = topo.bridge(seg)
        made = Fabric(topo, f"sqlite:///{tmp_path}/store.db", tmp_path)
        try:
            for node in NODES:
                ns = topo.netns(f"rr{node[-1]}")
                topo.attach(seg, bridge, ns, "up0")
                ns.ip(f"addr add {address(node)}/24 dev up0")
                made.nodes[node] = ns
                made.pods[node] = topo.netns(f"rp{node[-1]}")
            await seed(made.url, calico_rr_resources())
            yield made
        finally:
            for node in list(made.runs):
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(made.stop, node)


async def test_six_nodes_two_reflectors_pods_reach_each_other_and_survive_an_rr(
    fabric: Fabric,
) -> None:
    try:
        await six_nodes_two_reflectors(fabric)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fabric.logs()}") from None


async def six_nodes_two_reflectors(fabric: Fabric) -> None:
    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.1f}s"

    for node in NODES:
        fabric.start(node)
    await asyncio.gather(*(fabric.add_pod(node) for node in NODES))
    print(f"6 nodes running, a pod on each: {elapsed()}")
    await asyncio.to_thread(
        wait_for, lambda: fabric.reaches_all(NODES), 120, 0.2, "every pod reaches every other"
    )
    print(f"every pod reaches every other: {elapsed()}")

    # What the operator sees: peer types on both sides, the reflector's table.
    client = fabric.status("node4")
    assert client.count("route reflector ") >= 2 and "client" not in client, client
    rr = fabric.status("node1")
    assert rr.count("route reflector client") >= 4, rr
    assert "Route reflector" in rr and CLUSTER_ID in rr, rr
    document = json.loads(
        fabric.nodes["node1"]
        .exec([GINGHAM, "node", "status", "--run-dir", str(fabric.run_dir("node1")), "-o", "json"])
        .stdout
    )
    reflector = document["route_reflector"]
    assert reflector["clients"] == 4 and reflector["non_clients"] == 1, reflector
    assert reflector["prefixes"] >= 4, reflector
    # The partner RR's reflections carry our cluster ID: dropped by the
    # reflector and never installed by the speaker (RFC 4456 §8).
    assert reflector["loops_dropped"] > 0, reflector
    assert document["rejected_by_reason"].get("cluster-loop", 0) > 0, document

    # A client's learned route came through an RR with the originator's next hop.
    block_of = {}
    ds = open_datastore(fabric.url)
    try:
        for block in (await ds.list("IPAMBlock")).items:
            block_of[block.spec.host] = str(block.spec.cidr)
    finally:
        await ds.close()
    assert f"{block_of['node6']} via {address('node6')}" in fabric.nodes["node3"].routes()

    # A client's block is released: withdrawn through both reflectors.
    await release_pod_and_block(fabric, "node6")
    await withdrawn_everywhere(fabric, block_of["node6"], [n for n in NODES if n != "node6"])
    print(f"node6's block withdrawn from every kernel: {elapsed()}")

    # One reflector stops (its node run). Its sessions end without a
    # NOTIFICATION (graceful restart is negotiated): clients keep its routes
    # as stale, so traffic keeps flowing at once...
    await asyncio.to_thread(fabric.stop, "node1")
    print(f"node1 (an RR) stopped: {elapsed()}")
    remaining = tuple(n for n in NODES if n not in ("node1", "node6"))

    def rr1_down() -> bool:
        # One client's view is enough (each status call is a CLI start).
        return "| up " not in _row(fabric.status("node3"), "192.0.2.1")

    await asyncio.to_thread(wait_for, rr1_down, 60, 0.5, "node3's session to node1 down")
    assert fabric.reaches_all(remaining)
    # ...and what changes from now on travels through node2 alone: node6
    # gets a pod again (a new block), reachable from every node, then loses it.
    await fabric.add_pod("node6", "again")
    block_of["node6"] = await block_of_node(fabric, "node6")
    remaining += ("node6",)
    await asyncio.to_thread(
        wait_for, lambda: fabric.reaches_all(remaining), 120, 0.2, "node6 reachable via node2"
    )
    print(f"node6's new block reached every node through node2: {elapsed()}")
    await release_pod_and_block(fabric, "node6", "again")
    await withdrawn_everywhere(fabric, block_of["node6"], [n for n in remaining if n != "node6"])
    print(f"and was withdrawn from every kernel through node2: {elapsed()}")


async def block_of_node(fabric: Fabric, node: str) -> str:
    ds = open_datastore(fabric.url)
    try:
        (block,) = [b for b in (await ds.list("IPAMBlock")).items if b.spec.host == node]
    finally:
        await ds.close()
    return str(block.spec.cidr)


async def release_pod_and_block(fabric: Fabric, node: str, suffix: str = "") -> None:
    """Delete the node's pod, then give its (now empty) block back to the pool."""
    block = await block_of_node(fabric, node)
    await fabric.delete_pod(node, suffix)
    ds = open_datastore(fabric.url)
    try:
        await IPAM(ds).release_block(node, ip_network(block))
    finally:
        await ds.close()


async def withdrawn_everywhere(fabric: Fabric, block: str, nodes: list[str]) -> None:
    async def withdrawn() -> bool:
        return all(f"{block} via" not in fabric.nodes[n].routes() for n in nodes)

    await async_wait_for(withdrawn, 60, 0.2, f"{block} withdrawn from {', '.join(nodes)}")


def _row(status: str, peer: str) -> str:
    for line in status.splitlines():
        if line.startswith(f"| {peer} "):
            return line
    return ""
