"""Three gingham-felix daemons over VXLAN: every pod pair pings, and keeps pinging.

The lab saw 22 of 30 pod pairs work with `--encap vxlan --nodes 3`: felix set
the VXLAN device's MAC on every pass, and setting a link's MAC (even to the
same value) makes the kernel flush its neighbour entries, so the permanent
VTEP entries vanished after each pass that was not a resync and the remote
VTEPs went INCOMPLETE. Here felix resyncs rarely (30 s) and the feed keeps
sending deltas after the routes are in, so passes that are not resyncs run
after the VTEP entries were programmed; the entries must still be PERMANENT
and all 30 ordered pod pairs must ping (encapsulated: the VXLAN counters grow).
"""

from __future__ import annotations

import asyncio
import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from felix.dataplane import VXLAN_DEVICE, host_interface_name
from felix.veth import VethSpec, plumb
from tests.integration.felix.daemon import (
    FELIX,
    HTTP_PORT,
    Felix,
    add,
    push_snapshot,
    resource,
    seed,
)
from tests.support.netns import Netns, Topology
from tests.support.poll import wait_for

NODES = (1, 2, 3)
PODS = (5, 6)


class QuietFelix(Felix):
    """A felix that resyncs only every 30 s: passes between are event-driven."""

    def launch(self) -> None:
        args = ["ip", "netns", "exec", self.ns.name, FELIX, "--node", self.node,
                "--datastore", self.url, "--run-dir", str(self.run_dir),
                "--http", f"127.0.0.1:{HTTP_PORT}", "--resync", "30"]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def block(i: int) -> str:
    return f"10.65.{i - 1}.0/26"


def pod_ip(i: int, p: int) -> str:
    return f"10.65.{i - 1}.{p}"


def permanent_vteps(ns: Netns) -> set[str]:
    out = ns.ip(f"neigh show dev {VXLAN_DEVICE}")
    return {line.split()[0] for line in out.splitlines() if "PERMANENT" in line}


@pytest.mark.timeout(900)
async def test_three_felix_daemons_every_vxlan_pod_pair_pings(
    topo: Topology, tmp_path: Path
) -> None:
    seg = topo.netns("br")
    bridge = topo.bridge(seg)
    seg.ip(f"addr add 192.0.2.254/24 dev {bridge}")
    url = f"sqlite:///{tmp_path}/store.db"
    objects: list[object] = [
        resource("IPPool", "default", {"cidr": "10.65.0.0/16", "vxlanMode": "Always"})
    ]
    nodes: dict[int, Netns] = {}
    pods: dict[tuple[int, int], Netns] = {}
    for i in NODES:
        ns = topo.netns(f"n{i}")
        topo.attach(seg, bridge, ns, "up0")
        ns.ip(f"addr add 192.0.2.{i}/24 dev up0")
        ns.ip("route add default via 192.0.2.254")
        nodes[i] = ns
        for p in PODS:
            pod = topo.netns(f"p{i}{p}")
            gh = host_interface_name(f"pod{i}-{p}", "eth0")
            spec = VethSpec(gh, "eth0", pod.path, (IPv4Address(pod_ip(i, p)),))
            await asyncio.to_thread(plumb, ns.path, spec)
            pods[(i, p)] = pod
        spec = {
            "bgp": {"ipv4Address": f"192.0.2.{i}/24"},
            "vxlan": {"tunnelAddress": pod_ip(i, 1), "tunnelMAC": f"02:00:00:00:00:0{i}"},
        }
        objects.append(resource("Node", f"node{i}", spec))
    await seed(url, objects)
    felixes: list[Felix] = []
    feeds = []
    try:
        for i, ns in nodes.items():
            felix = QuietFelix(
                ns, url, tmp_path / f"run{i}", tmp_path / f"felix{i}.log", f"node{i}"
            )
            felixes.append(felix)
            felix.launch()  # all three start at once: start-up is slow on a loaded machine
        for felix in felixes:
            await asyncio.to_thread(wait_for, felix.healthy, 300, 0.1, f"{felix.node} healthy")
        for i, felix in zip(NODES, felixes, strict=True):
            others = [add(block(j), f"192.0.2.{j}", f"node{j}") for j in NODES if j != i]
            feeds.append(await push_snapshot(felix.sock, others))
        for i, ns in nodes.items():
            for j in NODES:
                if j == i:
                    continue
                want = f"{block(j)} via {pod_ip(j, 1)} dev {VXLAN_DEVICE} proto 77 onlink"
                await asyncio.to_thread(
                    wait_for, lambda ns=ns, w=want: w in ns.routes(), 90, 0.05, f"{want} on n{i}"
                )
        # Deltas after the routes are in: event-driven passes (not resyncs) run now.
        for n, (i, (_channel, call)) in enumerate(zip(NODES, feeds, strict=True)):
            j = NODES[(n + 1) % len(NODES)]
            await call.write(add(f"10.65.{100 + i}.0/26", f"192.0.2.{j}", f"node{j}"))
        for i, ns in nodes.items():
            extra = f"10.65.{100 + i}.0/26 via"
            await asyncio.to_thread(
                wait_for, lambda ns=ns, e=extra: e in ns.routes(), 90, 0.05, f"delta on n{i}"
            )
        for i, ns in nodes.items():
            remote = {pod_ip(j, 1) for j in NODES if j != i}
            assert permanent_vteps(ns) >= remote, (i, ns.ip(f"neigh show dev {VXLAN_DEVICE}"))
        before = {i: ns.link_stats(VXLAN_DEVICE) for i, ns in nodes.items()}
        failed = []
        for (i, p), pod in pods.items():
            for j, q in pods:
                if (i, p) == (j, q):
                    continue
                # No retry loop: with permanent VTEP entries the first packets go.
                ok = await asyncio.to_thread(pod.ping, pod_ip(j, q), 1, 3.0)
                if not ok:
                    failed.append(f"{pod_ip(i, p)} -> {pod_ip(j, q)}")
        assert not failed, f"{len(failed)} of 30 pod pairs failed: {failed}"
        for i, ns in nodes.items():
            after = ns.link_stats(VXLAN_DEVICE)
            assert after["tx_packets"] > before[i]["tx_packets"], f"n{i}: not encapsulated"
        for channel, _call in feeds:
            await channel.close()
    finally:
        for felix in felixes:
            felix.kill9()
