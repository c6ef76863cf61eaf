"""BGP address auto-detection in a namespace we build: two veth interfaces,
the default route on one of them. Nothing is sent (can-reach is a UDP connect)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

import pytest

from gingham.k8s.autodetect import DetectionError, detect, parse_method
from tests.support.netns import Netns, Topology

pytestmark = pytest.mark.root


@pytest.fixture
def host() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Topology() as topo:
        ns = topo.netns("ad")
        peer = topo.netns("adp")
        topo.veth(ns, "rack0", peer, "p0")
        topo.veth(ns, "uplink0", peer, "p1")
        ns.ip("addr add 10.31.0.5/24 dev rack0")
        ns.ip("addr add 10.32.0.7/24 dev uplink0")
        ns.ip("route add default via 10.32.0.1 dev uplink0")
        yield ns


def detected(ns: Netns, text: str) -> ipaddress.IPv4Interface:
    method = parse_method(text)
    return ns.run(lambda: detect(method))


def test_default_is_the_address_on_the_default_route_interface(host: Netns) -> None:
    assert detected(host, "") == ipaddress.IPv4Interface("10.32.0.7/24")
    assert detected(host, "first-found") == ipaddress.IPv4Interface("10.32.0.7/24")


def test_interface_and_can_reach_override_it(host: Netns) -> None:
    assert detected(host, "interface=rack.*") == ipaddress.IPv4Interface("10.31.0.5/24")
    assert detected(host, "can-reach=10.31.0.200") == ipaddress.IPv4Interface("10.31.0.5/24")
    assert detected(host, "can-reach=192.0.2.1") == ipaddress.IPv4Interface("10.32.0.7/24")


def test_nothing_matching_says_what_was_looked_for(host: Netns) -> None:
    with pytest.raises(DetectionError, match="eth9"):
        detected(host, "interface=eth9")
    host.ip("route del default")
    with pytest.raises(DetectionError, match="no IPv4 default route"):
        detected(host, "first-found")
