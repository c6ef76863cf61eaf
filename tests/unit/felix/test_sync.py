"""Datastore resources → the core's inputs (felix.sync converters)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from felix.agent import Agent
from felix.desired import EncapMode
from felix.sync import affine_block, apply_event, apply_snapshot, node_info, pool_info
from gingham.datastore.base import EventType
from gingham.model.base import KINDS
from tests.unit.felix.test_agent import FakeHost


def res(kind: str, name: str, spec: dict[str, Any]) -> Any:
    import gingham.model  # noqa: F401

    doc = {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return KINDS[kind].model_validate(doc)


def test_pool_node_and_affinity_conversion() -> None:
    pool = pool_info(res("IPPool", "p", {"cidr": "10.65.0.0/16", "vxlanMode": "CrossSubnet",
                                         "natOutgoing": True}))  # fmt: skip
    assert pool is not None and pool.vxlan_mode is EncapMode.CROSS_SUBNET and pool.nat_outgoing
    assert pool_info(res("IPPool", "v6", {"cidr": "fd00::/48"})) is None
    spec = {"bgp": {"ipv4Address": "192.0.2.7/24"},
            "vxlan": {"tunnelAddress": "10.65.3.1", "tunnelMAC": "02:00:00:00:00:07"}}  # fmt: skip
    info, subnet = node_info(res("Node", "n7", spec))
    assert info.address == IPv4Address("192.0.2.7") and info.vtep_ip == IPv4Address("10.65.3.1")
    assert subnet == IPv4Network("192.0.2.0/24")
    confirmed = res(
        "BlockAffinity", "a", {"node": "n7", "cidr": "10.65.3.0/26", "state": "confirmed"}
    )
    pending = res("BlockAffinity", "b", {"node": "n7", "cidr": "10.65.4.0/26", "state": "pending"})
    other = res("BlockAffinity", "c", {"node": "n8", "cidr": "10.65.5.0/26", "state": "confirmed"})
    assert affine_block(confirmed, "n7") == IPv4Network("10.65.3.0/26")
    assert affine_block(pending, "n7") is None and affine_block(other, "n7") is None


async def test_snapshot_and_events_update_the_agent() -> None:
    agent = Agent("n7", FakeHost())
    a = res("BlockAffinity", "a", {"node": "n7", "cidr": "10.65.3.0/26", "state": "confirmed"})
    apply_snapshot(agent, "BlockAffinity", [a])
    assert agent.blocks == {IPv4Network("10.65.3.0/26")}
    apply_event(agent, "BlockAffinity", EventType.DELETED, a)
    assert agent.blocks == set()
    node = res("Node", "n7", {"bgp": {"ipv4Address": "192.0.2.7/24"}})
    apply_event(agent, "Node", EventType.ADDED, node)
    assert agent.connected == [IPv4Network("192.0.2.0/24")]
    apply_event(agent, "Node", EventType.DELETED, node)
    assert "n7" not in agent.nodes
