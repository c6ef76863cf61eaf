"""The agent: felix's state and its reconcile loop (asyncio, one writer).

Owns what felix knows — pools, nodes, this node's blocks, local workloads, the
route feed — and turns it into kernel state through the pure core
(`DesiredTracker` → `Reconciler`) and a `HostPort` adapter. Events only
mark the agent dirty; the loop drains them and reconciles once per batch
(batch, then commit), and also on a periodic resync that re-dumps the
kernel. Kernel calls block, so they run in a worker thread; only one
reconcile runs at a time.

The route feed path is incremental: a pass takes the prefixes the feed
changed since the last pass (O(changed) on the loop, never the whole feed),
the tracker re-derives only those, and the plan diffs only the destinations
whose desired route changed (plus failed ones); everything else is O(nodes +
blocks + workloads). Deltas that arrive while a pass runs go into the next
one; a pass woken by feed changes alone waits `debounce` (a few ms) first so
a burst lands in one pass. Bulk route ops go out through felix.rtnl from the
worker thread, so the loop keeps serving gRPC and HTTP meanwhile.

Invariants:
- Removal waits for `datastore_synced` and the feed's first snapshot (the
  Reconciler enforces it; the agent only reports the two facts).
- Local workloads found in the kernel at start (gh* veths with their
  permanent pod neighbour entries) are adopted before the first reconcile,
  so a restarted felix never removes the /32 of a running pod.
- A capability problem (no ipip) is reported once in the log and kept in
  `problems` for Status; everything else keeps being served.
- A pod veth that vanished without a DeleteWorkload (its netns was removed:
  the kernel deleted the pair and its /32) is a fact, not a failure: a
  resync whose dump lacks a registered workload's link, or a route op the
  kernel refuses with ENODEV for it, drops the workload from `workloads`
  (so from the desired state) and forgets the link. Its address stays with
  felix.workloads until DEL or GC. Only the workload object that pass saw is
  dropped: a new veth of the same name registered meanwhile stays.
- One failed op never holds back the others (felix.reconcile): the loop also
  wakes when the earliest held-back op is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from itertools import islice
from typing import Protocol

from felix.dataplane import VXLAN_DEVICE, KernelState, OpResult
from felix.desired import (
    Change,
    DesiredInputs,
    DesiredTracker,
    EncapMode,
    LocalWorkload,
    NodeInfo,
    PoolInfo,
    vxlan_in_use,
)
from felix.feed import PathLike, RouteFeed
from felix.nat import nat_ruleset
from felix.reconcile import KernelPort, Reconciler, reconcile_once

log = logging.getLogger("felix.agent")
_UNKNOWN = object()
# Learned prefixes a pass derives, diffs and applies at a time (see _reconcile_blocking).
PASS_SLICE = 10_000


def _slices(
    changes: Mapping[IPv4Network, Sequence[PathLike] | None], size: int
) -> Iterator[Mapping[IPv4Network, Sequence[PathLike] | None] | list[Change]]:
    """`changes` in parts of at most `size`; at least one part, even if empty (the
    tracker also follows everything else a pass's inputs hold). Lists of pairs:
    a dict per part would hash every prefix once more."""
    if len(changes) <= size:
        yield changes
        return
    items = iter(changes.items())
    while part := list(islice(items, size)):
        yield part


class HostPort(KernelPort, Protocol):
    """The kernel adapter the agent needs beyond routes (see felix.host)."""

    def discover_workloads(self) -> list[LocalWorkload]: ...

    def ensure_vxlan(
        self, vtep_ip: IPv4Address, vtep_mac: str, local: IPv4Address | None
    ) -> None: ...

    def ensure_tunl0(self, tunnel_ip: IPv4Address | None) -> str | None: ...

    def apply_nat(self, ruleset: str | None) -> None:
        """Make felix's NAT table exactly `ruleset` (None: absent); raises on failure."""
        ...


@dataclass
class Stats:
    reconciles: int = 0
    last_duration: float = 0.0
    errors: int = 0
    ops_applied: int = 0


@dataclass
class Agent:
    node: str
    host: HostPort
    resync_interval: float = 30.0
    clock: Callable[[], float] = time.monotonic
    feed: RouteFeed = field(default_factory=RouteFeed)
    reconciler: Reconciler = field(default_factory=Reconciler)
    pools: dict[str, PoolInfo] = field(default_factory=dict)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    blocks: set[IPv4Network] = field(default_factory=set)
    workloads: dict[str, LocalWorkload] = field(default_factory=dict)
    # Subnets this node is directly attached to (CrossSubnet decisions).
    connected: list[IPv4Network] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    capability_problems: set[str] = field(default_factory=set)
    # Called after each pass with the results of the ops the kernel refused.
    on_reconciled: Callable[[Agent, list[OpResult]], None] | None = None
    # Seconds a pass woken only by feed changes waits for the rest of a burst.
    debounce: float = 0.002
    tracker: DesiredTracker = field(default_factory=DesiredTracker)

    def __post_init__(self) -> None:
        self._dirty = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        # What felix last wrote as its NAT table; _UNKNOWN until the first write.
        self._nat_programmed: str | object | None = _UNKNOWN
        self._nat_problem = ""
        self._datastore_kinds_pending: set[str] = set()
        self._next_resync = 0.0
        self._started = False
        self._links_removed: set[str] = set()
        # Worker-thread state (one pass at a time): destinations to diff next plan.
        self._pending_routes: set[IPv4Network] = set()
        self._full_plan = True
        self._removal_planned = False
        self._vtep: tuple[IPv4Address, str] | None = None  # this node's VTEP, last ensured
        # Workloads whose veth a pass found gone (worker thread), for the loop to drop.
        self._vanished: list[LocalWorkload] = []

    # ---- facts in

    def mark_dirty(self) -> None:
        self._dirty.set()

    def request_resync(self) -> None:
        """Make the next pass a full resync (re-dump the kernel), now rather than on schedule."""
        self._next_resync = 0.0
        self.mark_dirty()

    def link_removed(self, name: str) -> None:
        """A link felix owned was deleted outside a reconcile (DeleteWorkload).

        Folded into the programmed view at the start of the next pass, on the
        loop: a pass running now may still commit ops planned before the delete.
        """
        self._links_removed.add(name)
        self.mark_dirty()

    def expect_datastore_kinds(self, kinds: set[str]) -> None:
        self._datastore_kinds_pending = set(kinds)
        if not kinds:
            self.reconciler.datastore_synced = True

    def datastore_kind_synced(self, kind: str) -> None:
        self._datastore_kinds_pending.discard(kind)
        if not self._datastore_kinds_pending and not self.reconciler.datastore_synced:
            log.info("first full datastore snapshot processed")
            self.reconciler.datastore_synced = True
        self.mark_dirty()

    @property
    def desired_problems(self) -> list[str]:
        return self.tracker.problems

    @property
    def problems(self) -> list[str]:
        failures = list(self.reconciler.failures.values())
        nat = [self._nat_problem] if self._nat_problem else []
        return sorted(self.capability_problems) + self.desired_problems + failures + nat

    @property
    def ready(self) -> bool:
        return self.reconciler.removal_allowed and self.stats.reconciles > 0

    def inputs(self) -> DesiredInputs:
        """Everything but the learned routes (the tracker gets those as changes)."""
        me = self.nodes.get(self.node)
        address = me.address if me else None
        return DesiredInputs(
            node=self.node,
            node_address=address,
            connected=list(self.connected),
            pools=[p for p in self.pools.values() if not p.disabled],
            blocks=sorted(self.blocks),
            workloads=list(self.workloads.values()),
            nodes=dict(self.nodes),
        )

    def _feed_changes(self) -> Mapping[IPv4Network, Sequence[PathLike] | None]:
        # The groups are immutable tuples: safe to hand to the worker thread.
        return self.feed.take_changes()

    # ---- the loop

    async def start(self) -> None:
        """Adopt the workloads already plumbed in the kernel (restart safety)."""
        for workload in await asyncio.to_thread(self.host.discover_workloads):
            self.workloads.setdefault(workload.host_interface, workload)
        self._started = True

    async def run(self) -> None:
        if not self._started:
            await self.start()
        while True:
            now = self.clock()
            wait = max(0.0, self._next_resync - now)
            retry = self.reconciler.next_retry()
            if retry is not None:
                wait = min(wait, max(0.0, retry - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=wait)
            if self.debounce and self._dirty.is_set() and not self._waiters:
                # A debounce, not synchronisation: more of a delta burst joins this pass.
                await asyncio.sleep(self.debounce)
            self._dirty.clear()
            await self.reconcile(resync=self.clock() >= self._next_resync)

    async def reconcile(self, resync: bool) -> list[OpResult]:
        """One pass; the results of the ops the kernel refused (`stats` counts them all)."""
        # Snapshot everything on the loop: the worker thread must not iterate dicts
        # that datastore events mutate meanwhile.
        # Waiters that arrived before this pass began are answered by it; later
        # ones wait for the next (their change may not be in this pass's inputs).
        waiters, self._waiters = self._waiters, []
        forgotten: set[IPv4Network] = set()
        for name in sorted(self._links_removed):
            forgotten |= self.reconciler.forget_link(name)
        self._links_removed.clear()
        self.reconciler.routes_synced = self.feed.synced
        inputs = self.inputs()
        changes = self._feed_changes()
        nat = nat_ruleset(list(self.pools.values()))
        started = time.perf_counter()
        applied, failed = await asyncio.to_thread(
            self._reconcile_blocking, inputs, changes, forgotten, nat, resync
        )
        self.stats.last_duration = time.perf_counter() - started
        self.stats.reconciles += 1
        self.stats.ops_applied += applied
        self.stats.errors += len(failed)
        if resync:
            self._next_resync = self.clock() + self.resync_interval
        self._drop_vanished()
        if self.on_reconciled is not None:
            self.on_reconciled(self, failed)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return failed

    def _drop_vanished(self) -> None:
        vanished, self._vanished = self._vanished, []
        for workload in vanished:
            name = workload.host_interface
            if self.workloads.get(name) is not workload:
                continue  # deleted, or plumbed anew, since that pass began
            log.warning(
                "workload veth %s (%s) is gone without a DeleteWorkload (its netns was "
                "removed?): its routes are no longer wanted; its address stays until DEL or GC",
                name, ", ".join(map(str, workload.ips)),
            )  # fmt: skip
            del self.workloads[name]
            self.link_removed(name)

    async def reconciled(self) -> None:
        """Return after a reconcile pass that began after this call ends.

        AddWorkload waits on it for its route: a pass already running when the
        workload was registered does not count.
        """
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.mark_dirty()
        await waiter

    def _reconcile_blocking(
        self,
        inputs: DesiredInputs,
        changes: Mapping[IPv4Network, Sequence[PathLike] | None],
        forgotten: set[IPv4Network],
        nat: str | None,
        resync: bool,
    ) -> tuple[int, list[OpResult]]:
        """The pass itself (worker thread): how many ops went, and the failed ones.

        The feed's changes are derived, diffed and applied a slice at a time
        (`PASS_SLICE` prefixes), so what a pass builds per route — the changed
        destinations, the ops, the kernel's answers — is bounded by the slice,
        not the table (a full table arrives as one change set). What no slice
        covers is looked at after the last one, with the whole desired state
        derived: every destination after a resync or on the first pass, and on
        the first pass allowed to remove, the programmed routes no longer
        desired (their deletes were held back).
        """
        self._ensure_tunnels(inputs)
        reconciler = self.reconciler
        if resync:
            actual = self.host.dump(reuse=reconciler.programmed.routes)
            gone = [w for w in inputs.workloads if w.host_interface not in actual.links]
            if gone:
                self._vanished += gone
                inputs.workloads = [w for w in inputs.workloads if w not in gone]
            reconciler.load_actual(actual)
            del actual
        now = self.clock()
        removal = reconciler.removal_allowed
        # What the slices' plans cannot see: after a resync or on the first pass,
        # anything may differ; deletes held back until removal was allowed wait on
        # destinations no slice may name again (programmed, no longer desired).
        full = resync or self._full_plan
        stale = removal and not self._removal_planned and not full
        applied, failed = 0, []
        for part in _slices(changes, PASS_SLICE):
            changed = self.tracker.update(inputs, part)
            if self._pending_routes:  # (a retry that was not due yet left some behind)
                changed |= self._pending_routes
            if forgotten:
                changed |= forgotten
                forgotten = set()
            self._pending_routes = changed
            # In the feed's order, not the set's (its hash order): the kernel and
            # the programmed table take a table in address order faster.
            prefixes = part.keys() if isinstance(part, Mapping) else (p for p, _ in part)
            only = [p for p in prefixes if p in changed]
            if len(only) < len(changed):
                only += changed.difference(only)
            results = reconcile_once(
                reconciler, self.host, self.tracker.state, now, False, only=only
            )
            self._pending_routes = set()
            applied += len(results)
            failed += [r for r in results if not r.ok]
        if full or stale:
            desired = self.tracker.state
            unwanted = None
            if not full:
                unwanted = [d for d in reconciler.programmed.routes if d not in desired.routes]
            results = reconcile_once(reconciler, self.host, desired, now, False, only=unwanted)
            applied += len(results)
            failed += [r for r in results if not r.ok]
        self._full_plan = False
        self._removal_planned = removal
        missing = reconciler.take_missing_devices()
        if missing:
            self._vanished += [w for w in inputs.workloads if w.host_interface in missing]
        self._reconcile_nat(nat, resync)
        return applied, failed

    def _reconcile_nat(self, ruleset: str | None, resync: bool) -> None:
        # Pools are only fully known after the datastore snapshot: before it, the
        # table is left exactly as a previous felix wrote it.
        if not self.reconciler.datastore_synced:
            return
        if ruleset == self._nat_programmed and not resync:
            return
        try:
            self.host.apply_nat(ruleset)
        except Exception as exc:  # kept for Status; retried on the next pass
            self._nat_problem = f"natOutgoing: {exc}"
            self._nat_programmed = _UNKNOWN
            return
        self._nat_problem = ""
        self._nat_programmed = ruleset

    def _ensure_tunnels(self, inputs: DesiredInputs) -> None:
        me = inputs.nodes.get(self.node)
        if vxlan_in_use(inputs) and me and me.vtep_ip and me.vtep_mac:
            try:
                self.host.ensure_vxlan(me.vtep_ip, me.vtep_mac, me.address)
            except Exception as exc:  # keep serving: routes via the device will fail
                self._report_once(f"cannot set up {VXLAN_DEVICE}: {exc}")
            vtep = (me.vtep_ip, me.vtep_mac.lower())
            if self._vtep not in (None, vtep):
                # A new MAC on the device flushed its neighbour entries: re-add them.
                self.reconciler.forget_neighbours(VXLAN_DEVICE)
            self._vtep = vtep
        if any(p.ipip_mode is not EncapMode.NEVER for p in inputs.pools):
            problem = self.host.ensure_tunl0(me.ipip_tunnel_ip if me else None)
            inputs.ipip_supported = problem is None
            if problem:
                self._report_once(problem)

    def _report_once(self, problem: str) -> None:
        if problem not in self.capability_problems:
            log.error("%s", problem)
            self.capability_problems.add(problem)

    def programmed(self) -> KernelState:
        return self.reconciler.programmed
