"""Import and export policy: which learned prefixes may reach felix, which we announce.

Import (every prefix a peer sends, checked in this order, first match decides):

0. an UPDATE whose AS_PATH holds our own AS is a routing loop: all its
   prefixes are rejected (`AS_PATH_LOOP`), from any peer;
1. a default route (``0.0.0.0/0``) is rejected — from anyone;
2. one of our own prefixes coming back (exactly a block or /32 we announce)
   is rejected: peers reflect our routes back, FRR and GoBGP do over eBGP;
3. a prefix that covers (contains) a node's BGP address, or the address of
   one of this node's BGP peers, is rejected — from anyone: installing it
   could pull the underlay into the overlay, or route the sessions
   themselves away (`COVERS_PEER_ADDRESS`);
4. a prefix equal to or inside a subnet this node is directly connected to
   (its BGP address's subnet) is rejected: it would capture the segment's
   neighbours, every BGP session on it among them;
5. a prefix equal to or inside a block this node owns is rejected — the
   blackhole for our blocks exists so that traffic to their unassigned
   addresses never leaves the node — unless it is the /32 of an address
   IPAM says another node holds (borrowed from our block), sent by a
   cluster peer. A covering aggregate (a ToR's pool route) is not inside;
6. a cluster peer (mesh / route reflector: a Node of ours) may announce only
   prefixes inside an enabled IPPool, or a node's /32 tunnel address;
7. an external peer is checked against `PolicyView.external_accept`, which
   defaults (None) to exactly the cluster rule.

Export: only this node's affine blocks and its borrowed /32s.

Invariants:
- Decisions are pure functions of a `PolicyView`; `ImportFilter` only adds
  counters (per reason and per peer), which never decrease.
- A /32 inside one of our own blocks that IPAM gives to another node (it
  borrowed the address) is accepted from a cluster peer: longest match beats
  our blackhole, and that pod is reached on its node.
- `ImportFilter.judge` decides a whole UPDATE on prefix keys (events.Prefixes)
  and gives the same answers as `import_verdict` prefix by prefix (tested
  against an ipaddress reference).
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network

from bird_agent.events import Prefixes, PrefixKey, key_address, key_network, prefix_key

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


class RejectReason(enum.Enum):
    DEFAULT_ROUTE = "default-route"
    OWN_PREFIX = "own-prefix"
    COVERS_NODE_ADDRESS = "covers-node-address"
    OUTSIDE_POOLS = "outside-pools"
    NOT_IN_ACCEPT_LIST = "not-in-accept-list"
    AS_PATH_LOOP = "as-path-loop"
    COVERS_PEER_ADDRESS = "covers-peer-address"
    INSIDE_CONNECTED_SUBNET = "inside-connected-subnet"
    INSIDE_OWN_BLOCK = "inside-own-block"


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
    # This node's BGP peers' addresses: no learned route may cover one.
    peer_addresses: frozenset[IPv4Address] = frozenset()
    # Subnets this node is directly connected to: no learned route inside one.
    connected: tuple[IPv4Network, ...] = ()
    # Blocks this node has affinity for, and the addresses in them that IPAM
    # says another node holds (the only routes accepted inside them).
    own_blocks: tuple[IPv4Network, ...] = ()
    held_elsewhere: frozenset[IPv4Address] = frozenset()

    # Key forms (events.prefix_key), computed once per view: one UPDATE of
    # hundreds of prefixes is then judged with set lookups and a bisect per
    # prefix, never an ipaddress object.
    @cached_property
    def _special_keys(self) -> frozenset[PrefixKey]:
        """Every key rules 1-3 reject: the default route, our own prefixes and
        every prefix (any length) that covers a node or peer address."""
        return frozenset({0} | self._own_keys | self._node_covering | self._peer_covering)

    @cached_property
    def _node_covering(self) -> frozenset[PrefixKey]:
        return _covering(self.node_addresses)

    @cached_property
    def _peer_covering(self) -> frozenset[PrefixKey]:
        return _covering(self.peer_addresses)

    @cached_property
    def _guarded_index(self) -> _Intervals:
        """Connected subnets and own blocks: a prefix inside one takes the slow path."""
        return _Intervals.of((*self.connected, *self.own_blocks))

    @cached_property
    def _connected_index(self) -> _Intervals:
        return _Intervals.of(self.connected)

    @cached_property
    def _own_block_index(self) -> _Intervals:
        return _Intervals.of(self.own_blocks)

    @cached_property
    def _held_elsewhere_keys(self) -> frozenset[PrefixKey]:
        return frozenset(32 << 32 | int(a) for a in self.held_elsewhere)

    @cached_property
    def _own_keys(self) -> frozenset[PrefixKey]:
        return frozenset(map(prefix_key, self.own_prefixes))

    @cached_property
    def _tunnel_keys(self) -> frozenset[PrefixKey]:
        return frozenset(32 << 32 | int(a) for a in self.tunnel_addresses)

    @cached_property
    def _pool_index(self) -> _Intervals:
        return _Intervals.of(self.pools)

    @cached_property
    def _accept_index(self) -> _Intervals:
        return _Intervals.of(self.external_accept or ())


@dataclass(frozen=True)
class _Intervals:
    """CIDRs as sorted, disjoint [start, end] address intervals (nested ones
    dropped: CIDRs either nest or are disjoint), for bisect containment."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, networks: Iterable[IPv4Network]) -> _Intervals:
        spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in set(networks))
        starts: list[int] = []
        ends: list[int] = []
        for start, end in spans:
            if ends and end <= ends[-1]:
                continue  # inside the previous one
            starts.append(start)
            ends.append(end)
        return cls(tuple(starts), tuple(ends))

    def contains(self, key: PrefixKey) -> bool:
        net = key_address(key)
        i = bisect_right(self.starts, net) - 1
        return i >= 0 and net | _HOST_MASK[key >> 32] <= self.ends[i]


def _covering(addresses: Iterable[IPv4Address]) -> frozenset[PrefixKey]:
    """The keys of every prefix, of any length, that contains one of `addresses`."""
    return frozenset(
        length << 32 | int(a) >> (32 - length) for a in addresses for length in range(33)
    )


_HOST_MASK = tuple((1 << (32 - length)) - 1 for length in range(33))


def key_verdict(view: PolicyView, key: PrefixKey, cluster_peer: bool) -> RejectReason | None:
    """None when the prefix with `key` may be installed, else why not."""
    if key in view._special_keys:
        if key >> 32 == 0:
            return RejectReason.DEFAULT_ROUTE
        if key in view._own_keys:
            return RejectReason.OWN_PREFIX
        if key in view._node_covering:
            return RejectReason.COVERS_NODE_ADDRESS
        return RejectReason.COVERS_PEER_ADDRESS
    if view._connected_index.contains(key):
        return RejectReason.INSIDE_CONNECTED_SUBNET
    if view._own_block_index.contains(key) and not (
        cluster_peer and key in view._held_elsewhere_keys
    ):
        return RejectReason.INSIDE_OWN_BLOCK
    if cluster_peer or view.external_accept is None:
        if key in view._tunnel_keys or view._pool_index.contains(key):
            return None
        return RejectReason.OUTSIDE_POOLS
    if view._accept_index.contains(key):
        return None
    return RejectReason.NOT_IN_ACCEPT_LIST


def import_verdict(
    view: PolicyView, prefix: IPv4Network, cluster_peer: bool
) -> RejectReason | None:
    """None when `prefix` may be installed, else why not."""
    return key_verdict(view, prefix_key(prefix), cluster_peer)


@dataclass(frozen=True)
class Rejection:
    peer: IPv4Address
    prefix: IPv4Network
    reason: RejectReason


@dataclass(frozen=True)
class Verdicts:
    """One UPDATE judged: what may be installed (keys and texts in step) and what not."""

    keys: Sequence[PrefixKey]
    texts: Sequence[str]
    rejected: list[Rejection]


@dataclass
class ImportFilter:
    """Applies the import rules to batches and counts every rejection."""

    view: PolicyView
    rejected_by_reason: Counter[RejectReason] = field(default_factory=Counter)
    rejected_by_peer: Counter[IPv4Address] = field(default_factory=Counter)
    accepted_by_peer: Counter[IPv4Address] = field(default_factory=Counter)
    # The latest refusal for each reason, to name one in `node status`.
    latest: dict[RejectReason, Rejection] = field(default_factory=dict)

    def filter(
        self, peer: IPv4Address, cluster_peer: bool, prefixes: Iterable[IPv4Network]
    ) -> tuple[list[IPv4Network], list[Rejection]]:
        """Split an announcement into what may be installed and what is refused."""
        verdicts = self.judge(peer, cluster_peer, Prefixes.of(prefixes))
        return list(map(key_network, verdicts.keys)), verdicts.rejected

    def judge(
        self, peer: IPv4Address, cluster_peer: bool, batch: Prefixes, *, as_loop: bool = False
    ) -> Verdicts:
        """The rules for a whole UPDATE. `as_loop`: its AS_PATH holds our own AS,
        so every prefix is refused (RFC 4271 9.1.2 loop detection)."""
        if as_loop:
            refused = [(i, RejectReason.AS_PATH_LOOP) for i in range(len(batch))]
        else:
            refused = self._refused(batch.keys, cluster_peer)
        rejected = [Rejection(peer, batch[i], reason) for i, reason in refused]
        for rejection in rejected:
            self.rejected_by_reason[rejection.reason] += 1
            self.latest[rejection.reason] = rejection
        self.rejected_by_peer[peer] += len(rejected)
        self.accepted_by_peer[peer] += len(batch) - len(rejected)
        if not refused:
            return Verdicts(batch.keys, batch.texts, rejected)
        out = {i for i, _ in refused}
        keep = [i for i in range(len(batch)) if i not in out]
        return Verdicts([batch.keys[i] for i in keep], [batch.texts[i] for i in keep], rejected)

    def _refused(
        self, keys: Sequence[PrefixKey], cluster_peer: bool
    ) -> list[tuple[int, RejectReason]]:
        view = self.view
        special = view._special_keys
        cluster_rule = cluster_peer or view.external_accept is None
        index = view._pool_index if cluster_rule else view._accept_index
        tunnels = view._tunnel_keys if cluster_rule else frozenset()
        starts, ends, host = index.starts, index.ends, _HOST_MASK
        guarded = view._guarded_index
        g_starts, g_ends = guarded.starts, guarded.ends
        refused: list[tuple[int, RejectReason]] = []
        # The hot loop of receiving: inlined containment, locals only.
        for i, key in enumerate(keys):
            length = key >> 32
            net = (key & 0xFFFFFFFF) << (32 - length)
            if key in special or (
                g_starts
                and (j := bisect_right(g_starts, net) - 1) >= 0
                and net | host[length] <= g_ends[j]
            ):
                why = key_verdict(view, key, cluster_peer)
                if why is not None:
                    refused.append((i, why))
                continue
            j = bisect_right(starts, net) - 1
            if (j >= 0 and net | host[length] <= ends[j]) or key in tunnels:
                continue
            refused.append(
                (i, RejectReason.OUTSIDE_POOLS if cluster_rule else RejectReason.NOT_IN_ACCEPT_LIST)
            )
        return refused


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
