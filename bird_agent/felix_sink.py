"""`FelixSink`: the speaker's selected routes, streamed to felix's route feed.

Felix serves `RouteFeed.SyncRoutes` (proto/gingham/v1/dataplane.proto) on its
unix socket. Each stream starts with a full snapshot (SNAPSHOT_BEGIN, one ADD
per selected route, SNAPSHOT_END) and continues with deltas. When the stream
breaks (felix restarts) we reconnect with backoff and send a fresh snapshot;
felix keeps forwarding on the old routes until that snapshot ends, so a felix
restart never blackholes traffic.

Invariants:
- `routes` is what BGP selected, independent of felix being reachable:
  `apply` never blocks on felix and never loses a change; a reconnect
  replays `routes` whole.
- Felix keys routes by (prefix, peer). When the selected route of a prefix
  moves to another peer, the old key is deleted before the new one is added,
  so felix never holds two entries for one selected route.
- A stream's messages are queued in order; the snapshot is queued in one
  synchronous step, so a delta can never overtake it.
- Encapsulation is left to felix (ENCAPSULATION_FROM_POOL): it knows the pool
  and the CrossSubnet rule; the originating node is the Node whose address
  is the next hop (else the node behind the session), "" when unknown.
- The first snapshot waits until `first_snapshot_when()` says the speaker
  has heard everything (every session up sent End-of-RIB), at most
  `first_snapshot_wait` seconds: felix keeps the routes of the speaker that
  ran before until our first SNAPSHOT_END, and a restarted speaker that
  snapshotted at once (knowing nothing yet) emptied felix's learned routes
  until BGP had relearned them. Later snapshots (felix restarting) go at once.
- Messages are batched: one RouteUpdate carries up to `BATCH` prefixes that
  share a path (`prefixes`), so 100,000 routes are ~100 gRPC messages, not
  100,000. The table is kept by prefix key with shared `LearnedPath`s, like
  `LearnedRoutes` (nothing is built per prefix but a dict entry).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from bird_agent.events import PrefixKey, SessionState, key_network
from bird_agent.learned import LearnedPath, LearnedRoute, RouteChange, RouteChanges
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from bird_agent.speaker import Speaker

log = logging.getLogger(__name__)

NodeOf = Callable[[IPv4Address], str | None]

_END = None  # queue sentinel: close the request stream
# Prefixes per RouteUpdate: ~20 bytes each, far below gRPC's 4 MB message limit.
BATCH = 1000


class FelixSink:
    """A RouteSink over felix's RouteFeed; run `run()` as a task."""

    def __init__(
        self,
        socket_path: Path,
        node_of: NodeOf | None = None,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        *,
        first_snapshot_when: Callable[[], bool] | None = None,
        first_snapshot_wait: float = 10.0,
    ) -> None:
        self.socket_path = socket_path
        self.node_of = node_of
        self.first_snapshot_when = first_snapshot_when
        self.first_snapshot_wait = first_snapshot_wait
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        # What BGP selected: path and text per prefix key.
        self.paths: dict[PrefixKey, LearnedPath] = {}
        self.texts: dict[PrefixKey, str] = {}
        # True while felix has acknowledged our latest snapshot on a live stream.
        self.in_sync = False
        self.connects = 0
        self.refused = 0
        self._queue: asyncio.Queue[Any] | None = None
        self._synced = asyncio.Event()

    @property
    def routes(self) -> dict[IPv4Network, LearnedRoute]:
        """The selected routes as felix should hold them (for tests and status)."""
        return {key_network(k): p.route(key_network(k)) for k, p in self.paths.items()}

    # ------------------------------------------------------------ RouteSink

    async def apply(self, changes: Sequence[RouteChange]) -> None:
        batch = RouteChanges.of(changes)
        paths, texts, queue = self.paths, self.texts, self._queue
        for group in batch.groups:
            new = group.path
            # Felix keys by (prefix, peer): a prefix leaving a peer is deleted there.
            deletes: dict[IPv4Address, list[str]] = {}
            for key, text in zip(group.keys, group.texts, strict=True):
                old = paths.get(key)
                if old is not None and (new is None or old.peer != new.peer):
                    deletes.setdefault(old.peer, []).append(text)
            if new is None:
                for key in group.keys:
                    paths.pop(key, None)
                    texts.pop(key, None)
            else:
                paths.update(dict.fromkeys(group.keys, new))
                texts.update(zip(group.keys, group.texts, strict=True))
            if queue is None:
                continue
            for peer, gone in deletes.items():
                for chunk in _chunks(gone):
                    queue.put_nowait(pb.RouteUpdate(type=pb.DEL, peer=str(peer), prefixes=chunk))
            if new is not None:
                for chunk in _chunks(group.texts):
                    queue.put_nowait(self._add(new, chunk))

    # ------------------------------------------------------------ the stream

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Until felix acknowledged a snapshot (for tests and readiness)."""
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def run(self) -> None:
        await self._hold_first_snapshot()
        backoff = self.min_backoff
        failures = 0
        while True:
            try:
                await self._one_stream()
            except (grpc.aio.AioRpcError, TimeoutError) as exc:
                reason = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "timeout"
                # Once per outage at INFO: felix may be down for a while.
                level = logging.INFO if self.in_sync or failures == 0 else logging.DEBUG
                log.log(level, "felix route feed at %s: %s (retrying)", self.socket_path, reason)
                failures += 1
            finally:
                # A stream felix took a snapshot from was healthy: start over.
                if self.in_sync:
                    backoff = self.min_backoff
                    failures = 0
                self._drop_stream()
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def _hold_first_snapshot(self) -> None:
        ready = self.first_snapshot_when
        if ready is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_snapshot_wait
        while not ready():
            if loop.time() >= deadline:
                log.info(
                    "first route snapshot to felix after %.0fs without End-of-RIB from"
                    " every session",
                    self.first_snapshot_wait,
                )
                return
            await asyncio.sleep(0.1)

    async def _one_stream(self) -> None:
        async with grpc.aio.insecure_channel(f"unix:{self.socket_path}") as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=self.max_backoff)
            queue: asyncio.Queue[Any] = asyncio.Queue()
            # Snapshot, queued in one synchronous step: later deltas go after it.
            queue.put_nowait(pb.RouteUpdate(type=pb.SNAPSHOT_BEGIN))
            by_path: dict[int, tuple[LearnedPath, list[str]]] = {}
            for key, path in self.paths.items():
                by_path.setdefault(id(path), (path, []))[1].append(self.texts[key])
            for path, texts in by_path.values():
                for chunk in _chunks(texts):
                    queue.put_nowait(self._add(path, chunk))
            queue.put_nowait(pb.RouteUpdate(type=pb.SNAPSHOT_END))
            self._queue = queue
            self.connects += 1
            log.info("felix route feed connected: snapshot of %d routes", len(self.paths))
            stub = pb_grpc.RouteFeedStub(channel)  # type: ignore[no-untyped-call]
            call = stub.SyncRoutes(_drain(queue))
            async for ack in call:
                if ack.error:
                    self.refused += 1
                    log.warning("felix refused route update #%d: %s", ack.received, ack.error)
                if ack.in_sync and not self.in_sync:
                    self.in_sync = True
                    self._synced.set()
                    log.info("felix took the route snapshot (%d updates)", ack.received)

    def _drop_stream(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(_END)
        self._queue = None
        self.in_sync = False
        self._synced.clear()

    def _add(self, path: LearnedPath, prefixes: Sequence[str]) -> Any:
        node = self.node_of(path.next_hop) if self.node_of is not None else None
        return pb.RouteUpdate(
            type=pb.ADD,
            prefixes=prefixes,
            peer=str(path.peer),
            next_hops=[pb.NextHop(address=str(path.next_hop), node=node or path.origin_node or "")],
            encapsulation=pb.ENCAPSULATION_FROM_POOL,
        )


def speaker_converged(speaker: Speaker) -> bool:
    """Every planned session is Established and has sent End-of-RIB: what the
    speaker knows is worth a first snapshot (`first_snapshot_when`)."""
    plan = speaker.plan
    return plan is not None and all(
        speaker.adapter.session_state(peer.address) is SessionState.ESTABLISHED
        and peer.address in speaker.learned.end_of_rib
        for peer in plan.peers.peers
    )


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


async def _drain(queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while True:
        message = await queue.get()
        if message is _END:
            return
        yield message
        # Yield whole runs without a round trip through the event loop per item.
        while not queue.empty():
            message = queue.get_nowait()
            if message is _END:
                return
            yield message
