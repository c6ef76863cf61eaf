"""The reflector's vocabulary: what the speaker and gingham-rr say to each other.

Plain data, shared by both ends of the Reflect stream (the contract is
proto/gingham/v1/reflector.proto): a route's `PathAttributes`, a session's
`Peer`, the stream's inputs (`SnapshotBegin`, `SnapshotEnd`, `PeerUp`,
`PeerDown`, `Announce`, `Withdraw`) and outputs (`FeedOutput` carrying
`OutboundChange`s), and `apply_outputs`, what a speaker does with outputs.

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
    """Tell `peer` about `prefix`: announce with `attributes`, or withdraw (None).

    A named tuple: the engine makes one per prefix x peer (95,000 for 20
    clients x 250 prefixes), and a frozen dataclass costs five times as much
    to build.
    """

    peer: IPv4Address
    prefix: IPv4Network
    attributes: PathAttributes | None

    @property
    def withdraw(self) -> bool:
        return self.attributes is None


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
    changes: tuple[OutboundChange, ...] = ()
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
            for change in output.changes:
                table = target.setdefault(change.peer, {})
                if change.attributes is None:
                    table.pop(change.prefix, None)
                else:
                    table[change.prefix] = change.attributes
    return pending
