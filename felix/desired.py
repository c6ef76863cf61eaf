"""Desired kernel state: what felix wants in the kernel, from what it knows.

A pure function of plain inputs (pools, this node's blocks and workloads, the
other nodes, the route feed) to a `KernelState` plus human-readable problems.

Rules (Calico's, see ARCHITECTURE.md "Encapsulation"):
- Each block this node has affinity for → a blackhole route (traffic to an
  unassigned address in our block dies here instead of looping to the ToR).
- Each local workload IP → a /32 `scope link` route via its host veth.
- Each learned prefix → one route whose next hops are the union of what every
  peer announced (two nodes announcing it → ECMP). Per next hop:
  plain `via <node IP>`; IPIP `via <node IP> dev tunl0 onlink`; VXLAN
  `via <remote VTEP IP> dev vxlan.gingham onlink`, plus a permanent neighbour
  (VTEP IP → VTEP MAC) and an FDB entry (VTEP MAC → node IP). The pool's
  mode decides unless the feed gave an explicit hint; `CrossSubnet` means
  plain when the next hop is on a directly connected subnet.
- Precedence on a clash for one prefix: local workload > own block > learned.
- Learned routes are never installed when they would hijack this node: a
  next hop that is this node's own address, or a prefix covering it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import (
    IPIP_DEVICE,
    VXLAN_DEVICE,
    FdbEntry,
    KernelState,
    Neighbour,
    NextHop,
    Route,
)
from felix.feed import Encap, LearnedRoute


class EncapMode(enum.Enum):
    NEVER = "Never"
    ALWAYS = "Always"
    CROSS_SUBNET = "CrossSubnet"


@dataclass(frozen=True)
class PoolInfo:
    cidr: IPv4Network
    ipip_mode: EncapMode = EncapMode.NEVER
    vxlan_mode: EncapMode = EncapMode.NEVER
    nat_outgoing: bool = False
    disabled: bool = False


@dataclass(frozen=True)
class NodeInfo:
    name: str
    address: IPv4Address | None = None
    vtep_ip: IPv4Address | None = None
    vtep_mac: str | None = None
    ipip_tunnel_ip: IPv4Address | None = None


@dataclass(frozen=True)
class LocalWorkload:
    host_interface: str
    ips: tuple[IPv4Address, ...]


@dataclass
class DesiredInputs:
    node: str
    node_address: IPv4Address | None = None
    # Subnets this node is directly attached to (for CrossSubnet).
    connected: list[IPv4Network] = field(default_factory=list)
    pools: list[PoolInfo] = field(default_factory=list)
    blocks: list[IPv4Network] = field(default_factory=list)
    workloads: list[LocalWorkload] = field(default_factory=list)
    nodes: Mapping[str, NodeInfo] = field(default_factory=dict)
    learned: Mapping[IPv4Network, list[LearnedRoute]] = field(default_factory=dict)
    ipip_supported: bool = True


@dataclass
class Desired:
    state: KernelState
    problems: list[str]


def pool_for(prefix: IPv4Network, pools: Iterable[PoolInfo]) -> PoolInfo | None:
    """The most specific pool containing `prefix`, if any."""
    best: PoolInfo | None = None
    for pool in pools:
        if prefix.subnet_of(pool.cidr) and (
            best is None or pool.cidr.prefixlen > best.cidr.prefixlen
        ):
            best = pool
    return best


def choose_encap(
    hint: Encap, pool: PoolInfo | None, next_hop: IPv4Address, connected: Iterable[IPv4Network]
) -> Encap:
    if hint is not Encap.FROM_POOL:
        return hint
    if pool is None:
        return Encap.NONE
    on_link = any(next_hop in net for net in connected)
    for mode, encap in ((pool.vxlan_mode, Encap.VXLAN), (pool.ipip_mode, Encap.IPIP)):
        if mode is EncapMode.ALWAYS or (mode is EncapMode.CROSS_SUBNET and not on_link):
            return encap
    return Encap.NONE


def vxlan_in_use(inputs: DesiredInputs) -> bool:
    return any(p.vxlan_mode is not EncapMode.NEVER and not p.disabled for p in inputs.pools)


def compute_desired(inputs: DesiredInputs) -> Desired:
    state = KernelState()
    problems: list[str] = []
    by_address = {n.address: n for n in inputs.nodes.values() if n.address is not None}

    for prefix, routes in inputs.learned.items():
        if inputs.node_address is not None and inputs.node_address in prefix:
            problems.append(f"ignored learned route {prefix}: it covers this node's address")
            continue
        pool = pool_for(prefix, inputs.pools)
        hops: set[NextHop] = set()
        for learned in routes:
            for hop in learned.next_hops:
                if hop.address == inputs.node_address:
                    continue  # our own route reflected back
                encap = choose_encap(learned.encap, pool, hop.address, inputs.connected)
                if encap is Encap.NONE:
                    hops.add(NextHop(gateway=hop.address))
                elif encap is Encap.IPIP:
                    if not inputs.ipip_supported:
                        problems.append(
                            f"route {prefix} via {hop.address} needs IPIP but this kernel "
                            "has no ipip support"
                        )
                        continue
                    hops.add(NextHop(gateway=hop.address, dev=IPIP_DEVICE, onlink=True))
                else:
                    node = inputs.nodes.get(hop.node) or by_address.get(hop.address)
                    if node is None or node.vtep_ip is None or node.vtep_mac is None:
                        who = hop.node or str(hop.address)
                        problems.append(
                            f"route {prefix} needs VXLAN but node {who} has no VTEP address/MAC"
                        )
                        continue
                    hops.add(NextHop(gateway=node.vtep_ip, dev=VXLAN_DEVICE, onlink=True))
                    _add_vtep(state, node.vtep_ip, node.vtep_mac, hop.address)
        if hops:
            state.routes[prefix] = Route.via(prefix, *hops)

    if vxlan_in_use(inputs):
        state.links.add(VXLAN_DEVICE)
        for node in inputs.nodes.values():
            if node.name == inputs.node or None in (node.address, node.vtep_ip, node.vtep_mac):
                continue
            assert node.address and node.vtep_ip and node.vtep_mac
            _add_vtep(state, node.vtep_ip, node.vtep_mac, node.address)
    elif state.neighbours:
        state.links.add(VXLAN_DEVICE)  # a feed hint asked for VXLAN explicitly

    for block in inputs.blocks:
        state.routes[block] = Route.blackhole(block)

    for workload in inputs.workloads:
        state.links.add(workload.host_interface)
        for ip in workload.ips:
            dst = IPv4Network(ip)
            state.routes[dst] = Route.link(dst, workload.host_interface)
    return Desired(state, problems)


def _add_vtep(
    state: KernelState, vtep_ip: IPv4Address, vtep_mac: str, node_ip: IPv4Address
) -> None:
    mac = vtep_mac.lower()
    state.neighbours[(VXLAN_DEVICE, vtep_ip)] = Neighbour(VXLAN_DEVICE, vtep_ip, mac)
    state.fdb[(VXLAN_DEVICE, mac)] = FdbEntry(VXLAN_DEVICE, mac, node_ip)
