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


@dataclass(frozen=True, slots=True)
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


_Candidates = tuple[IPv4Address, PathAttributes] | dict[IPv4Address, PathAttributes]


@dataclass
class AdjRibIn:
    """Every path every peer announced and has not withdrawn."""

    _by_peer: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = field(default_factory=dict)
    # A prefix most peers alone announce holds its one (peer, attributes) pair
    # (a tuple is a third of a one-entry dict: 100,000 prefixes, ~20 MB less);
    # a dict once a second peer announces it.
    _by_prefix: dict[IPv4Network, _Candidates] = field(default_factory=dict)

    def announce(self, peer: IPv4Address, prefix: IPv4Network, attributes: PathAttributes) -> bool:
        """Store `prefix` from `peer`; True when that changed anything."""
        table = self._by_peer.setdefault(peer, {})
        if table.get(prefix) == attributes:
            return False
        table[prefix] = attributes
        entry = self._by_prefix.get(prefix)
        if entry is None or (type(entry) is tuple and entry[0] == peer):
            self._by_prefix[prefix] = (peer, attributes)
        elif type(entry) is tuple:
            self._by_prefix[prefix] = {entry[0]: entry[1], peer: attributes}
        else:
            entry[peer] = attributes  # type: ignore[index]
        return True

    def withdraw(self, peer: IPv4Address, prefix: IPv4Network) -> bool:
        """Forget `prefix` from `peer`; True when it was there."""
        table = self._by_peer.get(peer)
        if table is None or table.pop(prefix, None) is None:
            return False
        self._forget(peer, prefix)
        return True

    def drop_peer(self, peer: IPv4Address) -> set[IPv4Network]:
        """Forget everything `peer` sent (session lost); the prefixes it had."""
        table = self._by_peer.pop(peer, {})
        for prefix in table:
            self._forget(peer, prefix)
        return set(table)

    def _forget(self, peer: IPv4Address, prefix: IPv4Network) -> None:
        entry = self._by_prefix[prefix]
        if type(entry) is tuple:
            del self._by_prefix[prefix]
            return
        assert isinstance(entry, dict)
        del entry[peer]
        if len(entry) == 1:
            self._by_prefix[prefix] = next(iter(entry.items()))

    def candidates(self, prefix: IPv4Network) -> Mapping[IPv4Address, PathAttributes]:
        """Peer address → attributes, for every peer that sent `prefix`."""
        return dict(self.candidate_items(prefix))

    def candidate_items(self, prefix: IPv4Network) -> Iterable[tuple[IPv4Address, PathAttributes]]:
        """(peer address, attributes) for every peer that sent `prefix`."""
        entry = self._by_prefix.get(prefix)
        if entry is None:
            return ()
        if type(entry) is tuple:
            return (entry,)
        assert isinstance(entry, dict)
        return entry.items()

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
    candidates: Iterable[tuple[IPv4Address, PathAttributes]],
    peers: Mapping[IPv4Address, Peer],
) -> Iterable[Path]:
    """The candidates of `prefix` (`AdjRibIn.candidate_items`) as `Path`s
    (peers unknown to `peers` are skipped)."""
    for address, attributes in candidates:
        peer = peers.get(address)
        if peer is not None:
            yield Path(prefix, attributes, peer)
