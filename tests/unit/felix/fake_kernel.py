"""A fake kernel that understands meaning: it answers "where would this packet go?".

Faucet's fakeoftable idea for routes: tests apply felix's ops here and then
ask `forward(ip)` for the outcome (blackhole, a local veth, a plain next hop,
an IPIP tunnel to a node, or VXLAN to a node resolved through the neighbour
and FDB tables), never which calls were made. The error behaviour mirrors
rtnetlink's for the cases felix relies on: EEXIST on an exclusive add over any
route, ESRCH deleting a route that is not there (or not ours), ENODEV for a missing
device, ENETUNREACH for a gateway that is not on a connected subnet (unless
`onlink`).
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import (
    GINGHAM_RTPROT,
    IPIP_DEVICE,
    VXLAN_DEVICE,
    Action,
    FdbEntry,
    FdbOp,
    KernelState,
    LinkOp,
    Neighbour,
    NeighbourOp,
    Op,
    OpResult,
    Route,
    RouteOp,
    RouteType,
)

RTPROT_KERNEL = 2
RTPROT_STATIC = 4


@dataclass(frozen=True)
class Outcome:
    """Where one path sends a packet: kind is blackhole|local|plain|ipip|vxlan|none."""

    kind: str
    to: str = ""


@dataclass
class FakeKernel:
    links: set[str] = field(default_factory=lambda: {"lo", "eth0"})
    # (dst) -> (route, protocol)
    routes: dict[IPv4Network, tuple[Route, int]] = field(default_factory=dict)
    neighbours: dict[tuple[str, IPv4Address], Neighbour] = field(default_factory=dict)
    fdb: dict[tuple[str, str], FdbEntry] = field(default_factory=dict)
    # dst -> errno to answer the next op on it with (one shot).
    fail_next: dict[IPv4Network, int] = field(default_factory=dict)
    applied: int = 0

    # ---- set-up helpers (what the host has that felix does not own)

    def add_address(self, dev: str, cidr: str) -> None:
        """An interface address: the kernel adds a proto-kernel scope-link route."""
        net = IPv4Network(cidr, strict=False)
        self.links.add(dev)
        self.routes[net] = (Route.link(net, dev), RTPROT_KERNEL)

    def add_foreign(self, route: Route, protocol: int = RTPROT_STATIC) -> None:
        self.routes[route.dst] = (route, protocol)

    # ---- KernelPort

    def dump(self, reuse: Mapping[IPv4Network, Route] | None = None) -> KernelState:
        # (`reuse` only saves memory: the routes here are the objects applied)
        owned = KernelState()
        owned.routes = {d: r for d, (r, p) in self.routes.items() if p == GINGHAM_RTPROT}
        owned.neighbours = {k: n for k, n in self.neighbours.items() if n.dev == VXLAN_DEVICE}
        owned.fdb = {k: e for k, e in self.fdb.items() if e.dev == VXLAN_DEVICE}
        owned.links = {n for n in self.links if n.startswith("gh") or n == VXLAN_DEVICE}
        return owned

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        self.applied += len(ops)
        return [OpResult(op, self._apply_one(op)) for op in ops]

    def _apply_one(self, op: Op) -> int:
        if isinstance(op, RouteOp):
            return self._route(op)
        if isinstance(op, NeighbourOp):
            n = op.neighbour
            return self._table_op(self.neighbours, (n.dev, n.ip), n, n.dev, op.action)
        if isinstance(op, FdbOp):
            e = op.entry
            return self._table_op(self.fdb, (e.dev, e.mac), e, e.dev, op.action)
        return self._delete_link(op)

    def _table_op(
        self, table: dict[object, object], key: object, value: object, dev: str, action: Action
    ) -> int:
        if dev not in self.links:
            return errno.ENODEV
        if action is Action.DELETE:
            return 0 if table.pop(key, None) is not None else errno.ENOENT
        table[key] = value
        return 0

    def _route(self, op: RouteOp) -> int:
        route = op.route
        injected = self.fail_next.pop(route.dst, 0)
        if injected:
            return injected
        existing = self.routes.get(route.dst)
        if op.action is Action.DELETE:
            if existing is None or existing[1] != GINGHAM_RTPROT:
                return errno.ESRCH  # what rtnetlink says for "no such route"
            del self.routes[route.dst]
            return 0
        if op.action is Action.ADD and existing is not None:
            return errno.EEXIST
        for hop in route.nexthops:
            if hop.dev is not None and hop.dev not in self.links:
                return errno.ENODEV
            if hop.gateway is not None and not hop.onlink and not self._connected(hop.gateway):
                return errno.ENETUNREACH
        self.routes[route.dst] = (route, GINGHAM_RTPROT)
        return 0

    def _delete_link(self, op: LinkOp) -> int:
        if op.name not in self.links:
            return errno.ENODEV
        self.links.discard(op.name)
        # The kernel drops everything that hangs off a deleted device.
        for dst, (route, _p) in list(self.routes.items()):
            if any(h.dev == op.name for h in route.nexthops):
                del self.routes[dst]
        for table in (self.neighbours, self.fdb):
            for key in [k for k in table if k[0] == op.name]:
                del table[key]
        return 0

    # ---- meaning

    def _connected(self, ip: IPv4Address) -> bool:
        return any(
            ip in dst and r.nexthops and r.nexthops[0].gateway is None and p == RTPROT_KERNEL
            for dst, (r, p) in self.routes.items()
        )

    def lookup(self, ip: str | IPv4Address) -> Route | None:
        """Longest-prefix match over every route in the table (owned or not)."""
        addr = IPv4Address(ip)
        best: Route | None = None
        for dst, (route, _p) in self.routes.items():
            if addr in dst and (best is None or dst.prefixlen > best.dst.prefixlen):
                best = route
        return best

    def forward(self, ip: str | IPv4Address) -> set[Outcome]:
        """Every way a packet to `ip` can leave (a set: ECMP has several)."""
        route = self.lookup(ip)
        if route is None:
            return {Outcome("none")}
        if route.type is RouteType.BLACKHOLE:
            return {Outcome("blackhole")}
        outcomes = set()
        for hop in route.nexthops:
            if hop.gateway is None:
                outcomes.add(Outcome("local", hop.dev or ""))
            elif hop.dev == IPIP_DEVICE:
                outcomes.add(Outcome("ipip", str(hop.gateway)))
            elif hop.dev == VXLAN_DEVICE:
                neigh = self.neighbours.get((VXLAN_DEVICE, hop.gateway))
                entry = self.fdb.get((VXLAN_DEVICE, neigh.mac)) if neigh else None
                outcomes.add(Outcome("vxlan", str(entry.dst)) if entry else Outcome("none"))
            else:
                outcomes.add(Outcome("plain", str(hop.gateway)))
        return outcomes
