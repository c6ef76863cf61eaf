"""The decision process, one step at a time (RFC 4271 §9.1.2.2, RFC 4456 §9)."""

from __future__ import annotations

import itertools

from route_reflector.api.messages import Origin
from route_reflector.decision import best_path
from tests.unit.rr.helpers import attrs, ip, path


def test_no_candidates_no_best() -> None:
    assert best_path([]) is None


def test_single_candidate_wins() -> None:
    only = path("192.0.2.9")
    assert best_path([only]) == only


def test_highest_local_pref_wins_over_everything_after_it() -> None:
    high = path("192.0.2.9", attrs(local_pref=200, as_path=(1, 2, 3), origin=Origin.INCOMPLETE))
    low = path("192.0.2.1", attrs(local_pref=100))
    assert best_path([low, high]) == high


def test_shorter_as_path_wins() -> None:
    short = path("192.0.2.9", attrs(as_path=(65001,), origin=Origin.INCOMPLETE, med=50))
    long = path("192.0.2.1", attrs(as_path=(65001, 65002)))
    assert best_path([long, short]) == short


def test_lowest_origin_wins() -> None:
    igp = path("192.0.2.9", attrs(origin=Origin.IGP, med=100))
    egp = path("192.0.2.5", attrs(origin=Origin.EGP))
    incomplete = path("192.0.2.1", attrs(origin=Origin.INCOMPLETE))
    assert best_path([incomplete, egp, igp]) == igp
    assert best_path([incomplete, egp]) == egp


def test_lower_med_wins_between_paths_from_the_same_neighbour_as() -> None:
    low = path("192.0.2.9", attrs(as_path=(65001,), med=10))
    high = path("192.0.2.1", attrs(as_path=(65001,), med=20))
    assert best_path([high, low]) == low


def test_missing_med_counts_as_zero() -> None:
    none = path("192.0.2.9", attrs(as_path=(65001,)))
    some = path("192.0.2.1", attrs(as_path=(65001,), med=1))
    assert best_path([some, none]) == none


def test_med_is_not_compared_across_neighbour_ases() -> None:
    # Different neighbouring AS: MED is ignored, the router ID decides.
    high_med_low_id = path("192.0.2.1", attrs(as_path=(65001,), med=500))
    low_med_high_id = path("192.0.2.9", attrs(as_path=(65002,), med=1))
    assert best_path([low_med_high_id, high_med_low_id]) == high_med_low_id


def test_med_elimination_is_independent_of_order() -> None:
    # The classic non-transitive MED triple: A vs B same AS, C another AS.
    a = path("192.0.2.3", attrs(as_path=(65001,), med=10))
    b = path("192.0.2.1", attrs(as_path=(65001,), med=20))
    c = path("192.0.2.2", attrs(as_path=(65002,), med=5))
    results = {best_path(list(order)) for order in itertools.permutations([a, b, c])}
    # B is removed by A (same AS, lower MED); of A and C the lower router ID wins.
    assert results == {c}


def test_empty_as_paths_share_a_neighbour_as_for_med() -> None:
    low = path("192.0.2.9", attrs(med=1))
    high = path("192.0.2.1", attrs(med=2))
    assert best_path([high, low]) == low


def test_lowest_router_id_wins() -> None:
    a = path("192.0.2.9", router_id="1.1.1.1")
    b = path("192.0.2.1", router_id="2.2.2.2")
    assert best_path([b, a]) == a


def test_originator_id_replaces_router_id() -> None:
    # Reflected path: its ORIGINATOR_ID (3.3.3.3) is compared, not the RR's 1.1.1.1.
    reflected = path("192.0.2.1", attrs(originator_id="3.3.3.3"), router_id="1.1.1.1")
    direct = path("192.0.2.2", router_id="2.2.2.2")
    assert best_path([reflected, direct]) == direct


def test_shorter_cluster_list_wins() -> None:
    one = path("192.0.2.9", attrs(originator_id="5.5.5.5", cluster_list=("9.9.9.9",)))
    two = path("192.0.2.1", attrs(originator_id="5.5.5.5", cluster_list=("8.8.8.8", "9.9.9.9")))
    assert best_path([two, one]) == one


def test_lowest_peer_address_breaks_the_last_tie() -> None:
    a = path("192.0.2.9", attrs(originator_id="5.5.5.5"), router_id="7.7.7.7")
    b = path("192.0.2.1", attrs(originator_id="5.5.5.5"), router_id="7.7.7.7")
    winner = best_path([a, b])
    assert winner == b
    assert winner.peer.address == ip("192.0.2.1")
