"""Routes as plain data and the Adj-RIB-In: what each peer told us.

Owns the vocabulary of the route reflector core: `PathAttributes` (what an
UPDATE carries for a prefix), `Peer` (who sent it: address, router ID,
client or not) and `Path` (a prefix's attributes as received from one peer).
`AdjRibIn` stores, per peer, the last path each prefix was announced with,
and an index by prefix so the decision process looks at one prefix's
candidates without scanning every peer.

Invariants:
- At most one path per (peer, prefix): a new announcement replaces the old
  one (BGP's implicit withdrawal), a withdrawal removes it.
- The per-peer table and the per-prefix index always hold the same paths.
- Nothing here knows ExaBGP, gRPC or protobuf: adapters translate.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network

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


@dataclass(frozen=True)
class Path:
    """One candidate for a prefix: attributes as received from `peer`."""

    prefix: IPv4Network
    attributes: PathAttributes
    peer: Peer

    @property
    def originator(self) -> IPv4Address:
        """ORIGINATOR_ID when present, else the sending peer's router ID (RFC 4456 §9)."""
        originator = self.attributes.originator_id
        return originator if originator is not None else self.peer.router_id


@dataclass
class AdjRibIn:
    """Every path every peer announced and has not withdrawn."""

    _by_peer: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = field(default_factory=dict)
    _by_prefix: dict[IPv4Network, dict[IPv4Address, PathAttributes]] = field(default_factory=dict)

    def announce(self, peer: IPv4Address, prefix: IPv4Network, attributes: PathAttributes) -> bool:
        """Store `prefix` from `peer`; True when that changed anything."""
        table = self._by_peer.setdefault(peer, {})
        if table.get(prefix) == attributes:
            return False
        table[prefix] = attributes
        self._by_prefix.setdefault(prefix, {})[peer] = attributes
        return True

    def withdraw(self, peer: IPv4Address, prefix: IPv4Network) -> bool:
        """Forget `prefix` from `peer`; True when it was there."""
        table = self._by_peer.get(peer)
        if table is None or table.pop(prefix, None) is None:
            return False
        candidates = self._by_prefix[prefix]
        del candidates[peer]
        if not candidates:
            del self._by_prefix[prefix]
        return True

    def drop_peer(self, peer: IPv4Address) -> set[IPv4Network]:
        """Forget everything `peer` sent (session lost); the prefixes it had."""
        table = self._by_peer.pop(peer, {})
        for prefix in table:
            candidates = self._by_prefix[prefix]
            del candidates[peer]
            if not candidates:
                del self._by_prefix[prefix]
        return set(table)

    def candidates(self, prefix: IPv4Network) -> Mapping[IPv4Address, PathAttributes]:
        """Peer address → attributes, for every peer that sent `prefix`."""
        return self._by_prefix.get(prefix, {})

    def routes_of(self, peer: IPv4Address) -> Mapping[IPv4Network, PathAttributes]:
        return self._by_peer.get(peer, {})

    def prefixes(self) -> Iterator[IPv4Network]:
        return iter(self._by_prefix)

    def __len__(self) -> int:
        """Number of distinct prefixes held."""
        return len(self._by_prefix)

    def paths_count(self) -> int:
        return sum(len(t) for t in self._by_peer.values())


def paths_for(
    prefix: IPv4Network,
    candidates: Mapping[IPv4Address, PathAttributes],
    peers: Mapping[IPv4Address, Peer],
) -> Iterable[Path]:
    """The candidates of `prefix` as `Path`s (peers unknown to `peers` are skipped)."""
    for address, attributes in candidates.items():
        peer = peers.get(address)
        if peer is not None:
            yield Path(prefix, attributes, peer)
