"""Route feed semantics: snapshot, then deltas; a new stream replaces at its snapshot end."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from felix.feed import (
    FeedProtocolError,
    LearnedHop,
    LearnedPath,
    LearnedRoute,
    RouteFeed,
    RouteUpdate,
    UpdateType,
)

BEGIN = RouteUpdate(UpdateType.SNAPSHOT_BEGIN)
END = RouteUpdate(UpdateType.SNAPSHOT_END)


def add(prefix: str, hop: str, peer: str = "") -> RouteUpdate:
    route = LearnedRoute(IPv4Network(prefix), peer or hop, (LearnedHop(IPv4Address(hop)),))
    return RouteUpdate(UpdateType.ADD, route)


def delete(prefix: str, peer: str) -> RouteUpdate:
    return RouteUpdate(UpdateType.DEL, LearnedRoute(IPv4Network(prefix), peer, ()))


def prefixes(feed: RouteFeed) -> set[str]:
    return {str(p) for p, _peer in feed.routes}


def test_snapshot_then_deltas() -> None:
    feed = RouteFeed()
    s = feed.open_stream()
    feed.apply(s, BEGIN)
    feed.apply(s, add("10.65.1.0/26", "192.0.2.2"))
    assert feed.routes == {} and not feed.synced, "snapshot must not show before its end"
    assert feed.apply(s, END)
    assert feed.synced and feed.is_in_sync(s)
    assert prefixes(feed) == {"10.65.1.0/26"}
    feed.apply(s, add("10.65.2.0/26", "192.0.2.3"))
    feed.apply(s, delete("10.65.1.0/26", "192.0.2.2"))
    assert prefixes(feed) == {"10.65.2.0/26"}


def test_new_stream_replaces_old_state_only_at_its_snapshot_end() -> None:
    feed = RouteFeed()
    old = feed.open_stream()
    for u in (BEGIN, add("10.65.1.0/26", "192.0.2.2"), add("10.65.3.0/26", "192.0.2.3"), END):
        feed.apply(old, u)
    new = feed.open_stream()
    feed.apply(new, BEGIN)
    feed.apply(new, add("10.65.1.0/26", "192.0.2.2"))
    feed.close_stream(old)
    assert prefixes(feed) == {"10.65.1.0/26", "10.65.3.0/26"}, "old state kept meanwhile"
    feed.apply(new, END)
    assert prefixes(feed) == {"10.65.1.0/26"}
    # A late delta from the superseded stream changes nothing.
    assert not feed.apply(old, add("10.65.9.0/26", "192.0.2.9"))
    assert prefixes(feed) == {"10.65.1.0/26"}


def test_same_prefix_from_two_peers_groups_for_ecmp() -> None:
    feed = RouteFeed()
    s = feed.open_stream()
    for u in (BEGIN, add("10.65.7.0/26", "192.0.2.2"), add("10.65.7.0/26", "192.0.2.4"), END):
        feed.apply(s, u)
    grouped = feed.by_prefix()
    assert len(grouped[IPv4Network("10.65.7.0/26")]) == 2


def test_protocol_errors_are_clear() -> None:
    feed = RouteFeed()
    s = feed.open_stream()
    with pytest.raises(FeedProtocolError, match="before SNAPSHOT_BEGIN"):
        feed.apply(s, add("10.65.1.0/26", "192.0.2.2"))
    with pytest.raises(FeedProtocolError, match="SNAPSHOT_END without"):
        feed.apply(s, END)
    feed.apply(s, BEGIN)
    bad = RouteUpdate(UpdateType.ADD, LearnedRoute(IPv4Network("10.65.1.0/26"), "p", ()))
    with pytest.raises(FeedProtocolError, match="no next hop"):
        feed.apply(s, bad)


def test_generation_moves_only_on_change() -> None:
    feed = RouteFeed()
    s = feed.open_stream()
    for u in (BEGIN, add("10.65.1.0/26", "192.0.2.2"), END):
        feed.apply(s, u)
    g = feed.generation
    assert not feed.apply(s, add("10.65.1.0/26", "192.0.2.2"))
    assert feed.generation == g
    # The speaker's updates share one hops tuple per path: the same again is no change.
    hops = (LearnedHop(IPv4Address("192.0.2.7")),)
    again = RouteUpdate(UpdateType.ADD, LearnedRoute(IPv4Network("10.65.2.0/26"), "p7", hops))
    assert feed.apply(s, again) and not feed.apply(s, again)
    g = feed.generation
    feed.apply(s, delete("10.65.1.0/26", "192.0.2.2"))
    assert feed.generation == g + 1


# ---- the feed against a plain model: one dict by (prefix, peer) per stream


class FeedModel:
    """The feed's rules, kept the obvious way (what felix kept before it grouped)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[IPv4Network, str], LearnedRoute] = {}
        self.pending: dict[int, dict[tuple[IPv4Network, str], LearnedRoute]] = {}
        self.authoritative: int | None = None
        self.synced = False

    def apply(self, stream: int, update: RouteUpdate) -> bool:
        if update.type is UpdateType.SNAPSHOT_BEGIN:
            self.pending[stream] = {}
            return False
        if update.type is UpdateType.SNAPSHOT_END:
            if stream not in self.pending:
                raise FeedProtocolError("SNAPSHOT_END without SNAPSHOT_BEGIN")
            table, first = self.pending.pop(stream), not self.synced
            self.authoritative, self.synced = stream, True
            changed, self.routes = table != self.routes, table
            return changed or first
        assert update.route is not None
        live, table = False, self.pending.get(stream)
        if table is None:
            if stream != self.authoritative:
                if self.authoritative is None or stream > self.authoritative:
                    raise FeedProtocolError("route update before SNAPSHOT_BEGIN")
                return False
            live, table = True, self.routes
        key = (update.route.prefix, update.route.peer)
        if update.type is UpdateType.DEL:
            return table.pop(key, None) is not None and live
        before, table[key] = table.get(key), update.route
        return before != update.route and live


FEED_PREFIXES = ["10.65.1.0/26", "10.65.2.0/26", "10.65.3.0/26"]
REANNOUNCED = ("begin", "end", "add", "add")  # the same route twice on a live stream
SHARED_HOPS = {h: (LearnedHop(IPv4Address(h)),) for h in ("192.0.2.2", "192.0.2.9")}
feed_step = st.tuples(
    st.integers(0, 2),  # stream
    st.sampled_from(["begin", "end", "add", "del", "close"]),
    st.sampled_from(FEED_PREFIXES),
    st.sampled_from(["192.0.2.2", "192.0.2.3", "192.0.2.4"]),  # peer
    st.sampled_from(["192.0.2.2", "192.0.2.9"]),  # next hop
)


@settings(max_examples=200, deadline=None)
@given(st.lists(feed_step, max_size=40))
@example([(1, kind, FEED_PREFIXES[0], "192.0.2.2", "192.0.2.2") for kind in REANNOUNCED])
def test_the_feed_follows_the_plain_model(steps: list[tuple[int, str, str, str, str]]) -> None:
    feed, model = RouteFeed(), FeedModel()
    streams = [feed.open_stream() for _ in range(3)]
    seen: dict[IPv4Network, tuple[LearnedPath, ...]] = {}
    for index, kind, prefix, peer, hop in steps:
        stream = streams[index]
        if kind == "close":
            feed.close_stream(stream)
            model.pending.pop(stream, None)
            continue
        # One hops tuple per next hop, as felix.server shares them: equal paths
        # are then one group object, which must not read as "new".
        shared = LearnedRoute(IPv4Network(prefix), peer, SHARED_HOPS[hop])
        update = {
            "begin": BEGIN,
            "end": END,
            "add": RouteUpdate(UpdateType.ADD, shared),
            "del": delete(prefix, peer),
        }[kind]
        try:
            expected: bool | None = model.apply(stream, update)
        except FeedProtocolError:
            expected = None
        if expected is None:
            with pytest.raises(FeedProtocolError):
                feed.apply(stream, update)
        else:
            assert feed.apply(stream, update) == expected
        assert feed.routes == model.routes and feed.synced == model.synced
        grouped: dict[IPv4Network, list[LearnedPath]] = {}
        for (net, _peer), r in sorted(model.routes.items(), key=lambda kv: kv[0][1]):
            grouped.setdefault(net, []).append(LearnedPath(r.peer, r.next_hops, r.encap))
        now = {net: tuple(rs) for net, rs in grouped.items()}
        assert dict(feed.by_prefix()) == now
        # Every prefix whose group changed is reported, with its group now.
        changes = feed.take_changes()
        assert {p for p in now.keys() | seen.keys() if now.get(p) != seen.get(p)} <= set(changes)
        assert all(group == now.get(p) for p, group in changes.items())
        seen = now
