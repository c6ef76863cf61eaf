"""FelixSink sends many routes in few messages, against felix's real RouteFeed servicer.

A snapshot or a burst of deltas of thousands of routes reaches felix's feed
table whole, in about one message per thousand prefixes (felix's ack counts
the messages it received); a prefix moving to another peer is deleted under
the old peer in the same burst.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import grpc
import pytest

from bird_agent.events import RoutesAnnounced
from bird_agent.felix_sink import BATCH, FelixSink
from bird_agent.learned import LearnedRoutes
from bird_agent.peers import PeerSpec, PeerType
from bird_agent.policy import ImportFilter, PolicyView
from felix.server import RouteFeedServicer
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.support.poll import async_wait_for
from tests.unit.bgp.test_felix_sink import Felix, aval

ME = IPv4Address("192.0.2.10")
A, B = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
POOL = IPv4Network("10.0.0.0/8")
COUNT = 2500


def spec(address: IPv4Address, node: str) -> PeerSpec:
    return PeerSpec(address, 64512, 64512, ME, ME, PeerType.NODE_MESH, node, peer_node=node)


PEERS = {A: spec(A, "n1"), B: spec(B, "n2")}


class CountingFelix(Felix):
    """Felix's real servicer, counting the messages that arrive."""

    messages = 0

    async def start(self) -> None:
        outer = self

        class Counting(RouteFeedServicer):
            async def SyncRoutes(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
                async def counted() -> AsyncIterator[Any]:
                    async for message in request_iterator:
                        outer.messages += 1
                        yield message

                async for ack in super().SyncRoutes(counted(), context):
                    yield ack

        self.server = grpc.aio.server()
        pb_grpc.add_RouteFeedServicer_to_server(Counting(self.agent), self.server)  # type: ignore[arg-type,no-untyped-call]
        self.server.add_insecure_port(f"unix:{self.socket}")
        await self.server.start()


@pytest.fixture
async def felix(tmp_path: Path) -> AsyncIterator[CountingFelix]:
    made = CountingFelix(tmp_path / "felix.sock")
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


def blocks(count: int) -> list[IPv4Network]:
    return [IPv4Network((0x0A400000 + (i << 6), 26)) for i in range(count)]


async def test_thousands_of_routes_in_few_messages(felix: CountingFelix) -> None:
    learned = LearnedRoutes(ImportFilter(PolicyView(pools=(POOL,))))
    sink = FelixSink(felix.socket, max_backoff=0.5)
    # Known before felix is reached: one snapshot.
    await sink.apply(learned.apply(RoutesAnnounced(B, B, blocks(COUNT)), PEERS))
    task = asyncio.create_task(sink.run())
    try:
        await sink.wait_synced(10)
        table = felix.table()
        assert len(table) == COUNT and {v[0] for v in table.values()} == {str(B)}
        # SNAPSHOT_BEGIN, ceil(COUNT / BATCH) batches, SNAPSHOT_END.
        assert felix.messages == 2 + -(-COUNT // BATCH)
        snapshot = felix.messages

        # A (a better peer: lower address) announces the same prefixes plus
        # more: felix drops B's entries and holds A's, as deltas.
        more = blocks(COUNT + 500)
        await sink.apply(learned.apply(RoutesAnnounced(A, A, more), PEERS))

        def moved() -> bool:
            now = felix.table()
            return len(now) == COUNT + 500 and all(v[0] == str(A) for v in now.values())

        await async_wait_for(lambda: aval(moved()), timeout=10)
        # Deletes under B and adds under A, each in batches.
        assert felix.messages - snapshot <= 2 * -(-(COUNT + 500) // BATCH)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sink.refused == 0


async def test_a_restarted_speaker_holds_its_first_snapshot_until_converged(
    felix: CountingFelix,
) -> None:
    """Felix keeps the previous speaker's routes until the new one has heard
    its peers out (End-of-RIB): an early, empty snapshot would withdraw them."""
    before = LearnedRoutes(ImportFilter(PolicyView(pools=(POOL,))))
    old = FelixSink(felix.socket, max_backoff=0.5)
    await old.apply(before.apply(RoutesAnnounced(A, A, blocks(10)), PEERS))
    task = asyncio.create_task(old.run())
    try:
        await old.wait_synced(10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(felix.table()) == 10

    # The speaker restarts: it knows nothing until its session is back.
    learned = LearnedRoutes(ImportFilter(PolicyView(pools=(POOL,))))
    converged = False
    asked = 0

    def heard_everything() -> bool:
        nonlocal asked
        asked += 1
        return converged

    new = FelixSink(
        felix.socket, max_backoff=0.5, first_snapshot_when=heard_everything, first_snapshot_wait=60
    )
    task = asyncio.create_task(new.run())
    try:
        # Routes come back one UPDATE at a time; while the sink is asked and
        # says "not yet", felix keeps all 10 and hears nothing.
        for part in (blocks(10)[:5], blocks(10)[5:]):
            await new.apply(learned.apply(RoutesAnnounced(A, A, part), PEERS))
            seen = asked
            await async_wait_for(lambda seen=seen: aval(asked >= seen + 2), timeout=10)
            assert len(felix.table()) == 10 and new.connects == 0
        converged = True  # End-of-RIB from every session
        await new.wait_synced(10)
        assert len(felix.table()) == 10 and new.connects == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
