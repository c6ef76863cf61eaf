"""Learned routes: policy applied, one selected route per prefix, peers going away."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from bird_agent.events import EndOfRib, PeerDown, PeerUp, RoutesAnnounced, RoutesWithdrawn
from bird_agent.learned import LearnedRoutes
from bird_agent.peers import PeerSpec, PeerType
from bird_agent.policy import ImportFilter, PolicyView, RejectReason

A = IPv4Address
N = IPv4Network
ME = A("10.0.0.1")
MESH, TOR = A("10.0.0.2"), A("10.0.0.254")
BLOCK = N("10.244.2.0/26")


def spec(address: IPv4Address, node: str | None) -> PeerSpec:
    return PeerSpec(
        address=address,
        peer_asn=64512 if node else 65100,
        local_asn=64512,
        local_address=ME,
        router_id=ME,
        peer_type=PeerType.NODE_MESH if node else PeerType.GLOBAL,
        source=node or "tor",
        peer_node=node,
    )


PEERS = {MESH: spec(MESH, "n2"), TOR: spec(TOR, None)}


def table() -> LearnedRoutes:
    view = PolicyView(pools=(N("10.244.0.0/16"),), node_addresses=frozenset({ME, MESH}))
    return LearnedRoutes(ImportFilter(view))


def test_accepted_routes_are_selected_and_rejected_ones_never_are() -> None:
    routes = table()
    changes = routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK, N("0.0.0.0/0"))), PEERS)
    assert [(c.prefix, c.route and c.route.next_hop) for c in changes] == [(BLOCK, MESH)]
    assert changes[0].route is not None and changes[0].route.origin_node == "n2"
    assert N("0.0.0.0/0") not in routes.selected
    assert routes.import_filter.rejected_by_reason[RejectReason.DEFAULT_ROUTE] == 1


def test_cluster_peer_wins_and_the_other_takes_over_when_it_leaves() -> None:
    routes = table()
    routes.apply(RoutesAnnounced(TOR, TOR, (BLOCK,)), PEERS)
    changes = routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS)
    assert changes[0].route is not None and changes[0].route.peer == MESH
    # A duplicate announcement from the selected peer changes nothing.
    assert routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS) == []
    changes = routes.apply(RoutesWithdrawn(MESH, (BLOCK,)), PEERS)
    assert changes[0].route is not None and changes[0].route.peer == TOR
    changes = routes.apply(PeerDown(TOR, "hold timer expired"), PEERS)
    assert [(c.prefix, c.route) for c in changes] == [(BLOCK, None)]
    assert routes.selected == {}


def test_peer_down_removes_everything_it_sent() -> None:
    routes = table()
    blocks = tuple(N(f"10.244.{i}.0/26") for i in range(2, 6))
    routes.apply(RoutesAnnounced(MESH, MESH, blocks), PEERS)
    assert routes.received_from(MESH) == 4
    changes = routes.apply(PeerDown(MESH, "exabgp exited"), PEERS)
    assert {c.prefix for c in changes} == set(blocks)
    assert all(c.route is None for c in changes)
    assert routes.received_from(MESH) == 0


def test_unknown_peer_and_other_events_change_nothing() -> None:
    routes = table()
    assert routes.apply(RoutesAnnounced(A("10.9.9.9"), MESH, (BLOCK,)), PEERS) == []
    assert routes.apply(EndOfRib(MESH), PEERS) == []
    assert routes.apply(RoutesWithdrawn(MESH, (BLOCK,)), PEERS) == []


def test_graceful_restart_keeps_routes_until_end_of_rib_sweeps_the_rest() -> None:
    routes = table()
    kept, dropped = N("10.244.2.0/26"), N("10.244.3.0/26")
    routes.apply(RoutesAnnounced(MESH, MESH, (kept, dropped)), PEERS, now=0)
    # The peer advertised a 120 s restart time: nothing changes when it goes down.
    assert routes.apply(PeerDown(MESH, "restarting", 120), PEERS, now=10) == []
    assert set(routes.selected) == {kept, dropped}
    # Back up, it re-announces one prefix, then End-of-RIB: the other goes.
    assert routes.apply(RoutesAnnounced(MESH, MESH, (kept,)), PEERS, now=20) == []
    changes = routes.apply(EndOfRib(MESH), PEERS, now=21)
    assert [(c.prefix, c.route) for c in changes] == [(dropped, None)]
    assert set(routes.selected) == {kept}
    assert routes.stale == {}


def test_failed_reconnects_during_a_graceful_restart_keep_the_routes() -> None:
    # The peer's speaker restarts (a rolling update): our side's reconnects
    # reach a closed or half-started listener and end before any OPEN, so they
    # carry no restart time. They must not end the window.
    routes = table()
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS, now=0)
    assert routes.apply(PeerDown(MESH, "closing connection", 120), PEERS, now=10) == []
    for now in (11, 12, 14):
        assert routes.apply(PeerDown(MESH, "closing connection"), PEERS, now=now) == []
    assert set(routes.selected) == {BLOCK}
    assert routes.next_deadline() == 130
    routes.apply(PeerUp(MESH), PEERS, now=20)
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS, now=21)
    assert routes.apply(EndOfRib(MESH), PEERS, now=22) == []
    assert set(routes.selected) == {BLOCK}


def test_a_session_back_within_the_window_that_ends_without_restart_drops_the_routes() -> None:
    routes = table()
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS, now=0)
    routes.apply(PeerDown(MESH, "closing connection", 120), PEERS, now=10)
    routes.apply(PeerUp(MESH), PEERS, now=20)
    # Established again, then a deliberate Cease before End-of-RIB: routes go now.
    changes = routes.apply(PeerDown(MESH, "notification received (6,2)"), PEERS, now=21)
    assert [(c.prefix, c.route) for c in changes] == [(BLOCK, None)]
    assert routes.stale == {}


def test_graceful_restart_window_runs_out() -> None:
    routes = table()
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS, now=0)
    routes.apply(PeerDown(MESH, "restarting", 120), PEERS, now=10)
    assert routes.next_deadline() == 130
    assert routes.expire(now=129) == []
    changes = routes.expire(now=130)
    assert [(c.prefix, c.route) for c in changes] == [(BLOCK, None)]
    assert routes.next_deadline() is None


def test_a_peer_removed_from_the_plan_loses_its_stale_routes_at_once() -> None:
    # The peer's node closed the session first (its Node was deleted), with a
    # restart time; then our plan drops the peer: its routes must go now, not
    # when the 120 s window ends.
    routes = table()
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS, now=0)
    assert routes.apply(PeerDown(MESH, "closing connection", 120), PEERS, now=10) == []
    assert routes.keep_only([MESH]) == []
    changes = routes.keep_only([])
    assert [(c.prefix, c.route) for c in changes] == [(BLOCK, None)]
    assert routes.stale == {} and routes.next_deadline() is None
    assert routes.keep_only([]) == []


def test_new_policy_rejudges_what_was_received() -> None:
    routes = table()
    later = N("10.250.0.0/26")
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK, later)), PEERS)
    assert set(routes.selected) == {BLOCK}
    assert routes.received_from(MESH) == 2 and routes.accepted_from(MESH) == 1
    wider = PolicyView(
        pools=(N("10.244.0.0/16"), N("10.250.0.0/16")), node_addresses=frozenset({ME, MESH})
    )
    changes = routes.set_policy(wider)
    assert [c.prefix for c in changes] == [later]
    narrower = PolicyView(pools=(N("10.250.0.0/16"),), node_addresses=frozenset({ME, MESH}))
    changes = routes.set_policy(narrower)
    assert [(c.prefix, c.route) for c in changes] == [(BLOCK, None)]
    # Re-judging is not a new rejection.
    assert routes.import_filter.rejected_by_reason[RejectReason.OUTSIDE_POOLS] == 1


def test_selected_peer_changing_its_next_hop_is_followed_and_a_worse_peer_never_wins() -> None:
    routes = table()
    routes.apply(RoutesAnnounced(MESH, MESH, (BLOCK,)), PEERS)
    assert routes.apply(RoutesAnnounced(TOR, TOR, (BLOCK,)), PEERS) == []  # external loses
    moved = A("10.0.0.9")
    changes = routes.apply(RoutesAnnounced(MESH, moved, (BLOCK,)), PEERS)
    assert [(c.prefix, c.route and c.route.next_hop) for c in changes] == [(BLOCK, moved)]
    # The selected peer withdraws: the external one takes over.
    changes = routes.apply(RoutesWithdrawn(MESH, (BLOCK,)), PEERS)
    assert changes[0].route is not None and changes[0].route.peer == TOR
