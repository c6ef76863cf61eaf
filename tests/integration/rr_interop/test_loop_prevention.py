"""Loop prevention across a real peer (issue 7, RFC 4456 §8).

Our RR node (cluster 1.1.1.1) has two clients: a raw ExaBGP peer, which can
forge path attributes, and BIRD, which watches what gets reflected. ExaBGP
sends, in this order:

- LOOP: CLUSTER_LIST [1.1.1.1] — it has already been through our cluster;
- FOREIGN: CLUSTER_LIST [9.9.9.9] — reflected by someone else: fine.

FOREIGN must reach BIRD with our cluster ID prepended (the control, proving
the session and the reflection path work); LOOP must never be reflected to
BIRD nor programmed in the RR node's kernel. They come in one session in
order, so once FOREIGN has gone all the way through, LOOP has been decided.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv4Network

import pytest

from tests.integration.rr_interop.conftest import CLUSTER_ID, eventually
from tests.support import bgpd
from tests.support.bird_rr import ReflectedRoute, route_attributes
from tests.support.exabgp_peer import ExaBGPPeer
from tests.support.node_fabric import AS, Fabric, address, kernel_route, metric, resource

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

RR, FORGER, WATCHER = 1, 12, 10
OTHER_CLUSTER = IPv4Address("9.9.9.9")
ORIGINATOR = IPv4Address("10.71.0.99")
LOOP = IPv4Network("10.66.12.0/26")
FOREIGN = IPv4Network("10.66.13.0/26")


async def test_a_route_carrying_our_cluster_id_is_dropped(fabric: Fabric) -> None:
    hop = address(FORGER)
    forger_ns = fabric.add_router(FORGER)
    forger = ExaBGPPeer(
        bgpd.DaemonPeering(netns=forger_ns.name, address=hop, asn=AS,
                           neighbor=address(RR), neighbor_asn=AS),
        routes=[
            f"route {LOOP} next-hop {hop} originator-id {ORIGINATOR} cluster-list [ {CLUSTER_ID} ]",
            f"route {FOREIGN} next-hop {hop} originator-id {ORIGINATOR} "
            f"cluster-list [ {OTHER_CLUSTER} ]",
        ],
    )  # fmt: skip
    watcher_ns = fabric.add_router(WATCHER)
    watcher = bgpd.Bird(
        bgpd.DaemonPeering(netns=watcher_ns.name, address=address(WATCHER), asn=AS,
                           neighbor=address(RR), neighbor_asn=AS)
    )  # fmt: skip
    for name, index in (("forger", FORGER), ("watcher", WATCHER)):
        await fabric.apply(
            resource(
                "BGPPeer",
                name,
                {"node": f"node{RR}", "peerIP": str(address(index)), "asNumber": AS},
            )
        )
    await asyncio.to_thread(fabric.start_daemon, watcher)
    rr = await fabric.add_node(RR, cluster_id=str(CLUSTER_ID))

    control = ReflectedRoute(
        next_hop=hop, originator_id=ORIGINATOR, cluster_list=(CLUSTER_ID, OTHER_CLUSTER)
    )
    try:
        # The forger starts once our speaker is fully up: ExaBGP backs off
        # further after each refused or reset attempt, so an early start only
        # slows the test down on a loaded machine.
        await eventually(watcher.established, 300, "BIRD Established with our RR")
        await asyncio.to_thread(fabric.start_daemon, forger)
        await eventually(
            lambda: route_attributes(watcher, FOREIGN) == [control],
            180,
            "FOREIGN reflected to BIRD with our cluster ID prepended",
        )
        await eventually(
            lambda: kernel_route(rr.ns, str(FOREIGN)) is not None,
            120,
            "FOREIGN programmed on the RR node",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fabric.logs()}") from None
    assert route_attributes(watcher, LOOP) == [], "LOOP was reflected"
    assert kernel_route(rr.ns, str(LOOP)) is None, "LOOP was programmed on the RR node"
    # Dropped as a loop by the reflector (not lost on the way for another reason).
    assert metric(rr.ns, "gingham_rr_loops_dropped") == 1.0
