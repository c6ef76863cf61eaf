"""What the speaker has learned: routes per peer, and the one route per prefix.

`LearnedRoutes` keeps, for every session, what the peer sent (Adj-RIB-In,
before policy) and what import policy accepted, plus the selected route per
prefix that the dataplane should carry. It consumes `BgpEvent`s and returns
`RouteChanges` — the only thing felix will ever need to hear (add/replace a
prefix's route, or remove the prefix). Time is passed in (`now`, seconds on
any monotonic clock); nothing here sleeps or reads a clock.

Representation (why it looks like this): receiving 100,000 prefixes must cost
a few microseconds each. Prefixes are integer keys (`events.prefix_key`) and
every prefix of one UPDATE shares one `LearnedPath` (peer, next hop, origin):
no object is made per prefix on the hot path. `LearnedRoute` (prefix + path)
and `IPv4Network` appear only when someone looks (`selected`, iterating a
`RouteChanges`).

Invariants:
- Only prefixes import policy accepts are ever selected. `set_policy`
  re-judges everything already received (a pool enabled later makes routes
  appear; a pool disabled makes them go) without counting rejections twice;
  an UPDATE refused for an AS_PATH loop stays refused.
- One selected route per prefix. Selection is deterministic: a cluster peer
  (one of our Nodes) beats an external one, then the lowest peer address.
- `RouteChanges` describe transitions of the selected route only: a second
  peer announcing an already-selected prefix changes nothing visible.
- A session going down (ExaBGP sends no withdrawals) removes everything
  learned from the peer — at once if the peer did not advertise graceful
  restart, else its routes stay as *stale* until the peer's End-of-RIB after
  it comes back (stale routes it did not re-announce are then dropped) or
  until its restart time runs out (`expire`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import overload

from bird_agent.events import (
    BgpEvent,
    EndOfRib,
    PeerDown,
    PeerUp,
    Prefixes,
    PrefixKey,
    RoutesAnnounced,
    RoutesWithdrawn,
    key_network,
    key_text,
    prefix_key,
)
from bird_agent.peers import PeerSpec
from bird_agent.policy import ImportFilter, PolicyView, Rejection, RejectReason, key_verdict


@dataclass(frozen=True)
class LearnedPath:
    """What one UPDATE says about all of its prefixes."""

    next_hop: IPv4Address
    peer: IPv4Address
    # The Node behind the session (mesh / RR peers), None for external peers.
    origin_node: str | None
    cluster_peer: bool
    # The UPDATE's AS_PATH held our own AS: never accepted, whatever the policy.
    looped: bool = False
    # Selection order: lower wins (cluster peers first, then lowest address).
    rank: tuple[bool, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rank", (not self.cluster_peer, int(self.peer)))

    def route(self, prefix: IPv4Network) -> LearnedRoute:
        return LearnedRoute(prefix, self.next_hop, self.peer, self.origin_node, self.cluster_peer)


@dataclass(frozen=True)
class LearnedRoute:
    prefix: IPv4Network
    next_hop: IPv4Address
    peer: IPv4Address
    # The Node behind the session (mesh / RR peers), None for external peers.
    origin_node: str | None
    cluster_peer: bool

    @property
    def path(self) -> LearnedPath:
        return LearnedPath(self.next_hop, self.peer, self.origin_node, self.cluster_peer)


@dataclass(frozen=True)
class RouteChange:
    prefix: IPv4Network
    # None: the prefix is no longer reachable through BGP.
    route: LearnedRoute | None


@dataclass(frozen=True)
class ChangeGroup:
    """Prefixes whose selected route became `path` (None: removed), in order."""

    path: LearnedPath | None
    keys: Sequence[PrefixKey]
    texts: Sequence[str]


class RouteChanges(Sequence[RouteChange]):
    """Selected-route transitions in groups sharing a path; a `Sequence[RouteChange]`
    for readers that want one object per prefix (made on access)."""

    __slots__ = ("groups",)

    def __init__(self, groups: Iterable[ChangeGroup] = ()) -> None:
        self.groups = [g for g in groups if g.keys]

    @classmethod
    def of(cls, changes: Iterable[RouteChange]) -> RouteChanges:
        if isinstance(changes, RouteChanges):
            return changes
        return cls(
            ChangeGroup(
                c.route.path if c.route is not None else None,
                (prefix_key(c.prefix),),
                (str(c.prefix),),
            )
            for c in changes
        )

    def __iadd__(self, other: Iterable[RouteChange]) -> RouteChanges:
        self.groups += RouteChanges.of(other).groups
        return self

    def __len__(self) -> int:
        return sum(len(g.keys) for g in self.groups)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def __iter__(self) -> Iterator[RouteChange]:
        for group in self.groups:
            for key in group.keys:
                prefix = key_network(key)
                path = group.path
                yield RouteChange(prefix, path.route(prefix) if path is not None else None)

    @overload
    def __getitem__(self, index: int) -> RouteChange: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RouteChange]: ...
    def __getitem__(self, index: int | slice) -> RouteChange | Sequence[RouteChange]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable (+=)

    def __repr__(self) -> str:
        return f"RouteChanges({list(self)!r})"


class SelectedRoutes(Mapping[IPv4Network, LearnedRoute]):
    """Read-only view of the selected routes by `IPv4Network` (status, tests)."""

    def __init__(self, by_key: dict[PrefixKey, LearnedPath]) -> None:
        self._by_key = by_key

    def __getitem__(self, prefix: IPv4Network) -> LearnedRoute:
        return self._by_key[prefix_key(prefix)].route(prefix)

    def __contains__(self, prefix: object) -> bool:
        return isinstance(prefix, IPv4Network) and prefix_key(prefix) in self._by_key

    def __iter__(self) -> Iterator[IPv4Network]:
        return map(key_network, list(self._by_key))

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass
class _Stale:
    deadline: float
    prefixes: set[PrefixKey]
    # A new session came up within the window (until then, every attempt to
    # reconnect that ends is one the restarting peer refused or dropped early).
    reestablished: bool = False


Table = dict[PrefixKey, LearnedPath]


@dataclass
class LearnedRoutes:
    import_filter: ImportFilter
    # Adj-RIB-In before policy: what each peer sent.
    received: dict[IPv4Address, Table] = field(default_factory=dict)
    # After policy.
    by_peer: dict[IPv4Address, Table] = field(default_factory=dict)
    # The selected path per prefix key, and the prefix text (what felix is told).
    selected_paths: Table = field(default_factory=dict)
    texts: dict[PrefixKey, str] = field(default_factory=dict)
    # Rejections caused by the last `apply` (for the caller to log).
    rejections: list[Rejection] = field(default_factory=list)
    stale: dict[IPv4Address, _Stale] = field(default_factory=dict)
    # Peers whose End-of-RIB arrived since their session last went down: all
    # they hold has been heard (the speaker's "converged" test).
    end_of_rib: set[IPv4Address] = field(default_factory=set)

    @property
    def selected(self) -> SelectedRoutes:
        return SelectedRoutes(self.selected_paths)

    def apply(
        self, event: BgpEvent, peers: Mapping[IPv4Address, PeerSpec], now: float = 0.0
    ) -> RouteChanges:
        """Fold one adapter event in; the selected-route transitions it caused."""
        self.rejections = []
        if isinstance(event, RoutesAnnounced):
            return self._announced(event, peers)
        if isinstance(event, RoutesWithdrawn):
            return self._withdraw(event.peer, event.batch.keys)
        if isinstance(event, PeerUp) and event.peer in self.stale:
            self.stale[event.peer].reestablished = True
            return RouteChanges()
        if isinstance(event, PeerDown):
            self.end_of_rib.discard(event.peer)
            window = self.stale.get(event.peer)
            if window is not None and not window.reestablished:
                # A reconnection that ended before the peer's OPEN (its
                # restarting speaker is not listening yet) carries no restart
                # time, and ends nothing: the window goes on.
                return RouteChanges()
            if event.graceful_restart_time and event.peer in self.by_peer:
                self.stale[event.peer] = _Stale(
                    now + event.graceful_restart_time, set(self.by_peer[event.peer])
                )
                return RouteChanges()
            return self.drop_peer(event.peer)
        if isinstance(event, EndOfRib):
            self.end_of_rib.add(event.peer)
            left = self.stale.pop(event.peer, None)
            return self._withdraw(event.peer, left.prefixes) if left else RouteChanges()
        return RouteChanges()

    def expire(self, now: float) -> RouteChanges:
        """Drop stale routes of peers whose graceful-restart time has run out."""
        changes = RouteChanges()
        for peer, stale in list(self.stale.items()):
            if stale.deadline <= now:
                del self.stale[peer]
                changes += self._withdraw(peer, stale.prefixes)
        return changes

    def next_deadline(self) -> float | None:
        return min((s.deadline for s in self.stale.values()), default=None)

    def keep_only(self, planned: Iterable[IPv4Address]) -> RouteChanges:
        """Drop every route of a peer that is no longer planned, stale ones too.

        Removing a peer from ExaBGP reports its session down, which drops its
        routes — unless the session had already gone down with graceful restart
        (the peer's own node closed it first, e.g. when its Node was deleted):
        then its routes sat stale for the whole restart window.
        """
        keep = set(planned)
        changes = RouteChanges()
        for peer in sorted((self.by_peer.keys() | self.stale.keys()) - keep):
            changes += self.drop_peer(peer)
        return changes

    def drop_peer(self, peer: IPv4Address) -> RouteChanges:
        self.end_of_rib.discard(peer)
        self.stale.pop(peer, None)
        self.received.pop(peer, None)
        table = self.by_peer.pop(peer, {})
        return self._reselect(table)

    def set_policy(self, view: PolicyView) -> RouteChanges:
        """Re-judge every received route under a new policy."""
        self.import_filter.view = view
        touched: list[PrefixKey] = []
        for peer, received in self.received.items():
            accepted = self.by_peer.setdefault(peer, {})
            for key, path in received.items():
                ok = not path.looped and key_verdict(view, key, path.cluster_peer) is None
                if ok and key not in accepted:
                    accepted[key] = path
                    touched.append(key)
                elif not ok and key in accepted:
                    del accepted[key]
                    touched.append(key)
        return self._reselect(touched)

    def received_from(self, peer: IPv4Address) -> int:
        return len(self.received.get(peer, {}))

    def accepted_from(self, peer: IPv4Address) -> int:
        return len(self.by_peer.get(peer, {}))

    def _announced(
        self, event: RoutesAnnounced, peers: Mapping[IPv4Address, PeerSpec]
    ) -> RouteChanges:
        spec = peers.get(event.peer)
        if spec is None:
            return RouteChanges()
        batch = event.batch
        looped = spec.local_asn in event.as_path
        path = LearnedPath(event.next_hop, event.peer, spec.peer_node, spec.cluster_peer, looped)
        verdicts = self.import_filter.judge(event.peer, spec.cluster_peer, batch, as_loop=looped)
        self.rejections = verdicts.rejected
        # dict.fromkeys on int keys: the whole UPDATE enters each table in C.
        self.received.setdefault(event.peer, {}).update(dict.fromkeys(batch.keys, path))
        stale = self.stale.get(event.peer)
        if stale is not None:
            stale.prefixes.difference_update(batch.keys)
        table = self.by_peer.setdefault(event.peer, {})
        table.update(dict.fromkeys(verdicts.keys, path))
        # A re-announcement of a now-rejected prefix implicitly withdraws the old one.
        gone = [
            key
            for key in (prefix_key(r.prefix) for r in verdicts.rejected)
            if table.pop(key, None) is not None
        ]
        changes = self._select_announced(path, verdicts.keys, verdicts.texts)
        changes += self._reselect(gone)
        return changes

    def _select_announced(
        self, path: LearnedPath, keys: Sequence[PrefixKey], texts: Sequence[str]
    ) -> RouteChanges:
        """Selection after `path` was added for `keys`: the current best is the
        minimum over everyone else, so comparing against it suffices — except
        when the selected route itself was replaced (a re-announcement), then
        rescan."""
        selected = self.selected_paths
        rank, peer = path.rank, path.peer
        won_keys: list[PrefixKey] = []
        won_texts: list[str] = []
        rescan: list[PrefixKey] = []
        for key, text in zip(keys, texts, strict=True):
            current = selected.get(key)
            if current is None or (current.peer != peer and rank < current.rank):
                won_keys.append(key)
                won_texts.append(text)
            elif current.peer == peer and current != path:
                rescan.append(key)
        selected.update(dict.fromkeys(won_keys, path))
        self.texts.update(zip(won_keys, won_texts, strict=True))
        changes = RouteChanges([ChangeGroup(path, won_keys, won_texts)])
        changes += self._reselect(rescan)
        return changes

    def _withdraw(self, peer: IPv4Address, keys: Iterable[PrefixKey]) -> RouteChanges:
        received = self.received.get(peer, {})
        table = self.by_peer.get(peer, {})
        present = []
        for key in keys:
            received.pop(key, None)
            if table.pop(key, None) is not None:
                present.append(key)
        return self._reselect(present)

    def _reselect(self, keys: Iterable[PrefixKey]) -> RouteChanges:
        """Selection from scratch for `keys` (withdrawals, peers gone, policy)."""
        # Grouped by path identity (hashing a path per prefix would cost more).
        groups: dict[int, tuple[LearnedPath | None, list[PrefixKey], list[str]]] = {}
        selected, texts, tables = self.selected_paths, self.texts, self.by_peer.values()
        for key in dict.fromkeys(keys):
            best: LearnedPath | None = None
            for table in tables:
                candidate = table.get(key)
                if candidate is not None and (best is None or candidate.rank < best.rank):
                    best = candidate
            current = selected.get(key)
            if best is current or best == current:
                continue
            if best is None:
                del selected[key]
                text = texts.pop(key)
            else:
                selected[key] = best
                text = texts.get(key) or key_text(key)
                texts[key] = text
            group = groups.setdefault(id(best), (best, [], []))
            group[1].append(key)
            group[2].append(text)
        return RouteChanges(ChangeGroup(path, k, t) for path, k, t in groups.values())


__all__ = [
    "ChangeGroup",
    "LearnedPath",
    "LearnedRoute",
    "LearnedRoutes",
    "Prefixes",
    "RejectReason",
    "RouteChange",
    "RouteChanges",
    "SelectedRoutes",
]
