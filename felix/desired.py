"""Desired kernel state: what felix wants in the kernel, from what it knows.

A pure function of plain inputs (pools, this node's blocks and workloads, the
other nodes, the route feed) to a `KernelState` plus human-readable problems:
`compute_desired`. `DesiredTracker` computes the same thing incrementally for
the agent: fed only the learned prefixes that changed, it re-derives those
(all of them only when something every learned route depends on changed: the
pools, the nodes, this node's address or subnets, IPIP support) and reports
exactly the route destinations whose desired value changed. `compute_desired`
is a fresh tracker fed everything, so both give the same state by
construction.

Rules (Calico's, per IPPool `ipipMode` / `vxlanMode`):
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
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from itertools import chain
from typing import NamedTuple

from felix.dataplane import (
    IPIP_DEVICE,
    VXLAN_DEVICE,
    FdbEntry,
    KernelState,
    Neighbour,
    NextHop,
    Route,
    RouteType,
)
from felix.feed import Encap, LearnedRoute, PathLike
from gingham.prefix import MASKS, prefix_ints


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
    learned: Mapping[IPv4Network, Sequence[LearnedRoute]] = field(default_factory=dict)
    ipip_supported: bool = True


@dataclass
class Desired:
    state: KernelState
    problems: list[str]


def pool_for(prefix: IPv4Network, pools: Iterable[PoolInfo]) -> PoolInfo | None:
    """The most specific pool containing `prefix`, if any."""
    return _pool_of(*prefix_ints(prefix), _pool_table(pools))


_PoolTable = tuple[tuple[int, int, int, PoolInfo], ...]


def _pool_table(pools: Iterable[PoolInfo]) -> _PoolTable:
    """(network, netmask, length, pool), most specific first: `_pool_of` takes the
    first match. (`subnet_of` on the objects computed two broadcast addresses
    per call, a quarter of felix's CPU for a full table.)"""
    ordered = sorted(pools, key=lambda p: -p.cidr.prefixlen)
    return tuple(
        (int(p.cidr.network_address), int(p.cidr.netmask), p.cidr.prefixlen, p) for p in ordered
    )


def _pool_of(address: int, length: int, table: _PoolTable) -> PoolInfo | None:
    for network, netmask, pool_length, pool in table:
        if address & netmask == network and length >= pool_length:
            return pool
    return None


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


@dataclass(frozen=True)
class Vtep:
    """A remote VXLAN endpoint: neighbour VTEP IP → MAC, FDB MAC → node IP."""

    ip: IPv4Address
    mac: str
    node_ip: IPv4Address


class LearnedResult(NamedTuple):
    """What one learned prefix asks of the kernel."""

    route: Route | None
    vteps: tuple[Vtep, ...] = ()
    problems: tuple[str, ...] = ()


# One learned prefix's change: its paths now (None or empty: withdrawn).
Change = tuple[IPv4Network, Sequence[PathLike] | None]

# What the tracker keeps per learned prefix: the `Route` alone when that is all
# the result holds (nearly every prefix of a full table: one object less each).
Kept = Route | LearnedResult


def _kept(result: LearnedResult) -> Kept:
    route = result.route
    return route if route is not None and not result.vteps and not result.problems else result


def _route_of(kept: Kept) -> Route | None:
    return kept.route if isinstance(kept, LearnedResult) else kept


def _vteps_of(kept: Kept) -> tuple[Vtep, ...]:
    return kept.vteps if isinstance(kept, LearnedResult) else ()


@dataclass(frozen=True)
class LearnedContext:
    """Everything a learned route's outcome depends on besides its own entries."""

    node_address: IPv4Address | None
    connected: tuple[IPv4Network, ...]
    pools: tuple[PoolInfo, ...]
    nodes: tuple[tuple[str, NodeInfo], ...]
    ipip_supported: bool
    # Derived, in integers, for the per-prefix checks.
    pool_table: _PoolTable = field(init=False, compare=False, repr=False)
    me: int | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool_table", _pool_table(self.pools))
        me = None if self.node_address is None else int(self.node_address)
        object.__setattr__(self, "me", me)

    @staticmethod
    def of(inputs: DesiredInputs) -> LearnedContext:
        return LearnedContext(
            inputs.node_address,
            tuple(inputs.connected),
            tuple(inputs.pools),
            tuple(sorted(inputs.nodes.items())),
            inputs.ipip_supported,
        )


def derive_learned(
    prefix: IPv4Network,
    routes: Sequence[PathLike],
    ctx: LearnedContext,
    nodes: Mapping[str, NodeInfo],
    by_address: Mapping[IPv4Address, NodeInfo],
    *,
    memo: dict[object, tuple[tuple[NextHop, ...], tuple[Vtep, ...]]] | None = None,
) -> LearnedResult:
    """The route (next hops merged → ECMP), VTEPs and problems for one prefix.

    `memo` (for one context only): a full table shares a handful of paths, so
    the hops of a single-peer route are worked out once per (path, pool).
    """
    address, length = prefix_ints(prefix)  # (this runs for every learned prefix)
    if ctx.me is not None and ctx.me & MASKS[length] == address:
        return LearnedResult(
            None, (), (f"ignored learned route {prefix}: it covers this node's address",)
        )
    pool = _pool_of(address, length, ctx.pool_table)
    key: object = None
    if memo is not None and len(routes) == 1:
        # By identity: hashing the hops hashes IPv4Addresses (slow), an Encap
        # hashes in Python, and the feed shares one hops tuple among all the
        # prefixes of a path. The hops (held by `routes`), the encapsulation (a
        # member) and the pools (held by the context) outlive the memo.
        key = (id(routes[0].next_hops), id(routes[0].encap), id(pool))
        hit = memo.get(key)
        if hit is not None:
            return LearnedResult(Route(prefix, RouteType.UNICAST, hit[0]), hit[1])
    hops: set[NextHop] = set()
    vteps: list[Vtep] = []
    problems: list[str] = []
    for learned in routes:
        for hop in learned.next_hops:
            if hop.address == ctx.node_address:
                continue  # our own route reflected back
            encap = choose_encap(learned.encap, pool, hop.address, ctx.connected)
            if encap is Encap.NONE:
                hops.add(NextHop(gateway=hop.address))
            elif encap is Encap.IPIP:
                if not ctx.ipip_supported:
                    problems.append(
                        f"route {prefix} via {hop.address} needs IPIP but this kernel "
                        "has no ipip support"
                    )
                    continue
                hops.add(NextHop(gateway=hop.address, dev=IPIP_DEVICE, onlink=True))
            else:
                node = nodes.get(hop.node) or by_address.get(hop.address)
                if node is None or node.vtep_ip is None or node.vtep_mac is None:
                    who = hop.node or str(hop.address)
                    problems.append(
                        f"route {prefix} needs VXLAN but node {who} has no VTEP address/MAC"
                    )
                    continue
                hops.add(NextHop(gateway=node.vtep_ip, dev=VXLAN_DEVICE, onlink=True))
                vteps.append(Vtep(node.vtep_ip, node.vtep_mac.lower(), hop.address))
    route = Route.via(prefix, *hops) if hops else None
    if memo is not None and key is not None and route is not None and not problems:
        memo[key] = (route.nexthops, tuple(vteps))
    return LearnedResult(route, tuple(vteps), tuple(problems))


class DesiredTracker:
    """The desired `KernelState`, kept up to date from what changed.

    Invariants: `state` always equals `compute_desired` of the inputs last
    given with every learned prefix fed so far; `update` returns every route
    destination whose desired route changed (appeared, differs, or went), and
    does work proportional to the changed prefixes plus the (small) blocks,
    workloads and nodes, except when the learned context changed.
    """

    def __init__(self) -> None:
        self.state = KernelState()
        self.learned: dict[IPv4Network, Sequence[PathLike]] = {}
        self.results: dict[IPv4Network, Kept] = {}
        self.evaluated = 0  # learned prefixes derived so far: the work, for tests and metrics
        self._context: LearnedContext | None = None
        self._base: dict[IPv4Network, Route] = {}
        # Base routes made so far, by block or (pod address, host interface).
        self._base_memo: dict[object, tuple[IPv4Network, Route]] = {}
        self._vteps: Counter[Vtep] = Counter()
        self._troubled: set[IPv4Network] = set()

    @property
    def problems(self) -> list[str]:
        troubled = (self.results[prefix] for prefix in sorted(self._troubled))
        return [p for kept in troubled if isinstance(kept, LearnedResult) for p in kept.problems]

    def update(
        self,
        inputs: DesiredInputs,
        changes: Mapping[IPv4Network, Sequence[PathLike] | None] | Sequence[Change],
    ) -> set[IPv4Network]:
        """Take `inputs` (its `learned` is ignored) and the changed learned prefixes
        (None: withdrawn; a mapping, or (prefix, paths) pairs of distinct prefixes);
        the route destinations whose desired value changed."""
        # A learned prefix hashes in Python: the loops below touch each dict once
        # per prefix where they can (setdefault, not get-then-set).
        pairs = changes.items() if isinstance(changes, Mapping) else changes
        learned = self.learned
        for prefix, routes in pairs:
            if routes:
                learned[prefix] = routes
            else:
                learned.pop(prefix, None)
        context = LearnedContext.of(inputs)
        todo: Iterable[Change] = pairs
        if context != self._context:
            self._context = context
            # Everything again, without a copy of the table: the prefixes learned,
            # then those with a result but no longer learned.
            gone = [p for p in self.results if p not in learned]
            todo = chain(learned.items(), ((p, None) for p in gone))
        touched = self._derive(todo, context, inputs.nodes)

        base = self._base_routes(inputs)
        results = self.results
        old_base = self._base
        for dst in base.keys() | old_base.keys():
            now, before = base.get(dst), old_base.get(dst)
            if now is not before and now != before:
                kept = results.get(dst)
                touched[dst] = _route_of(kept) if kept is not None else None
        self._base = base
        shadowed = touched.keys() & base.keys()  # (iterates the small side)

        changed: set[IPv4Network] = set()
        table = self.state.routes
        for dst, learned_route in touched.items():
            want = base[dst] if shadowed and dst in shadowed else learned_route
            if want is None:
                if table.pop(dst, None) is not None:
                    changed.add(dst)
                continue
            have = table.get(dst)
            # (base routes are made once: the one in the table may be `want` itself)
            if have is not None and (have is want or have == want):
                continue
            table[dst] = want
            changed.add(dst)
        self._small_state(inputs)
        return changed

    def _derive(
        self,
        todo: Iterable[Change],
        ctx: LearnedContext,
        nodes: Mapping[str, NodeInfo],
    ) -> dict[IPv4Network, Route | None]:
        """Re-derive `todo`'s prefixes; the learned route of each whose result changed."""
        by_address = {n.address: n for n in nodes.values() if n.address is not None}
        memo: dict[object, tuple[tuple[NextHop, ...], tuple[Vtep, ...]]] = {}
        results = self.results
        touched: dict[IPv4Network, Route | None] = {}
        evaluated = 0
        for prefix, routes in todo:
            evaluated += 1
            new: Kept | None
            if not routes:
                old = results.pop(prefix, None)
                if old is None:
                    continue
                touched[prefix] = None
                new = None
            else:
                result = derive_learned(prefix, routes, ctx, nodes, by_address, memo=memo)
                new = _kept(result)
                old = results.setdefault(prefix, new)
                if old is new:
                    old = None
                elif old == new:
                    continue
                else:
                    results[prefix] = new
                touched[prefix] = result.route
            # (Counter.update/subtract cost microseconds even for nothing: most
            # learned routes have no VTEP.)
            if old is not None and (gone := _vteps_of(old)):
                self._vteps.subtract(gone)
            if new is not None and result.vteps:
                self._vteps.update(result.vteps)
            if new is not None and result.problems:
                self._troubled.add(prefix)
            elif self._troubled:
                self._troubled.discard(prefix)
        self.evaluated += evaluated
        return touched

    def _base_routes(self, inputs: DesiredInputs) -> dict[IPv4Network, Route]:
        """Blackholes for our blocks and a /32 per pod address. Each route is made
        once and kept while its block or pod is there: every pod ADD recomputes
        this, and a node holds hundreds of pods."""
        memo = self._base_memo
        kept: dict[object, tuple[IPv4Network, Route]] = {}
        base: dict[IPv4Network, Route] = {}
        for block in inputs.blocks:
            made = memo.get(block)
            if made is None:
                made = (block, Route.blackhole(block))
            kept[block] = made
            base[block] = made[1]
        for workload in inputs.workloads:
            for ip in workload.ips:
                key = (ip, workload.host_interface)
                made = memo.get(key)
                if made is None:
                    dst = IPv4Network(ip)
                    made = (dst, Route.link(dst, workload.host_interface))
                kept[key] = made
                base[made[0]] = made[1]
        self._base_memo = kept
        return base

    def _small_state(self, inputs: DesiredInputs) -> None:
        """Neighbours, FDB and links: one per node or workload, rebuilt every time."""
        state = self.state
        state.neighbours, state.fdb, state.links = {}, {}, set()
        self._vteps = +self._vteps  # drop the zero counts
        for vtep in self._vteps:
            _add_vtep(state, vtep.ip, vtep.mac, vtep.node_ip)
        if vxlan_in_use(inputs):
            state.links.add(VXLAN_DEVICE)
            for node in inputs.nodes.values():
                if node.name == inputs.node or None in (node.address, node.vtep_ip, node.vtep_mac):
                    continue
                assert node.address and node.vtep_ip and node.vtep_mac
                _add_vtep(state, node.vtep_ip, node.vtep_mac, node.address)
        elif state.neighbours:
            state.links.add(VXLAN_DEVICE)  # a feed hint asked for VXLAN explicitly
        for workload in inputs.workloads:
            state.links.add(workload.host_interface)


def compute_desired(inputs: DesiredInputs) -> Desired:
    tracker = DesiredTracker()
    tracker.update(inputs, inputs.learned)
    return Desired(tracker.state, tracker.problems)


def _add_vtep(
    state: KernelState, vtep_ip: IPv4Address, vtep_mac: str, node_ip: IPv4Address
) -> None:
    mac = vtep_mac.lower()
    state.neighbours[(VXLAN_DEVICE, vtep_ip)] = Neighbour(VXLAN_DEVICE, vtep_ip, mac)
    state.fdb[(VXLAN_DEVICE, mac)] = FdbEntry(VXLAN_DEVICE, mac, node_ip)
