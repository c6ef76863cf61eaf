"""Import and export policy: which learned prefixes may reach felix, which we announce.

Import (every prefix a peer sends, checked in this order, first match decides):

1. a default route (``0.0.0.0/0``) is rejected — from anyone;
2. one of our own prefixes coming back (exactly a block or /32 we announce)
   is rejected: peers reflect our routes back, FRR and GoBGP do over eBGP;
3. a prefix that covers (contains) a node's BGP address is rejected — from
   anyone: installing it could pull the underlay into the overlay;
4. a cluster peer (mesh / route reflector: a Node of ours) may announce only
   prefixes inside an enabled IPPool, or a node's /32 tunnel address;
5. an external peer is checked against `PolicyView.external_accept`, which
   defaults (None) to exactly the cluster rule.

Export: only this node's affine blocks and its borrowed /32s.

Invariants:
- Decisions are pure functions of a `PolicyView`; `ImportFilter` only adds
  counters (per reason and per peer), which never decrease.
- A prefix inside one of our own blocks that is *not* one of our prefixes
  (another node's borrowed /32) is accepted: longest match beats our blackhole.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


class RejectReason(enum.Enum):
    DEFAULT_ROUTE = "default-route"
    OWN_PREFIX = "own-prefix"
    COVERS_NODE_ADDRESS = "covers-node-address"
    OUTSIDE_POOLS = "outside-pools"
    NOT_IN_ACCEPT_LIST = "not-in-accept-list"


@dataclass(frozen=True)
class PolicyView:
    """The cluster facts import/export policy depends on."""

    # Enabled IPPools only.
    pools: tuple[IPv4Network, ...] = ()
    # Every node's BGP (underlay) address, this node's included.
    node_addresses: frozenset[IPv4Address] = frozenset()
    # Every node's IPIP/VXLAN tunnel address: accepted as /32 from cluster peers.
    tunnel_addresses: frozenset[IPv4Address] = frozenset()
    # What this node announces (its blocks and borrowed /32s).
    own_prefixes: frozenset[IPv4Network] = frozenset()
    # Accept list for external peers; None means "the cluster rule".
    external_accept: tuple[IPv4Network, ...] | None = None

    # Integer forms, computed once per view: checking 100,000 prefixes with
    # ipaddress objects (subnet_of, `in`, hashing) costs more than ExaBGP does.
    @cached_property
    def _node_keys(self) -> tuple[frozenset[int], ...]:
        """Per prefix length L, the node addresses' top L bits."""
        ints = [int(a) for a in self.node_addresses]
        return tuple(frozenset(i >> (32 - length) for i in ints) for length in range(33))

    @cached_property
    def _own_keys(self) -> frozenset[tuple[int, int]]:
        return frozenset((int(p.network_address), p.prefixlen) for p in self.own_prefixes)

    @cached_property
    def _tunnel_ints(self) -> frozenset[int]:
        return frozenset(int(a) for a in self.tunnel_addresses)

    @cached_property
    def _pool_ranges(self) -> tuple[tuple[int, int, int], ...]:
        return _ranges(self.pools)

    @cached_property
    def _accept_ranges(self) -> tuple[tuple[int, int, int], ...]:
        return _ranges(self.external_accept or ())


def _ranges(networks: Iterable[IPv4Network]) -> tuple[tuple[int, int, int], ...]:
    return tuple((n.prefixlen, int(n.netmask), int(n.network_address)) for n in networks)


def _inside(ranges: tuple[tuple[int, int, int], ...], net: int, length: int) -> bool:
    return any(length >= plen and net & mask == base for plen, mask, base in ranges)


def import_verdict(
    view: PolicyView, prefix: IPv4Network, cluster_peer: bool
) -> RejectReason | None:
    """None when `prefix` may be installed, else why not."""
    length = prefix.prefixlen
    if length == 0:
        return RejectReason.DEFAULT_ROUTE
    net = int(prefix.network_address)
    if (net, length) in view._own_keys:
        return RejectReason.OWN_PREFIX
    if net >> (32 - length) in view._node_keys[length]:
        return RejectReason.COVERS_NODE_ADDRESS
    if cluster_peer or view.external_accept is None:
        if (length == 32 and net in view._tunnel_ints) or _inside(view._pool_ranges, net, length):
            return None
        return RejectReason.OUTSIDE_POOLS
    if _inside(view._accept_ranges, net, length):
        return None
    return RejectReason.NOT_IN_ACCEPT_LIST


@dataclass(frozen=True)
class Rejection:
    peer: IPv4Address
    prefix: IPv4Network
    reason: RejectReason


@dataclass
class ImportFilter:
    """Applies `import_verdict` to batches and counts every rejection."""

    view: PolicyView
    rejected_by_reason: Counter[RejectReason] = field(default_factory=Counter)
    rejected_by_peer: Counter[IPv4Address] = field(default_factory=Counter)
    accepted_by_peer: Counter[IPv4Address] = field(default_factory=Counter)

    def filter(
        self, peer: IPv4Address, cluster_peer: bool, prefixes: Iterable[IPv4Network]
    ) -> tuple[list[IPv4Network], list[Rejection]]:
        """Split an announcement into what may be installed and what is refused."""
        accepted: list[IPv4Network] = []
        rejected: list[Rejection] = []
        for prefix in prefixes:
            reason = import_verdict(self.view, prefix, cluster_peer)
            if reason is None:
                accepted.append(prefix)
            else:
                rejected.append(Rejection(peer, prefix, reason))
                self.rejected_by_reason[reason] += 1
        self.accepted_by_peer[peer] += len(accepted)
        self.rejected_by_peer[peer] += len(rejected)
        return accepted, rejected


def export_prefixes(
    blocks: Iterable[IPv4Network], borrowed: Iterable[IPv4Address]
) -> frozenset[IPv4Network]:
    """What this node announces: its affine blocks plus a /32 per borrowed address.

    A borrowed address inside one of our own blocks is already covered and is
    not announced twice.
    """
    own_blocks = frozenset(blocks)
    singles = {
        IPv4Network(address)
        for address in borrowed
        if not any(address in block for block in own_blocks)
    }
    return own_blocks | singles


def may_export(prefix: IPv4Network, exports: frozenset[IPv4Network]) -> bool:
    """The export filter: nothing leaves that is not ours (guards every announce)."""
    return prefix in exports
