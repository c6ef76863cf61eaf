"""The speaker's `ReflectorLink` against a real `gingham-rr`: snapshot on
connect, deltas, and a reflector restart that does not flap what the
speaker sends."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from route_reflector.api.client import ReflectorLink
from route_reflector.api.messages import (
    Announce,
    FeedInput,
    PathAttributes,
    Peer,
    PeerUp,
    SnapshotBegin,
)
from tests.integration.rr.conftest import free_port, start_reflector, stop_reflector
from tests.support.poll import async_wait_for

pytestmark = pytest.mark.slow

CLUSTER, RR_ID = IPv4Address("224.0.0.1"), IPv4Address("192.0.2.100")
C1, C2, N1 = (IPv4Address(a) for a in ("192.0.2.1", "192.0.2.2", "192.0.2.51"))
P1, P2, P3 = (IPv4Network(f"10.65.{i}.0/26") for i in (1, 2, 3))


class FakeSpeaker:
    """What bird_agent would hold: sessions and each peer's routes."""

    def __init__(self) -> None:
        self.peers = {C1: True, C2: True, N1: False}
        self.routes: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {
            C1: {P1: PathAttributes(next_hop=C1)}
        }
        self.changed: list[dict[IPv4Address, set[IPv4Network]]] = []

    def snapshot(self) -> list[FeedInput]:
        events: list[FeedInput] = [PeerUp(Peer(a, a, c)) for a, c in self.peers.items()]
        for address, table in self.routes.items():
            for prefix, attributes in table.items():
                events.append(Announce(address, (prefix,), attributes))
        return events

    def learn(self, link: ReflectorLink, peer: IPv4Address, prefix: IPv4Network) -> None:
        attributes = PathAttributes(next_hop=peer)
        self.routes.setdefault(peer, {})[prefix] = attributes
        link.send(Announce(peer, (prefix,), attributes))


def prefixes(link: ReflectorLink) -> dict[IPv4Address, set[IPv4Network]]:
    """Per peer, the prefixes the link's one table says it hears."""
    return by_peer({p: peers for p, (_, peers) in link.reflected.items()})


def by_peer(
    changes: Mapping[IPv4Network, frozenset[IPv4Address]],
) -> dict[IPv4Address, set[IPv4Network]]:
    out: dict[IPv4Address, set[IPv4Network]] = {}
    for prefix, peers in changes.items():
        for peer in peers:
            out.setdefault(peer, set()).add(prefix)
    return out


async def test_link_snapshot_deltas_and_reflector_restart(tmp_path: Path) -> None:
    port = free_port()
    run_dir = tmp_path / "run"
    process = start_reflector(run_dir, port, tmp_path / "rr.log")
    speaker = FakeSpeaker()
    link = ReflectorLink(
        run_dir / "rr.sock",
        lambda: SnapshotBegin(CLUSTER, RR_ID),
        speaker.snapshot,
        speaker.changed.append,
        backoff_max=0.5,
    )
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.in_sync.wait(), 20)
        assert prefixes(link) == {C2: {P1}, N1: {P1}}
        sent = link.routes_of(C2)[P1]
        assert (sent.next_hop, sent.originator_id, sent.cluster_list) == (C1, C1, (CLUSTER,))
        assert [by_peer(c) for c in speaker.changed] == [{C2: {P1}, N1: {P1}}]  # each changed

        speaker.learn(link, N1, P2)  # non-client: to clients only

        async def has_p2() -> bool:
            return prefixes(link) == {C1: {P2}, C2: {P1, P2}, N1: {P1}}

        await async_wait_for(has_p2, what="the non-client's route reflected to clients")
        assert [by_peer(c) for c in speaker.changed[1:]] == [{C1: {P2}, C2: {P2}}]

        # The reflector dies: what the speaker sends stays as it was.
        before = dict(link.reflected)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

        async def disconnected() -> bool:
            return not link.in_sync.is_set()

        await async_wait_for(disconnected, what="the link noticing the reflector is gone")
        assert link.reflected == before
        speaker.learn(link, C2, P3)  # while it is down: carried by the next snapshot
        assert link.reflected == before

        process = start_reflector(run_dir, port, tmp_path / "rr.log")
        await asyncio.wait_for(link.in_sync.wait(), 20)
        assert link.connections >= 2
        assert prefixes(link) == {C1: {P2, P3}, C2: {P1, P2}, N1: {P1, P3}}
        # The new snapshot's table differs from the old only by P3: that is all it names.
        assert by_peer(speaker.changed[-1]) == {C1: {P3}, N1: {P3}}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stop_reflector(process)
