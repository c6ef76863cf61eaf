"""The speaker daemon: datastore → peers and policy → ExaBGP → learned routes → sink.

`Speaker` follows the BGP-relevant kinds in the datastore (Node, BGPPeer,
BGPConfiguration, IPPool, IPAMBlock), recomputes the peer plan and import policy after
every batch of changes (`plan_for`, pure), hands the sessions and this
node's announcements to the `ExaBGPAdapter`, and folds the adapter's events
into `LearnedRoutes`, passing selected-route changes to a `RouteSink`
(in production `FelixSink`, felix's route feed; gingham-bgp wires it).

What this node announces comes from IPAM, as the IPAMBlock objects say
(they are IPAM's truth, see gingham/ipam/query.py): every block affine to
this node, plus a /32 for each address this node holds in another node's
block. A block whose affinity moves away is withdrawn at the next recompute.
`set_local_prefixes` overrides that (tests only).

On a route reflector node (`routeReflectorClusterID` on its Node) the
speaker also feeds `gingham-rr` through `bird_agent.reflection.Reflection`
(given by gingham-bgp): every event goes to it first, and what it returns —
the event, or a withdrawal when the route loops back to us (our router ID
as ORIGINATOR_ID, our cluster ID in CLUSTER_LIST) — is what the speaker
installs. Every node screens loops that way, reflector or not.

Invariants:
- Nothing is pushed to the adapter before every kind has been listed once
  (never act on a partial view of the cluster).
- Changes are batched: a burst of datastore events causes one recompute.
- This module never parses ExaBGP output and never touches the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Protocol

from bird_agent.events import (
    PeerDown,
    PeerUp,
    RoutesAnnounced,
    RoutesWithdrawn,
    SessionState,
    SpeakerRestarted,
)
from bird_agent.exabgp import ExaBGPAdapter
from bird_agent.learned import LearnedRoutes, RouteChange
from bird_agent.model_view import config_view, node_view, peer_views, policy_view
from bird_agent.peers import PeerPlan, derive_peers
from bird_agent.policy import ImportFilter, PolicyView, export_prefixes
from bird_agent.reflection import Reflection, screen
from gingham.datastore.base import Datastore, EventType, RevisionCompacted
from gingham.ipam import blocks as ipam_blocks
from gingham.model.base import Resource
from gingham.model.bgp import BGPConfiguration, BGPPeer, Node
from gingham.model.ipam import IPAMBlock
from gingham.model.network import IPPool

log = logging.getLogger(__name__)

WATCHED_KINDS = ("Node", "BGPPeer", "BGPConfiguration", "IPPool", "IPAMBlock")
# Collect a burst of datastore events before recomputing.
BATCH_DELAY = 0.05


class RouteSink(Protocol):
    async def apply(self, changes: Sequence[RouteChange]) -> None: ...


@dataclass
class ClusterView:
    """The last listed/watched state of every kind the speaker cares about."""

    objects: dict[str, dict[str, Resource]] = field(
        default_factory=lambda: {kind: {} for kind in WATCHED_KINDS}
    )

    def of(self, kind: type[Resource]) -> list[Resource]:
        return list(self.objects[kind.kind].values())


@dataclass(frozen=True)
class SpeakerPlan:
    peers: PeerPlan
    policy: PolicyView
    exports: dict[IPv4Network, IPv4Address]


def ipam_prefixes(
    me: str, blocks: Iterable[IPAMBlock]
) -> tuple[list[IPv4Network], list[IPv4Address]]:
    """Pure: node `me`'s affine IPv4 blocks and the addresses it borrowed."""
    own: list[IPv4Network] = []
    borrowed: list[IPv4Address] = []
    for block in blocks:
        cidr = block.spec.cidr
        if not isinstance(cidr, IPv4Network):
            continue
        if block.spec.host == me:
            own.append(cidr)
        for held in ipam_blocks.allocations(block.spec):
            if (
                held.node == me
                and isinstance(held.address, IPv4Address)
                and ipam_blocks.is_borrowed(block.spec, held)
            ):
                borrowed.append(held.address)
    return own, borrowed


def lent_addresses(me: str, blocks: Iterable[IPAMBlock]) -> frozenset[IPv4Address]:
    """Pure: addresses in node `me`'s blocks that IPAM gives to another node."""
    return frozenset(
        held.address
        for block in blocks
        if block.spec.host == me and isinstance(block.spec.cidr, IPv4Network)
        for held in ipam_blocks.allocations(block.spec)
        if held.node not in (None, me) and isinstance(held.address, IPv4Address)
    )


def plan_for(
    me: str,
    cluster: ClusterView,
    blocks: Iterable[IPv4Network] | None = None,
    borrowed: Iterable[IPv4Address] = (),
) -> SpeakerPlan:
    """Pure: the sessions, import policy and announcements for node `me`.

    `blocks`/`borrowed` override what the cluster's IPAMBlocks say (tests).
    """
    ipam = [b for b in cluster.of(IPAMBlock) if isinstance(b, IPAMBlock)]
    if blocks is None:
        blocks, borrowed = ipam_prefixes(me, ipam)
    blocks = list(blocks)
    nodes = [node_view(n) for n in cluster.of(Node) if isinstance(n, Node)]
    configs = [c for c in cluster.of(BGPConfiguration) if isinstance(c, BGPConfiguration)]
    peers, problems = peer_views(p for p in cluster.of(BGPPeer) if isinstance(p, BGPPeer))
    plan = derive_peers(me, nodes, config_view(configs, me), peers)
    plan = PeerPlan(plan.peers, (*problems, *plan.problems))
    own = export_prefixes(blocks, borrowed)
    mine = next((n for n in nodes if n.name == me), None)
    next_hop = mine.ipv4_address if mine is not None else None
    exports = dict.fromkeys(own, next_hop) if next_hop is not None else {}
    pools = [p for p in cluster.of(IPPool) if isinstance(p, IPPool)]
    me_node = cluster.objects["Node"].get(me)
    bgp = me_node.spec.bgp if isinstance(me_node, Node) else None
    subnet = bgp.ipv4_address.network if bgp is not None and bgp.ipv4_address else None
    # A node subnet that holds a whole pool (node 10.0.0.1/8, pool 10.244.0.0/16)
    # carries pod routes by design; the peer and node address rules still guard
    # its sessions. One inside a pool (or apart from all) is the underlay only.
    connected = (
        (subnet,)
        if subnet is not None
        and not any(
            isinstance(p.spec.cidr, IPv4Network)
            and not p.spec.disabled
            and p.spec.cidr.subnet_of(subnet)
            for p in pools
        )
        else ()
    )
    policy = policy_view(
        pools,
        nodes,
        own,
        peer_addresses=frozenset(p.address for p in plan.peers),
        connected=connected,
        own_blocks=tuple(blocks),
        held_elsewhere=lent_addresses(me, ipam),
    )
    return SpeakerPlan(plan, policy, exports)


@dataclass(frozen=True)
class PeerStatus:
    """One row of `gingham node status` (Calico's table, plus route counts)."""

    address: IPv4Address
    peer_type: str
    state: str
    since: float | None
    info: str
    received: int
    accepted: int
    advertised: int


class Speaker:
    def __init__(
        self,
        node: str,
        datastore: Datastore,
        adapter: ExaBGPAdapter,
        sink: RouteSink,
        reflection: Reflection | None = None,
    ) -> None:
        self.node = node
        self.reflection = reflection
        # Prefixes refused because they looped back to us (when no Reflection counts them).
        self.loops: Counter[str] = reflection.loops if reflection is not None else Counter()
        self.datastore = datastore
        self.adapter = adapter
        self.sink = sink
        self.cluster = ClusterView()
        self.learned = LearnedRoutes(ImportFilter(PolicyView()))
        self.plan: SpeakerPlan | None = None
        # None: from IPAM (the cluster's IPAMBlocks).
        self._blocks: frozenset[IPv4Network] | None = None
        self._borrowed: frozenset[IPv4Address] = frozenset()
        self._listed: set[str] = set()
        self._dirty = asyncio.Event()
        self._wake_expiry = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def set_local_prefixes(
        self, blocks: Iterable[IPv4Network], borrowed: Iterable[IPv4Address]
    ) -> None:
        """Override IPAM: announce exactly these (tests without IPAM objects)."""
        self._blocks = frozenset(blocks)
        self._borrowed = frozenset(borrowed)
        self._dirty.set()

    def address(self) -> IPv4Address | None:
        """This node's BGP address, as the datastore says now."""
        node = self.cluster.objects["Node"].get(self.node)
        return node_view(node).ipv4_address if isinstance(node, Node) else None

    def cluster_id(self) -> IPv4Address | None:
        """This node's routeReflectorClusterID (None: not a route reflector)."""
        node = self.cluster.objects["Node"].get(self.node)
        if not isinstance(node, Node) or node.spec.bgp is None:
            return None
        cluster = node.spec.bgp.route_reflector_cluster_id
        return IPv4Address(cluster) if cluster is not None else None

    def node_of(self, address: IPv4Address) -> str | None:
        """The Node whose BGP address is `address` (a route's originator)."""
        for node in self.cluster.of(Node):
            if isinstance(node, Node) and node_view(node).ipv4_address == address:
                return node.name
        return None

    def status(self) -> list[PeerStatus]:
        """Every desired session with its state and counts, in address order."""
        if self.plan is None:
            return []
        rows = []
        link = self.reflection.link if self.reflection is not None else None
        reflected = link.advertised_counts() if link is not None else {}
        for peer in self.plan.peers.peers:
            session = self.adapter.session_info(peer.address)
            up = session.state is SessionState.ESTABLISHED
            rows.append(
                PeerStatus(
                    address=peer.address,
                    peer_type=peer.peer_type.value,
                    state=session.state.value,
                    since=session.since,
                    info=session.info,
                    received=self.learned.received_from(peer.address),
                    accepted=self.learned.accepted_from(peer.address),
                    advertised=(len(self.plan.exports) + reflected.get(peer.address, 0))
                    if up
                    else 0,
                )
            )
        return rows

    async def start(self) -> None:
        self.tasks = [
            *(
                asyncio.create_task(self._follow(kind), name=f"follow-{kind}")
                for kind in WATCHED_KINDS
            ),
            asyncio.create_task(self._replan_loop(), name="replan"),
            asyncio.create_task(self._route_loop(), name="routes"),
            asyncio.create_task(self._expiry_loop(), name="graceful-restart-expiry"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.reflection is not None:
            await self.reflection.stop()
        await self.adapter.stop()

    async def _follow(self, kind: str) -> None:
        while True:
            listing = await self.datastore.list(kind)
            self.cluster.objects[kind] = {obj.name: obj for obj in listing.items}
            self._listed.add(kind)
            self._dirty.set()
            try:
                async for event in self.datastore.watch(kind, listing.revision):
                    table = self.cluster.objects[kind]
                    if event.type is EventType.DELETED:
                        table.pop(event.obj.name, None)
                    else:
                        table[event.obj.name] = event.obj
                    self._dirty.set()
            except RevisionCompacted:
                log.info("watch on %s compacted: listing again", kind)

    async def _replan_loop(self) -> None:
        started = False
        while True:
            await self._dirty.wait()
            await asyncio.sleep(BATCH_DELAY)
            self._dirty.clear()
            if self._listed != set(WATCHED_KINDS):
                continue
            plan = plan_for(self.node, self.cluster, self._blocks, self._borrowed)
            if self.plan is None or plan.peers.problems != self.plan.peers.problems:
                for problem in plan.peers.problems:
                    log.warning("%s", problem)
            self.plan = plan
            changes = self.learned.set_policy(plan.policy)
            changes += self.learned.keep_only(plan.peers.by_address())
            if changes:
                await self.sink.apply(changes)
            self.adapter.set_exports(plan.exports)
            if self.reflection is not None:
                self.reflection.configure(
                    self.cluster_id(), self.address(), plan.peers.by_address()
                )
            if started:
                self.adapter.set_peers(plan.peers.peers)
            else:
                await self.adapter.start(plan.peers.peers)
                started = True

    async def _route_loop(self) -> None:
        loop = asyncio.get_running_loop()
        async for received in self.adapter.events():
            if isinstance(received, PeerUp | PeerDown | SpeakerRestarted):
                log.info("%s: %s", self.node, received)
            elif not isinstance(received, RoutesAnnounced | RoutesWithdrawn):
                log.debug("%s: %s", self.node, received)
            peers = self.plan.peers.by_address() if self.plan is not None else {}
            if self.reflection is not None:
                event = self.reflection.observe(received, peers)
            else:
                event, loop_reason = screen(received, self.address(), None)
                if loop_reason is not None:
                    self.loops[loop_reason] += len(event.prefixes)  # type: ignore[union-attr]
            changes = self.learned.apply(event, peers, now=loop.time())
            self._log_rejections()
            if changes:
                await self.sink.apply(changes)
            if self.learned.stale:
                self._wake_expiry.set()

    async def _expiry_loop(self) -> None:
        """Ends graceful-restart windows: drops stale routes whose time ran out."""
        loop = asyncio.get_running_loop()
        while True:
            deadline = self.learned.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_expiry.wait(), timeout)
            self._wake_expiry.clear()
            changes = self.learned.expire(loop.time())
            if changes:
                await self.sink.apply(changes)

    def _log_rejections(self) -> None:
        rejected = self.learned.rejections
        if not rejected:
            return
        # One line per UPDATE, not per prefix: a hostile peer can send 100k.
        reasons = Counter(r.reason.value for r in rejected)
        sample = ", ".join(str(r.prefix) for r in rejected[:5])
        log.warning(
            "rejected %d prefixes from %s (%s): %s%s",
            len(rejected),
            rejected[0].peer,
            ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items())),
            sample,
            ", …" if len(rejected) > 5 else "",
        )
