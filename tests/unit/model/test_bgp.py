"""BGPConfiguration, BGPPeer and Node: defaults, rules and messages."""

from __future__ import annotations

import ipaddress

import pytest

from gingham.model import BGPConfiguration, BGPPeer, LogSeverity, Node, parse_resource
from gingham.model.bgp import effective_bgp_configuration
from tests.unit.model.helpers import document, errors_of, round_trips

# --- BGPConfiguration -------------------------------------------------------------


def test_global_configuration_defaults() -> None:
    config = parse_resource(document("BGPConfiguration", "default"))
    assert isinstance(config, BGPConfiguration)
    spec = config.spec
    assert (spec.as_number, spec.node_to_node_mesh_enabled, spec.listen_port) == (64512, True, 179)
    assert spec.log_severity is LogSeverity.INFO
    assert (spec.node_mesh_password, spec.keepalive_time, spec.hold_time) == (None, None, None)
    assert config.node_name is None
    assert round_trips(config)


def test_global_configuration_with_everything() -> None:
    spec = {
        "asNumber": 65001,
        "nodeToNodeMeshEnabled": False,
        "listenPort": 1179,
        "logSeverity": "debug",
        "nodeMeshPassword": "s3cret",
        "keepaliveTime": "1m",
        "holdTime": 180,
    }
    config = parse_resource(document("BGPConfiguration", "default", spec))
    assert isinstance(config, BGPConfiguration)
    assert config.spec.log_severity is LogSeverity.DEBUG
    assert (config.spec.keepalive_time, config.spec.hold_time) == (60, 180)
    assert config.to_document()["spec"] == {
        **spec,
        "logSeverity": "Debug",
        "keepaliveTime": "60s",
        "holdTime": "180s",
    }
    assert round_trips(config)


def test_per_node_configuration_inherits_what_it_leaves_out() -> None:
    config = parse_resource(
        document("BGPConfiguration", "node.worker-1", {"listenPort": 1790, "holdTime": "1m30s"})
    )
    assert isinstance(config, BGPConfiguration)
    assert config.node_name == "worker-1"
    assert config.spec.as_number is None
    assert config.spec.node_to_node_mesh_enabled is None
    assert config.spec.log_severity is None
    assert (config.spec.listen_port, config.spec.hold_time) == (1790, 90)
    assert round_trips(config)


@pytest.mark.parametrize(
    ("name", "spec", "errors"),
    [
        (
            "node.worker-1",
            {"asNumber": 65000},
            [
                'BGPConfiguration "node.worker-1": spec.asNumber: can only be set in the'
                ' global configuration "default", not per node'
            ],
        ),
        (
            "node.worker-1",
            {"nodeToNodeMeshEnabled": False},
            [
                'BGPConfiguration "node.worker-1": spec.nodeToNodeMeshEnabled: can only be set'
                ' in the global configuration "default", not per node'
            ],
        ),
        (
            "global",
            {},
            [
                'BGPConfiguration "global": metadata.name: "global" must be "default" (the'
                ' cluster-wide configuration) or "node.<nodename>" (one node\'s overrides)'
            ],
        ),
        (
            "default",
            {"asNumber": 4294967296},
            ['BGPConfiguration "default": spec.asNumber: 4294967296 is outside 1..4294967295'],
        ),
        (
            "default",
            {"listenPort": 0, "logSeverity": "Loud"},
            [
                'BGPConfiguration "default": spec.listenPort: 0 is outside 1..65535',
                'BGPConfiguration "default": spec.logSeverity: "Loud" is not one of Debug,'
                " Info, Warning, Error, Fatal",
            ],
        ),
        (
            "default",
            {"holdTime": "2s"},
            [
                'BGPConfiguration "default": spec.holdTime: 2s is too short: use 0s'
                " (no keepalives) or at least 3s"
            ],
        ),
        (
            "default",
            {"keepaliveTime": "30s", "holdTime": "30s"},
            [
                'BGPConfiguration "default": spec: keepaliveTime (30s) must be shorter than'
                " holdTime (30s); a third of it is usual"
            ],
        ),
        (
            "default",
            {"holdTime": "1.5s"},
            [
                'BGPConfiguration "default": spec.holdTime: "1.5s" is not a duration: write'
                ' whole seconds like "90s", "1m30s" or a number of seconds'
            ],
        ),
    ],
)
def test_invalid_configurations(name: str, spec: dict[str, object], errors: list[str]) -> None:
    assert errors_of(document("BGPConfiguration", name, spec)) == errors


def test_effective_configuration_overlays_the_node_on_the_global_one() -> None:
    docs = [
        document("BGPConfiguration", "default", {"asNumber": 65001}),
        document("BGPConfiguration", "node.n1", {"listenPort": 1790, "holdTime": "9s"}),
    ]
    configs = [c for c in map(parse_resource, docs) if isinstance(c, BGPConfiguration)]
    assert len(configs) == 2
    n1 = effective_bgp_configuration(configs, "n1")
    n2 = effective_bgp_configuration(configs, "n2")
    assert (n1.as_number, n1.listen_port, n1.node_to_node_mesh_enabled) == (65001, 1790, True)
    assert n1.hold_time == 9 and n1.log_severity is LogSeverity.INFO
    assert (n2.as_number, n2.listen_port) == (65001, 179)
    bare = effective_bgp_configuration([], "n1")
    assert (bare.as_number, bare.listen_port, bare.log_severity) == (64512, 179, LogSeverity.INFO)


def test_hold_time_zero_disables_keepalives() -> None:
    config = parse_resource(
        document("BGPConfiguration", "default", {"holdTime": 0, "keepaliveTime": 10})
    )
    assert isinstance(config, BGPConfiguration)
    assert config.spec.hold_time == 0


# --- BGPPeer ----------------------------------------------------------------------


def test_node_specific_tor_peer() -> None:
    peer = parse_resource(
        document(
            "BGPPeer",
            "tor-rack1",
            {"peerIP": "192.0.2.1:1179", "asNumber": 65100, "node": "worker-1", "password": "pw"},
        )
    )
    assert isinstance(peer, BGPPeer)
    assert peer.spec.peer_address == ipaddress.ip_address("192.0.2.1")
    assert peer.spec.peer_port == 1179
    assert peer.spec.keep_original_next_hop is False
    assert not peer.is_global
    assert peer.applies_to_node("worker-1", {})
    assert not peer.applies_to_node("worker-2", {})
    assert peer.to_document()["spec"]["peerIP"] == "192.0.2.1:1179"
    assert round_trips(peer)


def test_route_reflector_peering_by_selectors() -> None:
    peer = parse_resource(
        document(
            "BGPPeer",
            "to-rrs",
            {
                "nodeSelector": "!has(route-reflector)",
                "peerSelector": "has(route-reflector)",
                "keepOriginalNextHop": True,
            },
        )
    )
    assert isinstance(peer, BGPPeer)
    assert peer.spec.peer_ip is None and peer.spec.as_number is None
    assert peer.applies_to_node("worker-1", {"zone": "a"})
    assert not peer.applies_to_node("rr-1", {"route-reflector": "true"})
    assert peer.peer_selector is not None
    assert peer.peer_selector.matches({"route-reflector": "true"})
    assert round_trips(peer)


def test_global_ipv6_peer_with_port_and_blank_selectors() -> None:
    peer = parse_resource(
        document(
            "BGPPeer",
            "v6",
            {"peerIP": "[2001:db8::1]:1179", "asNumber": 65000, "nodeSelector": ""},
        )
    )
    assert isinstance(peer, BGPPeer)
    assert peer.spec.node_selector is None
    assert peer.is_global
    assert peer.spec.peer_address == ipaddress.ip_address("2001:db8::1")
    assert peer.spec.peer_port == 1179
    assert peer.applies_to_node("anything", {})


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (
            {"peerIP": "192.0.2.1", "asNumber": 0},
            ['BGPPeer "x": spec.asNumber: 0 is outside 1..4294967295'],
        ),
        (
            {"peerIP": "192.0.2.1", "asNumber": 65000, "peerSelector": "all()"},
            ['BGPPeer "x": spec: peerIP and peerSelector are mutually exclusive'],
        ),
        ({"asNumber": 65000}, ['BGPPeer "x": spec: one of peerIP or peerSelector is required']),
        (
            {"peerIP": "192.0.2.1", "asNumber": 1, "node": "n1", "nodeSelector": "all()"},
            ['BGPPeer "x": spec: node and nodeSelector are mutually exclusive'],
        ),
        ({"peerIP": "192.0.2.1"}, ['BGPPeer "x": spec: asNumber is required when peerIP is set']),
        (
            {"peerIP": "192.0.2.300", "asNumber": 1},
            [
                'BGPPeer "x": spec.peerIP: "192.0.2.300" is not an IP address or IP:port'
                " (e.g. 192.0.2.1, 192.0.2.1:1179, [2001:db8::1]:1179)"
            ],
        ),
        (
            {"peerIP": "192.0.2.1:0", "asNumber": 1},
            [
                'BGPPeer "x": spec.peerIP: "192.0.2.1:0" is not an IP address or IP:port'
                " (e.g. 192.0.2.1, 192.0.2.1:1179, [2001:db8::1]:1179)"
            ],
        ),
        (
            {"peerSelector": "has(rr", "node": "Worker_1"},
            [
                'BGPPeer "x": spec.node: "Worker_1" must be a DNS-1123 subdomain: at most 253'
                " characters of lower-case letters, digits, '-' and '.', starting and ending"
                " with a letter or digit",
                'BGPPeer "x": spec.peerSelector: invalid selector "has(rr": at column 7:'
                ' expected ")" after the label key, found the end of the selector',
            ],
        ),
        (
            {"peerIP": "192.0.2.1", "asNumber": "65000", "keepOriginalNextHop": 1},
            [
                'BGPPeer "x": spec.asNumber: expected an integer, got "65000"',
                'BGPPeer "x": spec.keepOriginalNextHop: expected true or false, got 1',
            ],
        ),
        (
            {"peerIp": "192.0.2.1", "asNumber": 1},
            ['BGPPeer "x": spec.peerIp: unknown field (did you mean peerIP?)'],
        ),
    ],
)
def test_invalid_peers(spec: dict[str, object], errors: list[str]) -> None:
    assert errors_of(document("BGPPeer", "x", spec)) == errors


# --- Node -------------------------------------------------------------------------


def test_node_with_bgp_and_vxlan() -> None:
    spec = {
        "bgp": {
            "ipv4Address": "10.0.0.11/24",
            "asNumber": 65011,
            "routeReflectorClusterID": "224.0.0.1",
            "ipv4IPIPTunnelAddr": "10.244.1.0",
        },
        "vxlan": {"tunnelAddress": "10.244.1.1", "tunnelMAC": "66:1F:0A:00:00:01"},
    }
    node = parse_resource(document("Node", "worker-1", spec, labels={"route-reflector": "true"}))
    assert isinstance(node, Node)
    assert node.spec.bgp is not None and node.spec.vxlan is not None
    assert node.spec.bgp.ipv4_address == ipaddress.ip_interface("10.0.0.11/24")
    assert node.spec.bgp.ipv4_address.ip == ipaddress.ip_address("10.0.0.11")
    assert node.is_route_reflector
    assert node.spec.vxlan.tunnel_mac == "66:1f:0a:00:00:01"
    assert node.to_document()["spec"]["vxlan"]["tunnelMAC"] == "66:1f:0a:00:00:01"
    assert round_trips(node)


def test_calico_node_vxlan_fields_are_read_into_vxlan() -> None:
    doc = document(
        "Node",
        "n1",
        {"ipv4VXLANTunnelAddr": "10.244.1.1", "vxlanTunnelMACAddr": "66:1f:0a:00:00:01"},
    )
    node = parse_resource({**doc, "apiVersion": "projectcalico.org/v3"})
    assert isinstance(node, Node)
    assert node.to_document()["spec"] == {
        "vxlan": {"tunnelAddress": "10.244.1.1", "tunnelMAC": "66:1f:0a:00:00:01"}
    }


def test_calico_log_severity_screen_is_read_as_log_severity() -> None:
    config = parse_resource(
        document("BGPConfiguration", "default", {"logSeverityScreen": "Warning"})
    )
    assert isinstance(config, BGPConfiguration)
    assert config.spec.log_severity is LogSeverity.WARNING
    assert config.to_document()["spec"]["logSeverity"] == "Warning"
    assert round_trips(config)


def test_bare_node() -> None:
    node = parse_resource(document("Node", "worker-2"))
    assert isinstance(node, Node)
    assert node.spec.bgp is None and node.spec.vxlan is None
    assert not node.is_route_reflector
    assert round_trips(node)


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (
            {"bgp": {"ipv4Address": "10.0.0.11"}},
            [
                'Node "n1": spec.bgp.ipv4Address: "10.0.0.11" has no prefix length:'
                " write it as e.g. 10.0.0.11/24"
            ],
        ),
        (
            {"bgp": {"ipv4Address": "fd00::1/64"}},
            ['Node "n1": spec.bgp.ipv4Address: fd00::1/64 is not an IPv4 address'],
        ),
        (
            {"bgp": {"asNumber": 65000}},
            [
                'Node "n1": spec.bgp: bgp needs ipv4Address or ipv6Address'
                " (e.g. ipv4Address: 10.0.0.1/24)"
            ],
        ),
        (
            {"bgp": {"ipv4Address": "10.0.0.1/24", "routeReflectorClusterID": "1.2.3"}},
            ['Node "n1": spec.bgp.routeReflectorClusterID: "1.2.3" is not an IPv4 address'],
        ),
        (
            {"vxlan": {"tunnelMAC": "66:1f:0a:00:00"}},
            [
                'Node "n1": spec.vxlan.tunnelMAC: "66:1f:0a:00:00" is not a MAC address'
                " (expected e.g. 66:1f:0a:00:00:01)"
            ],
        ),
        ({"bgp": "yes"}, ['Node "n1": spec.bgp: expected a mapping, got "yes"']),
    ],
)
def test_invalid_nodes(spec: dict[str, object], errors: list[str]) -> None:
    assert errors_of(document("Node", "n1", spec)) == errors
