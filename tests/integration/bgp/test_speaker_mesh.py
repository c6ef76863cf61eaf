"""Two speakers, a real sqlite datastore, a node-to-node mesh over ExaBGP ↔ ExaBGP.

The datastore alone decides who peers: creating the Nodes brings the mesh up;
each node's block reaches the other as a selected route with the announcing
node as origin; deleting a Node tears its sessions down and its routes vanish
from the other node's learned routes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.exabgp_process import EXABGP_MODULE
from bird_agent.learned import RouteChange
from bird_agent.speaker import Speaker
from gingham.datastore import open_datastore
from gingham.datastore.base import Datastore
from gingham.model.documents import parse_resource
from tests.integration.bgp.conftest import daemon_says, eventually
from tests.support import bgpd
from tests.support.names import unique_prefix

pytestmark = [pytest.mark.root, pytest.mark.slow]

ADDRESSES = {"n1": IPv4Address("10.78.0.1"), "n2": IPv4Address("10.78.0.2")}
TOR = IPv4Address("10.78.0.254")
TOR_BLOCK = IPv4Network("198.51.100.0/24")
BLOCKS = {"n1": IPv4Network("10.244.1.0/26"), "n2": IPv4Network("10.244.2.0/26")}


class MemorySink:
    def __init__(self) -> None:
        self.routes: dict[IPv4Network, RouteChange] = {}
        self.removed: list[IPv4Network] = []

    async def apply(self, changes: Sequence[RouteChange]) -> None:
        for change in changes:
            if change.route is None:
                self.routes.pop(change.prefix, None)
                self.removed.append(change.prefix)
            else:
                self.routes[change.prefix] = change


async def create(store: Datastore, doc: dict[str, object]) -> None:
    await store.create(parse_resource({"apiVersion": "gingham.io/v1", **doc}))


@dataclass
class Mesh:
    store: Datastore
    tor_netns: str
    speakers: dict[str, Speaker] = field(default_factory=dict)
    sinks: dict[str, MemorySink] = field(default_factory=dict)

    async def each_learned_the_other(self) -> bool:
        one = self.sinks["n1"].routes.get(BLOCKS["n2"])
        two = self.sinks["n2"].routes.get(BLOCKS["n1"])
        return bool(
            one and one.route and one.route.next_hop == ADDRESSES["n2"]
            and two and two.route and two.route.next_hop == ADDRESSES["n1"]
        )  # fmt: skip


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    """Nodes n1 and n2 in the datastore, a speaker for each in its own netns."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    prefix = unique_prefix("m")
    netns = {name: f"{prefix}{name}" for name in (*ADDRESSES, "sw", "tor")}
    made = Mesh(open_datastore(f"sqlite:///{tmp_path}/gingham.db"), tor_netns=netns["tor"])
    try:
        for ns in netns.values():
            bgpd.create_netns(ns)
        # One L2 segment: n1, n2 and a ToR router (BIRD, used by some tests).
        bgpd.shared_segment(
            netns["sw"],
            [
                bgpd.VethEnd(netns["n1"], "eth0", IPv4Interface("10.78.0.1/24")),
                bgpd.VethEnd(netns["n2"], "eth0", IPv4Interface("10.78.0.2/24")),
                bgpd.VethEnd(netns["tor"], "eth0", IPv4Interface(f"{TOR}/24")),
            ],
        )
        await create(made.store, {"kind": "IPPool", "metadata": {"name": "pool"},
                                  "spec": {"cidr": "10.244.0.0/16"}})  # fmt: skip
        await create(made.store, {"kind": "BGPConfiguration", "metadata": {"name": "default"},
                                  "spec": {"holdTime": "9s"}})  # fmt: skip
        for name, address in ADDRESSES.items():
            bgp = {"ipv4Address": f"{address}/24"}
            await create(made.store, {"kind": "Node", "metadata": {"name": name},
                                      "spec": {"bgp": bgp}})  # fmt: skip
        for name, address in ADDRESSES.items():
            command = ("ip", "netns", "exec", netns[name], sys.executable, *EXABGP_MODULE)
            adapter = ExaBGPAdapter(
                ExaBGPOptions(
                    run_dir=tmp_path / name,
                    listen_addresses=(address,),
                    exabgp_command=command,
                    backoff_initial=0.1,
                )
            )
            made.sinks[name] = MemorySink()
            speaker = Speaker(name, made.store, adapter, made.sinks[name])
            speaker.set_local_prefixes([BLOCKS[name]], [])
            made.speakers[name] = speaker
            await speaker.start()
        await eventually(made.each_learned_the_other, 20, "both blocks learned across the mesh")
        yield made
    finally:
        for speaker in made.speakers.values():
            await speaker.stop()
        await made.store.close()
        for ns in netns.values():
            bgpd.delete_netns(ns)


async def test_two_node_mesh_from_the_datastore(mesh: Mesh) -> None:
    learned = mesh.sinks["n1"].routes[BLOCKS["n2"]].route
    assert learned is not None and learned.origin_node == "n2"
    # Our own block is never a learned route.
    assert BLOCKS["n1"] not in mesh.sinks["n1"].routes
    (row,) = mesh.speakers["n1"].status()
    assert (row.address, row.peer_type, row.state) == (
        ADDRESSES["n2"],
        "node-to-node mesh",
        "established",
    )
    assert (row.received, row.accepted, row.advertised) == (1, 1, 1)
    assert row.since is not None

    # A ToR BGPPeer for n1 appears in the datastore: n1 peers with it; the mesh
    # session is not touched.
    mesh_since = row.since
    tor = bgpd.Bird(
        bgpd.DaemonPeering(
            mesh.tor_netns, TOR, 65002, ADDRESSES["n1"], 64512, originate=[TOR_BLOCK]
        )
    )
    await asyncio.to_thread(tor.start)
    try:
        started = time.monotonic()
        await create(mesh.store, {"kind": "BGPPeer", "metadata": {"name": "tor"},
                                  "spec": {"peerIP": str(TOR), "asNumber": 65002,
                                           "node": "n1"}})  # fmt: skip
        await daemon_says(tor.established, what="n1 Established with the ToR")
        took = time.monotonic() - started
        print(f"BGPPeer created → ToR session Established in {took:.2f}s")
        await daemon_says(lambda: BLOCKS["n1"] in tor.routes(), what="n1's block at the ToR")
        rows = {r.address: r for r in mesh.speakers["n1"].status()}
        assert rows[TOR].peer_type == "node specific" and rows[TOR].state == "established"
        assert rows[ADDRESSES["n2"]].since == mesh_since  # the mesh session survived
        # The ToR's pool-external prefix is refused by the default import policy.
        assert TOR_BLOCK not in mesh.sinks["n1"].routes
    finally:
        await asyncio.to_thread(tor.stop)

    # n2 leaves the cluster: sessions end on purpose, routes go at once both ways.
    await mesh.store.delete("Node", "n2")

    async def n2_forgot_n1() -> bool:
        return BLOCKS["n1"] not in mesh.sinks["n2"].routes

    await eventually(n2_forgot_n1, 15, "n2 lost n1's block after n2 was deleted")
    plan = mesh.speakers["n1"].plan
    assert plan is not None and [p.address for p in plan.peers.peers] == [TOR]


async def test_exabgp_restart_keeps_routes_through_graceful_restart(mesh: Mesh) -> None:
    """n1's ExaBGP dies: both sides keep each other's block (stale) and, once the
    new ExaBGP is back and End-of-RIB has passed, nothing was ever withdrawn."""
    adapter = mesh.speakers["n1"].adapter
    old_pid = adapter.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    async def back_up() -> bool:
        return adapter.pid not in (None, old_pid) and all(
            row.state == "established" for row in mesh.speakers["n1"].status()
        )

    await eventually(back_up, 20, "n1's ExaBGP restarted and the session re-established")

    async def stale_cleared() -> bool:
        return not any(s.learned.stale for s in mesh.speakers.values())

    await eventually(stale_cleared, 15, "End-of-RIB swept the stale marks on both nodes")
    assert await mesh.each_learned_the_other()
    assert mesh.sinks["n1"].removed == [] and mesh.sinks["n2"].removed == []
