"""Property: after any sequence of events the incremental engine agrees with a
from-scratch recomputation, and the changes it emitted add up to each peer's
Adj-RIB-Out (so the speaker, applying only diffs, sends the right thing)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from route_reflector import feed as f
from route_reflector.api import messages as m
from route_reflector.api.messages import GroupChange, Origin, PathAttributes, Peer, per_peer
from route_reflector.reflect import Reflector, expected_adj_rib_out

CLUSTER = IPv4Address("224.0.0.1")
ROUTER_ID = IPv4Address("192.0.2.100")
ADDRESSES = [IPv4Address(f"192.0.2.{i}") for i in range(1, 6)]
PREFIXES = [IPv4Network(f"10.65.{i}.0/26") for i in range(6)]
IDS = [*ADDRESSES, IPv4Address("1.1.1.1"), ROUTER_ID]

attributes = st.builds(
    PathAttributes,
    next_hop=st.sampled_from(ADDRESSES),
    as_path=st.lists(st.sampled_from([65001, 65002]), max_size=2).map(tuple),
    origin=st.sampled_from(list(Origin)),
    med=st.none() | st.integers(0, 3),
    local_pref=st.sampled_from([50, 100, 200]),
    originator_id=st.none() | st.sampled_from(IDS),
    cluster_list=st.lists(st.sampled_from([CLUSTER, IPv4Address("224.0.0.2")]), max_size=2).map(
        tuple
    ),
)

events = st.one_of(
    st.tuples(st.just("up"), st.sampled_from(ADDRESSES), st.sampled_from(IDS[:6]), st.booleans()),
    st.tuples(st.just("down"), st.sampled_from(ADDRESSES)),
    st.tuples(
        st.just("announce"),
        st.sampled_from(ADDRESSES),
        st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3),
        attributes,
    ),
    st.tuples(
        st.just("withdraw"),
        st.sampled_from(ADDRESSES),
        st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3),
    ),
)


def apply(
    received: dict[IPv4Address, dict[IPv4Network, PathAttributes]], changes: list[GroupChange]
) -> None:
    for change in per_peer(changes):
        table = received.setdefault(change.peer, {})
        if change.attributes is None:
            assert change.prefix in table, "withdrawal of something never announced"
            del table[change.prefix]
        else:
            assert table.get(change.prefix) != change.attributes, "a change that changes nothing"
            table[change.prefix] = change.attributes


@settings(max_examples=300)
@given(st.lists(events, max_size=40))
def test_incremental_equals_from_scratch(sequence: list[tuple[object, ...]]) -> None:
    reflector = Reflector(CLUSTER, ROUTER_ID)
    received: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {}
    for event in sequence:
        kind, address = event[0], event[1]
        assert isinstance(address, IPv4Address)
        up = address in reflector.peers
        if kind == "up":
            router_id, client = event[2], event[3]
            assert isinstance(router_id, IPv4Address) and isinstance(client, bool)
            changes = reflector.peer_up(Peer(address, router_id, client))
        elif kind == "down" and up:
            changes = reflector.peer_down(address)
            received.pop(address, None)  # the session, and what it held, is gone
        elif kind == "announce" and up:
            prefixes, sent = event[2], event[3]
            assert isinstance(prefixes, list) and isinstance(sent, PathAttributes)
            changes = reflector.announce(address, prefixes, sent)
        elif kind == "withdraw" and up:
            prefixes = event[2]
            assert isinstance(prefixes, list)
            changes = reflector.withdraw(address, prefixes)
        else:
            continue
        assert all(c.peer in reflector.peers for c in per_peer(changes))
        apply(received, changes)
        expected = expected_adj_rib_out(reflector)
        for peer in reflector.peers:
            assert dict(reflector.adj_rib_out(peer)) == expected[peer]
            assert received.get(peer, {}) == expected[peer]
            for sent in expected[peer].values():
                # Never what loops: our cluster ID is always first, never repeated.
                assert sent.cluster_list.count(CLUSTER) == 1
                assert sent.originator_id != reflector.peers[peer].router_id


@settings(max_examples=150)
@given(st.lists(events, max_size=30), st.integers(0, 30))
def test_speaker_view_from_stream_outputs_matches_the_adj_rib_out(
    sequence: list[tuple[object, ...]], snapshot_at: int
) -> None:
    """Through the stream protocol: snapshot at any point, deltas after it; what
    a speaker folds from the outputs is every peer's Adj-RIB-Out."""
    stream = f.ReflectFeed()
    stream.handle(m.SnapshotBegin(CLUSTER, ROUTER_ID))
    speaker: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {}
    synced = False
    for index, event in enumerate(sequence):
        if index == snapshot_at:
            m.apply_outputs(speaker, stream.handle(m.SnapshotEnd()))
            synced = True
        kind, address = event[0], event[1]
        assert isinstance(address, IPv4Address)
        if kind == "up":
            router_id, client = event[2], event[3]
            assert isinstance(router_id, IPv4Address) and isinstance(client, bool)
            item: m.FeedInput = m.PeerUp(Peer(address, router_id, client))
        elif kind == "down":
            item = m.PeerDown(address)
            speaker.pop(address, None)
        elif kind == "announce":
            prefixes, sent = event[2], event[3]
            assert isinstance(prefixes, list) and isinstance(sent, PathAttributes)
            item = m.Announce(address, tuple(prefixes), sent)
        else:
            prefixes = event[2]
            assert isinstance(prefixes, list)
            item = m.Withdraw(address, tuple(prefixes))
        outputs = stream.handle(item)
        assert outputs[-1].received == stream.received
        if synced:
            m.apply_outputs(speaker, outputs)
    if not synced:
        m.apply_outputs(speaker, stream.handle(m.SnapshotEnd()))
    reflector = stream.reflector
    assert reflector is not None
    for peer in reflector.peers:
        assert speaker.get(peer, {}) == reflector.adj_rib_out(peer)
    assert all(not table for a, table in speaker.items() if a not in reflector.peers)
