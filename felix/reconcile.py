"""Reconcile: diff desired against what felix believes it programmed, emit ops.

The faucet pattern: `Reconciler.plan` returns operations, an adapter (the real
kernel or the unit tests' fake) applies them and hands back one `OpResult`
per op, and `Reconciler.commit` folds the results in. Time is an argument.

Invariants:
- `programmed` is felix's view of what it owns in the kernel. It changes only
  in `commit`, for ops the kernel accepted (or a delete the kernel says was
  already done), and wholesale in `load_actual` after a dump (periodic
  resync). A failed op leaves the old view, so the next plan retries it.
  The exceptions are `forget_link` (a deleted link takes its routes with it
  in the kernel, so they leave the view too) and `forget_neighbours` (a link
  whose MAC changes loses its neighbour entries).
- Nothing is removed — no route, neighbour, FDB entry or link delete is
  planned — until both the first full datastore snapshot and the first full
  route snapshot have been processed (`removal_allowed`). A restarted felix
  therefore only adds and updates until it knows the whole picture, and no
  owned route disappears during a restart.
- A failed op holds back only itself: its object (a route destination, a
  neighbour, an FDB entry, a link) waits its own backoff (exponential,
  capped) before the same op is planned again, while every other object is
  planned as usual. A different desired value for that object is not held
  (a pod's new /32 on an address whose old route failed goes at once). A
  failure is forgotten when its object needs no op any more (it left the
  desired state, or the kernel already has it).
- A route op refused with ENODEV names a device that is gone: its devices
  are collected in `missing_devices` for the agent, which decides whether the
  device was a pod's (a netns removed without DEL) and stops wanting its
  routes.
- A plan may be limited to some route destinations (`only`): the agent
  passes the destinations whose desired route changed since the last plan,
  plus `failed_routes` (those whose last op failed), so steady-state work is
  proportional to the change, not to the table. Neighbours, FDB entries and
  links (one per node or pod) are always diffed whole. A full plan is needed
  after anything that changes `programmed` outside `commit` for unknown keys
  (`load_actual`); `forget_link` returns the destinations it dropped.
- Adds use create-exclusive semantics in the adapter: a foreign route with the
  same destination makes the add fail with EEXIST (reported as a conflict), it
  is never overwritten. Replace is only planned for keys felix already owns.
"""

from __future__ import annotations

import errno
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Protocol, TypeVar

from felix.dataplane import (
    Action,
    FdbOp,
    KernelState,
    LinkOp,
    NeighbourOp,
    Op,
    OpResult,
    Route,
    RouteOp,
)

K = TypeVar("K")
V = TypeVar("V")


class KernelPort(Protocol):
    """What the reconcile loop needs from a kernel adapter."""

    def dump(self, reuse: Mapping[IPv4Network, Route] | None = None) -> KernelState:
        """Everything felix owns right now (routes by protocol, links by prefix, ...).

        A dumped route equal to `reuse`'s for its destination is `reuse`'s object
        (a resync then holds one copy of a full table, not two)."""
        ...

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        """Apply in order; one result per op, in the same order."""
        ...


@dataclass
class Backoff:
    initial: float = 0.05
    maximum: float = 30.0
    factor: float = 2.0
    failures: int = 0
    not_before: float = 0.0

    def failed(self, now: float) -> None:
        delay = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        self.not_before = now + delay

    def succeeded(self) -> None:
        self.failures = 0
        self.not_before = 0.0

    def due(self, now: float) -> bool:
        return now >= self.not_before


@dataclass
class _Retry:
    backoff: Backoff
    # The op that failed: only the same op again is held back.
    op: Op
    subject: str


@dataclass
class Retries:
    """Per-object retry schedule: a failed object waits out its own backoff."""

    initial: float = 0.05
    maximum: float = 30.0
    factor: float = 2.0
    _held: dict[Hashable, _Retry] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def failed(self, op: Op, subject: str, now: float) -> None:
        key = _key(op)
        entry = self._held.get(key)
        if entry is None or entry.op != op:
            entry = _Retry(Backoff(self.initial, self.maximum, self.factor), op, subject)
            self._held[key] = entry
        entry.backoff.failed(now)

    def settle(self, key: Hashable) -> str | None:
        """Forget `key`'s failure; the subject it had, if any."""
        entry = self._held.pop(key, None)
        return entry.subject if entry is not None else None

    def held(self, op: Op, now: float) -> bool:
        entry = self._held.get(_key(op))
        return entry is not None and entry.op == op and not entry.backoff.due(now)

    def held_keys(self) -> list[Hashable]:
        return list(self._held)

    def next_due(self) -> float | None:
        """When the earliest held op may go again (None: nothing is held)."""
        return min((e.backoff.not_before for e in self._held.values()), default=None)


def _diff(
    desired: Mapping[K, V], programmed: Mapping[K, V], removal_allowed: bool
) -> tuple[list[V], list[V], list[V]]:
    adds = [v for k, v in desired.items() if k not in programmed]
    replaces = [v for k, v in desired.items() if k in programmed and programmed[k] != v]
    deletes = [v for k, v in programmed.items() if k not in desired] if removal_allowed else []
    return adds, replaces, deletes


def _diff_keys(
    keys: Collection[K], desired: Mapping[K, V], programmed: Mapping[K, V], removal_allowed: bool
) -> tuple[list[V], list[V], list[V]]:
    """`_diff` restricted to `keys` (in the set's order: sorting IPv4Networks
    would cost more than the diff itself)."""
    adds: list[V] = []
    replaces: list[V] = []
    deletes: list[V] = []
    for key in keys:
        want, have = desired.get(key), programmed.get(key)
        if want is not None:
            if have is None:
                adds.append(want)
            elif have != want:
                replaces.append(want)
        elif have is not None and removal_allowed:
            deletes.append(have)
    return adds, replaces, deletes


@dataclass
class Reconciler:
    programmed: KernelState = field(default_factory=KernelState)
    datastore_synced: bool = False
    routes_synced: bool = False
    retries: Retries = field(default_factory=Retries)
    # The last failure per object (str of the op's subject), cleared on success.
    failures: dict[str, str] = field(default_factory=dict)
    # Route destinations whose last op failed: a limited plan always looks at them.
    failed_routes: set[IPv4Network] = field(default_factory=set)
    # Devices route ops named that the kernel says do not exist (ENODEV), since
    # the agent last took them.
    missing_devices: set[str] = field(default_factory=set)
    # Route destinations compared by plans so far: the work, for tests and metrics.
    compared: int = 0

    @property
    def removal_allowed(self) -> bool:
        return self.datastore_synced and self.routes_synced

    def due(self, now: float) -> bool:
        """True when no failed op is still waiting for its retry time."""
        next_due = self.retries.next_due()
        return next_due is None or now >= next_due

    def next_retry(self) -> float | None:
        """When the earliest held-back op may be planned again (None: none is)."""
        return self.retries.next_due()

    def load_actual(self, actual: KernelState) -> None:
        """Adopt a fresh dump of the kernel as the programmed view (resync).

        The reconciler takes the dump over: the caller must not use it after
        (copying 100,000 routes cost as much as dumping them)."""
        self.programmed = actual

    def forget_link(self, name: str) -> set[IPv4Network]:
        """The link `name` was deleted: the kernel dropped every route through it.

        Without this the view would keep the old /32 of a deleted pod veth, and a
        new veth of the same name and address (CNI DEL then ADD of one container
        ID) would look programmed while the kernel has no route to it.
        """
        self.programmed.links.discard(name)
        gone = [
            dst
            for dst, route in self.programmed.routes.items()
            if any(hop.dev == name for hop in route.nexthops)
        ]
        for dst in gone:
            del self.programmed.routes[dst]
        for key in [k for k in self.programmed.neighbours if k[0] == name]:
            del self.programmed.neighbours[key]
        return set(gone)

    def forget_neighbours(self, dev: str) -> None:
        """The kernel flushed the neighbour entries of `dev` (its MAC changed)."""
        for key in [k for k in self.programmed.neighbours if k[0] == dev]:
            del self.programmed.neighbours[key]

    def plan(
        self,
        desired: KernelState,
        only: Collection[IPv4Network] | None = None,
        now: float | None = None,
    ) -> list[Op]:
        """The ops that turn `programmed` into `desired`, in a safe order.

        `only`: diff just these route destinations (plus `failed_routes`); None: all.
        `now`: leave out ops still waiting for their retry (None: hold nothing back).
        """
        allow = self.removal_allowed
        have = self.programmed
        if only is None:
            self.compared += len(desired.routes) + len(have.routes)
            r_add, r_rep, r_del = _diff(desired.routes, have.routes, allow)
        else:
            keys = set(only) | self.failed_routes if self.failed_routes else only
            self.compared += len(keys)
            r_add, r_rep, r_del = _diff_keys(keys, desired.routes, have.routes, allow)
        n_add, n_rep, n_del = _diff(desired.neighbours, have.neighbours, allow)
        f_add, f_rep, f_del = _diff(desired.fdb, have.fdb, allow)
        l_del = sorted(have.links - desired.links) if allow else []
        ops: list[Op] = []
        # Forwarding state for VXLAN first, so a new route works from its first packet.
        ops += [FdbOp(Action.REPLACE, e) for e in f_add + f_rep]
        ops += [NeighbourOp(Action.REPLACE, n) for n in n_add + n_rep]
        ops += [RouteOp(Action.ADD, r) for r in r_add]
        ops += [RouteOp(Action.REPLACE, r) for r in r_rep]
        ops += [RouteOp(Action.DELETE, r) for r in r_del]
        ops += [NeighbourOp(Action.DELETE, n) for n in n_del]
        ops += [FdbOp(Action.DELETE, e) for e in f_del]
        ops += [LinkOp(Action.DELETE, name) for name in l_del]
        if self.retries:
            self._settle(ops)
            if now is not None:
                ops = [op for op in ops if not self.retries.held(op, now)]
        return ops

    def _settle(self, ops: Sequence[Op]) -> None:
        """Forget the failures of objects this plan has no op for: done or not wanted."""
        pending = {_key(op) for op in ops}
        for key in self.retries.held_keys():
            if key in pending:
                continue
            subject = self.retries.settle(key)
            if subject is not None:
                self.failures.pop(subject, None)
            if isinstance(key, IPv4Network):
                self.failed_routes.discard(key)

    def commit(self, results: Sequence[OpResult], now: float) -> None:
        """Fold the kernel's answers into `programmed`; schedule a retry per failed op."""
        for result in results:
            op = result.op
            # (errno first: the bulk of a full table is accepted route ops)
            if result.errno and not (op.action is Action.DELETE and result.errno in _GONE):
                subject = _subject(op)
                reason = result.message or errno.errorcode.get(result.errno, str(result.errno))
                if op.action is Action.ADD and result.errno == errno.EEXIST:
                    reason = "destination already has a route felix does not own"
                self.failures[subject] = f"{op.action.value} {subject}: {reason}"
                self.retries.failed(op, subject, now)
                if isinstance(op, RouteOp):
                    self.failed_routes.add(op.route.dst)
                    if result.errno == errno.ENODEV:
                        self.missing_devices.update(
                            hop.dev for hop in op.route.nexthops if hop.dev is not None
                        )
                continue
            if self.failures:  # str() of 50k subjects would dominate a bulk commit
                self.failures.pop(_subject(op), None)
            if self.retries:
                self.retries.settle(_key(op))
            if self.failed_routes and isinstance(op, RouteOp):
                self.failed_routes.discard(op.route.dst)
            _record(self.programmed, op)

    def take_missing_devices(self) -> set[str]:
        """The devices ENODEV named since the last call (the caller decides what they were)."""
        devices, self.missing_devices = self.missing_devices, set()
        return devices


def _key(op: Op) -> Hashable:
    """The object an op acts on: one retry schedule per object."""
    if isinstance(op, RouteOp):
        return op.route.dst
    if isinstance(op, NeighbourOp):
        return ("neighbour", op.neighbour.dev, op.neighbour.ip)
    if isinstance(op, FdbOp):
        return ("fdb", op.entry.dev, op.entry.mac)
    return ("link", op.name)


def _subject(op: Op) -> str:
    if isinstance(op, RouteOp):
        return str(op.route.dst)
    if isinstance(op, NeighbourOp):
        return f"neighbour {op.neighbour.ip} dev {op.neighbour.dev}"
    if isinstance(op, FdbOp):
        return f"fdb {op.entry.mac} dev {op.entry.dev}"
    return f"link {op.name}"


# A delete the kernel answers with these found nothing left to delete: done.
_GONE = (errno.ENOENT, errno.ESRCH, errno.ENODEV)


def _record(state: KernelState, op: Op) -> None:
    delete = op.action is Action.DELETE
    if isinstance(op, RouteOp):  # (first: nearly every op is one)
        _put(state.routes, op.route.dst, op.route, delete)
    elif isinstance(op, LinkOp):
        state.links.discard(op.name)
    elif isinstance(op, NeighbourOp):
        _put(state.neighbours, (op.neighbour.dev, op.neighbour.ip), op.neighbour, delete)
    else:
        _put(state.fdb, (op.entry.dev, op.entry.mac), op.entry, delete)


def _put(table: dict[K, V], key: K, value: V, delete: bool) -> None:
    if delete:
        table.pop(key, None)
    else:
        table[key] = value


def reconcile_once(
    reconciler: Reconciler,
    kernel: KernelPort,
    desired: KernelState,
    now: float,
    resync: bool,
    *,
    only: Collection[IPv4Network] | None = None,
    actual: KernelState | None = None,
) -> list[OpResult]:
    """One pass: optionally re-dump the kernel, plan, apply, commit.

    `only` limits the route diff (see `Reconciler.plan`; ignored on a resync,
    which must compare everything). `actual`: a dump the caller already took
    for this resync. Returns the results (empty when nothing is to do, or
    every op left is waiting for its retry).
    """
    if resync:
        if actual is None:
            actual = kernel.dump(reuse=reconciler.programmed.routes)
        reconciler.load_actual(actual)
        only = None
    ops = reconciler.plan(desired, only, now)
    results = kernel.apply(ops) if ops else []
    reconciler.commit(results, now)
    return results
