"""Resources → the plain views bird_agent's pure core works on.

`bird_agent.peers` and `bird_agent.policy` know nothing of pydantic models or
the datastore; this module is the one translation from `gingham.model` kinds
(Node, BGPPeer, BGPConfiguration, IPPool) to `NodeView`, `BGPPeerView`,
`BGPConfigView` and `PolicyView`.

Invariants:
- IPv4 only for now: an IPv6 peer address or node address is left out and
  reported in `problems`, never silently turned into something else.
- Per-node BGPConfiguration overrides are merged by the model's own
  `effective_bgp_configuration`, so Calico's inheritance rules live in one place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from bird_agent.peers import (
    DEFAULT_AS,
    DEFAULT_HOLD_TIME,
    BGPConfigView,
    BGPPeerView,
    NodeView,
)
from bird_agent.policy import PolicyView
from gingham.model.bgp import BGPConfiguration, BGPPeer, Node, effective_bgp_configuration
from gingham.model.network import IPPool


def node_view(node: Node) -> NodeView:
    bgp = node.spec.bgp
    vxlan = node.spec.vxlan
    tunnel = bgp.ipv4_ipip_tunnel_addr if bgp is not None else None
    if tunnel is None and vxlan is not None:
        tunnel = vxlan.tunnel_address
    return NodeView(
        name=node.name,
        labels=dict(node.metadata.labels),
        ipv4_address=bgp.ipv4_address.ip if bgp is not None and bgp.ipv4_address else None,
        asn=bgp.as_number if bgp is not None else None,
        route_reflector_cluster_id=(
            str(bgp.route_reflector_cluster_id)
            if bgp is not None and bgp.route_reflector_cluster_id is not None
            else None
        ),
        ipv4_tunnel_address=tunnel,
    )


def peer_views(peers: Iterable[BGPPeer]) -> tuple[list[BGPPeerView], list[str]]:
    """Views of the IPv4 (or selector) peers, and why any were left out."""
    views: list[BGPPeerView] = []
    problems: list[str] = []
    for peer in peers:
        spec = peer.spec
        address = spec.peer_address
        if address is not None and not isinstance(address, ipaddress.IPv4Address):
            problems.append(f'BGPPeer "{peer.name}": spec.peerIP: IPv6 peers are not supported yet')
            continue
        views.append(
            BGPPeerView(
                name=peer.name,
                peer_ip=address,
                peer_port=spec.peer_port,
                asn=spec.as_number,
                node=spec.node,
                node_selector=spec.node_selector,
                peer_selector=spec.peer_selector,
                password=spec.password,
                keep_original_next_hop=spec.keep_original_next_hop,
            )
        )
    return views, problems


def config_view(configs: Iterable[BGPConfiguration], node: str) -> BGPConfigView:
    spec = effective_bgp_configuration(configs, node)
    return BGPConfigView(
        asn=spec.as_number if spec.as_number is not None else DEFAULT_AS,
        node_to_node_mesh=spec.node_to_node_mesh_enabled is not False,
        node_mesh_password=spec.node_mesh_password,
        listen_port=spec.listen_port or 179,
        hold_time=spec.hold_time if spec.hold_time is not None else DEFAULT_HOLD_TIME,
    )


def policy_view(
    pools: Iterable[IPPool],
    nodes: Iterable[NodeView],
    own_prefixes: Iterable[IPv4Network] = (),
    external_accept: tuple[IPv4Network, ...] | None = None,
    *,
    peer_addresses: frozenset[IPv4Address] = frozenset(),
    connected: tuple[IPv4Network, ...] = (),
    own_blocks: tuple[IPv4Network, ...] = (),
    held_elsewhere: frozenset[IPv4Address] = frozenset(),
) -> PolicyView:
    """Enabled IPv4 pools, every node's underlay and tunnel address, our prefixes,
    and what no learned route may take: our peers' addresses, our connected
    subnets and our blocks (but for addresses lent to other nodes)."""
    node_list = list(nodes)
    enabled = tuple(
        pool.spec.cidr
        for pool in pools
        if not pool.spec.disabled and isinstance(pool.spec.cidr, IPv4Network)
    )
    addresses = frozenset(n.ipv4_address for n in node_list if n.ipv4_address is not None)
    tunnels: frozenset[IPv4Address] = frozenset(
        n.ipv4_tunnel_address for n in node_list if n.ipv4_tunnel_address is not None
    )
    return PolicyView(
        pools=enabled,
        node_addresses=addresses,
        tunnel_addresses=tunnels,
        own_prefixes=frozenset(own_prefixes),
        external_accept=external_accept,
        peer_addresses=peer_addresses,
        connected=connected,
        own_blocks=own_blocks,
        held_elsewhere=held_elsewhere,
    )
