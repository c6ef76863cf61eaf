"""Plain data for the kernel state felix owns, and the operations that change it.

This is the vocabulary shared by the pure core (`desired`, `reconcile`) and the
kernel adapters (`felix.netlink`): routes, neighbour and FDB entries, owned
links, and an `Op` per change. Nothing here talks to a kernel.

Ownership (the rule every other module relies on):
- A route is felix's iff it carries `GINGHAM_RTPROT` (rtnetlink protocol 77,
  free in iproute2's rt_protos and distinct from Calico's 80, so both can
  coexist on one host during a migration). Only the main table is used.
- A link is felix's iff its name starts with `HOST_IFACE_PREFIX` (pod veths) or
  is `VXLAN_DEVICE`. Neighbour and FDB entries are felix's iff they sit on
  `VXLAN_DEVICE` (pod neighbour entries die with their veth).
Routes are keyed by destination: felix keeps at most one route per prefix in
the main table (several next hops make it a multipath route).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

GINGHAM_RTPROT = 77
HOST_IFACE_PREFIX = "gh"
VXLAN_DEVICE = "vxlan.gingham"
VXLAN_VNI = 4096
VXLAN_PORT = 4789
IPIP_DEVICE = "tunl0"
# The pod's default gateway: never on the wire, answered by proxy ARP.
POD_GATEWAY = IPv4Address("169.254.1.1")


def host_interface_name(container_id: str, interface_name: str) -> str:
    """`gh` + 11 hex chars of a hash of the attachment: stable, ≤ 15 chars (IFNAMSIZ)."""
    digest = hashlib.sha1(f"{container_id}/{interface_name}".encode()).hexdigest()
    return HOST_IFACE_PREFIX + digest[:11]


class RouteType(enum.Enum):
    UNICAST = "unicast"
    BLACKHOLE = "blackhole"


class Scope(enum.IntEnum):
    # rtnetlink values, so the adapter needs no table.
    UNIVERSE = 0
    LINK = 253


class NextHop(NamedTuple):
    """One path. `dev` None lets the kernel pick the device from the gateway.

    Normal form (what dumps return, so desired and actual compare equal): a hop
    with a gateway and without `onlink` never names a device.
    """

    gateway: IPv4Address | None = None
    dev: str | None = None
    onlink: bool = False

    def __str__(self) -> str:
        parts = []
        if self.gateway is not None:
            parts.append(f"via {self.gateway}")
        if self.dev is not None:
            parts.append(f"dev {self.dev}")
        if self.onlink:
            parts.append("onlink")
        return " ".join(parts)


class Route(NamedTuple):
    """A main-table route felix owns. `nexthops` is sorted; >1 means ECMP.

    The per-route records (Route, NextHop, RouteOp, OpResult) are named
    tuples, not frozen dataclasses: a full table makes several per prefix, and
    a frozen dataclass costs ~1.5 µs to build (one `object.__setattr__` per
    field) where a tuple costs ~0.3; equality is the tuple's, in C."""

    dst: IPv4Network
    type: RouteType = RouteType.UNICAST
    nexthops: tuple[NextHop, ...] = ()
    scope: Scope = Scope.UNIVERSE

    @staticmethod
    def blackhole(dst: IPv4Network) -> Route:
        return Route(dst, RouteType.BLACKHOLE)

    @staticmethod
    def via(dst: IPv4Network, *nexthops: NextHop) -> Route:
        return Route(dst, RouteType.UNICAST, tuple(sorted(set(nexthops))))

    @staticmethod
    def link(dst: IPv4Network, dev: str) -> Route:
        return Route(dst, RouteType.UNICAST, (NextHop(dev=dev),), Scope.LINK)

    def __str__(self) -> str:
        if self.type is RouteType.BLACKHOLE:
            return f"blackhole {self.dst}"
        hops = " ".join(f"nexthop {h}" for h in self.nexthops)
        if len(self.nexthops) == 1:
            hops = str(self.nexthops[0])
        scope = " scope link" if self.scope is Scope.LINK else ""
        return f"{self.dst} {hops}{scope}"


@dataclass(frozen=True)
class Neighbour:
    """A permanent ARP entry, e.g. remote VTEP IP → VTEP MAC on the VXLAN device."""

    dev: str
    ip: IPv4Address
    mac: str


@dataclass(frozen=True)
class FdbEntry:
    """A bridge FDB entry on the VXLAN device: VTEP MAC → remote node underlay IP."""

    dev: str
    mac: str
    dst: IPv4Address


class Action(enum.Enum):
    ADD = "add"
    REPLACE = "replace"
    DELETE = "delete"


class RouteOp(NamedTuple):
    action: Action
    route: Route


@dataclass(frozen=True)
class NeighbourOp:
    action: Action
    neighbour: Neighbour


@dataclass(frozen=True)
class FdbOp:
    action: Action
    entry: FdbEntry


@dataclass(frozen=True)
class LinkOp:
    """Only deletion: links are created imperatively (AddWorkload, tunnel set-up)."""

    action: Action
    name: str


Op = RouteOp | NeighbourOp | FdbOp | LinkOp


class OpResult(NamedTuple):
    """What the kernel said about one op: errno 0 means accepted."""

    op: Op
    errno: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.errno == 0


@dataclass
class KernelState:
    """What felix owns in a kernel (from a dump), or what it wants there."""

    routes: dict[IPv4Network, Route] = field(default_factory=dict)
    neighbours: dict[tuple[str, IPv4Address], Neighbour] = field(default_factory=dict)
    fdb: dict[tuple[str, str], FdbEntry] = field(default_factory=dict)
    # Owned links by name (gh* veths, vxlan.gingham).
    links: set[str] = field(default_factory=set)
