"""Fixtures for felix's real-kernel tests: namespaces that always get removed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.netns import Netns, Topology

pytestmark = pytest.mark.root


@pytest.fixture
def topo() -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Topology() as t:
        yield t


@pytest.fixture
def node(topo: Topology) -> Netns:
    """A node namespace: uplink 192.0.2.1/24 to a router namespace, default route,
    forwarding on (proxy ARP answers for 169.254.1.1 only when it is routable)."""
    from felix.links import enable_forwarding

    ns, router = topo.netns("nd"), topo.netns("rt")
    topo.veth(ns, "up0", router, "down0")
    ns.ip("addr add 192.0.2.1/24 dev up0")
    router.ip("addr add 192.0.2.254/24 dev down0")
    ns.ip("route add default via 192.0.2.254")
    enable_forwarding(ns.path)
    return ns
