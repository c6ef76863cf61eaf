"""The receive path on whole UPDATEs: prefix keys, batch policy, AS_PATH loops, change groups.

- Prefix keys and texts round-trip with `ipaddress` for every prefix; a text
  that is not canonical (leading zeros, shorthand, host bits) is refused.
- `ImportFilter.judge` on a batch gives `import_verdict`'s answer for each prefix.
- An UPDATE whose AS_PATH holds our AS is refused whole, counted, and stays
  refused when the policy is re-judged.
- One UPDATE of many prefixes yields its selected-route changes as one group
  that shares one path.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bird_agent.events import (
    Prefixes,
    RoutesAnnounced,
    key_network,
    key_text,
    parse_prefix,
    prefix_key,
)
from bird_agent.learned import LearnedRoutes
from bird_agent.peers import PeerSpec, PeerType
from bird_agent.policy import ImportFilter, PolicyView, RejectReason, import_verdict

A = IPv4Address
N = IPv4Network
ME, TOR = A("10.0.0.1"), A("10.0.0.254")
POOL = N("10.244.0.0/16")

prefixes_st = st.builds(
    lambda address, length: N((address, length), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


@settings(max_examples=300, deadline=None)
@given(prefix=prefixes_st)
def test_keys_and_texts_round_trip(prefix: N) -> None:
    key = prefix_key(prefix)
    assert key_network(key) == prefix
    assert key_text(key) == str(prefix)
    assert parse_prefix(str(prefix)) == key


@settings(max_examples=100, deadline=None)
@given(a=prefixes_st, b=prefixes_st)
def test_keys_are_unique(a: N, b: N) -> None:
    assert (prefix_key(a) == prefix_key(b)) == (a == b)


@pytest.mark.parametrize(
    "text", ["10.0.0.1/24", "010.0.0.0/8", "10.0.0/24", "10.0.0.0/33", "10.0.0.0/024", "x/8", ""]
)
def test_texts_that_are_not_canonical_prefixes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"prefix|host bits|length"):
        parse_prefix(text)


def test_prefixes_behave_as_a_sequence_of_networks() -> None:
    batch = Prefixes.from_texts(["10.244.1.0/26", "10.244.1.64/26"])
    assert list(batch) == [N("10.244.1.0/26"), N("10.244.1.64/26")]
    assert N("10.244.1.64/26") in batch and N("10.244.1.128/26") not in batch
    assert batch == (N("10.244.1.0/26"), N("10.244.1.64/26"))
    assert batch[1:] == Prefixes.of([N("10.244.1.64/26")])


@settings(max_examples=200, deadline=None)
@given(
    batch=st.lists(prefixes_st, max_size=20),
    pools=st.lists(prefixes_st, max_size=3),
    accept=st.none() | st.lists(prefixes_st, max_size=2),
    nodes=st.lists(st.integers(0, 2**32 - 1).map(A), max_size=3),
    own=st.lists(prefixes_st, max_size=2),
    cluster_peer=st.booleans(),
)
def test_batch_verdicts_match_prefix_by_prefix(
    *,
    batch: list[N],
    pools: list[N],
    accept: list[N] | None,
    nodes: list[A],
    own: list[N],
    cluster_peer: bool,
) -> None:
    view = PolicyView(
        pools=tuple(pools),
        node_addresses=frozenset(nodes),
        tunnel_addresses=frozenset(p.network_address for p in batch[:2]),
        own_prefixes=frozenset(own),
        external_accept=None if accept is None else tuple(accept),
    )
    verdicts = ImportFilter(view).judge(TOR, cluster_peer, Prefixes.of(batch))
    expected = [(p, import_verdict(view, p, cluster_peer)) for p in batch]
    assert [key_network(k) for k in verdicts.keys] == [p for p, r in expected if r is None]
    assert list(verdicts.texts) == [str(p) for p, r in expected if r is None]
    assert [(r.prefix, r.reason) for r in verdicts.rejected] == [
        (p, r) for p, r in expected if r is not None
    ]


def tor(local_asn: int = 64512) -> dict[IPv4Address, PeerSpec]:
    spec = PeerSpec(TOR, 65002, local_asn, ME, ME, PeerType.GLOBAL, "tor")
    return {TOR: spec}


def test_as_path_holding_our_as_is_a_loop_refused_whole() -> None:
    routes = LearnedRoutes(ImportFilter(PolicyView(pools=(POOL,))))
    blocks = (N("10.244.1.0/26"), N("10.244.2.0/26"))
    looped = RoutesAnnounced(TOR, TOR, blocks, as_path=(65002, 64512, 65010))
    assert not routes.apply(looped, tor())
    assert len(routes.selected) == 0
    assert routes.import_filter.rejected_by_reason[RejectReason.AS_PATH_LOOP] == 2
    assert {r.reason for r in routes.rejections} == {RejectReason.AS_PATH_LOOP}
    # Re-judging under a new policy does not let the loop in.
    assert not routes.set_policy(PolicyView(pools=(POOL, N("10.0.0.0/8"))))
    assert len(routes.selected) == 0
    # The same prefixes with a clean path are taken; another AS's loop is not ours.
    clean = RoutesAnnounced(TOR, TOR, blocks, as_path=(65002, 65010))
    assert len(routes.apply(clean, tor())) == 2
    assert set(routes.selected) == set(blocks)


def test_one_update_is_one_change_group_sharing_a_path() -> None:
    routes = LearnedRoutes(ImportFilter(PolicyView(pools=(POOL,))))
    blocks = [N((0x0AF40000 + (i << 6), 26)) for i in range(1000)]
    changes = routes.apply(RoutesAnnounced(TOR, TOR, blocks, as_path=(65002,)), tor())
    assert len(changes.groups) == 1
    group = changes.groups[0]
    assert group.path is not None and group.path.next_hop == TOR
    assert list(group.texts) == [str(b) for b in blocks]
    assert [c.prefix for c in changes] == blocks
    # Withdrawn together: one group, removed.
    gone = routes.drop_peer(TOR)
    assert len(gone.groups) == 1 and gone.groups[0].path is None and len(gone) == 1000
    assert len(routes.selected) == 0
