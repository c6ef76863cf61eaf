"""The reflector's vocabulary: what the speaker and gingham-rr say to each other.

Plain data, shared by both ends of the Reflect stream (the contract is
proto/gingham/v1/reflector.proto): a route's `PathAttributes`, a session's
`Peer`, the stream's inputs (`SnapshotBegin`, `SnapshotEnd`, `PeerUp`,
`PeerDown`, `Announce`, `Withdraw`) and outputs (`FeedOutput` carrying
`GroupChange`s), and `apply_outputs`, what a speaker does with outputs
(folded per peer: a view for tests; the speaker keeps one table).

Invariants:
- Nothing here knows ExaBGP, gRPC or protobuf (`convert` translates), and
  nothing here imports the engine (`route_reflector.rib`, `reflect`,
  `decision`, `feed`): the speaker loads this package, never the engine.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

# RFC 4271 §5.1.5: a missing LOCAL_PREF on an iBGP route means the default.
DEFAULT_LOCAL_PREF = 100


class Origin(enum.IntEnum):
    """ORIGIN attribute; lower is preferred (RFC 4271 §9.1.2.2 c)."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


@dataclass(frozen=True)
class PathAttributes:
    """The attributes of one route as received or as sent.

    `communities` (and `large_communities`, `extended_communities`) are carried
    opaquely, in the text form the speaker reads and writes ("65000:1"):
    a reflector must pass them on untouched (RFC 4456 §10).
    """

    next_hop: IPv4Address
    as_path: tuple[int, ...] = ()
    origin: Origin = Origin.IGP
    # None: no MULTI_EXIT_DISC (compares as 0, RFC 4271 §9.1.2.2 c).
    med: int | None = None
    local_pref: int = DEFAULT_LOCAL_PREF
    originator_id: IPv4Address | None = None
    # Nearest cluster first: a reflector prepends its own ID (RFC 4456 §8).
    cluster_list: tuple[IPv4Address, ...] = ()
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    extended_communities: tuple[str, ...] = ()

    def with_reflection(self, cluster_id: IPv4Address, originator: IPv4Address) -> PathAttributes:
        """These attributes as a reflector sends them (RFC 4456 §8).

        ORIGINATOR_ID is set only when absent (an RR never overwrites it);
        our CLUSTER_ID is prepended; the next hop and everything else is kept.
        """
        return replace(
            self,
            originator_id=self.originator_id if self.originator_id is not None else originator,
            cluster_list=(cluster_id, *self.cluster_list),
        )


@dataclass(frozen=True)
class Peer:
    """One iBGP session of the reflector, as the speaker reports it."""

    address: IPv4Address
    # From the peer's OPEN: the tie-breaker of RFC 4271 §9.1.2.2 f, and the
    # address checked against ORIGINATOR_ID before sending (RFC 4456 §8).
    router_id: IPv4Address
    # A route reflector client (RFC 4456 §2) or a non-client iBGP peer.
    client: bool


class OutboundChange(NamedTuple):
    """Tell `peer` about `prefix`: announce with `attributes`, or withdraw (None):
    one peer's part of a `GroupChange` (`per_peer`)."""

    peer: IPv4Address
    prefix: IPv4Network
    attributes: PathAttributes | None

    @property
    def withdraw(self) -> bool:
        return self.attributes is None


Peers = frozenset[IPv4Address]


class GroupChange(NamedTuple):
    """Tell every one of `peers` about `prefix`: announce with `attributes`, or
    withdraw (None).

    What the reflector sends is the same for every peer that hears a prefix
    (its best path, reflected), so it says it once per prefix with the group
    of peers concerned, as BIRD exports one table and FRR encodes an update
    group's UPDATE once. The engine hands out the same `peers` object for
    every prefix with the same audience: consumers may key on its identity.
    """

    peers: Peers
    prefix: IPv4Network
    attributes: PathAttributes | None

    @property
    def withdraw(self) -> bool:
        return self.attributes is None


NOBODY: Peers = frozenset()


class PeerSets:
    """Set algebra over groups of peers where every result is one shared object.

    A table of 100,000 prefixes holds a few dozen distinct groups; interning
    them lets a caller combine a prefix's groups once per pair of groups, not
    once per prefix (results are memoized by the operands' identity, and the
    memo keeps its operands alive, so an identity is never reused under it).
    Both tables are emptied when they outgrow `limit` (a group of 200 peers
    weighs ~8 KB): that only costs sharing, never correctness.
    """

    def __init__(self, limit: int = 2048) -> None:
        self.limit = limit
        self._interned: dict[Peers, Peers] = {}
        self._results: dict[tuple[int, int, int], tuple[Peers, Peers, Peers]] = {}

    def intern(self, peers: Peers) -> Peers:
        if not peers:
            return NOBODY
        found = self._interned.get(peers)
        if found is None:
            if len(self._interned) > self.limit:
                self._interned.clear()
            found = self._interned[peers] = peers
        return found

    def union(self, a: Peers, b: Peers) -> Peers:
        if a is b or not b:
            return a
        if not a:
            return b
        return self._result(a, b, 0)

    def minus(self, a: Peers, b: Peers) -> Peers:
        if not a or not b:
            return a
        return self._result(a, b, 1)

    def both(self, a: Peers, b: Peers) -> Peers:
        if a is b:
            return a
        if not a or not b:
            return NOBODY
        return self._result(a, b, 2)

    def _result(self, a: Peers, b: Peers, operation: int) -> Peers:
        key = (id(a), id(b), operation)
        found = self._results.get(key)
        if found is None or found[0] is not a or found[1] is not b:
            if len(self._results) > self.limit:
                self._results.clear()
            value = a | b if operation == 0 else a - b if operation == 1 else a & b
            found = self._results[key] = (a, b, self.intern(value))
        return found[2]


def per_peer(changes: Iterable[GroupChange]) -> list[OutboundChange]:
    """The changes one peer at a time (peers in address order): for tests and views."""
    return [
        OutboundChange(peer, change.prefix, change.attributes)
        for change in changes
        for peer in sorted(change.peers)
    ]


class InputType(enum.Enum):
    SNAPSHOT_BEGIN = "snapshot-begin"
    SNAPSHOT_END = "snapshot-end"
    PEER_UP = "peer-up"
    PEER_DOWN = "peer-down"
    ANNOUNCE = "announce"
    WITHDRAW = "withdraw"


class OutputType(enum.Enum):
    DELTA = "delta"
    SNAPSHOT_BEGIN = "snapshot-begin"
    SNAPSHOT_END = "snapshot-end"


@dataclass(frozen=True)
class SnapshotBegin:
    cluster_id: IPv4Address
    router_id: IPv4Address


@dataclass(frozen=True)
class SnapshotEnd:
    pass


@dataclass(frozen=True)
class PeerUp:
    peer: Peer


@dataclass(frozen=True)
class PeerDown:
    address: IPv4Address


@dataclass(frozen=True)
class Announce:
    address: IPv4Address
    prefixes: tuple[IPv4Network, ...]
    attributes: PathAttributes


@dataclass(frozen=True)
class Withdraw:
    address: IPv4Address
    prefixes: tuple[IPv4Network, ...]


FeedInput = SnapshotBegin | SnapshotEnd | PeerUp | PeerDown | Announce | Withdraw


@dataclass(frozen=True)
class FeedOutput:
    type: OutputType
    received: int
    changes: tuple[GroupChange, ...] = ()
    error: str = ""


def apply_outputs(
    state: dict[IPv4Address, dict[IPv4Network, PathAttributes]],
    outputs: Iterable[FeedOutput],
    pending: dict[IPv4Address, dict[IPv4Network, PathAttributes]] | None = None,
) -> dict[IPv4Address, dict[IPv4Network, PathAttributes]] | None:
    """What a speaker does with outputs: fold them into its per-peer view.

    Outside a snapshot DELTAs change `state` in place. SNAPSHOT_BEGIN starts
    a fresh `pending` view that DELTAs fill; SNAPSHOT_END replaces `state`
    with it. Returns the pending view still open (None when none is).
    """
    for output in outputs:
        if output.type is OutputType.SNAPSHOT_BEGIN:
            pending = {}
        elif output.type is OutputType.SNAPSHOT_END:
            state.clear()
            state.update(pending or {})
            pending = None
        else:
            target = pending if pending is not None else state
            for change in per_peer(output.changes):
                table = target.setdefault(change.peer, {})
                if change.attributes is None:
                    table.pop(change.prefix, None)
                else:
                    table[change.prefix] = change.attributes
    return pending
