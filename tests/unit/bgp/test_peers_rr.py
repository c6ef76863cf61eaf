"""Peer derivation for route reflection, the Calico way: symmetric selector
sessions, RR roles, clients that are external routers, eBGP never a client."""

from __future__ import annotations

from ipaddress import IPv4Address

from bird_agent.peers import BGPConfigView, BGPPeerView, NodeView, PeerType, derive_peers


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


RR_LABEL = {"route-reflector": "true"}
NODES = [
    NodeView("rr1", RR_LABEL, ip("10.0.0.1"), route_reflector_cluster_id="224.0.0.1"),
    NodeView("rr2", RR_LABEL, ip("10.0.0.2"), route_reflector_cluster_id="224.0.0.1"),
    NodeView("c3", {}, ip("10.0.0.3")),
    NodeView("c4", {}, ip("10.0.0.4")),
    NodeView("rr5", RR_LABEL, ip("10.0.0.5"), route_reflector_cluster_id="224.0.0.5"),
]
MESH_OFF = BGPConfigView(node_to_node_mesh=False)
# The two BGPPeers of Calico's route reflector guide.
TO_RR = BGPPeerView(
    "peer-with-route-reflectors",
    node_selector="!has(route-reflector)",
    peer_selector="has(route-reflector)",
)
RR_MESH = BGPPeerView(
    "rr-mesh", node_selector="has(route-reflector)", peer_selector="has(route-reflector)"
)


def types(me: str, peers: list[BGPPeerView], nodes: list[NodeView] = NODES) -> dict[str, str]:
    plan = derive_peers(me, nodes, MESH_OFF, peers)
    return {str(p.address): p.peer_type.value for p in plan.peers}


def test_clients_peer_with_every_rr_and_rrs_with_every_client() -> None:
    assert types("c3", [TO_RR, RR_MESH]) == {
        "10.0.0.1": "route reflector",
        "10.0.0.2": "route reflector",
        "10.0.0.5": "route reflector",
    }
    # The RR side of the same sessions comes from the same BGPPeer (symmetric),
    # plus the RR mesh: the same-cluster partner is a non-client, the RR of
    # another cluster a client.
    assert types("rr1", [TO_RR, RR_MESH]) == {
        "10.0.0.2": "route reflector",
        "10.0.0.3": "route reflector client",
        "10.0.0.4": "route reflector client",
        "10.0.0.5": "route reflector client",
    }
    plan = derive_peers("rr1", NODES, MESH_OFF, [TO_RR, RR_MESH]).by_address()
    assert plan[ip("10.0.0.3")].route_reflector_client
    assert not plan[ip("10.0.0.2")].route_reflector_client
    assert plan[ip("10.0.0.2")].peer_cluster_id == "224.0.0.1"


def test_only_one_side_of_the_selector_is_enough() -> None:
    # Only the client side names the RRs: the RRs still peer back.
    assert set(types("rr2", [TO_RR])) == {"10.0.0.3", "10.0.0.4"}
    assert set(types("c4", [TO_RR])) == {"10.0.0.1", "10.0.0.2", "10.0.0.5"}


def test_node_field_with_peer_selector_is_symmetric_too() -> None:
    pin = BGPPeerView("c3-to-rrs", node="c3", peer_selector="has(route-reflector)")
    assert set(types("c3", [pin])) == {"10.0.0.1", "10.0.0.2", "10.0.0.5"}
    assert set(types("rr1", [pin])) == {"10.0.0.3"}
    assert types("c4", [pin]) == {}


def test_never_me_and_one_session_per_address() -> None:
    everyone = BGPPeerView("all", peer_selector="all()")
    plan = derive_peers("rr1", NODES, BGPConfigView(), [TO_RR, RR_MESH, everyone])
    addresses = [str(p.address) for p in plan.peers]
    assert addresses == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    # The mesh session to a client is still a client session on an RR.
    assert plan.by_address()[ip("10.0.0.3")].peer_type is PeerType.ROUTE_REFLECTOR_CLIENT


def test_external_router_of_the_rr_node_is_a_client_unless_ebgp() -> None:
    tor = BGPPeerView("tor", peer_ip=ip("192.0.2.9"), asn=64512, node="rr1")
    ebgp = BGPPeerView("upstream", peer_ip=ip("192.0.2.10"), asn=65010, node="rr1")
    plan = derive_peers("rr1", NODES, MESH_OFF, [tor, ebgp]).by_address()
    assert plan[ip("192.0.2.9")].peer_type is PeerType.ROUTE_REFLECTOR_CLIENT
    assert plan[ip("192.0.2.9")].route_reflector_client
    assert plan[ip("192.0.2.10")].peer_type is PeerType.NODE_SPECIFIC
    assert not plan[ip("192.0.2.10")].route_reflector_client


def test_ordinary_nodes_keep_their_types() -> None:
    plain = [NodeView("a", {}, ip("10.0.1.1")), NodeView("b", {}, ip("10.0.1.2"))]
    assert types("a", [], plain) == {}
    plan = derive_peers("a", plain, BGPConfigView(), [])
    assert plan.peers[0].peer_type is PeerType.NODE_MESH
    assert not plan.peers[0].route_reflector_client
