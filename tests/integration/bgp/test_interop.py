"""ExaBGP adapter against real BIRD 2, FRR bgpd and GoBGP, over eBGP and iBGP.

For each daemon and session type: both sides agree the session is
Established; our block is in their RIB with our address as next hop; their
block reaches us as a typed `RoutesAnnounced`; withdrawals work both ways;
a killed daemon yields a `PeerDown` (ExaBGP itself sends no withdrawals).
eBGP sessions run with an MD5 password on both sides; a wrong password never
comes up and the kernel counts the MD5 failures.
"""

from __future__ import annotations

import asyncio

import pytest

from bird_agent.events import (
    EndOfRib,
    PeerDown,
    PeerOpen,
    PeerUp,
    RoutesAnnounced,
    RoutesWithdrawn,
)
from tests.integration.bgp.conftest import (
    OUR_BLOCK,
    THEIR_BLOCK,
    Lab,
    daemon_says,
    eventually,
    our_address,
    their_address,
)
from tests.support.bgpd import md5_failures

pytestmark = [pytest.mark.root, pytest.mark.slow]

DAEMONS = ["bird", "frr", "gobgp"]


@pytest.mark.parametrize("ibgp", [False, True], ids=["ebgp", "ibgp"])
@pytest.mark.parametrize("kind", DAEMONS)
async def test_session_routes_and_withdrawals(lab: Lab, kind: str, ibgp: bool) -> None:
    password = None if ibgp else "interop-secret"
    peer = their_address(1)
    daemon = await lab.daemon(kind, 1, ibgp=ibgp, password=password, originate=[THEIR_BLOCK])
    adapter, log = await lab.adapter(
        [lab.spec(1, ibgp=ibgp, password=password)], listen=(our_address(1),)
    )
    adapter.set_exports({OUR_BLOCK: our_address(1)})

    # Both sides agree the session is up.
    await log.wait(PeerUp, peer)
    await daemon_says(daemon.established, what=f"{kind} Established")
    opened = await log.wait(PeerOpen, peer)
    assert opened.router_id == peer
    assert opened.graceful_restart_time is not None

    # Our block in their RIB, next hop = our address on their link.
    await daemon_says(
        lambda: daemon.routes().get(OUR_BLOCK) == our_address(1),
        what=f"{OUR_BLOCK} via {our_address(1)} in {kind}'s RIB",
    )
    # Their block reaches us, typed, with their address as next hop.
    announced = await log.wait(RoutesAnnounced, peer, where=lambda e: THEIR_BLOCK in e.prefixes)
    assert announced.next_hop == peer
    assert announced.as_path == (() if ibgp else (65002,))
    await log.wait(EndOfRib, peer)

    # Withdraw ours: gone from their RIB.
    adapter.set_exports({})
    await daemon_says(lambda: OUR_BLOCK not in daemon.routes(), what="our block withdrawn")

    # Withdraw theirs: a typed withdrawal reaches us.
    await asyncio.to_thread(daemon.withdraw, THEIR_BLOCK)
    await log.wait(RoutesWithdrawn, peer, where=lambda e: THEIR_BLOCK in e.prefixes)

    # Announce again, then the daemon dies without a word: PeerDown, no withdrawals.
    adapter.set_exports({OUR_BLOCK: our_address(1)})
    await daemon_says(lambda: OUR_BLOCK in daemon.routes(), what="our block re-announced")
    withdrawals_before = len(log.of(RoutesWithdrawn, peer))
    daemon.kill()
    down = await log.wait(PeerDown, peer)
    assert down.reason
    assert len(log.of(RoutesWithdrawn, peer)) == withdrawals_before


@pytest.mark.parametrize("kind", DAEMONS)
async def test_wrong_md5_password_never_establishes(lab: Lab, kind: str) -> None:
    daemon = await lab.daemon(kind, 1, ibgp=False, password="their-idea")
    _, log = await lab.adapter(
        [lab.spec(1, ibgp=False, password="our-idea")], listen=(our_address(1),)
    )
    before = md5_failures(lab.us) + md5_failures(daemon.peering.netns)

    async def md5_failures_seen() -> bool:
        now = md5_failures(lab.us) + md5_failures(daemon.peering.netns)
        return now >= before + 3

    # Several refused attempts (both sides keep retrying every second) ...
    await eventually(md5_failures_seen, timeout=20, what="TCPMD5Failure counted 3 times")
    # ... and through all of them, never a session on either side.
    assert not log.of(PeerUp)
    assert not daemon.established()
