"""A restart keeps our routes at graceful-restart peers; a planned stop withdraws them at once.

Against real BIRD 2 and FRR bgpd, both graceful-restart helpers (ExaBGP
advertises a 120 s restart time). Restart-style: the adapter stops (ExaBGP
gets SIGTERM and closes without a NOTIFICATION); the peer sees the session
go down and keeps our block, stale, until a new ExaBGP is back and says it
again. Planned stop: `ExaBGPAdapter.cease` sends a Cease NOTIFICATION,
Administrative Shutdown; the peer records a Cease and drops our block within
`WITHDRAWN_WITHIN` seconds, long before its restart timer would.
"""

from __future__ import annotations

import asyncio
import json
import time
from ipaddress import IPv4Network

import pytest

from bird_agent.events import PeerDown, PeerUp
from tests.integration.bgp.conftest import (
    OUR_BLOCK,
    Lab,
    daemon_says,
    our_address,
    their_address,
)
from tests.support import bgpd

pytestmark = [pytest.mark.root, pytest.mark.slow]

WITHDRAWN_WITHIN = 2.0  # seconds from `cease()` until the peer holds nothing of ours


def keeps_stale(daemon: bgpd.BgpDaemon, prefix: IPv4Network) -> bool:
    """The daemon holds `prefix` from us as a graceful-restart helper (stale, timer running)."""
    if isinstance(daemon, bgpd.Frr):
        paths = json.loads(daemon.vtysh("show bgp ipv4 unicast json"))["routes"].get(str(prefix))
        neighbor = str(daemon.peering.neighbor)
        return any(p.get("stale") and p.get("peerId") == neighbor for p in paths or [])
    assert isinstance(daemon, bgpd.Bird)
    state = daemon.birdc("show", "protocols", "all", "peer")
    return prefix in daemon.routes() and "Neighbor graceful restart active" in state


def told_to_cease(daemon: bgpd.BgpDaemon) -> bool:
    """The daemon's own record of the last NOTIFICATION it received: a Cease saying
    Administrative Shutdown — or Peer De-configured, what a draining ExaBGP answers
    when the daemon reconnects in the moment before it exits."""
    if isinstance(daemon, bgpd.Frr):
        neighbor = str(daemon.peering.neighbor)
        info = json.loads(daemon.vtysh(f"show bgp neighbors {neighbor} json")).get(neighbor, {})
        return info.get("lastErrorCodeSubcode") in ("0602", "0603")
    assert isinstance(daemon, bgpd.Bird)
    last = daemon.birdc("show", "protocols", "all", "peer")
    return "Received: Administrative shutdown" in last or "Received: Peer de-configured" in last


@pytest.mark.parametrize("kind", ["bird", "frr"])
async def test_restart_keeps_routes_stale_and_a_stop_withdraws_them_at_once(
    lab: Lab, kind: str
) -> None:
    peer = their_address(1)
    daemon = await lab.daemon(kind, 1, ibgp=True)
    spec = lab.spec(1, ibgp=True)
    ours = our_address(1)

    def holds_our_block() -> bool:
        return daemon.routes().get(OUR_BLOCK) == ours

    first, log = await lab.adapter([spec], listen=(ours,))
    first.set_exports({OUR_BLOCK: ours})
    await log.wait(PeerUp, peer)
    await daemon_says(holds_our_block, what=f"{OUR_BLOCK} in {kind}'s RIB")

    # Restart-style stop: no NOTIFICATION, the peer keeps our block meanwhile.
    await first.stop()
    await daemon_says(lambda: not daemon.established(), what=f"{kind} sees the session down")
    assert await asyncio.to_thread(holds_our_block), f"{kind} dropped our block on a restart"
    assert await asyncio.to_thread(keeps_stale, daemon, OUR_BLOCK)
    assert not await asyncio.to_thread(told_to_cease, daemon)

    second, log = await lab.adapter([spec], listen=(ours,))
    second.set_exports({OUR_BLOCK: ours})
    await log.wait(PeerUp, peer)
    await daemon_says(daemon.established, what=f"{kind} Established again")
    assert await asyncio.to_thread(holds_our_block), f"{kind} lost our block across the restart"

    # Planned stop: a Cease, and the block is gone at once.
    started = time.monotonic()
    assert await second.cease() == [peer]
    await daemon_says(
        lambda: OUR_BLOCK not in daemon.routes(),
        timeout=WITHDRAWN_WITHIN,
        what=f"{kind} to drop our block after the Cease",
    )
    elapsed = time.monotonic() - started
    down = await log.wait(PeerDown, peer)
    assert down.graceful_restart_time is None  # deliberate on our side too
    assert await asyncio.to_thread(told_to_cease, daemon)
    await second.stop()
    # The session stays down and nothing comes back while ExaBGP exits.
    assert not await asyncio.to_thread(daemon.established)
    assert OUR_BLOCK not in await asyncio.to_thread(daemon.routes)
    print(f"{kind}: our block withdrawn {elapsed:.2f}s after the Cease")
