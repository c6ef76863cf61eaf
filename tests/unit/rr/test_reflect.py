"""RFC 4456 reflection rules on the pure engine: who hears what, and with which attributes."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from route_reflector.api.messages import GroupChange, PathAttributes, per_peer
from route_reflector.reflect import (
    Reflector,
    UnknownPeer,
    expected_adj_rib_out,
    is_client,
    parse_cluster_id,
)
from tests.unit.rr.helpers import attrs, ip, net, peer

CLUSTER = ip("224.0.0.1")
RR_ID = ip("192.0.2.100")
C1, C2, C3 = "192.0.2.1", "192.0.2.2", "192.0.2.3"
N1, N2 = "192.0.2.51", "192.0.2.52"
P = net("10.65.1.0/26")


def rr(
    *, clients: tuple[str, ...] = (C1, C2, C3), non_clients: tuple[str, ...] = (N1, N2)
) -> Reflector:
    reflector = Reflector(CLUSTER, RR_ID)
    for address in clients:
        reflector.peer_up(peer(address, client=True))
    for address in non_clients:
        reflector.peer_up(peer(address, client=False))
    return reflector


def heard(reflector: Reflector, prefix: IPv4Network = P) -> set[str]:
    return {str(a) for a in reflector.advertised_to(prefix)}


def by_peer(changes: list[GroupChange]) -> dict[str, PathAttributes | None]:
    return {str(c.peer): c.attributes for c in per_peer(changes)}


def hops(changes: list[GroupChange]) -> dict[str, str | None]:
    """Peer → the next hop it is now told for the prefix (None: withdrawn)."""
    return {
        str(c.peer): str(c.attributes.next_hop) if c.attributes else None for c in per_peer(changes)
    }


# -- who hears a route ---------------------------------------------------------


def test_client_route_goes_to_other_clients_and_non_clients_not_back() -> None:
    reflector = rr()
    changes = reflector.announce(ip(C1), [P], attrs(C1))
    assert set(by_peer(changes)) == {C2, C3, N1, N2}
    assert heard(reflector) == {C2, C3, N1, N2}


def test_non_client_route_goes_to_clients_only() -> None:
    reflector = rr()
    reflector.announce(ip(N1), [P], attrs(N1))
    assert heard(reflector) == {C1, C2, C3}


def test_non_client_route_never_reaches_another_non_client() -> None:
    reflector = rr(clients=())
    assert reflector.announce(ip(N1), [P], attrs(N1)) == []
    assert heard(reflector) == set()


def test_only_the_best_path_is_advertised_and_never_to_its_sender() -> None:
    reflector = rr()
    reflector.announce(ip(C2), [P], attrs(C2, local_pref=50))
    reflector.announce(ip(C1), [P], attrs(C1, local_pref=200))
    # Best is C1's: everyone else hears C1's next hop; C1 hears nothing for P.
    assert heard(reflector) == {C2, C3, N1, N2}
    assert {str(a.next_hop) for a in _outs(reflector, P)} == {C1}


def _outs(reflector: Reflector, prefix: IPv4Network) -> list[PathAttributes]:
    return [reflector.adj_rib_out(a)[prefix] for a in reflector.advertised_to(prefix)]


def test_sender_is_withdrawn_from_when_its_own_path_becomes_best() -> None:
    reflector = rr()
    reflector.announce(ip(C2), [P], attrs(C2, local_pref=50))
    assert C1 in heard(reflector)
    changes = reflector.announce(ip(C1), [P], attrs(C1, local_pref=200))
    assert hops(changes)[C1] is None  # C1 no longer hears C2's path
    assert hops(changes)[C2] == C1


# -- attributes as sent ----------------------------------------------------------


def test_reflected_attributes_originator_cluster_list_next_hop() -> None:
    reflector = rr()
    sent = attrs("198.51.100.7", as_path=(), med=5, local_pref=120, communities=("65000:1",))
    reflector.announce(ip(C1), [P], sent)
    out = reflector.adj_rib_out(ip(C2))[P]
    assert out.originator_id == ip(C1)  # the client's router ID
    assert out.cluster_list == (CLUSTER,)
    assert out.next_hop == ip("198.51.100.7")  # third-party next hop kept
    assert (out.med, out.local_pref, out.communities) == (5, 120, ("65000:1",))


def test_existing_originator_kept_and_cluster_id_prepended() -> None:
    reflector = rr()
    sent = attrs(C1, originator_id="10.0.0.9", cluster_list=("224.0.0.7",))
    reflector.announce(ip(N1), [P], sent)
    out = reflector.adj_rib_out(ip(C1))[P]
    assert out.originator_id == ip("10.0.0.9")
    assert out.cluster_list == (CLUSTER, ip("224.0.0.7"))


def test_router_id_not_address_is_used_for_originator() -> None:
    reflector = Reflector(CLUSTER, RR_ID)
    reflector.peer_up(peer(C1, "1.1.1.1"))
    reflector.peer_up(peer(C2, "2.2.2.2"))
    reflector.announce(ip(C1), [P], attrs(C1))
    assert reflector.adj_rib_out(ip(C2))[P].originator_id == ip("1.1.1.1")


# -- loops ---------------------------------------------------------------------


def test_route_with_our_cluster_id_is_dropped_on_input() -> None:
    reflector = rr()
    looped = attrs(C1, originator_id="10.0.0.9", cluster_list=("224.0.0.9", str(CLUSTER)))
    assert reflector.announce(ip(N1), [P], looped) == []
    assert reflector.best(P) is None
    assert reflector.loops_dropped == 1


def test_looped_update_replaces_the_senders_previous_path() -> None:
    reflector = rr()
    reflector.announce(ip(N1), [P], attrs(N1))
    assert heard(reflector) == {C1, C2, C3}
    changes = reflector.announce(ip(N1), [P], attrs(N1, cluster_list=(str(CLUSTER),)))
    assert all(c.withdraw for c in changes) and len(per_peer(changes)) == 3
    assert heard(reflector) == set()


def test_route_originated_by_ourselves_is_dropped() -> None:
    reflector = rr()
    assert reflector.announce(ip(N1), [P], attrs(N1, originator_id=str(RR_ID))) == []
    assert reflector.best(P) is None


def test_never_sent_to_the_peer_whose_router_id_is_the_originator() -> None:
    reflector = Reflector(CLUSTER, RR_ID)
    reflector.peer_up(peer(C1, "1.1.1.1"))
    reflector.peer_up(peer(C2, "2.2.2.2"))
    reflector.peer_up(peer(N1, "5.5.5.5", client=False))
    # A route from the non-client whose originator is client C2 (router ID 2.2.2.2).
    reflector.announce(ip(N1), [P], attrs(C2, originator_id="2.2.2.2", cluster_list=("9.9.9.9",)))
    assert heard(reflector) == {C1}


# -- withdrawals and sessions ------------------------------------------------------


def test_withdrawal_propagates() -> None:
    reflector = rr()
    reflector.announce(ip(C1), [P], attrs(C1))
    changes = reflector.withdraw(ip(C1), [P])
    assert {str(c.peer) for c in per_peer(changes)} == {C2, C3, N1, N2}
    assert all(c.withdraw for c in changes)
    assert reflector.best(P) is None


def test_withdrawal_of_the_best_path_falls_back_to_the_next_best() -> None:
    reflector = rr()
    reflector.announce(ip(C1), [P], attrs(C1, local_pref=200))
    reflector.announce(ip(C2), [P], attrs(C2))
    changes = hops(reflector.withdraw(ip(C1), [P]))
    # C1 now hears C2's path; C2 hears nothing (its own); the others switch.
    assert (changes[C1], changes[C2], changes[N1]) == (C2, None, C2)


def test_withdrawing_an_unknown_prefix_changes_nothing() -> None:
    reflector = rr()
    assert reflector.withdraw(ip(C1), [P]) == []


def test_session_loss_withdraws_everything_the_peer_sent() -> None:
    reflector = rr()
    q = net("10.65.2.0/26")
    reflector.announce(ip(C1), [P, q], attrs(C1))
    reflector.announce(ip(C2), [q], attrs(C2))
    changes = reflector.peer_down(ip(C1))
    assert heard(reflector, P) == set()
    # q falls back to C2's path rather than disappearing.
    assert heard(reflector, q) == {C1, C3, N1, N2} - {C1}
    best = reflector.best(q)
    assert best is not None and str(best.peer.address) == C2
    assert not any(c.peer == ip(C1) for c in per_peer(changes))


def test_a_peer_coming_up_receives_every_best_path_it_may_hear() -> None:
    reflector = rr(clients=(C1,), non_clients=(N1,))
    reflector.announce(ip(C1), [P], attrs(C1))
    reflector.announce(ip(N1), [net("10.65.9.0/26")], attrs(N1))
    changes = reflector.peer_up(peer(N2, client=False))
    assert [(str(c.peer), str(c.prefix)) for c in per_peer(changes)] == [(N2, str(P))]
    changes = reflector.peer_up(peer(C2, client=True))
    assert {str(c.prefix) for c in changes} == {str(P), "10.65.9.0/26"}


def test_a_peer_turning_into_a_client_gets_non_client_routes() -> None:
    reflector = rr(clients=(), non_clients=(N1, N2))
    reflector.announce(ip(N1), [P], attrs(N1))
    assert heard(reflector) == set()
    reflector.peer_up(peer(N2, client=True))
    assert heard(reflector) == {N2}


def test_routes_from_a_peer_that_is_not_up_are_refused() -> None:
    reflector = rr()
    with pytest.raises(UnknownPeer, match=r"192\.0\.2\.99"):
        reflector.announce(ip("192.0.2.99"), [P], attrs())
    with pytest.raises(UnknownPeer):
        reflector.peer_down(ip("192.0.2.99"))


# -- incremental ---------------------------------------------------------------


def test_a_change_to_one_prefix_touches_only_that_prefix() -> None:
    reflector = rr()
    many = [net(f"10.66.{i}.0/24") for i in range(50)]
    reflector.announce(ip(C1), many, attrs(C1))
    changes = reflector.announce(ip(C2), [P], attrs(C2))
    assert {c.prefix for c in changes} == {P}
    changes = reflector.announce(ip(C1), [many[3]], attrs(C1, med=7))
    assert {c.prefix for c in changes} == {many[3]}


def test_a_repeated_identical_update_changes_nothing() -> None:
    reflector = rr()
    reflector.announce(ip(C1), [P], attrs(C1))
    assert reflector.announce(ip(C1), [P], attrs(C1)) == []


def test_a_better_path_for_a_prefix_replaces_what_peers_heard() -> None:
    reflector = rr()
    reflector.announce(ip(C2), [P], attrs(C2))
    changes = hops(reflector.announce(ip(C3), [P], attrs(C3, local_pref=300)))
    # C3 had C2's path; now its own is best, so it hears nothing.
    assert (changes[C1], changes[C2], changes[C3]) == (C3, C3, None)
    assert reflector.adj_rib_out(ip(C1)) == expected_adj_rib_out(reflector)[ip(C1)]


# -- client classification ---------------------------------------------------------


def test_client_classification() -> None:
    assert is_client(CLUSTER, None)  # an ordinary node or external router
    assert not is_client(CLUSTER, CLUSTER)  # RR of our cluster: non-client
    assert is_client(CLUSTER, ip("224.0.0.2"))  # RR of another cluster: client


def test_cluster_id_parse_errors_name_the_field() -> None:
    assert parse_cluster_id(" 224.0.0.1 ") == CLUSTER
    with pytest.raises(ValueError, match=r"routeReflectorClusterID: 'x' is not a cluster ID"):
        parse_cluster_id("x")
