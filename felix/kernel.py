"""`NetlinkKernel`: the real kernel behind the reconciler's `KernelPort`.

Routes go through the bulk rtnetlink path (felix.rtnl); the few neighbour,
FDB and link ops go through pyroute2. Ops are applied in the order the
reconciler planned them (it orders FDB/neighbours before routes, deletes
after adds); consecutive route ops are sent as one bulk batch.

Ownership as in felix.dataplane: routes by protocol, links by name prefix or
the VXLAN device name, neighbours/FDB entries only on the VXLAN device.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from felix.dataplane import (
    HOST_IFACE_PREFIX,
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
)
from felix.links import NTF_SELF, NUD_NOARP, NUD_PERMANENT, open_rtnl
from felix.rtnl import RouteSocket


def owned_link(name: str) -> bool:
    return name.startswith(HOST_IFACE_PREFIX) or name == VXLAN_DEVICE


class NetlinkKernel:
    """KernelPort over a real network namespace (None: felix's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.routes = RouteSocket(netns)

    def close(self) -> None:
        self.routes.close()

    def dump(self, reuse: Mapping[IPv4Network, Route] | None = None) -> KernelState:
        state = KernelState()
        state.routes = self.routes.dump_routes(reuse=reuse)
        names = self.routes.refresh_links()
        state.links = {n for n in names if owned_link(n)}
        if VXLAN_DEVICE in names:
            with open_rtnl(self.netns) as ipr:
                index = names[VXLAN_DEVICE]
                for msg in ipr.get_neighbours(ifindex=index, family=2):
                    if msg["state"] & NUD_PERMANENT and msg.get_attr("NDA_LLADDR"):
                        ip = IPv4Address(msg.get_attr("NDA_DST"))
                        mac = str(msg.get_attr("NDA_LLADDR")).lower()
                        state.neighbours[(VXLAN_DEVICE, ip)] = Neighbour(VXLAN_DEVICE, ip, mac)
                for msg in ipr.fdb("dump", ifindex=index):
                    dst, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
                    if msg["ifindex"] != index or dst is None or mac == "00:00:00:00:00:00":
                        continue
                    mac = str(mac).lower()
                    state.fdb[(VXLAN_DEVICE, mac)] = FdbEntry(VXLAN_DEVICE, mac, IPv4Address(dst))
        return state

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        results: list[OpResult] = []
        i = 0
        while i < len(ops):
            j = i
            while j < len(ops) and isinstance(ops[j], RouteOp):
                j += 1
            if j > i:
                batch = [op for op in ops[i:j] if isinstance(op, RouteOp)]
                results += self.routes.apply(batch)
                i = j
                continue
            results += self._apply_small(ops[i : i + 1])
            i += 1
        return results

    def _apply_small(self, ops: Sequence[Op]) -> list[OpResult]:
        results = []
        with open_rtnl(self.netns) as ipr:
            for op in ops:
                try:
                    self._one(ipr, op)
                    results.append(OpResult(op))
                except NetlinkError as exc:
                    results.append(OpResult(op, exc.code or errno.EIO, str(exc)))
        return results

    def _one(self, ipr: Any, op: Op) -> None:
        if isinstance(op, LinkOp):
            found = ipr.link_lookup(ifname=op.name)
            if not found:
                raise NetlinkError(errno.ENODEV, f"no link {op.name}")
            ipr.link("del", index=found[0])
            return
        dev = op.neighbour.dev if isinstance(op, NeighbourOp) else op.entry.dev  # type: ignore[union-attr]
        found = ipr.link_lookup(ifname=dev)
        if not found:
            raise NetlinkError(errno.ENODEV, f"no link {dev}")
        index = found[0]
        command = "del" if op.action is Action.DELETE else "replace"
        if isinstance(op, NeighbourOp):
            n = op.neighbour
            ipr.neigh(command, dst=str(n.ip), lladdr=n.mac, ifindex=index, state=NUD_PERMANENT)
        elif isinstance(op, FdbOp):
            e = op.entry
            ipr.fdb(
                command,
                ifindex=index,
                lladdr=e.mac,
                dst=str(e.dst),
                state=NUD_NOARP | NUD_PERMANENT,
                flags=NTF_SELF,
            )
