"""Two speakers, a real sqlite datastore, a node-to-node mesh over ExaBGP ↔ ExaBGP.

The datastore alone decides who peers: creating the Nodes brings the mesh up;
each node's block reaches the other as a selected route with the announcing
node as origin; deleting a Node tears its sessions down and its routes vanish
from the other node's learned routes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.learned import RouteChange
from bird_agent.speaker import Speaker
from gingham.datastore import open_datastore
from gingham.datastore.base import Datastore
from gingham.model.documents import parse_resource
from tests.integration.bgp.conftest import eventually
from tests.support import bgpd
from tests.support.names import unique_prefix

pytestmark = [pytest.mark.root, pytest.mark.slow]

ADDRESSES = {"n1": IPv4Address("10.78.0.1"), "n2": IPv4Address("10.78.0.2")}
BLOCKS = {"n1": IPv4Network("10.244.1.0/26"), "n2": IPv4Network("10.244.2.0/26")}


class MemorySink:
    def __init__(self) -> None:
        self.routes: dict[IPv4Network, RouteChange] = {}

    async def apply(self, changes: Sequence[RouteChange]) -> None:
        for change in changes:
            if change.route is None:
                self.routes.pop(change.prefix, None)
            else:
                self.routes[change.prefix] = change


async def create(store: Datastore, doc: dict[str, object]) -> None:
    await store.create(parse_resource({"apiVersion": "gingham.io/v1", **doc}))


async def test_two_node_mesh_from_the_datastore(tmp_path: Path) -> None:
    prefix = unique_prefix("m")
    netns = {name: f"{prefix}{name}" for name in ADDRESSES}
    store = open_datastore(f"sqlite:///{tmp_path}/gingham.db")
    speakers: dict[str, Speaker] = {}
    sinks = {name: MemorySink() for name in ADDRESSES}
    try:
        for ns in netns.values():
            bgpd.create_netns(ns)
        bgpd.veth_between(
            bgpd.VethEnd(netns["n1"], "eth0", IPv4Interface("10.78.0.1/24")),
            bgpd.VethEnd(netns["n2"], "eth0", IPv4Interface("10.78.0.2/24")),
        )
        await create(store, {"kind": "IPPool", "metadata": {"name": "pool"},
                             "spec": {"cidr": "10.244.0.0/16"}})  # fmt: skip
        await create(store, {"kind": "BGPConfiguration", "metadata": {"name": "default"},
                             "spec": {"holdTime": "9s"}})  # fmt: skip
        for name, address in ADDRESSES.items():
            await create(store, {"kind": "Node", "metadata": {"name": name},
                                 "spec": {"bgp": {"ipv4Address": f"{address}/24"}}})  # fmt: skip
        for name, address in ADDRESSES.items():
            adapter = ExaBGPAdapter(
                ExaBGPOptions(
                    run_dir=tmp_path / name,
                    listen_addresses=(address,),
                    exabgp_command=(
                        "ip",
                        "netns",
                        "exec",
                        netns[name],
                        sys.executable,
                        "-m",
                        "exabgp",
                    ),
                )
            )
            speaker = Speaker(name, store, adapter, sinks[name])
            speaker.set_local_prefixes([BLOCKS[name]], [])
            speakers[name] = speaker
            await speaker.start()

        async def each_learned_the_other() -> bool:
            one = sinks["n1"].routes.get(BLOCKS["n2"])
            two = sinks["n2"].routes.get(BLOCKS["n1"])
            return bool(
                one and one.route and one.route.next_hop == ADDRESSES["n2"]
                and two and two.route and two.route.next_hop == ADDRESSES["n1"]
            )  # fmt: skip

        await eventually(each_learned_the_other, 20, "both blocks learned across the mesh")
        learned = sinks["n1"].routes[BLOCKS["n2"]].route
        assert learned is not None and learned.origin_node == "n2"
        # Our own block is never a learned route.
        assert BLOCKS["n1"] not in sinks["n1"].routes
        (row,) = speakers["n1"].status()
        assert (row.address, row.peer_type, row.state) == (
            ADDRESSES["n2"],
            "node-to-node mesh",
            "established",
        )
        assert (row.received, row.accepted, row.advertised) == (1, 1, 1)
        assert row.since is not None

        # n2 leaves the cluster: n1 drops the session, n2 loses n1's routes.
        await store.delete("Node", "n2")

        async def n2_forgot_n1() -> bool:
            return BLOCKS["n1"] not in sinks["n2"].routes

        await eventually(n2_forgot_n1, 15, "n2 lost n1's block after n2 was deleted")
        assert speakers["n1"].plan is not None
        assert speakers["n1"].plan.peers.peers == ()
    finally:
        for speaker in speakers.values():
            await speaker.stop()
        await store.close()
        for ns in netns.values():
            bgpd.delete_netns(ns)
