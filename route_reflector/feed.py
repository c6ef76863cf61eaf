"""The Reflect stream's protocol, pure: inputs in, outputs out, no gRPC.

`ReflectFeed` holds the state of one `Reflector.Reflect` stream (see
proto/gingham/v1/reflector.proto for the contract): it starts the
`Reflector` at the input SNAPSHOT_BEGIN (which names our cluster ID and
router ID), feeds it the speaker's events, acknowledges inputs until the
input snapshot ends, then answers with the full Adj-RIB-Out (every best
path with the peers that hear it) framed by SNAPSHOT_BEGIN/END, and
afterwards with the deltas each input caused.

Invariants:
- Every input gets at least one output; the last output for input n carries
  `received == n`, earlier parts of the same answer `n - 1`.
- No output carries more than `MAX_CHANGES_PER_OUTPUT` changes (gRPC's
  default message limit is 4 MiB).
- A refused input changes nothing but the `received` count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from route_reflector.api.messages import (
    Announce,
    FeedInput,
    FeedOutput,
    GroupChange,
    OutputType,
    PeerDown,
    PeerUp,
    SnapshotBegin,
    SnapshotEnd,
)
from route_reflector.reflect import Reflector, UnknownPeer

MAX_CHANGES_PER_OUTPUT = 2000


class FeedError(ValueError):
    """An input that breaks the stream's protocol (refused, the stream goes on)."""


class ReflectFeed:
    """One Reflect stream's state: see the module docstring."""

    def __init__(self) -> None:
        self.reflector: Reflector | None = None
        self.received = 0
        self.in_sync = False
        # Per-prefix announcements and withdrawals handed out (snapshot included).
        self.reflected_updates = 0

    def handle(self, event: FeedInput) -> list[FeedOutput]:
        """Apply one input; the outputs that answer it (never empty)."""
        self.received += 1
        try:
            changes = self._apply(event)
        except (FeedError, UnknownPeer) as exc:
            return [FeedOutput(OutputType.DELTA, self.received, error=str(exc))]
        if isinstance(event, SnapshotEnd):
            assert self.reflector is not None
            return self._snapshot(self.reflector)
        if not self.in_sync:
            return [FeedOutput(OutputType.DELTA, self.received)]
        return self._deltas(changes)

    def refuse(self, reason: str) -> list[FeedOutput]:
        """An input the adapter could not even decode: counted and answered with `reason`."""
        self.received += 1
        return [FeedOutput(OutputType.DELTA, self.received, error=reason)]

    def _apply(self, event: FeedInput) -> list[GroupChange]:
        if isinstance(event, SnapshotBegin):
            self.reflector = Reflector(event.cluster_id, event.router_id)
            self.in_sync = False
            return []
        reflector = self.reflector
        if reflector is None:
            raise FeedError("the stream must start with INPUT_SNAPSHOT_BEGIN")
        if isinstance(event, SnapshotEnd):
            if self.in_sync:
                raise FeedError("INPUT_SNAPSHOT_END without an INPUT_SNAPSHOT_BEGIN before it")
            self.in_sync = True
            return []
        if isinstance(event, PeerUp):
            return reflector.peer_up(event.peer)
        if isinstance(event, PeerDown):
            return reflector.peer_down(event.address)
        if isinstance(event, Announce):
            return reflector.announce(event.address, event.prefixes, event.attributes)
        return reflector.withdraw(event.address, event.prefixes)

    def _snapshot(self, reflector: Reflector) -> list[FeedOutput]:
        everything = reflector.snapshot()
        self.reflected_updates += sum(len(change.peers) for change in everything)
        before = self.received - 1
        outputs = [FeedOutput(OutputType.SNAPSHOT_BEGIN, before)]
        outputs += [FeedOutput(OutputType.DELTA, before, chunk) for chunk in _chunks(everything)]
        outputs.append(FeedOutput(OutputType.SNAPSHOT_END, self.received))
        return outputs

    def _deltas(self, changes: list[GroupChange]) -> list[FeedOutput]:
        self.reflected_updates += sum(len(change.peers) for change in changes)
        chunks = list(_chunks(changes)) or [()]
        last = len(chunks) - 1
        return [
            FeedOutput(OutputType.DELTA, self.received if i == last else self.received - 1, chunk)
            for i, chunk in enumerate(chunks)
        ]


def _chunks(changes: Iterable[GroupChange]) -> Iterator[tuple[GroupChange, ...]]:
    items = list(changes)
    for start in range(0, len(items), MAX_CHANGES_PER_OUTPUT):
        yield tuple(items[start : start + MAX_CHANGES_PER_OUTPUT])
