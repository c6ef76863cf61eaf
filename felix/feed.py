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
- The state is kept grouped by prefix (`by_prefix`: the entries of a prefix
  sorted by peer, several → ECMP), and only so: `routes` is made from it on
  demand. A delta costs O(peers of its prefix), a SNAPSHOT_END O(routes).
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


class LearnedPath(NamedTuple):
    """A `LearnedRoute` without its prefix: what the feed keeps per prefix. One
    object, in one 1-tuple group, serves every prefix a peer announces alike."""

    peer: str
    next_hops: tuple[LearnedHop, ...]
    encap: Encap = Encap.FROM_POOL


# What desired state reads of a learned route (it never needs the prefix).
PathLike = LearnedPath | LearnedRoute


class RouteUpdate(NamedTuple):
    type: UpdateType
    route: LearnedRoute | None = None


RouteKey = tuple[IPv4Network, str]
# One prefix's paths, one per peer, sorted by peer (several: ECMP). Immutable.
Group = tuple[LearnedPath, ...]
# Distinct single-path groups kept for sharing, at most (then forgotten, and made anew).
SHARED_PATHS = 4096


class FeedProtocolError(ValueError):
    """An update that breaks the feed protocol (e.g. SNAPSHOT_END without BEGIN)."""


def _peer(path: LearnedPath) -> str:
    return path.peer


def _with(group: Group | None, single: Group) -> Group:
    """`group` with `single`'s path as its peer's entry."""
    path = single[0]
    if group is None or (len(group) == 1 and group[0].peer == path.peer):
        return single
    return tuple(sorted([*(r for r in group if r.peer != path.peer), path], key=_peer))


def _without(group: Group, peer: str) -> Group | None:
    """`group` without `peer`'s entry (None: nothing left; `group` itself: it had none)."""
    if len(group) == 1:
        return None if group[0].peer == peer else group
    rest = tuple(r for r in group if r.peer != peer)
    return group if len(rest) == len(group) else rest


class RouteFeed:
    """The speaker's learned routes, with snapshot/delta semantics per stream.

    One table, by prefix (a full table is 100,000 prefixes, and every table
    of them costs felix memory): the authoritative state and each pending
    snapshot are kept grouped, the way the tracker reads them, and a prefix
    one peer announces shares its group with every other prefix of that path.
    """

    def __init__(self) -> None:
        self.synced = False
        self._next_stream = 0
        self._authoritative: int | None = None
        self._pending: dict[int, dict[IPv4Network, Group]] = {}
        self._generation = 0
        self._by_prefix: dict[IPv4Network, Group] = {}
        self._changed: dict[IPv4Network, Group | None] = {}
        # Single-path groups by (peer, id of the hops, id of the encapsulation): the
        # speaker's updates share one hops tuple per path (felix.server), and the
        # group keeps it, so its id is not reused while the entry is here.
        self._singles: dict[tuple[str, int, int], Group] = {}

    @property
    def routes(self) -> dict[RouteKey, LearnedRoute]:
        """The authoritative state by (prefix, peer), made anew on each call."""
        return {
            (prefix, p.peer): LearnedRoute(prefix, *p)
            for prefix, group in self._by_prefix.items()
            for p in group
        }

    def _single(self, route: LearnedRoute) -> Group:
        """The shared 1-tuple group of `route`'s path."""
        hops = route.next_hops
        key = (route.peer, id(hops), id(route.encap))
        group = self._singles.get(key)
        if group is None:
            if len(self._singles) >= SHARED_PATHS:
                self._singles.clear()
            group = self._singles[key] = (LearnedPath(route.peer, hops, route.encap),)
        return group

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
            changed = pending != self._by_prefix
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
        # A snapshot being filled: it becomes the state at SNAPSHOT_END.
        for route in routes:
            prefix = route.prefix
            if kind is UpdateType.DEL:
                group = table.get(prefix)
                if group is not None:
                    rest = _without(group, route.peer)
                    if rest is None:
                        del table[prefix]
                    else:
                        table[prefix] = rest
            elif not route.next_hops:
                raise FeedProtocolError(f"ADD {prefix} has no next hop")
            else:
                single = self._single(route)
                group = table.setdefault(prefix, single)
                if group is not single:  # (a prefix nobody else announces: nearly always)
                    table[prefix] = _with(group, single)
        return False

    def _apply_in_place(self, kind: UpdateType, routes: Sequence[LearnedRoute]) -> bool:
        # The hot path of a full table. (The groups are shared: being the same
        # object as a new route's group does not make an entry new.)
        table, changes = self._by_prefix, self._changed
        changed = False
        try:
            for route in routes:
                prefix = route.prefix
                if kind is UpdateType.DEL:
                    group = table.get(prefix)
                    if group is None:
                        continue
                    rest = _without(group, route.peer)
                    if rest is group:
                        continue
                    if rest is None:
                        del table[prefix]
                    else:
                        table[prefix] = rest
                    changes[prefix] = rest
                    changed = True
                    continue
                if not route.next_hops:
                    raise FeedProtocolError(f"ADD {prefix} has no next hop")
                single = self._single(route)
                group = table.get(prefix)
                if group is not None:  # (a prefix nobody announced yet: nearly always)
                    if single[0] in group:
                        continue
                    single = _with(group, single)
                table[prefix] = changes[prefix] = single
                changed = True
        finally:
            # (an exception still leaves the routes before it applied and counted)
            self._bump(changed)
        return changed

    def _bump(self, changed: bool) -> bool:
        if changed:
            self._generation += 1
        return changed

    def _replace(self, groups: dict[IPv4Network, Group]) -> None:
        """A new snapshot became the state: note what differs."""
        old, changes = self._by_prefix, self._changed
        for prefix, group in groups.items():
            if old.get(prefix) != group:
                changes[prefix] = group
        for prefix in old:
            if prefix not in groups:
                changes[prefix] = None
        self._by_prefix = groups

    def by_prefix(self) -> Mapping[IPv4Network, Group]:
        """The feed grouped by prefix (several entries → ECMP). Live: do not mutate."""
        return self._by_prefix

    def take_changes(self) -> dict[IPv4Network, Group | None]:
        """The prefixes whose group changed since the last call, each with its
        group now (None: gone), and forget them. The groups are immutable."""
        changed, self._changed = self._changed, {}
        return changed
