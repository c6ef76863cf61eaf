"""Adapter lifecycle against BIRD: reconfiguration keeps unchanged sessions, restarts recover.

- Adding and removing peers reloads ExaBGP (SIGUSR1) without touching the
  sessions that did not change: BIRD's "since" timestamp for them stays the
  same and no PeerDown is emitted for them.
- A removed peer yields PeerDown; a changed peer (hold time) is re-established
  and gets our announcements again.
- ExaBGP killed outright: PeerDown for its sessions, a new generation,
  sessions back and our block announced again.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bird_agent.events import PeerDown, PeerUp, SpeakerRestarted
from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.exabgp_wire import NEXT_HOP_SELF
from tests.integration.bgp.conftest import (
    OUR_BLOCK,
    Lab,
    daemon_says,
    eventually,
    our_address,
    their_address,
)
from tests.support.bgpd import Bird

pytestmark = [pytest.mark.root, pytest.mark.slow]


async def test_reconfigure_keeps_unchanged_sessions(lab: Lab) -> None:
    bird_a = await lab.daemon("bird", 1, ibgp=False)
    bird_b = await lab.daemon("bird", 2, ibgp=False)
    assert isinstance(bird_a, Bird) and isinstance(bird_b, Bird)
    a, b = lab.spec(1, ibgp=False), lab.spec(2, ibgp=False)
    adapter, log = await lab.adapter([a], listen=(our_address(1), our_address(2)))
    # Each BIRD sits on its own link: "self" gives each the address it can reach.
    adapter.set_exports({OUR_BLOCK: NEXT_HOP_SELF})
    await log.wait(PeerUp, a.address)
    await daemon_says(lambda: OUR_BLOCK in bird_a.routes(), what="block at A")
    since_a = await asyncio.to_thread(bird_a.session_since)
    pid = adapter.pid

    # Add B: A untouched.
    adapter.set_peers([a, b])
    await log.wait(PeerUp, b.address)
    await daemon_says(bird_b.established, what="B Established")
    await daemon_says(
        lambda: bird_b.routes().get(OUR_BLOCK) == our_address(2), what="block at B via link 2"
    )
    await adapter.wait_synced()
    assert adapter.pid == pid
    assert not log.of(PeerDown, a.address)
    assert await asyncio.to_thread(bird_a.session_since) == since_a
    since_b = await asyncio.to_thread(bird_b.session_since)

    # Remove A: PeerDown for A, B untouched.
    adapter.set_peers([b])
    down = await log.wait(PeerDown, a.address)
    assert "removed" in down.reason
    await daemon_says(lambda: not bird_a.established(), what="A no longer Established")
    assert await asyncio.to_thread(bird_b.session_since) == since_b
    assert adapter.pid == pid

    # Change B (hold time): re-established, and it hears our block again.
    adapter.set_peers([lab.spec(2, ibgp=False, hold_time=12)])
    await log.wait(PeerUp, b.address, count=2)
    await daemon_says(bird_b.established, what="B Established again")
    await daemon_says(lambda: OUR_BLOCK in bird_b.routes(), what="block at B after reset")


async def test_exabgp_killed_is_restarted_and_reannounces(lab: Lab) -> None:
    bird = await lab.daemon("bird", 1, ibgp=True)
    spec = lab.spec(1, ibgp=True)
    adapter, log = await lab.adapter([spec], listen=(our_address(1),))
    adapter.set_exports({OUR_BLOCK: our_address(1)})
    await log.wait(PeerUp, spec.address)
    await daemon_says(lambda: OUR_BLOCK in bird.routes(), what="block announced")
    first_pid = adapter.pid
    assert first_pid is not None

    os.kill(first_pid, signal.SIGKILL)
    down = await log.wait(PeerDown, their_address(1))
    assert "exited" in down.reason
    await log.wait(SpeakerRestarted, where=lambda e: e.generation == 2)
    await log.wait(PeerUp, spec.address, count=2)
    assert adapter.pid not in (None, first_pid)
    await daemon_says(bird.established, what="BIRD Established again")
    await daemon_says(lambda: OUR_BLOCK in bird.routes(), what="block announced again")


async def test_frozen_peer_hold_timer_gives_graceful_peer_down(lab: Lab) -> None:
    """A peer that stops talking (SIGSTOP) is declared down when the hold timer
    runs out; it advertised graceful restart, so the PeerDown carries its restart
    time (the consumer keeps the routes as stale for that long)."""
    bird = await lab.daemon("bird", 1, ibgp=True)
    spec = lab.spec(1, ibgp=True, hold_time=3)
    _, log = await lab.adapter([spec], listen=(our_address(1),))
    await log.wait(PeerUp, spec.address)
    assert bird.proc is not None
    bird.proc.send_signal(signal.SIGSTOP)
    try:
        down = await log.wait(PeerDown, spec.address, timeout=10)
    finally:
        bird.proc.send_signal(signal.SIGCONT)
    assert down.reason == "notification sent (4,0)"  # 4 = Hold Timer Expired
    assert down.graceful_restart_time is not None and down.graceful_restart_time > 0


async def test_exabgp_that_cannot_start_is_retried_with_backoff(tmp_path: Path) -> None:
    """A broken ExaBGP command never yields a session, never crashes the adapter:
    it is retried, further apart each time, and stop() still returns."""
    adapter = ExaBGPAdapter(
        ExaBGPOptions(run_dir=tmp_path, exabgp_command=("/bin/false",), backoff_initial=0.05)
    )
    await adapter.start()
    try:

        async def retried() -> bool:
            return adapter.generation >= 4

        await eventually(retried, 10, "four start attempts")
    finally:
        await adapter.stop()
    assert adapter.pid is None
    assert not (tmp_path / "exabgp-api.sock").exists()


async def test_run_dir_too_long_for_a_socket_is_a_clear_error(tmp_path: Path) -> None:
    adapter = ExaBGPAdapter(ExaBGPOptions(run_dir=tmp_path / ("x" * 120)))
    with pytest.raises(ValueError, match="too long for a unix socket path"):
        await adapter.start()
