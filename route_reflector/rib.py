"""Routes as plain data and the Adj-RIB-In: what each peer told us.

`Path` is a prefix's attributes as received from one peer (the vocabulary
it is made of, `PathAttributes` and `Peer`, is `route_reflector.api.messages`).
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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from route_reflector.api.messages import PathAttributes, Peer


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
