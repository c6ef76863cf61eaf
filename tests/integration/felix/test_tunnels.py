"""Tunnel addresses claimed from IPAM and published on the Node resource."""

from __future__ import annotations

import importlib.util
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from felix.desired import EncapMode, PoolInfo
from felix.tunnels import ensure_tunnel_addresses, vtep_mac
from gingham.datastore import open_datastore
from gingham.model.base import KINDS
from tests.integration.felix.ipam_double import ListIpam

POOL = IPv4Network("10.65.0.0/16")


def doc(kind: str, name: str, spec: dict[str, Any]) -> Any:
    import gingham.model  # noqa: F401

    body = {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return KINDS[kind].model_validate(body)


async def test_vxlan_vtep_is_claimed_once_and_published(tmp_path: Path) -> None:
    ds = open_datastore(f"sqlite:///{tmp_path}/s.db")
    try:
        await ds.create(doc("Node", "node1", {"bgp": {"ipv4Address": "192.0.2.1/24"}, "vxlan": {}}))
        ipam = ListIpam(["10.65.0.1", "10.65.0.2"])
        pools = [PoolInfo(POOL, vxlan_mode=EncapMode.ALWAYS)]
        assert await ensure_tunnel_addresses(ds, ipam, "node1", pools)
        assert not await ensure_tunnel_addresses(ds, ipam, "node1", pools), "claimed twice"
        node = await ds.get("Node", "node1")
        assert node.spec.vxlan.tunnel_address == IPv4Address("10.65.0.1")
        assert node.spec.vxlan.tunnel_mac == vtep_mac("node1")
        assert node.spec.bgp.ipv4_address.ip == IPv4Address("192.0.2.1"), "other fields kept"
        assert ipam.by_handle == {"vxlan-tunnel-addr-node1": [IPv4Address("10.65.0.1")]}
        # No encapsulation anywhere: nothing to claim.
        assert not await ensure_tunnel_addresses(ds, ipam, "node2", [PoolInfo(POOL)])
    finally:
        await ds.close()


@pytest.mark.skipif(
    importlib.util.find_spec("gingham.ipam.allocator") is None, reason="gingham.ipam not landed"
)
async def test_with_the_real_ipam(tmp_path: Path) -> None:
    from gingham.ipam.allocator import IPAM

    ds = open_datastore(f"sqlite:///{tmp_path}/s.db")
    try:
        await ds.create(doc("IPPool", "p", {"cidr": str(POOL), "vxlanMode": "Always"}))
        await ds.create(doc("Node", "node1", {"bgp": {"ipv4Address": "192.0.2.1/24"}}))
        pools = [PoolInfo(POOL, vxlan_mode=EncapMode.ALWAYS)]
        assert await ensure_tunnel_addresses(ds, IPAM(ds), "node1", pools)
        node = await ds.get("Node", "node1")
        assert node.spec.vxlan.tunnel_address in POOL
    finally:
        await ds.close()
