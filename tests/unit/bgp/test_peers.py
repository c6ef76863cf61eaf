"""Peer derivation: who a node peers with, by what type, AS and password."""

from __future__ import annotations

from ipaddress import IPv4Address

from bird_agent.peers import BGPConfigView, BGPPeerView, NodeView, PeerType, derive_peers


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


NODES = [
    NodeView("n1", {"rack": "a"}, ip("10.0.0.1")),
    NodeView("n2", {"rack": "a", "rr": "yes"}, ip("10.0.0.2")),
    NodeView("n3", {"rack": "b"}, ip("10.0.0.3"), asn=65003),
    NodeView("n4-no-address", {"rack": "a"}, None),
]


def addresses(plan_peers: object) -> list[str]:
    return [str(p.address) for p in plan_peers]  # type: ignore[attr-defined]


def test_full_mesh_peers_every_other_node_with_an_address() -> None:
    plan = derive_peers("n1", NODES, BGPConfigView(), [])
    assert addresses(plan.peers) == ["10.0.0.2", "10.0.0.3"]
    by = plan.by_address()
    assert by[ip("10.0.0.2")].peer_type is PeerType.NODE_MESH
    assert by[ip("10.0.0.2")].ibgp
    # n3 has its own AS: eBGP, and the node AS is taken from the Node.
    assert not by[ip("10.0.0.3")].ibgp
    assert by[ip("10.0.0.3")].peer_asn == 65003
    assert by[ip("10.0.0.3")].local_asn == 64512
    assert all(p.local_address == ip("10.0.0.1") for p in plan.peers)
    assert all(p.cluster_peer for p in plan.peers)


def test_mesh_disabled_leaves_no_mesh_sessions() -> None:
    plan = derive_peers("n1", NODES, BGPConfigView(node_to_node_mesh=False), [])
    assert plan.peers == ()


def test_mesh_password_and_timers_apply_to_mesh_sessions() -> None:
    config = BGPConfigView(asn=65000, node_mesh_password="s3cret", hold_time=9)
    plan = derive_peers("n2", NODES, config, [])
    mesh = plan.by_address()[ip("10.0.0.1")]
    assert mesh.password == "s3cret"
    assert mesh.hold_time == 9
    assert mesh.keepalive_time == 3
    assert mesh.local_asn == mesh.peer_asn == 65000


def test_global_peer_applies_to_every_node() -> None:
    tor = BGPPeerView("tor", peer_ip=ip("192.0.2.1"), asn=65100, password="pw")
    for me in ("n1", "n2", "n3"):
        peer = derive_peers(me, NODES, BGPConfigView(), [tor]).by_address()[ip("192.0.2.1")]
        assert peer.peer_type is PeerType.GLOBAL
        assert peer.password == "pw"
        assert not peer.ibgp
        assert not peer.cluster_peer


def test_node_specific_peer_by_name_and_by_selector() -> None:
    by_name = BGPPeerView("p-name", peer_ip=ip("192.0.2.10"), asn=65100, node="n2")
    by_label = BGPPeerView(
        "p-label", peer_ip=ip("192.0.2.11"), asn=65100, node_selector="rack == 'a'"
    )
    peers = [by_name, by_label]
    n1 = derive_peers("n1", NODES, BGPConfigView(), peers).by_address()
    n2 = derive_peers("n2", NODES, BGPConfigView(), peers).by_address()
    n3 = derive_peers("n3", NODES, BGPConfigView(), peers).by_address()
    assert ip("192.0.2.10") not in n1 and ip("192.0.2.10") in n2 and ip("192.0.2.10") not in n3
    assert ip("192.0.2.11") in n1 and ip("192.0.2.11") in n2 and ip("192.0.2.11") not in n3
    assert n2[ip("192.0.2.10")].peer_type is PeerType.NODE_SPECIFIC


def test_peer_selector_expands_to_matching_nodes_but_never_me() -> None:
    to_rrs = BGPPeerView("to-rr", peer_selector="has(rr)")
    rack_a = BGPPeerView("rack-a", node_selector="rack == 'a'", peer_selector="rack == 'a'")
    config = BGPConfigView(node_to_node_mesh=False)
    n1 = derive_peers("n1", NODES, config, [to_rrs, rack_a])
    assert addresses(n1.peers) == ["10.0.0.2"]
    assert n1.peers[0].peer_node == "n2"
    # Sessions are symmetric (Calico's confd): n2 matches to-rr's peerSelector,
    # so it peers with every node the global to-rr applies to.
    n2 = derive_peers("n2", NODES, config, [to_rrs, rack_a])
    assert addresses(n2.peers) == ["10.0.0.1", "10.0.0.3"]
    # n3 is not in rack a, but the global to-rr peer still applies to it.
    n3 = derive_peers("n3", NODES, config, [to_rrs, rack_a]).by_address()
    assert list(n3) == [ip("10.0.0.2")]
    assert n3[ip("10.0.0.2")].local_asn == 65003 and n3[ip("10.0.0.2")].peer_asn == 64512


def test_explicit_peer_beats_mesh_for_the_same_address() -> None:
    explicit = BGPPeerView("n2-direct", peer_ip=ip("10.0.0.2"), asn=64512, node="n1", password="x")
    plan = derive_peers("n1", NODES, BGPConfigView(), [explicit])
    assert addresses(plan.peers) == ["10.0.0.2", "10.0.0.3"]
    chosen = plan.by_address()[ip("10.0.0.2")]
    assert chosen.peer_type is PeerType.NODE_SPECIFIC
    assert chosen.password == "x"
    # The address is still one of our nodes: cluster import policy applies.
    assert chosen.peer_node == "n2"


def test_dedupe_is_independent_of_input_order() -> None:
    a = BGPPeerView("a", peer_ip=ip("192.0.2.1"), asn=65001)
    b = BGPPeerView("b", peer_ip=ip("192.0.2.1"), asn=65002)
    one = derive_peers("n1", NODES, BGPConfigView(), [a, b])
    two = derive_peers("n1", NODES, BGPConfigView(), [b, a])
    assert one == two
    assert one.by_address()[ip("192.0.2.1")].source == "a"


def test_never_a_session_to_my_own_address() -> None:
    me_again = BGPPeerView("loop", peer_ip=ip("10.0.0.1"), asn=64512)
    plan = derive_peers("n1", NODES, BGPConfigView(), [me_again])
    assert ip("10.0.0.1") not in plan.by_address()


def test_node_without_address_or_unknown_node_gets_no_sessions_and_a_reason() -> None:
    plan = derive_peers("n4-no-address", NODES, BGPConfigView(), [])
    assert plan.peers == ()
    assert "ipv4Address" in plan.problems[0]
    assert derive_peers("ghost", NODES, BGPConfigView(), []).problems


def test_bad_selector_is_reported_and_skipped() -> None:
    bad = BGPPeerView("bad", node_selector="rack ==", peer_ip=ip("192.0.2.1"), asn=1)
    plan = derive_peers("n1", NODES, BGPConfigView(), [bad])
    assert ip("192.0.2.1") not in plan.by_address()
    assert plan.problems and 'BGPPeer "bad": spec.nodeSelector' in plan.problems[0]


def test_between_two_of_our_nodes_only_the_lower_address_connects() -> None:
    tor = BGPPeerView("tor", peer_ip=ip("10.0.0.0"), asn=65100)
    n1 = derive_peers("n1", NODES, BGPConfigView(), [tor]).by_address()
    n2 = derive_peers("n2", NODES, BGPConfigView(), [tor]).by_address()
    assert not n1[ip("10.0.0.2")].passive  # n1 (10.0.0.1) connects to n2
    assert n2[ip("10.0.0.1")].passive  # n2 waits for n1
    # External peers are always actively connected to.
    assert not n2[ip("10.0.0.0")].passive
