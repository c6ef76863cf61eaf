"""The whole path on two nodes: felix daemons, real IPAM, AddWorkload over gRPC.

Each node's felix assigns its pod an address from a block it claims (IPAM),
blackholes that block, and learns the other node's block from its route feed
(this test plays the BGP speaker, reading BlockAffinity like bird_agent
does). The pods then ping each other. Skipped until gingham.ipam lands.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import grpc
import pytest

from gingham.datastore import open_datastore
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.integration.felix.daemon import Felix, add, push_snapshot, resource, seed
from tests.support.netns import Topology
from tests.support.poll import wait_for

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gingham.ipam.allocator") is None, reason="gingham.ipam not landed"
)


async def test_pods_added_over_grpc_on_two_nodes_ping(topo: Topology, tmp_path: Path) -> None:
    seg = topo.netns("br")
    bridge = topo.bridge(seg)
    seg.ip(f"addr add 192.0.2.254/24 dev {bridge}")
    url = f"sqlite:///{tmp_path}/store.db"
    objects: list[object] = [resource("IPPool", "default", {"cidr": "10.66.0.0/16"})]
    nodes, pods, felixes = [], [], []
    for i in (1, 2):
        ns = topo.netns(f"n{i}")
        topo.attach(seg, bridge, ns, "up0")
        ns.ip(f"addr add 192.0.2.{i}/24 dev up0")
        ns.ip("route add default via 192.0.2.254")
        objects.append(resource("Node", f"node{i}", {"bgp": {"ipv4Address": f"192.0.2.{i}/24"}}))
        nodes.append(ns)
        pods.append(topo.netns(f"p{i}"))
    await seed(url, objects)
    feeds = []
    try:
        for i, ns in enumerate(nodes, start=1):
            f = Felix(ns, url, tmp_path / f"run{i}", tmp_path / f"felix{i}.log", node=f"node{i}")
            felixes.append(f)
            await asyncio.to_thread(f.start)
        ips = []
        for f, pod in zip(felixes, pods, strict=True):
            async with grpc.aio.insecure_channel(f"unix:{f.sock}") as ch:
                reply = await pb_grpc.DataplaneStub(ch).AddWorkload(
                    pb.AddWorkloadRequest(
                        container_id=f"c-{f.node}",
                        netns=pod.path,
                        interface_name="eth0",
                        pod_namespace="default",
                        pod_name=f"pod-{f.node}",
                    ),
                    timeout=30,
                )
            ips.append(reply.ips[0].address.split("/")[0])

        # Play the speaker: each node learns the other's confirmed blocks.
        ds = open_datastore(url)
        try:
            affinities = (await ds.list("BlockAffinity")).items
        finally:
            await ds.close()
        blocks = {a.spec.node: str(a.spec.cidr) for a in affinities if a.spec.state == "confirmed"}
        assert set(blocks) == {"node1", "node2"}, blocks
        for me, other, addr in ((0, "node2", "192.0.2.2"), (1, "node1", "192.0.2.1")):
            feeds.append(await push_snapshot(felixes[me].sock, [add(blocks[other], addr, other)]))
        want = f"blackhole {blocks['node1']} proto 77"
        wait_for(lambda: want in nodes[0].routes(), timeout=15, what="own block blackholed")
        wait_for(
            lambda: f"{blocks['node2']} via 192.0.2.2" in nodes[0].routes(),
            timeout=15,
            what="remote block routed",
        )
        assert await asyncio.to_thread(
            wait_for, lambda: pods[0].ping(ips[1]), 15, 0.02, "pod1 -> pod2"
        )
        assert pods[1].ping(ips[0])
    finally:
        for channel, _call in feeds:
            await channel.close()
        for f in felixes:
            f.kill9()
