"""Tunnel addresses: felix claims this node's VTEP/IPIP address from IPAM and
publishes it on its Node resource, where the other felixes read it.

- VXLAN (any enabled pool with vxlanMode != Never): an address from IPAM under
  the handle `vxlan-tunnel-addr-<node>` and a MAC derived from the node name
  (locally administered, stable across restarts), written to
  `Node.spec.vxlan.{tunnelAddress, tunnelMAC}`.
- IPIP (ipipMode != Never): an address under `ipip-tunnel-addr-<node>`,
  written to `Node.spec.bgp.ipv4IPIPTunnelAddr`.

Invariants: a node that already has its address keeps it (nothing is
assigned twice); the Node update is compare-and-swap, retried on conflict,
so concurrent edits of other Node fields are never lost.
"""

from __future__ import annotations

import hashlib
import logging
from ipaddress import IPv4Address

from felix.desired import EncapMode, PoolInfo
from felix.pod_addresses import Ipam
from gingham.datastore.base import Conflict, Datastore, NotFound

log = logging.getLogger("felix.tunnels")


def vtep_mac(node: str) -> str:
    """A locally administered unicast MAC, the same for a node every time."""
    digest = hashlib.sha1(f"gingham-vtep:{node}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


async def _first_ipv4(ipam: Ipam, handle: str, node: str, kind: str) -> IPv4Address:
    got = await ipam.assign(handle, node, {"type": kind})
    for ip in got:
        if isinstance(ip, IPv4Address):
            return ip
    await ipam.release(handle)
    raise RuntimeError(f"IPAM gave no IPv4 address for {handle}")


async def ensure_tunnel_addresses(
    datastore: Datastore, ipam: Ipam, node: str, pools: list[PoolInfo], attempts: int = 5
) -> bool:
    """Claim and publish what the pools need; True when the Node was changed."""
    enabled = [p for p in pools if not p.disabled]
    want_vxlan = any(p.vxlan_mode is not EncapMode.NEVER for p in enabled)
    want_ipip = any(p.ipip_mode is not EncapMode.NEVER for p in enabled)
    if not (want_vxlan or want_ipip):
        return False
    # Assigned at most once per call, kept across CAS retries.
    claimed: dict[str, IPv4Address] = {}

    async def claim(kind: str) -> IPv4Address:
        if kind not in claimed:
            handle = f"{'vxlan' if kind.startswith('vxlan') else 'ipip'}-tunnel-addr-{node}"
            claimed[kind] = await _first_ipv4(ipam, handle, node, kind)
        return claimed[kind]

    for _ in range(attempts):
        try:
            obj = await datastore.get("Node", node)
        except NotFound:
            log.warning("Node %s does not exist: cannot publish tunnel addresses", node)
            return False
        doc = obj.to_document()
        spec = doc.setdefault("spec", {})
        changed = False
        vxlan = spec.get("vxlan") or {}
        if want_vxlan and not (vxlan.get("tunnelAddress") and vxlan.get("tunnelMAC")):
            if not vxlan.get("tunnelAddress"):
                ip = await _first_ipv4(
                    ipam, f"vxlan-tunnel-addr-{node}", node, "vxlanTunnelAddress"
                )
                vxlan["tunnelAddress"] = str(ip)
            vxlan.setdefault("tunnelMAC", vtep_mac(node))
            spec["vxlan"] = vxlan
            changed = True
        bgp = spec.get("bgp")
        if want_ipip and bgp is not None and not bgp.get("ipv4IPIPTunnelAddr"):
            bgp["ipv4IPIPTunnelAddr"] = str(await claim("ipipTunnelAddress"))
            changed = True
        if not changed:
            return False
        try:
            await datastore.update(type(obj).model_validate(doc))
            log.info("published tunnel addresses on Node %s", node)
            return True
        except Conflict:
            continue  # someone else edited the Node: re-read, our address is kept by handle
    raise RuntimeError(f"Node {node}: too many conflicting updates publishing tunnel addresses")
