"""FelixSink against felix's real RouteFeed servicer and feed table, over a unix socket:
snapshot on connect, deltas after, a peer change replaces felix's key, and a
felix restart is followed by a reconnect and a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import grpc
import pytest

from bird_agent.felix_sink import FelixSink
from bird_agent.learned import LearnedRoute, RouteChange
from felix.feed import RouteFeed
from felix.server import RouteFeedServicer
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.support.poll import async_wait_for

A = IPv4Address("192.0.2.1")
B = IPv4Address("192.0.2.2")
BLOCK = IPv4Network("10.65.1.0/26")
OTHER = IPv4Network("10.65.2.0/26")


@dataclass
class FeedOnly:
    """The part of felix's Agent the RouteFeed servicer uses."""

    feed: RouteFeed = field(default_factory=RouteFeed)
    dirty: int = 0

    def mark_dirty(self) -> None:
        self.dirty += 1


class Felix:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.agent = FeedOnly()
        self.server: Any = None

    async def start(self) -> None:
        self.agent = FeedOnly()
        self.server = grpc.aio.server()
        pb_grpc.add_RouteFeedServicer_to_server(RouteFeedServicer(self.agent), self.server)  # type: ignore[arg-type]
        self.server.add_insecure_port(f"unix:{self.socket}")
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop(grace=None)

    def table(self) -> dict[str, tuple[str, str, str]]:
        return {
            str(prefix): (peer, str(r.next_hops[0].address), r.next_hops[0].node)
            for (prefix, peer), r in self.agent.feed.routes.items()
        }


@pytest.fixture
async def felix(tmp_path: Path) -> AsyncIterator[Felix]:
    made = Felix(tmp_path / "felix.sock")
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


async def aval(value: bool) -> bool:
    return value


def route(prefix: IPv4Network, peer: IPv4Address, node: str | None = "n2") -> LearnedRoute:
    return LearnedRoute(prefix, peer, peer, node, node is not None)


async def test_snapshot_then_deltas_then_resnapshot_after_felix_restart(felix: Felix) -> None:
    sink = FelixSink(felix.socket, node_of={A: "node-a"}.get, max_backoff=0.5)
    # Known before felix is reached: goes in the first snapshot.
    await sink.apply([RouteChange(BLOCK, route(BLOCK, A))])
    task = asyncio.create_task(sink.run())
    try:
        await sink.wait_synced(10)
        assert felix.agent.feed.synced
        assert felix.table() == {str(BLOCK): (str(A), str(A), "node-a")}

        # The selected route moves to another peer: felix ends with one entry.
        await sink.apply([RouteChange(BLOCK, route(BLOCK, B)), RouteChange(OTHER, route(OTHER, A))])
        want = {str(BLOCK): (str(B), str(B), "n2"), str(OTHER): (str(A), str(A), "node-a")}
        await async_wait_for(lambda: aval(felix.table() == want), timeout=5)
        await sink.apply([RouteChange(OTHER, None)])
        await async_wait_for(lambda: aval(str(OTHER) not in felix.table()), timeout=5)

        # Felix restarts with an empty table; meanwhile the route set changes.
        await felix.stop()
        await async_wait_for(lambda: aval(not sink.in_sync), timeout=5)
        await sink.apply([RouteChange(OTHER, route(OTHER, B))])
        await felix.start()
        await sink.wait_synced(10)
        assert felix.table() == {
            str(BLOCK): (str(B), str(B), "n2"),
            str(OTHER): (str(B), str(B), "n2"),
        }
        assert sink.connects == 2 and sink.refused == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
