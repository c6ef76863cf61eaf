"""A hostile BIRD peer: a default route, a prefix covering our node address and a
prefix outside every pool all arrive through ExaBGP and are all refused by the
import policy, with counters to show for it; its legitimate pool block passes.
"""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from bird_agent.events import EndOfRib, RoutesAnnounced
from bird_agent.policy import ImportFilter, PolicyView, RejectReason
from tests.integration.bgp.conftest import (
    POOL,
    THEIR_BLOCK,
    Lab,
    our_address,
    their_address,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

DEFAULT = IPv4Network("0.0.0.0/0")
COVERS_US = IPv4Network("10.77.0.0/16")
OUTSIDE = IPv4Network("198.51.100.0/24")


@pytest.mark.parametrize("cluster_peer", [True, False], ids=["mesh-peer", "external-peer"])
async def test_hostile_announcements_are_rejected_and_counted(lab: Lab, cluster_peer: bool) -> None:
    peer = their_address(1)
    await lab.daemon(
        "bird", 1, ibgp=cluster_peer, originate=[DEFAULT, COVERS_US, OUTSIDE, THEIR_BLOCK]
    )
    _, log = await lab.adapter([lab.spec(1, ibgp=cluster_peer)], listen=(our_address(1),))
    await log.wait(EndOfRib, peer)

    policy = ImportFilter(
        PolicyView(pools=(POOL,), node_addresses=frozenset({our_address(1), peer}))
    )
    installed: list[IPv4Network] = []
    for update in log.of(RoutesAnnounced, peer):
        accepted, _ = policy.filter(peer, cluster_peer, update.prefixes)
        installed += accepted

    assert installed == [THEIR_BLOCK]
    assert policy.rejected_by_reason == {
        RejectReason.DEFAULT_ROUTE: 1,
        RejectReason.COVERS_NODE_ADDRESS: 1,
        RejectReason.OUTSIDE_POOLS: 1,
    }
    assert policy.rejected_by_peer[peer] == 3
    assert policy.accepted_by_peer[peer] == 1
