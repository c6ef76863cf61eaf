"""The issue's mesh: real felix + real speaker per node, pods reach each other.

Three node namespaces on one bridge, one sqlite datastore. Each node runs
`gingham-felix` and `gingham-bgp` (the processes, sharing a run dir as under
`gingham node run`); pods are added through felix's AddWorkload. IPAM claims
a block per node, the speakers announce the blocks over the node-to-node
mesh and hand what they learn to felix, which programs the kernel — so
every pod pings every other. A node added to the datastore is peered and its
pod reachable; a node deleted from the datastore is withdrawn everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from gingham.datastore import open_datastore
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.integration.felix.daemon import Felix, resource, seed
from tests.support.netns import Netns, Topology
from tests.support.poll import wait_for
from tests.support.speaker import SpeakerProcess

pytestmark = [pytest.mark.root, pytest.mark.slow]

POOL = "10.66.0.0/16"


@dataclass
class Cluster:
    topo: Topology
    url: str
    tmp: Path
    seg: Netns
    bridge: str
    nodes: dict[str, Netns] = field(default_factory=dict)
    pods: dict[str, Netns] = field(default_factory=dict)
    ips: dict[str, str] = field(default_factory=dict)
    felixes: list[Felix] = field(default_factory=list)
    speakers: dict[str, SpeakerProcess] = field(default_factory=dict)

    async def add_node(self, i: int) -> None:
        name = f"node{i}"
        ns = self.topo.netns(f"n{i}")
        self.topo.attach(self.seg, self.bridge, ns, "up0")
        ns.ip(f"addr add 192.0.2.{i}/24 dev up0")
        self.nodes[name] = ns
        self.pods[name] = self.topo.netns(f"p{i}")
        await seed(self.url, [resource("Node", name, {"bgp": {"ipv4Address": f"192.0.2.{i}/24"}})])
        run = self.tmp / f"run{i}"
        felix = Felix(ns, self.url, run, self.tmp / f"felix{i}.log", node=name)
        self.felixes.append(felix)
        await asyncio.to_thread(felix.start)
        speaker = SpeakerProcess(ns, name, self.url, run, self.tmp / f"bgp{i}.log")
        self.speakers[name] = speaker
        speaker.start()
        async with grpc.aio.insecure_channel(f"unix:{felix.sock}") as ch:
            reply = await pb_grpc.DataplaneStub(ch).AddWorkload(  # type: ignore[no-untyped-call]
                pb.AddWorkloadRequest(
                    container_id=f"c-{name}",
                    netns=self.pods[name].path,
                    interface_name="eth0",
                    pod_namespace="default",
                    pod_name=f"pod-{name}",
                ),
                timeout=30,
            )
        self.ips[name] = reply.ips[0].address.split("/")[0]

    def pings(self, src: str, dst: str) -> bool:
        return self.pods[src].ping(self.ips[dst], timeout=1.0)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log"))
        )


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Topology() as topo:
        seg = topo.netns("br")
        made = Cluster(topo, f"sqlite:///{tmp_path}/store.db", tmp_path, seg, topo.bridge(seg))
        try:
            await seed(
                made.url,
                [
                    resource("IPPool", "default", {"cidr": POOL}),
                    resource("BGPConfiguration", "default", {"holdTime": "9s"}),
                ],
            )
            yield made
        finally:
            for speaker in made.speakers.values():
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(speaker.stop)
            for felix in made.felixes:
                felix.kill9()


def all_pairs_ping(cluster: Cluster) -> bool:
    names = list(cluster.pods)
    return all(cluster.pings(a, b) for a in names for b in names if a != b)


async def test_three_node_mesh_pods_ping_and_nodes_join_and_leave(cluster: Cluster) -> None:
    started = time.monotonic()
    for i in (1, 2, 3):
        await cluster.add_node(i)
    print(f"3 nodes with felix, speaker and a pod: {time.monotonic() - started:.1f}s")
    try:
        await asyncio.to_thread(wait_for, lambda: all_pairs_ping(cluster), 60, 0.1, "full mesh")
    except AssertionError:
        raise AssertionError("pods do not all reach each other\n" + cluster.logs()) from None

    print(f"every pod pings every other: {time.monotonic() - started:.1f}s")

    # A fourth node joins through the datastore: peered, its pod reachable.
    await cluster.add_node(4)
    await asyncio.to_thread(wait_for, lambda: all_pairs_ping(cluster), 60, 0.1, "node4 joined")
    print(f"node4 joined and reachable: {time.monotonic() - started:.1f}s")

    # node4 leaves the datastore: its block disappears from every other kernel.
    ds = open_datastore(cluster.url)
    try:
        blocks = [b for b in (await ds.list("IPAMBlock")).items if b.spec.host == "node4"]
        await ds.delete("Node", "node4")
    finally:
        await ds.close()
    (block,) = blocks
    others = [ns for name, ns in cluster.nodes.items() if name != "node4"]

    def withdrawn() -> bool:
        return all(f"{block.spec.cidr} via" not in ns.routes() for ns in others)

    try:
        await asyncio.to_thread(wait_for, withdrawn, 20, 0.1, "node4's block withdrawn")
    except AssertionError:
        raise AssertionError(f"{block.spec.cidr} still routed\n" + cluster.logs()) from None
    print(f"node4 deleted and withdrawn: {time.monotonic() - started:.1f}s")
    assert cluster.pings("node1", "node2")
