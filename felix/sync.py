"""Datastore → agent: follow IPPool, Node and BlockAffinity, list-then-watch.

Each kind is listed (a consistent snapshot at one revision), handed to the
agent whole, and then followed with `watch` from that revision. A compacted
history (`RevisionCompacted`) or an outage (`Unavailable`) re-lists after a
short backoff. The agent is told once per kind that its first snapshot is in
(`datastore_kind_synced`); before all are, nothing is removed from the kernel.

The converters are plain functions from resources to the core's inputs.
"""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address, IPv4Network, ip_network

from felix.agent import Agent
from felix.desired import EncapMode, NodeInfo, PoolInfo
from gingham.datastore.base import Datastore, EventType, RevisionCompacted, Unavailable
from gingham.model.base import KINDS, Resource

log = logging.getLogger("felix.sync")

FOLLOWED = ("IPPool", "Node", "BlockAffinity")


def pool_info(obj: Resource) -> PoolInfo | None:
    cidr = ip_network(str(obj.spec.cidr))
    if not isinstance(cidr, IPv4Network):
        return None  # IPv6 pools: not routed by this felix yet
    return PoolInfo(
        cidr=cidr,
        ipip_mode=EncapMode(str(obj.spec.ipip_mode.value)),
        vxlan_mode=EncapMode(str(obj.spec.vxlan_mode.value)),
        nat_outgoing=bool(obj.spec.nat_outgoing),
        disabled=bool(obj.spec.disabled),
    )


def node_info(obj: Resource) -> tuple[NodeInfo, IPv4Network | None]:
    bgp, vxlan = obj.spec.bgp, obj.spec.vxlan
    iface = bgp.ipv4_address if bgp is not None else None
    info = NodeInfo(
        name=obj.name,
        address=IPv4Address(iface.ip) if iface is not None else None,
        vtep_ip=vxlan.tunnel_address if vxlan is not None else None,
        vtep_mac=vxlan.tunnel_mac if vxlan is not None else None,
        ipip_tunnel_ip=bgp.ipv4_ipip_tunnel_addr if bgp is not None else None,
    )
    return info, (IPv4Network(iface.network) if iface is not None else None)


def affine_block(obj: Resource, node: str) -> IPv4Network | None:
    spec = obj.spec
    # Only confirmed claims are announced and blackholed (a pending claim may lose).
    if spec.node != node or spec.state != "confirmed" or getattr(spec, "deleted", False):
        return None
    cidr = ip_network(str(spec.cidr))
    return cidr if isinstance(cidr, IPv4Network) else None


def apply_snapshot(agent: Agent, kind: str, items: list[Resource]) -> None:
    if kind == "IPPool":
        agent.pools = {o.name: p for o in items if (p := pool_info(o)) is not None}
    elif kind == "Node":
        agent.nodes = {}
        for o in items:
            apply_event(agent, kind, EventType.ADDED, o)
    elif kind == "BlockAffinity":
        agent.blocks = {b for o in items if (b := affine_block(o, agent.node)) is not None}
    agent.mark_dirty()


def apply_event(agent: Agent, kind: str, event: EventType, obj: Resource) -> None:
    gone = event is EventType.DELETED
    if kind == "IPPool":
        pool = None if gone else pool_info(obj)
        if pool is None:
            agent.pools.pop(obj.name, None)
        else:
            agent.pools[obj.name] = pool
    elif kind == "Node":
        if gone:
            agent.nodes.pop(obj.name, None)
        else:
            info, subnet = node_info(obj)
            agent.nodes[obj.name] = info
            if obj.name == agent.node:
                agent.connected = [subnet] if subnet is not None else []
    elif kind == "BlockAffinity":
        block = affine_block(obj, agent.node)
        if block is not None:
            if gone:
                agent.blocks.discard(block)
            else:
                agent.blocks.add(block)
    agent.mark_dirty()


async def follow(ds: Datastore, agent: Agent, kind: str, retry: float = 1.0) -> None:
    """List then watch `kind` forever, re-listing when the history is gone."""
    first = True
    while True:
        try:
            listing = await ds.list(kind)
            apply_snapshot(agent, kind, listing.items)
            if first:
                agent.datastore_kind_synced(kind)
                first = False
            async for ev in ds.watch(kind, from_revision=listing.revision):
                apply_event(agent, kind, ev.type, ev.obj)
        except (RevisionCompacted, Unavailable) as exc:
            log.warning("following %s: %s; re-listing in %.1fs", kind, exc, retry)
            await asyncio.sleep(retry)


def followed_kinds() -> list[str]:
    """The kinds that exist in this build (BlockAffinity arrives with IPAM)."""
    import gingham.model  # noqa: F401  (registers every kind)

    return [k for k in FOLLOWED if k in KINDS]
