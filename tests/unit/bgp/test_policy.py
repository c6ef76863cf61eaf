"""Import/export policy: what may be installed from whom, and what we announce."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from bird_agent.events import Prefixes
from bird_agent.policy import (
    ImportFilter,
    PolicyView,
    RejectReason,
    export_prefixes,
    import_verdict,
    may_export,
)

N = IPv4Network
A = IPv4Address

VIEW = PolicyView(
    pools=(N("10.244.0.0/16"),),
    node_addresses=frozenset({A("172.18.0.1"), A("172.18.0.2")}),
    tunnel_addresses=frozenset({A("10.99.5.1")}),
    own_prefixes=frozenset({N("10.244.1.0/26"), N("10.244.7.9/32")}),
)


def test_cluster_peer_block_inside_pool_is_accepted() -> None:
    assert import_verdict(VIEW, N("10.244.2.0/26"), cluster_peer=True) is None
    assert import_verdict(VIEW, N("10.244.2.5/32"), cluster_peer=True) is None


def test_tunnel_address_slash32_is_accepted_even_outside_pools() -> None:
    assert import_verdict(VIEW, N("10.99.5.1/32"), cluster_peer=True) is None
    assert import_verdict(VIEW, N("10.99.5.0/24"), True) is RejectReason.OUTSIDE_POOLS


def test_default_route_is_never_accepted() -> None:
    open_view = PolicyView(external_accept=(N("0.0.0.0/0"),))
    assert import_verdict(VIEW, N("0.0.0.0/0"), True) is RejectReason.DEFAULT_ROUTE
    assert import_verdict(open_view, N("0.0.0.0/0"), False) is RejectReason.DEFAULT_ROUTE


def test_prefix_covering_a_node_address_is_rejected_even_inside_a_pool() -> None:
    view = PolicyView(pools=(N("172.16.0.0/12"),), node_addresses=frozenset({A("172.18.0.1")}))
    assert import_verdict(view, N("172.18.0.0/16"), True) is RejectReason.COVERS_NODE_ADDRESS
    assert import_verdict(view, N("172.18.0.1/32"), True) is RejectReason.COVERS_NODE_ADDRESS
    assert import_verdict(view, N("172.19.0.0/16"), True) is None


def test_our_own_prefix_coming_back_is_dropped_but_a_borrowed_slash32_is_not() -> None:
    assert import_verdict(VIEW, N("10.244.1.0/26"), True) is RejectReason.OWN_PREFIX
    assert import_verdict(VIEW, N("10.244.7.9/32"), False) is RejectReason.OWN_PREFIX
    # Another node borrowed 10.244.1.5 from our block: route it there.
    assert import_verdict(VIEW, N("10.244.1.5/32"), True) is None


def test_outside_every_pool_is_rejected() -> None:
    assert import_verdict(VIEW, N("192.0.2.0/24"), True) is RejectReason.OUTSIDE_POOLS
    # A pool supernet is not inside the pool.
    assert import_verdict(VIEW, N("10.0.0.0/8"), True) is RejectReason.OUTSIDE_POOLS


def test_external_peers_default_to_the_cluster_rule() -> None:
    assert import_verdict(VIEW, N("10.244.2.0/26"), cluster_peer=False) is None
    assert import_verdict(VIEW, N("192.0.2.0/24"), False) is RejectReason.OUTSIDE_POOLS


def test_external_accept_list_replaces_pools_for_external_peers_only() -> None:
    view = PolicyView(
        pools=VIEW.pools,
        node_addresses=VIEW.node_addresses,
        external_accept=(N("198.51.100.0/24"),),
    )
    assert import_verdict(view, N("198.51.100.128/25"), False) is None
    assert import_verdict(view, N("10.244.2.0/26"), False) is RejectReason.NOT_IN_ACCEPT_LIST
    # Cluster peers keep the pool rule.
    assert import_verdict(view, N("198.51.100.0/24"), True) is RejectReason.OUTSIDE_POOLS
    assert import_verdict(view, N("10.244.2.0/26"), True) is None


def test_filter_counts_every_rejection_by_reason_and_peer() -> None:
    f = ImportFilter(VIEW)
    peer = A("172.18.0.2")
    accepted, rejected = f.filter(
        peer,
        True,
        [N("0.0.0.0/0"), N("172.18.0.0/24"), N("192.0.2.0/24"), N("10.244.3.0/26")],
    )
    assert accepted == [N("10.244.3.0/26")]
    assert {r.reason for r in rejected} == {
        RejectReason.DEFAULT_ROUTE,
        RejectReason.COVERS_NODE_ADDRESS,
        RejectReason.OUTSIDE_POOLS,
    }
    f.filter(peer, True, [N("0.0.0.0/0")])
    assert f.rejected_by_reason[RejectReason.DEFAULT_ROUTE] == 2
    assert f.rejected_by_peer[peer] == 4
    assert f.accepted_by_peer[peer] == 1


def test_exports_are_our_blocks_and_borrowed_addresses_outside_them() -> None:
    exports = export_prefixes([N("10.244.1.0/26")], [A("10.244.9.3"), A("10.244.1.7")])
    assert exports == {N("10.244.1.0/26"), N("10.244.9.3/32")}
    assert may_export(N("10.244.9.3/32"), exports)
    assert not may_export(N("10.244.2.0/26"), exports)
    assert not may_export(N("0.0.0.0/0"), exports)


def _reference_verdict(view: PolicyView, prefix: N, cluster_peer: bool) -> RejectReason | None:
    """The policy written the obvious (slow) way with ipaddress operations."""
    if prefix == N("0.0.0.0/0"):
        return RejectReason.DEFAULT_ROUTE
    if prefix in view.own_prefixes:
        return RejectReason.OWN_PREFIX
    if any(address in prefix for address in view.node_addresses):
        return RejectReason.COVERS_NODE_ADDRESS
    if any(address in prefix for address in view.peer_addresses):
        return RejectReason.COVERS_PEER_ADDRESS
    if any(prefix.subnet_of(subnet) for subnet in view.connected):
        return RejectReason.INSIDE_CONNECTED_SUBNET
    lent = cluster_peer and prefix.prefixlen == 32 and prefix.network_address in view.held_elsewhere
    if any(prefix.subnet_of(block) for block in view.own_blocks) and not lent:
        return RejectReason.INSIDE_OWN_BLOCK
    if cluster_peer or view.external_accept is None:
        tunnel = prefix.prefixlen == 32 and prefix.network_address in view.tunnel_addresses
        if tunnel or any(prefix.subnet_of(pool) for pool in view.pools):
            return None
        return RejectReason.OUTSIDE_POOLS
    if any(prefix.subnet_of(allowed) for allowed in view.external_accept):
        return None
    return RejectReason.NOT_IN_ACCEPT_LIST


prefixes_st = st.builds(
    lambda address, length: N((address, length), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


@settings(max_examples=300, deadline=None)
@given(
    prefix=prefixes_st,
    pools=st.lists(prefixes_st, max_size=3),
    accept=st.none() | st.lists(prefixes_st, max_size=2),
    nodes=st.lists(st.integers(0, 2**32 - 1).map(A), max_size=3),
    own=st.lists(prefixes_st, max_size=2),
    peers=st.lists(st.integers(0, 2**32 - 1).map(A), max_size=3),
    connected=st.lists(prefixes_st, max_size=2),
    blocks=st.lists(prefixes_st, max_size=2),
    lend=st.booleans(),
    cluster_peer=st.booleans(),
)
def test_fast_verdict_matches_the_obvious_one(
    *,
    prefix: N,
    pools: list[N],
    accept: list[N] | None,
    nodes: list[A],
    own: list[N],
    peers: list[A],
    connected: list[N],
    blocks: list[N],
    lend: bool,
    cluster_peer: bool,
) -> None:
    view = PolicyView(
        pools=tuple(pools),
        node_addresses=frozenset(nodes),
        tunnel_addresses=frozenset({prefix.network_address}) if pools else frozenset(),
        own_prefixes=frozenset(own),
        external_accept=None if accept is None else tuple(accept),
        peer_addresses=frozenset(peers),
        connected=tuple(connected),
        own_blocks=tuple(blocks),
        held_elsewhere=frozenset({prefix.network_address}) if lend else frozenset(),
    )
    expected = _reference_verdict(view, prefix, cluster_peer)
    assert import_verdict(view, prefix, cluster_peer) == expected
    # The batch path (the receive hot loop) decides the same.
    judged = ImportFilter(view).judge(A("192.0.2.1"), cluster_peer, Prefixes.of([prefix]))
    assert [r.reason for r in judged.rejected] == ([expected] if expected else [])


ME = PolicyView(
    pools=(N("10.64.0.0/12"),),
    node_addresses=frozenset({A("10.72.0.254")}),
    own_prefixes=frozenset({N("10.64.3.0/26")}),
    peer_addresses=frozenset({A("10.72.0.1"), A("10.72.0.2"), A("192.168.7.7")}),
    connected=(N("10.72.0.0/24"),),
    own_blocks=(N("10.64.3.0/26"),),
    held_elsewhere=frozenset({A("10.64.3.9")}),
)


def test_a_route_that_would_capture_the_peering_segment_is_refused() -> None:
    """A pool that overlaps the node's own segment (bench/rr.py's old address
    plan) or a hostile peer must not route the segment's sessions away."""
    assert import_verdict(ME, N("10.72.0.0/26"), True) is RejectReason.COVERS_PEER_ADDRESS
    assert import_verdict(ME, N("10.72.0.64/26"), True) is RejectReason.INSIDE_CONNECTED_SUBNET
    assert import_verdict(ME, N("10.72.0.128/26"), False) is RejectReason.INSIDE_CONNECTED_SUBNET
    # A multihop peer off the segment: nothing may cover its address.
    assert import_verdict(ME, N("192.168.7.0/24"), False) is RejectReason.COVERS_PEER_ADDRESS
    assert import_verdict(ME, N("10.64.0.0/26"), True) is None


def test_a_route_inside_our_own_block_is_refused_but_a_lent_address() -> None:
    assert import_verdict(ME, N("10.64.3.0/27"), True) is RejectReason.INSIDE_OWN_BLOCK
    assert import_verdict(ME, N("10.64.3.5/32"), True) is RejectReason.INSIDE_OWN_BLOCK
    # IPAM says node B holds 10.64.3.9: its /32 from a cluster peer is routed to B.
    assert import_verdict(ME, N("10.64.3.9/32"), True) is None
    # Not from an external peer, and a covering aggregate is not inside.
    assert import_verdict(ME, N("10.64.3.9/32"), False) is RejectReason.INSIDE_OWN_BLOCK
    assert import_verdict(ME, N("10.64.0.0/16"), False) is None


def test_the_filter_counts_captures_by_reason() -> None:
    counted = ImportFilter(ME)
    kept, _ = counted.filter(
        A("10.72.0.1"), True, [N("10.72.0.64/26"), N("10.64.3.0/28"), N("10.64.4.0/26")]
    )
    assert kept == [N("10.64.4.0/26")]
    assert counted.rejected_by_reason == {
        RejectReason.INSIDE_CONNECTED_SUBNET: 1,
        RejectReason.INSIDE_OWN_BLOCK: 1,
    }
    # The latest refusal per reason is kept, for node status to name.
    latest = counted.latest[RejectReason.INSIDE_CONNECTED_SUBNET]
    assert (latest.prefix, latest.peer) == (N("10.72.0.64/26"), A("10.72.0.1"))
