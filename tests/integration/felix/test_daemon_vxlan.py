"""Two gingham-felix daemons, one per node namespace on a bridge, VXLAN pool.

Pods are plumbed before felix starts (felix adopts them, as after a restart;
AddWorkload needs IPAM, not landed yet). Each felix gets the other node's
block over its RouteFeed socket; VTEPs come from the Node resources in the
shared datastore. The pods then ping each other and the VXLAN device
counters prove the traffic was encapsulated.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path

from felix.dataplane import VXLAN_DEVICE, host_interface_name
from felix.veth import VethSpec, plumb
from tests.integration.felix.daemon import Felix, add, push_snapshot, resource, seed
from tests.support.netns import Topology
from tests.support.poll import wait_for


async def test_two_felix_daemons_route_pods_over_vxlan(topo: Topology, tmp_path: Path) -> None:
    seg = topo.netns("br")
    bridge = topo.bridge(seg)
    seg.ip(f"addr add 192.0.2.254/24 dev {bridge}")
    url = f"sqlite:///{tmp_path}/store.db"
    objects: list[object] = [
        resource("IPPool", "default", {"cidr": "10.65.0.0/16", "vxlanMode": "Always"})
    ]
    nodes, pods, felixes = [], [], []
    for i in (1, 2):
        ns, pod = topo.netns(f"n{i}"), topo.netns(f"p{i}")
        topo.attach(seg, bridge, ns, "up0")
        ns.ip(f"addr add 192.0.2.{i}/24 dev up0")
        ns.ip("route add default via 192.0.2.254")
        gh = host_interface_name(f"pod{i}", "eth0")
        pod_spec = VethSpec(gh, "eth0", pod.path, (IPv4Address(f"10.65.{i - 1}.5"),))
        await asyncio.to_thread(plumb, ns.path, pod_spec)
        spec = {
            "bgp": {"ipv4Address": f"192.0.2.{i}/24"},
            "vxlan": {"tunnelAddress": f"10.65.{i - 1}.1", "tunnelMAC": f"02:00:00:00:00:0{i}"},
        }
        objects.append(resource("Node", f"node{i}", spec))
        nodes.append(ns)
        pods.append(pod)
    await seed(url, objects)
    try:
        for i, ns in enumerate(nodes, start=1):
            run = tmp_path / f"run{i}"
            felixes.append(Felix(ns, url, run, tmp_path / f"felix{i}.log", node=f"node{i}"))
            felixes[-1].start()
        feeds = [
            await push_snapshot(felixes[0].sock, [add("10.65.1.0/26", "192.0.2.2", "node2")]),
            await push_snapshot(felixes[1].sock, [add("10.65.0.0/26", "192.0.2.1", "node1")]),
        ]
        want = f"10.65.1.0/26 via 10.65.1.1 dev {VXLAN_DEVICE} proto 77 onlink"
        wait_for(lambda: want in nodes[0].routes(), timeout=15, what="VXLAN route on node1")
        wait_for(lambda: "10.65.1.5 dev gh" in nodes[1].routes(), timeout=15, what="adopted pod")
        before = nodes[0].link_stats(VXLAN_DEVICE)
        assert await asyncio.to_thread(
            wait_for, lambda: pods[0].ping("10.65.1.5"), 15, 0.02, "pod1 -> pod2"
        )
        assert pods[1].ping("10.65.0.5")
        after = nodes[0].link_stats(VXLAN_DEVICE)
        assert after["tx_packets"] > before["tx_packets"], "not encapsulated"
        assert after["rx_packets"] > before["rx_packets"]
        for channel, _call in feeds:
            await channel.close()
    finally:
        for f in felixes:
            f.kill9()
