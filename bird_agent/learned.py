"""What the speaker has learned: routes per peer, and the one route per prefix.

`LearnedRoutes` keeps, for every session, what the peer sent (Adj-RIB-In,
before policy) and what import policy accepted, plus the selected route per
prefix that the dataplane should carry. It consumes `BgpEvent`s and returns
`RouteChange`s — the only thing felix will ever need to hear (add/replace a
prefix's next hop, or remove the prefix). Time is passed in (`now`, seconds
on any monotonic clock); nothing here sleeps or reads a clock.

Invariants:
- Only prefixes import policy accepts are ever selected. `set_policy`
  re-judges everything already received (a pool enabled later makes routes
  appear; a pool disabled makes them go) without counting rejections twice.
- One selected route per prefix. Selection is deterministic: a cluster peer
  (one of our Nodes) beats an external one, then the lowest peer address.
- `RouteChange`s describe transitions of the selected route only: a second
  peer announcing an already-selected prefix changes nothing visible.
- A session going down (ExaBGP sends no withdrawals) removes everything
  learned from the peer — at once if the peer did not advertise graceful
  restart, else its routes stay as *stale* until the peer's End-of-RIB after
  it comes back (stale routes it did not re-announce are then dropped) or
  until its restart time runs out (`expire`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from bird_agent.events import BgpEvent, EndOfRib, PeerDown, RoutesAnnounced, RoutesWithdrawn
from bird_agent.peers import PeerSpec
from bird_agent.policy import ImportFilter, PolicyView, Rejection, import_verdict


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
class _Stale:
    deadline: float
    prefixes: set[IPv4Network]


@dataclass
class LearnedRoutes:
    import_filter: ImportFilter
    # Adj-RIB-In before policy: what each peer sent, as routes.
    received: dict[IPv4Address, dict[IPv4Network, LearnedRoute]] = field(default_factory=dict)
    # After policy.
    by_peer: dict[IPv4Address, dict[IPv4Network, LearnedRoute]] = field(default_factory=dict)
    selected: dict[IPv4Network, LearnedRoute] = field(default_factory=dict)
    # Rejections caused by the last `apply` (for the caller to log).
    rejections: list[Rejection] = field(default_factory=list)
    stale: dict[IPv4Address, _Stale] = field(default_factory=dict)

    def apply(
        self, event: BgpEvent, peers: Mapping[IPv4Address, PeerSpec], now: float = 0.0
    ) -> list[RouteChange]:
        """Fold one adapter event in; the selected-route transitions it caused."""
        self.rejections = []
        if isinstance(event, RoutesAnnounced):
            return self._announced(event, peers)
        if isinstance(event, RoutesWithdrawn):
            return self._withdraw(event.peer, event.prefixes)
        if isinstance(event, PeerDown):
            if event.graceful_restart_time and event.peer in self.by_peer:
                self.stale[event.peer] = _Stale(
                    now + event.graceful_restart_time, set(self.by_peer[event.peer])
                )
                return []
            return self.drop_peer(event.peer)
        if isinstance(event, EndOfRib):
            left = self.stale.pop(event.peer, None)
            return self._withdraw(event.peer, left.prefixes) if left else []
        return []

    def expire(self, now: float) -> list[RouteChange]:
        """Drop stale routes of peers whose graceful-restart time has run out."""
        changes: list[RouteChange] = []
        for peer, stale in list(self.stale.items()):
            if stale.deadline <= now:
                del self.stale[peer]
                changes += self._withdraw(peer, stale.prefixes)
        return changes

    def next_deadline(self) -> float | None:
        return min((s.deadline for s in self.stale.values()), default=None)

    def drop_peer(self, peer: IPv4Address) -> list[RouteChange]:
        self.stale.pop(peer, None)
        self.received.pop(peer, None)
        table = self.by_peer.pop(peer, {})
        return self._reselect(table)

    def set_policy(self, view: PolicyView) -> list[RouteChange]:
        """Re-judge every received route under a new policy."""
        self.import_filter.view = view
        touched: list[IPv4Network] = []
        for peer, received in self.received.items():
            accepted = self.by_peer.setdefault(peer, {})
            for prefix, route in received.items():
                ok = import_verdict(view, prefix, route.cluster_peer) is None
                if ok and prefix not in accepted:
                    accepted[prefix] = route
                    touched.append(prefix)
                elif not ok and prefix in accepted:
                    del accepted[prefix]
                    touched.append(prefix)
        return self._reselect(touched)

    def received_from(self, peer: IPv4Address) -> int:
        return len(self.received.get(peer, {}))

    def accepted_from(self, peer: IPv4Address) -> int:
        return len(self.by_peer.get(peer, {}))

    def _announced(
        self, event: RoutesAnnounced, peers: Mapping[IPv4Address, PeerSpec]
    ) -> list[RouteChange]:
        spec = peers.get(event.peer)
        if spec is None:
            return []
        _, rejected = self.import_filter.filter(event.peer, spec.cluster_peer, event.prefixes)
        self.rejections = rejected
        # Hashing an IPv4Network is slow (not cached): build each dict once and
        # move entries with dict.update, which reuses the stored hashes.
        routes = {
            prefix: LearnedRoute(
                prefix, event.next_hop, event.peer, spec.peer_node, spec.cluster_peer
            )
            for prefix in event.prefixes
        }
        self.received.setdefault(event.peer, {}).update(routes)
        stale = self.stale.get(event.peer)
        if stale is not None:
            stale.prefixes.difference_update(routes)
        table = self.by_peer.setdefault(event.peer, {})
        if rejected:
            refused = {r.prefix for r in rejected}
            kept = {p: r for p, r in routes.items() if p not in refused}
        else:
            kept = routes
        table.update(kept)
        # A re-announcement of a now-rejected prefix implicitly withdraws the old one.
        gone = [r.prefix for r in rejected if table.pop(r.prefix, None) is not None]
        return self._select_announced(kept) + self._reselect(gone)

    def _select_announced(self, routes: dict[IPv4Network, LearnedRoute]) -> list[RouteChange]:
        """Selection after `routes` were added: the current best is the minimum
        over everyone else, so comparing against it suffices — except when the
        selected route itself was replaced (a re-announcement), then rescan."""
        changes: list[RouteChange] = []
        winners: dict[IPv4Network, LearnedRoute] = {}
        rescan: list[IPv4Network] = []
        selected = self.selected
        for prefix, route in routes.items():
            current = selected.get(prefix)
            if current is None or (
                current.peer != route.peer and _preference(route) < _preference(current)
            ):
                winners[prefix] = route
                changes.append(RouteChange(prefix, route))
            elif current.peer == route.peer and current != route:
                rescan.append(prefix)
        selected.update(winners)
        return changes + self._reselect(rescan)

    def _withdraw(self, peer: IPv4Address, prefixes: Iterable[IPv4Network]) -> list[RouteChange]:
        received = self.received.get(peer, {})
        table = self.by_peer.get(peer, {})
        present = []
        for prefix in prefixes:
            received.pop(prefix, None)
            if table.pop(prefix, None) is not None:
                present.append(prefix)
        return self._reselect(present)

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
