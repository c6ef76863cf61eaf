"""What the speaker has learned: accepted routes per peer, and the one route per prefix.

`LearnedRoutes` is the Adj-RIB-In after import policy, for every session,
plus the selected route per prefix that the dataplane should carry. It
consumes `BgpEvent`s and returns `RouteChange`s — the only thing felix will
ever need to hear (add/replace a prefix's next hop, or remove the prefix).

Invariants:
- Only prefixes `ImportFilter` accepted are ever stored; rejections are
  counted there, never here.
- One selected route per prefix. Selection is deterministic: a cluster peer
  (one of our Nodes) beats an external one, then the lowest peer address.
- `RouteChange`s describe transitions of the selected route only: a second
  peer announcing an already-selected prefix changes nothing visible.
- `PeerDown` removes everything learned from that peer (ExaBGP sends no
  withdrawals). The graceful-restart window (keep routes marked stale until
  the peer is back or the timer ends) is the caller's choice: it calls
  `drop_peer` when the window ends instead of on the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from bird_agent.events import BgpEvent, PeerDown, RoutesAnnounced, RoutesWithdrawn
from bird_agent.peers import PeerSpec
from bird_agent.policy import ImportFilter, Rejection


@dataclass(frozen=True)
class LearnedRoute:
    prefix: IPv4Network
    next_hop: IPv4Address
    peer: IPv4Address
    # The Node behind the session (mesh / RR peers), None for external peers.
    origin_node: str | None
    cluster_peer: bool


@dataclass(frozen=True)
class RouteChange:
    prefix: IPv4Network
    # None: the prefix is no longer reachable through BGP.
    route: LearnedRoute | None


@dataclass
class LearnedRoutes:
    import_filter: ImportFilter
    by_peer: dict[IPv4Address, dict[IPv4Network, LearnedRoute]] = field(default_factory=dict)
    selected: dict[IPv4Network, LearnedRoute] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)

    def apply(self, event: BgpEvent, peers: Mapping[IPv4Address, PeerSpec]) -> list[RouteChange]:
        """Fold one adapter event in; the selected-route transitions it caused."""
        if isinstance(event, RoutesAnnounced):
            spec = peers.get(event.peer)
            if spec is None:
                return []
            accepted, rejected = self.import_filter.filter(
                event.peer, spec.cluster_peer, event.prefixes
            )
            self.rejections = rejected
            table = self.by_peer.setdefault(event.peer, {})
            routes = [
                LearnedRoute(p, event.next_hop, event.peer, spec.peer_node, spec.cluster_peer)
                for p in accepted
            ]
            # A re-announcement of a now-rejected prefix implicitly withdraws the old one.
            gone = [p for p in (r.prefix for r in rejected) if p in table]
            for prefix in gone:
                del table[prefix]
            for route in routes:
                table[route.prefix] = route
            return self._reselect([*accepted, *gone])
        if isinstance(event, RoutesWithdrawn):
            table = self.by_peer.get(event.peer, {})
            present = [p for p in event.prefixes if table.pop(p, None) is not None]
            return self._reselect(present)
        if isinstance(event, PeerDown):
            return self.drop_peer(event.peer)
        return []

    def drop_peer(self, peer: IPv4Address) -> list[RouteChange]:
        table = self.by_peer.pop(peer, {})
        return self._reselect(table)

    def received_from(self, peer: IPv4Address) -> int:
        return len(self.by_peer.get(peer, {}))

    def _reselect(self, prefixes: Iterable[IPv4Network]) -> list[RouteChange]:
        changes: list[RouteChange] = []
        for prefix in dict.fromkeys(prefixes):
            candidates = [t[prefix] for t in self.by_peer.values() if prefix in t]
            best = min(candidates, key=_preference, default=None)
            if best == self.selected.get(prefix):
                continue
            if best is None:
                del self.selected[prefix]
            else:
                self.selected[prefix] = best
            changes.append(RouteChange(prefix, best))
        return changes


def _preference(route: LearnedRoute) -> tuple[bool, int]:
    return (not route.cluster_peer, int(route.peer))
