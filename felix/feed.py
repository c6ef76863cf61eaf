"""The route feed's state: what the BGP speaker says it learned, snapshot then deltas.

The speaker pushes `RouteUpdate`s over `RouteFeed.SyncRoutes` (see
proto/gingham/v1/dataplane.proto). This module keeps the resulting table and
enforces the protocol's rules; the gRPC servicer only translates messages.

Invariants:
- `routes` is the state of the authoritative stream: the one whose snapshot
  ended most recently. A stream in the middle of a snapshot fills its own
  pending table; `routes` changes only at SNAPSHOT_END (wholesale) or on a
  delta from the authoritative stream.
- Deltas from a stream that is no longer authoritative are ignored (an old
  speaker connection still draining after a new one took over).
- A stream that closes leaves `routes` as they were (graceful restart: keep
  forwarding until a new snapshot says otherwise).
- `synced` turns True at the first SNAPSHOT_END and never back; that first
  SNAPSHOT_END counts as a change even when the snapshot is empty (felix may
  remove stale routes from then on, so a pass must follow).
- `by_prefix` is `routes` grouped by prefix (the entries of a prefix sorted by
  peer: several → ECMP), kept up to date with every change, never rebuilt
  per pass: a delta costs O(peers of its prefix), a SNAPSHOT_END O(routes).
- Every prefix whose group changed is in `take_changes()`'s next answer, once:
  the agent re-derives and re-diffs only those (felix.agent).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple


class Encap(enum.Enum):
    FROM_POOL = "from-pool"
    NONE = "none"
    IPIP = "ipip"
    VXLAN = "vxlan"


class UpdateType(enum.Enum):
    SNAPSHOT_BEGIN = "snapshot-begin"
    SNAPSHOT_END = "snapshot-end"
    ADD = "add"
    DEL = "del"


class LearnedHop(NamedTuple):
    address: IPv4Address
    node: str = ""


class LearnedRoute(NamedTuple):
    """One peer's route to a prefix (a named tuple: one is built per prefix)."""

    prefix: IPv4Network
    peer: str
    next_hops: tuple[LearnedHop, ...]
    encap: Encap = Encap.FROM_POOL


class RouteUpdate(NamedTuple):
    type: UpdateType
    route: LearnedRoute | None = None


RouteKey = tuple[IPv4Network, str]


class FeedProtocolError(ValueError):
    """An update that breaks the feed protocol (e.g. SNAPSHOT_END without BEGIN)."""


class RouteFeed:
    """The speaker's learned routes, with snapshot/delta semantics per stream."""

    def __init__(self) -> None:
        self.routes: dict[RouteKey, LearnedRoute] = {}
        self.synced = False
        self._next_stream = 0
        self._authoritative: int | None = None
        self._pending: dict[int, dict[RouteKey, LearnedRoute]] = {}
        self._generation = 0
        self._by_prefix: dict[IPv4Network, tuple[LearnedRoute, ...]] = {}
        self._changed: dict[IPv4Network, tuple[LearnedRoute, ...] | None] = {}

    @property
    def generation(self) -> int:
        """Bumped whenever `routes` changes: cheap dirty check for the agent."""
        return self._generation

    def open_stream(self) -> int:
        self._next_stream += 1
        return self._next_stream

    def close_stream(self, stream: int) -> None:
        self._pending.pop(stream, None)

    def is_in_sync(self, stream: int) -> bool:
        return self._authoritative == stream and stream not in self._pending

    def apply(self, stream: int, update: RouteUpdate) -> bool:
        """Apply one update from `stream`; True when `routes` changed."""
        if update.type is UpdateType.SNAPSHOT_BEGIN:
            self._pending[stream] = {}
            return False
        if update.type is UpdateType.SNAPSHOT_END:
            pending = self._pending.pop(stream, None)
            if pending is None:
                raise FeedProtocolError("SNAPSHOT_END without SNAPSHOT_BEGIN")
            self._authoritative = stream
            first = not self.synced
            self.synced = True
            changed = pending != self.routes
            if changed:
                self._replace(pending)
            return self._bump(changed or first)
        if update.route is None:
            raise FeedProtocolError(f"{update.type.value.upper()} without a prefix")
        return self.apply_routes(stream, update.type, (update.route,))

    def apply_routes(self, stream: int, kind: UpdateType, routes: Sequence[LearnedRoute]) -> bool:
        """ADD or DEL `routes` from `stream`, in order (one update each); True when
        `routes` changed. A protocol error refuses the whole batch (it depends on
        the stream, not the route), except an ADD without next hops: the routes
        before it are applied."""
        table = self._pending.get(stream)
        if table is None:
            if stream != self._authoritative:
                if self._authoritative is None or stream > self._authoritative:
                    raise FeedProtocolError("route update before SNAPSHOT_BEGIN")
                return False  # a superseded stream: ignore
            return self._apply_in_place(kind, routes)
        # A snapshot being filled: nothing is grouped until SNAPSHOT_END.
        for route in routes:
            key = (route.prefix, route.peer)
            if kind is UpdateType.DEL:
                table.pop(key, None)
            elif not route.next_hops:
                raise FeedProtocolError(f"ADD {route.prefix} has no next hop")
            else:
                table[key] = route
        return False

    def _apply_in_place(self, kind: UpdateType, routes: Sequence[LearnedRoute]) -> bool:
        # The hot path of a full table (one loop, one hash per dict touched): a
        # prefix object hashes in Python, so every lookup saved counts.
        table, groups, changes = self.routes, self._by_prefix, self._changed
        changed = False
        try:
            for route in routes:
                prefix, peer = route.prefix, route.peer
                key = (prefix, peer)
                if kind is UpdateType.DEL:
                    if table.pop(key, None) is None:
                        continue
                    group = groups.get(prefix)
                    if group is not None and len(group) == 1 and group[0].peer == peer:
                        del groups[prefix]
                        changes[prefix] = None
                    else:
                        self._regroup(prefix, peer, None)
                    changed = True
                    continue
                if not route.next_hops:
                    raise FeedProtocolError(f"ADD {prefix} has no next hop")
                old = table.setdefault(key, route)
                if old is not route:
                    if old == route:
                        continue
                    table[key] = route
                single = (route,)
                group = groups.setdefault(prefix, single)
                if group is single:  # a prefix nobody else announces: nearly always
                    changes[prefix] = single
                elif len(group) == 1 and group[0].peer == peer:
                    groups[prefix] = changes[prefix] = single
                else:
                    self._regroup(prefix, peer, route)
                changed = True
        finally:
            # (an exception still leaves the routes before it applied and counted)
            self._bump(changed)
        return changed

    def _bump(self, changed: bool) -> bool:
        if changed:
            self._generation += 1
        return changed

    def _regroup(self, prefix: IPv4Network, peer: str, route: LearnedRoute | None) -> None:
        """Fold one peer's changed entry into a prefix several peers announce."""
        others = [r for r in self._by_prefix.get(prefix, ()) if r.peer != peer]
        if route is not None:
            others.append(route)
        if others:
            group = tuple(sorted(others, key=lambda r: r.peer))
            self._by_prefix[prefix] = self._changed[prefix] = group
        else:
            self._by_prefix.pop(prefix, None)
            self._changed[prefix] = None

    def _replace(self, routes: dict[RouteKey, LearnedRoute]) -> None:
        """A new snapshot became the state: regroup once, note what differs."""
        grouped: dict[IPv4Network, list[LearnedRoute]] = {}
        for (prefix, _peer), route in routes.items():
            grouped.setdefault(prefix, []).append(route)
        new = {
            p: tuple(sorted(rs, key=lambda r: r.peer)) if len(rs) > 1 else (rs[0],)
            for p, rs in grouped.items()
        }
        old = self._by_prefix
        self._changed.update((p, rs) for p, rs in new.items() if old.get(p) != rs)
        self._changed.update((p, None) for p in old if p not in new)
        self.routes = routes
        self._by_prefix = new

    def by_prefix(self) -> Mapping[IPv4Network, tuple[LearnedRoute, ...]]:
        """The feed grouped by prefix (several entries → ECMP). Live: do not mutate."""
        return self._by_prefix

    def take_changes(self) -> dict[IPv4Network, tuple[LearnedRoute, ...] | None]:
        """The prefixes whose group changed since the last call, each with its
        group now (None: gone), and forget them. The groups are immutable."""
        changed, self._changed = self._changed, {}
        return changed
