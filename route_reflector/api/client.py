"""The speaker's side of the Reflect stream: `ReflectorLink`.

bird_agent owns the BGP sessions; on a route-reflector node it keeps a
`ReflectorLink` to `gingham-rr` and:
- calls `send(event)` for every session change and UPDATE it accepts from
  an iBGP peer (`feed.PeerUp` / `PeerDown` / `Announce` / `Withdraw`);
- reads `reflected` (prefix → the attributes to send and the group of peers
  that hears them: one table for every peer, as the reflector keeps it),
  which the link keeps equal to the reflector's Adj-RIB-Outs, and is told
  through `on_change(changes)` which prefixes changed for which peers, to
  turn them into ExaBGP commands. A `PeerDown` it is sent takes that peer
  out of every group at once (and says so through `on_change`): the
  reflector sends nothing to a session that is gone.

The link (re)connects by itself. On every connection it sends a snapshot,
`SnapshotBegin(cluster, router ID)`, everything `snapshot()` returns, then
`SnapshotEnd` — taken synchronously with switching to "connected", so no
event is lost or sent twice. Events `send` gets while disconnected are
dropped: the next snapshot carries them.

Invariants:
- `reflected` changes only at an output SNAPSHOT_END (replaced whole) or by
  deltas after it: while the reflector restarts, the speaker keeps sending
  what it sent before (no flap).
- `on_change` is called after the table changed, with every prefix added,
  replaced or removed for some peers, and those peers; never with nothing.
  The table is changed in place, and replaced at a snapshot, so read
  `reflected` again on every call. Groups of peers are interned (`sets`):
  equal groups are one object.
- `inputs_sent` / `answered` count, on the current stream, the inputs queued
  and the inputs the reflector has answered in full (its `received`), so a
  caller can wait for the complete effect of one input; `on_answer` is
  called after every output is folded in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import grpc

from gingham.v1 import reflector_pb2_grpc as pb_grpc
from route_reflector.api.convert import GroupedOutput, OutputDecoder, encode_input
from route_reflector.api.messages import (
    NOBODY,
    FeedInput,
    OutputType,
    PathAttributes,
    PeerDown,
    Peers,
    PeerSets,
    SnapshotBegin,
    SnapshotEnd,
)

log = logging.getLogger("route_reflector.client")

# Per prefix, its route as sent and the peers that hear it (one table for all).
Reflected = dict[IPv4Network, tuple[PathAttributes, Peers]]
# Per prefix, the peers whose route for it changed.
Changes = dict[IPv4Network, Peers]


class ReflectorLink:
    def __init__(
        self,
        socket_path: Path,
        identity: Callable[[], SnapshotBegin],
        snapshot: Callable[[], Iterable[FeedInput]],
        on_change: Callable[[Changes], None] = lambda changes: None,
        *,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.socket_path = socket_path
        self.identity = identity
        self.snapshot = snapshot
        self.on_change = on_change
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.reflected: Reflected = {}
        # Every group of peers in `reflected` and in changes, interned.
        self.sets = PeerSets()
        # Outputs of the current stream's first snapshot answered (in_sync).
        self.in_sync = asyncio.Event()
        self.connections = 0
        self.inputs_sent = 0
        self.answered = 0
        self.on_answer: Callable[[], None] = lambda: None
        self._queue: asyncio.Queue[FeedInput] | None = None
        self._pending: Reflected | None = None

    def send(self, event: FeedInput) -> None:
        """Report one session change or UPDATE (dropped while disconnected).

        A `PeerDown` also forgets what that peer was to be sent, at once: the
        reflector sends no withdrawals to a session that is gone.
        """
        if isinstance(event, PeerDown):
            changes = self._forget(self.reflected, event.address)
            if self._pending is not None:
                self._forget(self._pending, event.address)
            if changes:
                self.on_change(changes)
        if self._queue is not None:
            self._queue.put_nowait(event)
            self.inputs_sent += 1

    @property
    def connected(self) -> bool:
        """A stream is open (its snapshot may not be answered yet: see `in_sync`)."""
        return self._queue is not None

    def resnapshot(self) -> None:
        """Start over on the current stream (e.g. our cluster ID changed)."""
        if self._queue is not None:
            self._enqueue_snapshot(self._queue)

    async def run(self) -> None:
        """Keep a stream open for ever (cancel to stop)."""
        backoff = self.backoff_initial
        while True:
            try:
                await self._run_once()
                backoff = self.backoff_initial
            except (grpc.aio.AioRpcError, ConnectionError) as exc:
                log.warning("reflector stream ended: %s", exc)
            finally:
                self._queue = None
                self._pending = None
                self.in_sync.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    def _enqueue_snapshot(self, queue: asyncio.Queue[FeedInput]) -> None:
        events = [self.identity(), *self.snapshot(), SnapshotEnd()]
        for event in events:
            queue.put_nowait(event)
        self.inputs_sent += len(events)

    async def _run_once(self) -> None:
        async with grpc.aio.insecure_channel(f"unix:{self.socket_path}") as channel:
            call = pb_grpc.ReflectorStub(channel).Reflect()  # type: ignore[no-untyped-call]
            queue: asyncio.Queue[FeedInput] = asyncio.Queue()
            self.inputs_sent = self.answered = 0
            # Snapshot and "connected" in one step: no event falls between.
            self._enqueue_snapshot(queue)
            self._queue = queue
            self.connections += 1

            async def write() -> None:
                while True:
                    await call.write(encode_input(await queue.get()))

            writer = asyncio.create_task(write())
            decoder = OutputDecoder()
            try:
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        raise ConnectionError("the reflector closed the stream")
                    output = decoder.decode(message)
                    self._fold(output)
                    self.answered = max(self.answered, output.received)
                    self.on_answer()
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await writer
                call.cancel()

    def _forget(self, table: Reflected, address: IPv4Address) -> Changes:
        """Take `address` out of every group in `table`; the prefixes it held."""
        sets = self.sets
        only = sets.intern(frozenset((address,)))
        changes: Changes = {}
        for prefix, (attributes, peers) in list(table.items()):
            if address not in peers:
                continue
            rest = sets.minus(peers, only)
            if rest:
                table[prefix] = (attributes, rest)
            else:
                del table[prefix]
            changes[prefix] = only
        return changes

    def advertised_counts(self) -> dict[IPv4Address, int]:
        """Per peer, how many prefixes it is sent (O(prefixes))."""
        per_group: dict[int, tuple[Peers, int]] = {}
        for _, peers in self.reflected.values():
            _, count = per_group.get(id(peers), (peers, 0))
            per_group[id(peers)] = (peers, count + 1)
        counts: dict[IPv4Address, int] = {}
        for peers, count in per_group.values():
            for peer in peers:
                counts[peer] = counts.get(peer, 0) + count
        return counts

    def routes_of(self, address: IPv4Address) -> dict[IPv4Network, PathAttributes]:
        """What `address` is sent (O(prefixes): for views and tests)."""
        return {p: a for p, (a, peers) in self.reflected.items() if address in peers}

    def _fold(self, output: GroupedOutput) -> None:
        if output.error:
            log.warning("the reflector refused input %d: %s", output.received, output.error)
        if output.type is OutputType.SNAPSHOT_BEGIN:
            self._pending = {}
            return
        if output.type is OutputType.SNAPSHOT_END:
            new = self._pending or {}
            self._pending = None
            changes = _differences(self.reflected, new, self.sets)
            self.reflected = new
            self.in_sync.set()
            if changes:
                self.on_change(changes)
            return
        target = self._pending if self._pending is not None else self.reflected
        sets = self.sets
        changed: Changes = {}
        for group, announce, withdraw in output.diffs:
            peers = sets.intern(group)
            for attributes, prefixes in announce:
                for prefix in prefixes:
                    entry = target.get(prefix)
                    affected = peers
                    if entry is None:
                        target[prefix] = (attributes, peers)
                    elif entry[0] is attributes or entry[0] == attributes:
                        target[prefix] = (entry[0], sets.union(entry[1], peers))
                    else:  # replaced: whoever held the old route is affected too
                        target[prefix] = (attributes, peers)
                        affected = sets.union(entry[1], peers)
                    before = changed.get(prefix)
                    changed[prefix] = affected if before is None else sets.union(before, affected)
            for prefix in withdraw:
                entry = target.get(prefix)
                if entry is not None:
                    rest = sets.minus(entry[1], peers)
                    if rest:
                        target[prefix] = (entry[0], rest)
                    else:
                        del target[prefix]
                before = changed.get(prefix)
                changed[prefix] = peers if before is None else sets.union(before, peers)
        if changed and target is self.reflected:
            self.on_change(changed)


def _differences(old: Reflected, new: Reflected, sets: PeerSets) -> Changes:
    """Per prefix whose route or group differs between two whole tables, the
    peers of both."""
    changes: Changes = {}
    for prefix in old.keys() | new.keys():
        was, now = old.get(prefix), new.get(prefix)
        if was == now:
            continue
        changes[prefix] = sets.union(
            was[1] if was is not None else NOBODY, now[1] if now is not None else NOBODY
        )
    return changes
