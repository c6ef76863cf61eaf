"""Links, addresses, neighbours and sysctls via pyroute2: pod veths and tunnels.

Pod plumbing is Calico's routed veth:
- host side `gh<11 hex>` (no address), up, `proxy_arp=1`,
  `neigh/<if>/proxy_delay=0`, `forwarding=1`, and a permanent neighbour
  entry pod IP → pod MAC (the host never ARPs for its pods);
- pod side (`eth0`): the pod IPs as /32, MTU, `169.254.1.1 dev eth0 scope
  link`, `default via 169.254.1.1`, and a permanent neighbour entry
  169.254.1.1 → host veth MAC. Proxy ARP on the host side answers for
  anything else, so the gateway address never exists anywhere.
The host veth's ifalias is `<container ID>/<pod interface>` and the pod side
may be given a MAC (CNI runtimeConfig.mac), so a restarted felix can name an
attachment it finds in the kernel (`describe_workload`).
The /32 route to the pod is *not* made here: it is desired state, written by
the reconciler (felix.rtnl) like every other owned route.

Invariants: every function is idempotent (re-running it converges, never
duplicates), takes the host namespace explicitly (None = felix's own; tests
pass a namespace they created), and touches only links felix owns (names
from `host_interface_name`, `vxlan.gingham`, `tunl0`).
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from felix.dataplane import (
    HOST_IFACE_PREFIX,
    IPIP_DEVICE,
    POD_GATEWAY,
    VXLAN_DEVICE,
    VXLAN_PORT,
    VXLAN_VNI,
)
from felix.netns import netns_path, read_sysctl, socket_in_netns, write_sysctls

NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
IFF_UP = 0x1
RT_SCOPE_LINK = 253


class PlumbingError(RuntimeError):
    """Plumbing could not be done; the message names the interface and why."""


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


@dataclass(frozen=True)
class WorkloadSpec:
    host_interface: str
    pod_interface: str
    netns: str
    ips: tuple[IPv4Address, ...]
    mtu: int = 1500
    # Written as the host veth's ifalias, "<container ID>/<pod interface>", so a
    # restarted felix can name every attachment it finds (ListWorkloads).
    container_id: str = ""
    # The pod interface's MAC; "": keep the kernel's random one.
    mac: str = ""


@dataclass(frozen=True)
class Plumbed:
    host_mac: str
    pod_mac: str


def enable_forwarding(host_netns: str | None) -> None:
    write_sysctls(host_netns, {"net/ipv4/ip_forward": "1"})


def _host_sysctls(name: str) -> dict[str, str]:
    return {
        f"net/ipv4/conf/{name}/proxy_arp": "1",
        f"net/ipv4/neigh/{name}/proxy_delay": "0",
        f"net/ipv4/conf/{name}/forwarding": "1",
    }


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _mac(ipr: Any, index: int) -> str:
    return str(ipr.get_links(index)[0].get_attr("IFLA_ADDRESS"))


def plumb_workload(host_netns: str | None, spec: WorkloadSpec) -> Plumbed:
    """Create (or converge) the veth pair and everything on both ends."""
    with open_rtnl(host_netns) as host:
        index = _index(host, spec.host_interface)
        if index is not None:
            with open_rtnl(spec.netns) as pod:
                if _index(pod, spec.pod_interface) is None:
                    # A half-made pair from a crash: start over.
                    host.link("del", index=index)
                    index = None
        if index is None:
            try:
                pod_fd = os.open(netns_path(spec.netns), os.O_RDONLY)
            except OSError as exc:
                raise PlumbingError(f"netns {spec.netns}: {exc.strerror}") from exc
            try:
                host.link(
                    "add",
                    ifname=spec.host_interface,
                    kind="veth",
                    peer={"ifname": spec.pod_interface, "net_ns_fd": pod_fd},
                )
            except NetlinkError as exc:
                raise PlumbingError(
                    f"creating veth {spec.host_interface} <-> {spec.pod_interface} in "
                    f"{spec.netns}: {exc.args[1] if len(exc.args) > 1 else exc}"
                ) from exc
            finally:
                os.close(pod_fd)
            index = _index(host, spec.host_interface)
            assert index is not None
        write_sysctls(host_netns, _host_sysctls(spec.host_interface))
        host.link("set", index=index, mtu=spec.mtu, state="up")
        if spec.container_id:
            host.link("set", index=index, ifalias=f"{spec.container_id}/{spec.pod_interface}")
        host_mac = _mac(host, index)
        with open_rtnl(spec.netns) as pod:
            pod_index = _index(pod, spec.pod_interface)
            assert pod_index is not None
            if spec.mac and _mac(pod, pod_index) != spec.mac:
                pod.link("set", index=pod_index, address=spec.mac)
            pod.link("set", index=pod_index, mtu=spec.mtu, state="up")
            have = {a.get_attr("IFA_ADDRESS") for a in pod.get_addr(index=pod_index, family=2)}
            for ip in spec.ips:
                if str(ip) not in have:
                    pod.addr("add", index=pod_index, address=str(ip), prefixlen=32)
            pod.route("replace", dst=f"{POD_GATEWAY}/32", oif=pod_index, scope=RT_SCOPE_LINK)
            pod.route("replace", dst="0.0.0.0/0", gateway=str(POD_GATEWAY), oif=pod_index)
            # Beyond Calico: a permanent entry for the gateway, so the pod never ARPs
            # for it (no first-packet delay, and it works on a host without a default
            # route, where proxy ARP would not answer for 169.254.1.1).
            pod.neigh(
                "replace",
                dst=str(POD_GATEWAY),
                lladdr=host_mac,
                ifindex=pod_index,
                state=NUD_PERMANENT,
            )
            pod_mac = _mac(pod, pod_index)
        for ip in spec.ips:
            host.neigh("replace", dst=str(ip), lladdr=pod_mac, ifindex=index, state=NUD_PERMANENT)
    return Plumbed(host_mac=host_mac, pod_mac=pod_mac)


def unplumb_workload(host_netns: str | None, host_interface: str) -> bool:
    """Delete the host side (the kernel removes the peer, routes via it, neighbours).

    True when it existed. Works whether or not the pod netns still exists.
    """
    with open_rtnl(host_netns) as host:
        index = _index(host, host_interface)
        if index is None:
            return False
        try:
            host.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise
        return True


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


def check_workload(host_netns: str | None, spec: WorkloadSpec) -> list[str]:
    """What no longer matches the plumbing; empty when all is well."""
    problems: list[str] = []
    with open_rtnl(host_netns) as host:
        index = _index(host, spec.host_interface)
        if index is None:
            return [f"host interface {spec.host_interface} missing"]
        link = host.get_links(index)[0]
        if link.get_attr("IFLA_OPERSTATE") not in ("UP", "UNKNOWN"):
            problems.append(f"host interface {spec.host_interface} is not up")
        for key, value in _host_sysctls(spec.host_interface).items():
            if read_sysctl(host_netns, key) != value:
                problems.append(f"sysctl {key} is not {value}")
        neighbours = {n.get_attr("NDA_DST") for n in host.get_neighbours(ifindex=index, family=2)}
        for ip in spec.ips:
            if str(ip) not in neighbours:
                problems.append(f"neighbour entry for {ip} on {spec.host_interface} missing")
    try:
        pod_ctx = open_rtnl(spec.netns)
    except OSError as exc:
        return [*problems, f"netns {spec.netns} unusable: {exc.strerror or exc}"]
    with pod_ctx as pod:
        pod_index = _index(pod, spec.pod_interface)
        if pod_index is None:
            return [*problems, f"pod interface {spec.pod_interface} missing in {spec.netns}"]
        have = {a.get_attr("IFA_ADDRESS") for a in pod.get_addr(index=pod_index, family=2)}
        problems += [
            f"address {ip}/32 missing on {spec.pod_interface}"
            for ip in spec.ips
            if str(ip) not in have
        ]
        gateways = {r.get_attr("RTA_GATEWAY") for r in pod.get_default_routes(family=2)}
        if str(POD_GATEWAY) not in gateways:
            problems.append(f"default route via {POD_GATEWAY} missing in pod")
    return problems


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
