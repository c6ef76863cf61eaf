"""Who this node peers with: pure derivation of the desired BGP sessions.

Like Calico's confd, from this node's view of the cluster — every `NodeView`,
the merged `BGPConfigView` and every `BGPPeerView` — `derive_peers` computes
the `PeerSpec`s the speaker must run:

- the node-to-node mesh: every other node with a BGP address, when the mesh
  is enabled (`nodeMeshPassword` as MD5 password);
- global BGPPeers (neither `node` nor `nodeSelector`), and BGPPeers for this
  node (`node` is me, or `nodeSelector` matches my labels);
- of those, the ones with `peerSelector` expand to every node it matches
  (never me), with that node's address and AS;
- sessions are symmetric, as Calico's confd generates both sides: when *I*
  match a BGPPeer's `peerSelector`, I peer with every node its node side
  selects (`node`, `nodeSelector`, or every node for a global one).

Route reflection roles (`route_reflector_role`), decided after the merge:
on a node with a `routeReflectorClusterID`, every iBGP peer that is not a
route reflector of the same cluster is a "route reflector client" (other
nodes and external routers alike); a peer node that has a cluster ID is
shown as "route reflector" (we are its client, or its partner in a
redundant pair). eBGP sessions never take a reflection role.

Invariants:
- At most one `PeerSpec` per peer address; when the same address is reached
  two ways the more specific source wins (node specific > global > mesh), ties
  broken by BGPPeer name so the result never depends on input order.
- Never a session to one of my own addresses.
- iBGP exactly when the peer's AS equals mine (node AS, else the global AS).
- The result is sorted by address: equal inputs give equal outputs, so a
  caller can diff two plans to find the sessions that changed.

This module knows nothing of the datastore, ExaBGP or the resource classes:
`bird_agent.model_view` translates resources into these views.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from gingham.selector import SelectorError, parse_selector

DEFAULT_AS = 64512
DEFAULT_HOLD_TIME = 90
DEFAULT_GRACEFUL_RESTART_TIME = 120


class PeerType(enum.Enum):
    """How a session came about; the words are those `calicoctl node status` prints."""

    NODE_MESH = "node-to-node mesh"
    GLOBAL = "global"
    NODE_SPECIFIC = "node specific"
    # The peer is a route reflector (we are its client, or both are RRs of one cluster).
    ROUTE_REFLECTOR = "route reflector"
    # We are a route reflector and the peer is our client.
    ROUTE_REFLECTOR_CLIENT = "route reflector client"


# Higher wins when two sources reach the same address.
_PRECEDENCE = {
    PeerType.NODE_MESH: 0,
    PeerType.GLOBAL: 1,
    PeerType.ROUTE_REFLECTOR: 2,
    PeerType.ROUTE_REFLECTOR_CLIENT: 2,
    PeerType.NODE_SPECIFIC: 3,
}


@dataclass(frozen=True)
class NodeView:
    """What peering needs to know about one Node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ipv4_address: IPv4Address | None = None
    asn: int | None = None
    route_reflector_cluster_id: str | None = None
    ipv4_tunnel_address: IPv4Address | None = None


@dataclass(frozen=True)
class BGPConfigView:
    """The effective BGPConfiguration for this node (`default` merged with `node.<me>`)."""

    asn: int = DEFAULT_AS
    node_to_node_mesh: bool = True
    node_mesh_password: str | None = None
    listen_port: int = 179
    hold_time: int = DEFAULT_HOLD_TIME
    graceful_restart_time: int = DEFAULT_GRACEFUL_RESTART_TIME


@dataclass(frozen=True)
class BGPPeerView:
    name: str
    peer_ip: IPv4Address | None = None
    # peerIP may carry a port ("192.0.2.1:1179"); None: the BGP port.
    peer_port: int | None = None
    asn: int | None = None
    node: str | None = None
    node_selector: str | None = None
    peer_selector: str | None = None
    password: str | None = None
    keep_original_next_hop: bool = False

    @property
    def is_global(self) -> bool:
        return not self.node and not self.node_selector


@dataclass(frozen=True)
class PeerSpec:
    """One desired BGP session, everything the adapter needs to render it."""

    address: IPv4Address
    peer_asn: int
    local_asn: int
    local_address: IPv4Address
    router_id: IPv4Address
    peer_type: PeerType
    # The BGPPeer name, or the Node name for mesh sessions.
    source: str
    # The cluster Node behind the address, when there is one (mesh, peerSelector).
    peer_node: str | None = None
    password: str | None = None
    hold_time: int = DEFAULT_HOLD_TIME
    graceful_restart_time: int = DEFAULT_GRACEFUL_RESTART_TIME
    keep_original_next_hop: bool = False
    # TCP port to connect to on the peer.
    port: int = 179
    # Only accept the session, never connect. Set between two of our nodes
    # (both run ExaBGP) on the side with the higher address, so exactly one
    # side connects: ExaBGP's collision handling between two ExaBGPs flaps.
    passive: bool = False
    # We are a route reflector and this iBGP peer is our client (RFC 4456).
    route_reflector_client: bool = False
    # The peer node's routeReflectorClusterID, when it is a route reflector.
    peer_cluster_id: str | None = None

    @property
    def ibgp(self) -> bool:
        return self.peer_asn == self.local_asn

    @property
    def keepalive_time(self) -> int:
        return max(1, self.hold_time // 3)

    @property
    def cluster_peer(self) -> bool:
        """A peer that is one of our own nodes (mesh or RR): cluster import policy applies."""
        return self.peer_node is not None


@dataclass(frozen=True)
class PeerPlan:
    peers: tuple[PeerSpec, ...]
    # Human-readable reasons a BGPPeer or Node was skipped (bad selector, no address).
    problems: tuple[str, ...] = ()

    def by_address(self) -> dict[IPv4Address, PeerSpec]:
        return {p.address: p for p in self.peers}


def node_asn(node: NodeView, config: BGPConfigView) -> int:
    return node.asn if node.asn is not None else config.asn


def derive_peers(
    me: str,
    nodes: Iterable[NodeView],
    config: BGPConfigView,
    bgp_peers: Iterable[BGPPeerView],
) -> PeerPlan:
    """The sessions node `me` should run; see the module docstring for the rules."""
    all_nodes = {n.name: n for n in nodes}
    problems: list[str] = []
    my_node = all_nodes.get(me)
    if my_node is None:
        return PeerPlan((), (f'Node "{me}" does not exist',))
    if my_node.ipv4_address is None:
        return PeerPlan((), (f'Node "{me}": spec.bgp.ipv4Address is not set: no BGP sessions',))
    local = my_node.ipv4_address
    my_asn = node_asn(my_node, config)
    my_addresses = {local}

    def spec(
        address: IPv4Address,
        asn: int,
        *,
        kind: PeerType,
        source: str,
        peer_node: str | None,
        password: str | None,
        keep_next_hop: bool = False,
        port: int | None = None,
    ) -> PeerSpec:
        return PeerSpec(
            address=address,
            peer_asn=asn,
            local_asn=my_asn,
            local_address=local,
            router_id=local,
            peer_type=kind,
            source=source,
            peer_node=peer_node,
            password=password or None,
            hold_time=config.hold_time,
            graceful_restart_time=config.graceful_restart_time,
            keep_original_next_hop=keep_next_hop,
            port=port or 179,
        )

    candidates: list[tuple[int, str, PeerSpec]] = []
    others = sorted(
        (n for n in all_nodes.values() if n.name != me and n.ipv4_address is not None),
        key=lambda n: n.name,
    )
    if config.node_to_node_mesh:
        for node in others:
            assert node.ipv4_address is not None
            candidates.append(
                (
                    _PRECEDENCE[PeerType.NODE_MESH],
                    node.name,
                    spec(
                        node.ipv4_address,
                        node_asn(node, config),
                        kind=PeerType.NODE_MESH,
                        source=node.name,
                        peer_node=node.name,
                        password=config.node_mesh_password,
                    ),
                )
            )

    for peer in sorted(bgp_peers, key=lambda p: p.name):
        kind = PeerType.GLOBAL if peer.is_global else PeerType.NODE_SPECIFIC
        try:
            applies = _applies_to(peer, my_node)
        except SelectorError as exc:
            problems.append(f'BGPPeer "{peer.name}": spec.nodeSelector: {exc}')
            continue
        if peer.peer_selector:
            try:
                selector = parse_selector(peer.peer_selector)
                # Both sides of each session: the nodes I select when the
                # BGPPeer applies to me, and the nodes it applies to when I
                # am one it selects.
                remote = [n for n in others if applies and selector.matches(n.labels)]
                if selector.matches(my_node.labels):
                    remote += [n for n in others if _applies_to(peer, n)]
            except SelectorError as exc:
                problems.append(f'BGPPeer "{peer.name}": spec.peerSelector: {exc}')
                continue
            for node in remote:
                assert node.ipv4_address is not None
                asn = peer.asn if peer.asn is not None else node_asn(node, config)
                candidates.append(
                    (
                        _PRECEDENCE[kind],
                        peer.name,
                        spec(
                            node.ipv4_address,
                            asn,
                            kind=kind,
                            source=peer.name,
                            peer_node=node.name,
                            password=peer.password,
                            keep_next_hop=peer.keep_original_next_hop,
                        ),
                    )
                )
            continue
        if not applies:
            continue
        if peer.peer_ip is None:
            problems.append(f'BGPPeer "{peer.name}": spec.peerIP: neither peerIP nor peerSelector')
            continue
        if peer.asn is None:
            problems.append(f'BGPPeer "{peer.name}": spec.asNumber: required with peerIP')
            continue
        # An explicit address that belongs to one of our nodes is still that node.
        node_here = next((n.name for n in others if n.ipv4_address == peer.peer_ip), None)
        candidates.append(
            (
                _PRECEDENCE[kind],
                peer.name,
                spec(
                    peer.peer_ip,
                    peer.asn,
                    kind=kind,
                    source=peer.name,
                    peer_node=node_here,
                    password=peer.password,
                    keep_next_hop=peer.keep_original_next_hop,
                    port=peer.peer_port,
                ),
            )
        )

    chosen: dict[IPv4Address, tuple[int, str, PeerSpec]] = {}
    for rank, name, candidate in candidates:
        if candidate.address in my_addresses:
            continue
        best = chosen.get(candidate.address)
        # Higher precedence wins; among equals the first name in sort order.
        if best is None or rank > best[0] or (rank == best[0] and name < best[1]):
            chosen[candidate.address] = (rank, name, candidate)
    peers = tuple(
        _with_passive(route_reflector_role(chosen[a][2], my_node, all_nodes))
        for a in sorted(chosen)
    )
    return PeerPlan(peers, tuple(problems))


def same_cluster(a: str | None, b: str | None) -> bool:
    """Whether two routeReflectorClusterIDs name the same cluster ("1.0.0.1" == " 1.0.0.1")."""
    if a is None or b is None:
        return False
    return a.strip() == b.strip()


def route_reflector_role(peer: PeerSpec, me: NodeView, nodes: Mapping[str, NodeView]) -> PeerSpec:
    """`peer` with its reflection role and display type (see the module docstring)."""
    if not peer.ibgp:
        return peer
    remote = nodes.get(peer.peer_node) if peer.peer_node is not None else None
    peer_cluster = remote.route_reflector_cluster_id if remote is not None else None
    mine = me.route_reflector_cluster_id
    if mine is not None and not same_cluster(mine, peer_cluster):
        return replace(
            peer,
            peer_type=PeerType.ROUTE_REFLECTOR_CLIENT,
            route_reflector_client=True,
            peer_cluster_id=peer_cluster,
        )
    if peer_cluster is not None:
        return replace(peer, peer_type=PeerType.ROUTE_REFLECTOR, peer_cluster_id=peer_cluster)
    return peer


def _with_passive(peer: PeerSpec) -> PeerSpec:
    if peer.peer_node is None or peer.local_address < peer.address:
        return peer
    return replace(peer, passive=True)


def _applies_to(peer: BGPPeerView, me: NodeView) -> bool:
    if peer.is_global:
        return True
    if peer.node and peer.node == me.name:
        return True
    if peer.node_selector:
        return parse_selector(peer.node_selector).matches(me.labels)
    return False
