"""From Calico-style YAML resources to the peer plan and import policy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from bird_agent.model_view import config_view, node_view, peer_views, policy_view
from bird_agent.peers import PeerType, derive_peers
from bird_agent.policy import import_verdict
from gingham.model.bgp import BGPConfiguration, BGPPeer, Node
from gingham.model.documents import load_documents
from gingham.model.network import IPPool

DOCS = """
apiVersion: gingham.io/v1
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 65000, nodeMeshPassword: mesh-pw, holdTime: 30s}
---
apiVersion: gingham.io/v1
kind: BGPConfiguration
metadata: {name: node.n2}
spec: {holdTime: 9s}
---
apiVersion: gingham.io/v1
kind: Node
metadata: {name: n1, labels: {rack: a}}
spec: {bgp: {ipv4Address: 10.0.0.1/24, ipv4IPIPTunnelAddr: 10.244.0.1}}
---
apiVersion: gingham.io/v1
kind: Node
metadata: {name: n2, labels: {rack: b}}
spec: {bgp: {ipv4Address: 10.0.0.2/24, asNumber: 65002}}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: tor-a}
spec: {peerIP: "192.0.2.1:1179", asNumber: 65100, nodeSelector: "rack == 'a'", password: tor-pw}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: v6}
spec: {peerIP: "2001:db8::1", asNumber: 65100}
---
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: pool}
spec: {cidr: 10.244.0.0/16}
---
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: disabled-pool}
spec: {cidr: 10.245.0.0/16, disabled: true}
"""


def test_resources_become_a_peer_plan() -> None:
    docs = load_documents(DOCS)
    nodes = [node_view(d) for d in docs if isinstance(d, Node)]
    peers, problems = peer_views(d for d in docs if isinstance(d, BGPPeer))
    configs = [d for d in docs if isinstance(d, BGPConfiguration)]
    assert problems == ['BGPPeer "v6": spec.peerIP: IPv6 peers are not supported yet']

    n1 = derive_peers("n1", nodes, config_view(configs, "n1"), peers).by_address()
    mesh = n1[IPv4Address("10.0.0.2")]
    assert (mesh.peer_type, mesh.local_asn, mesh.peer_asn) == (PeerType.NODE_MESH, 65000, 65002)
    assert mesh.password == "mesh-pw" and mesh.hold_time == 30
    tor = n1[IPv4Address("192.0.2.1")]
    assert (tor.peer_type, tor.port, tor.password) == (PeerType.NODE_SPECIFIC, 1179, "tor-pw")

    n2 = derive_peers("n2", nodes, config_view(configs, "n2"), peers).by_address()
    assert list(n2) == [IPv4Address("10.0.0.1")]
    assert n2[IPv4Address("10.0.0.1")].hold_time == 9


def test_resources_become_an_import_policy() -> None:
    docs = load_documents(DOCS)
    nodes = [node_view(d) for d in docs if isinstance(d, Node)]
    view = policy_view((d for d in docs if isinstance(d, IPPool)), nodes)
    assert view.pools == (IPv4Network("10.244.0.0/16"),)
    assert import_verdict(view, IPv4Network("10.244.3.0/26"), True) is None
    assert import_verdict(view, IPv4Network("10.245.3.0/26"), True) is not None
    assert view.tunnel_addresses == {IPv4Address("10.244.0.1")}
    assert view.node_addresses == {IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")}
