"""Route feed semantics: snapshot, then deltas; a new stream replaces at its snapshot end."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from felix.feed import (
    FeedProtocolError,
    LearnedHop,
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
    feed.apply(s, delete("10.65.1.0/26", "192.0.2.2"))
    assert feed.generation == g + 1
