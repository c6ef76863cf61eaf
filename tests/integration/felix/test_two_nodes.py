"""Two "nodes" (netns) on a bridge, a pod on each, routes from a simulated feed.

The bridge lives in a third namespace (the L2 segment, plus a "router"
address the nodes use as default gateway, which proxy ARP needs to answer
for 169.254.1.1). Routes are written only by the reconciler, from the
route feed state machine fed with what a BGP speaker would push.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import pytest

from felix.dataplane import VXLAN_DEVICE, host_interface_name
from felix.desired import (
    DesiredInputs,
    EncapMode,
    LocalWorkload,
    NodeInfo,
    PoolInfo,
    compute_desired,
)
from felix.feed import LearnedHop, LearnedRoute, RouteFeed, RouteUpdate, UpdateType
from felix.kernel import NetlinkKernel
from felix.links import enable_forwarding, ensure_vxlan
from felix.reconcile import Reconciler, reconcile_once
from felix.veth import VethSpec, plumb
from tests.support.netns import Netns, Topology
from tests.support.poll import wait_for

IP, NET = IPv4Address, IPv4Network
POOL = NET("10.65.0.0/16")


@dataclass
class Node:
    info: NodeInfo
    ns: Netns
    pod: Netns
    pod_ip: IPv4Address
    block: IPv4Network
    host_interface: str


def build(topo: Topology) -> tuple[Node, Node]:
    seg = topo.netns("br")
    bridge = topo.bridge(seg)
    seg.ip(f"addr add 192.0.2.254/24 dev {bridge}")
    nodes = []
    for i in (1, 2):
        ns, pod = topo.netns(f"n{i}"), topo.netns(f"p{i}")
        topo.attach(seg, bridge, ns, "up0")
        ns.ip(f"addr add 192.0.2.{i}/24 dev up0")
        ns.ip("route add default via 192.0.2.254")
        enable_forwarding(ns.path)
        block = NET(f"10.65.{i - 1}.0/26")
        info = NodeInfo(
            f"node{i}", IP(f"192.0.2.{i}"), IP(f"10.65.{i - 1}.1"), f"02:00:00:00:00:0{i}"
        )
        gh = host_interface_name(f"pod{i}", "eth0")
        pod_ip = IP(f"10.65.{i - 1}.5")
        plumb(ns.path, VethSpec(gh, "eth0", pod.path, (pod_ip,)))
        nodes.append(Node(info, ns, pod, pod_ip, block, gh))
    return nodes[0], nodes[1]


def feed_from(peer: Node) -> RouteFeed:
    """What this node's speaker would push: a snapshot holding the peer's block."""
    feed = RouteFeed()
    stream = feed.open_stream()
    route = LearnedRoute(
        peer.block, str(peer.info.address), (LearnedHop(peer.info.address, peer.info.name),)
    )  # type: ignore[arg-type]
    for update in (
        RouteUpdate(UpdateType.SNAPSHOT_BEGIN),
        RouteUpdate(UpdateType.ADD, route),
        RouteUpdate(UpdateType.SNAPSHOT_END),
    ):
        feed.apply(stream, update)
    return feed


def program(me: Node, peer: Node, pool: PoolInfo) -> None:
    feed = feed_from(peer)
    inputs = DesiredInputs(
        node=me.info.name,
        node_address=me.info.address,
        connected=[NET("192.0.2.0/24")],
        pools=[pool],
        blocks=[me.block],
        workloads=[LocalWorkload(me.host_interface, (me.pod_ip,))],
        nodes={n.info.name: n.info for n in (me, peer)},
        learned=feed.by_prefix(),
    )
    kernel = NetlinkKernel(me.ns.path)
    try:
        rec = Reconciler(datastore_synced=True, routes_synced=feed.synced)
        results = reconcile_once(rec, kernel, compute_desired(inputs).state, 0.0, resync=True)
        assert all(r.ok for r in results), [r for r in results if not r.ok]
    finally:
        kernel.close()


def test_pods_on_two_nodes_ping_over_plain_routes(topo: Topology) -> None:
    a, b = build(topo)
    assert not a.pod.ping(str(b.pod_ip), timeout=0.5), "reachable before any route?"
    for me, peer in ((a, b), (b, a)):
        program(me, peer, PoolInfo(POOL))
    assert "10.65.1.0/26 via 192.0.2.2 dev up0 proto 77" in a.ns.routes()
    assert wait_for(lambda: a.pod.ping(str(b.pod_ip)), timeout=10, what="pod A -> pod B")
    assert b.pod.ping(str(a.pod_ip))


@pytest.mark.parametrize("mode", [EncapMode.ALWAYS, EncapMode.CROSS_SUBNET])
def test_vxlan_carries_pod_traffic(topo: Topology, mode: EncapMode) -> None:
    a, b = build(topo)
    for node in (a, b):
        assert node.info.vtep_ip and node.info.vtep_mac and node.info.address
        ensure_vxlan(node.ns.path, node.info.vtep_ip, node.info.vtep_mac, node.info.address)
    for me, peer in ((a, b), (b, a)):
        program(me, peer, PoolInfo(POOL, vxlan_mode=mode))
    before_a, before_b = a.ns.link_stats(VXLAN_DEVICE), b.ns.link_stats(VXLAN_DEVICE)
    assert wait_for(lambda: a.pod.ping(str(b.pod_ip)), timeout=10, what="pod A -> pod B")
    after_a, after_b = a.ns.link_stats(VXLAN_DEVICE), b.ns.link_stats(VXLAN_DEVICE)
    if mode is EncapMode.ALWAYS:
        assert f"10.65.1.0/26 via 10.65.1.1 dev {VXLAN_DEVICE} proto 77 onlink" in a.ns.routes()
        assert after_a["tx_packets"] > before_a["tx_packets"]
        assert after_b["rx_packets"] > before_b["rx_packets"]
    else:  # same subnet: CrossSubnet routes plainly, nothing is encapsulated
        assert "10.65.1.0/26 via 192.0.2.2 dev up0 proto 77" in a.ns.routes()
        assert after_a["tx_packets"] == before_a["tx_packets"]
