"""Tunnel devices, forwarding, and reading pod veths back, via pyroute2.

What is here: the VXLAN device `vxlan.gingham` and `tunl0` (`ensure_vxlan`,
`ensure_tunl0`), IPv4 forwarding, and two readers of the pod veths felix
made (felix.veth makes, checks and deletes them): `describe_workload` names
the attachment behind a host veth from its ifalias (`<container ID>/<pod
interface>`) and its permanent pod neighbour entry, and `discover_workloads`
lists every `gh*` veth with its pod IPs, so a restarted felix can adopt what
it finds in the kernel.

Invariants: every function is idempotent (re-running it converges, never
duplicates), takes the host namespace explicitly (None = felix's own; tests
pass a namespace they created), and touches only links felix owns (names
from `host_interface_name`, `vxlan.gingham`, `tunl0`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from felix.dataplane import (
    HOST_IFACE_PREFIX,
    IPIP_DEVICE,
    VXLAN_DEVICE,
    VXLAN_PORT,
    VXLAN_VNI,
)
from felix.netns import netns_path, socket_in_netns, write_sysctls

NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
IFF_UP = 0x1


def open_rtnl(netns: str | None) -> Any:
    """A pyroute2 IPRoute in `netns` (a missing namespace is an error, never created).

    pyroute2's own `netns=` forks a child to make the socket, which crashes a
    process that runs gRPC threads; felix makes the socket on a setns'd
    thread instead and hands pyroute2 the descriptor.
    """
    if netns is None:
        return IPRoute()
    sock = socket_in_netns(netns_path(netns), socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    return IPRoute(fileno=sock.detach())


def enable_forwarding(host_netns: str | None) -> None:
    write_sysctls(host_netns, {"net/ipv4/ip_forward": "1"})


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


@dataclass(frozen=True)
class FoundWorkload:
    """What the kernel says about one pod veth (for attachments felix has no record of)."""

    container_id: str
    pod_interface: str
    pod_mac: str


def describe_workload(host_netns: str | None, host_interface: str) -> FoundWorkload | None:
    """The attachment behind a host veth, from its ifalias and its pod neighbour entry."""
    with open_rtnl(host_netns) as host:
        index = _index(host, host_interface)
        if index is None:
            return None
        alias = str(host.get_links(index)[0].get_attr("IFLA_IFALIAS") or "")
        macs = sorted(
            str(n.get_attr("NDA_LLADDR")).lower()
            for n in host.get_neighbours(ifindex=index, family=2)
            if n["state"] & NUD_PERMANENT and n.get_attr("NDA_LLADDR")
        )
    container_id, _, pod_interface = alias.rpartition("/")
    return FoundWorkload(container_id, pod_interface, macs[0] if macs else "")


# ---------------------------------------------------------------- tunnels


def ensure_vxlan(
    host_netns: str | None,
    vtep_ip: IPv4Address,
    vtep_mac: str,
    local_ip: IPv4Address | None,
    mtu: int = 1450,
) -> int:
    """Create/converge `vxlan.gingham` (VNI 4096, UDP 4789, no learning); its index.

    A MAC change flushes the device's neighbour entries: the caller (the agent)
    must then forget the ones it programmed (`Reconciler.forget_neighbours`).
    """
    with open_rtnl(host_netns) as ipr:
        index = _index(ipr, VXLAN_DEVICE)
        if index is None:
            extra = {"vxlan_local": str(local_ip)} if local_ip is not None else {}
            ipr.link(
                "add",
                ifname=VXLAN_DEVICE,
                kind="vxlan",
                vxlan_id=VXLAN_VNI,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
                **extra,
            )
            index = _index(ipr, VXLAN_DEVICE)
            assert index is not None
        # Set only what differs: setting a link's MAC, even to the one it has, makes
        # the kernel flush every neighbour entry on it (NETDEV_CHANGEADDR), the
        # permanent VTEP entries felix programmed included. Doing that on every
        # pass left remote VTEPs INCOMPLETE until the next resync re-added them.
        link = ipr.get_links(index)[0]
        changes: dict[str, Any] = {}
        if str(link.get_attr("IFLA_ADDRESS")).lower() != vtep_mac.lower():
            changes["address"] = vtep_mac
        if link.get_attr("IFLA_MTU") != mtu:
            changes["mtu"] = mtu
        if not link["flags"] & IFF_UP:
            changes["state"] = "up"
        if changes:
            ipr.link("set", index=index, **changes)
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
        if str(vtep_ip) not in have:
            ipr.addr("add", index=index, address=str(vtep_ip), prefixlen=32)
        return index


def ensure_tunl0(host_netns: str | None, tunnel_ip: IPv4Address | None) -> str | None:
    """Bring `tunl0` up (loading ipip creates it; we never add it).

    Returns None when done, or a one-line reason when this kernel cannot do
    IPIP, for felix to report once and keep serving everything else.
    """
    with open_rtnl(host_netns) as ipr:
        index = _index(ipr, IPIP_DEVICE)
        if index is None:
            try:
                # Creating any ipip link makes the kernel load ipip and create tunl0.
                ipr.link("add", ifname="ghipipprobe", kind="ipip")
                ipr.link("del", index=_index(ipr, "ghipipprobe"))
            except NetlinkError as exc:
                return (
                    f"kernel has no ipip support ({exc.args[1] if len(exc.args) > 1 else exc}):"
                    " IPIP pools cannot be routed on this node"
                )
            index = _index(ipr, IPIP_DEVICE)
            if index is None:
                return "ipip loaded but tunl0 did not appear"
        ipr.link("set", index=index, state="up")
        if tunnel_ip is not None:
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
            if str(tunnel_ip) not in have:
                ipr.addr("add", index=index, address=str(tunnel_ip), prefixlen=32)
    return None


def discover_workloads(host_netns: str | None) -> list[tuple[str, tuple[IPv4Address, ...]]]:
    """(host interface, pod IPs) for every gh* veth, from its permanent neighbours."""
    found = []
    with open_rtnl(host_netns) as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if not name or not name.startswith(HOST_IFACE_PREFIX):
                continue
            ips = tuple(
                sorted(
                    IPv4Address(n.get_attr("NDA_DST"))
                    for n in ipr.get_neighbours(ifindex=link["index"], family=2)
                    if n["state"] & NUD_PERMANENT
                )
            )
            found.append((str(name), ips))
    return found
