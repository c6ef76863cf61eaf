"""A pod's routed veth pair: what it is, made (`plumb`) and read back (`check`) over rtnetlink.

What a pod gets (Calico's routed veth), described once by `Wiring` — `plumb`
writes exactly its items and `check` reads exactly them back, so CHECK
checks what ADD wrote:
- host side `gh<11 hex>`: up, MTU, ifalias `<container ID>/<pod if>` (a
  restarted felix names the attachment from it: felix.links.describe_workload),
  the sysctls `proxy_arp=1`, `neigh/<if>/proxy_delay=0`, `forwarding=1`, and
  a permanent neighbour pod IP -> pod MAC (the host never ARPs for its pods);
- pod side (`eth0`): the other end of that pair, up, MTU, optional MAC, the
  IPs as /32, `169.254.1.1 scope link`, `default via 169.254.1.1`, and a
  permanent neighbour 169.254.1.1 -> host veth MAC (beyond Calico: no
  first-packet ARP, and it works on a host without a default route, where
  proxy ARP would not answer for 169.254.1.1). Proxy ARP on the host side
  answers for anything else, so the gateway address never exists anywhere.
The /32 route to the pod is desired state, programmed by the reconciler.

Each namespace gets one felix.netlink socket and one batch of hand-packed
messages (~2 ms per pod; pyroute2 spends ~0.7 ms of Python per call, and
AddWorkload is latency-bound).

Invariants:
- `plumb` is idempotent: on an existing pair it converges every item above.
  Every request is ACKed, so an error names the step that failed.
- `plumb` never takes over a pair that is not its pod's: a host veth whose
  peer is not `pod_interface` in `spec.netns` (the pair is created in one
  step, so a live host side always has a peer: another sandbox's) raises
  `AttachedElsewhere` and changes nothing.
- `check` changes nothing and names every item that does not hold.
- `unplumb` deletes the host side by name (the kernel removes the peer, the
  routes and neighbours through it) and is a no-op when it is gone.
- `disconnect` takes a pod off the network without deleting its veth: set
  down, the kernel drops every route through it at once. It is cheap, while
  deleting a veth takes ~20 ms in the kernel (RCU grace periods, mostly
  waiting), so DeleteWorkload disconnects first and then deletes the veth
  while it releases the address: the address is never free while a route to
  the old pod exists.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import POD_GATEWAY
from felix.netlink import (
    IFA_ADDRESS,
    IFA_LOCAL,
    IFADDRMSG,
    IFF_UP,
    IFLA_ADDRESS,
    IFLA_IFALIAS,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_LINKINFO,
    IFLA_MTU,
    IFLA_NET_NS_FD,
    NDA_DST,
    NDA_LLADDR,
    NDMSG,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NUD_PERMANENT,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETNEIGH,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
    RTMSG,
    RTN_UNICAST,
    RTPROT_STATIC,
    VETH_INFO_PEER,
    Link,
    Rtnl,
    RtnlError,
    attr,
    attributes,
    check_answers,
    i32_of,
    ifinfo,
    mac_bytes,
    mac_text,
    name_attr,
    u32,
)
from felix.netns import netns_path, read_sysctl, write_sysctls

# What plumbing raises: felix.netlink's error, whose message names the step.
PlumbingError = RtnlError


class AttachedElsewhere(PlumbingError):
    """The host veth exists and its peer is not the pod interface in the netns asked for."""


@dataclass(frozen=True)
class VethSpec:
    host_interface: str
    pod_interface: str
    netns: str
    ips: tuple[IPv4Address, ...]
    mtu: int = 1500
    # The host veth's ifalias is "<container ID>/<pod interface>" (felix.links reads it).
    container_id: str = ""
    # The pod interface's MAC; "": the kernel's random one.
    mac: str = ""


@dataclass(frozen=True)
class Plumbed:
    host_mac: str
    pod_mac: str
    # True when the pair was made by this call (no routes through it yet).
    created: bool = False
    host_index: int = 0
    pod_index: int = 0


@dataclass(frozen=True)
class PodRoute:
    dst: IPv4Network
    # None: `scope link` (on the wire); else the next hop.
    gateway: IPv4Address | None


@dataclass(frozen=True)
class Wiring:
    """Everything a pod's veth pair holds besides the links themselves, given
    both MACs: what `plumb` writes and what `check` reads back."""

    host_sysctls: dict[str, str]
    # Permanent neighbours on the host side: pod IP -> pod MAC.
    host_neighbours: dict[IPv4Address, str]
    # On the pod side, each as a /32.
    pod_addresses: tuple[IPv4Address, ...]
    pod_routes: tuple[PodRoute, ...]
    # Permanent neighbours on the pod side: the gateway -> host MAC.
    pod_neighbours: dict[IPv4Address, str]


def host_sysctls(name: str) -> dict[str, str]:
    return {
        f"net/ipv4/conf/{name}/proxy_arp": "1",
        f"net/ipv4/neigh/{name}/proxy_delay": "0",
        f"net/ipv4/conf/{name}/forwarding": "1",
    }


def wiring(spec: VethSpec, host_mac: str, pod_mac: str) -> Wiring:
    return Wiring(
        host_sysctls=host_sysctls(spec.host_interface),
        host_neighbours=dict.fromkeys(spec.ips, pod_mac),
        pod_addresses=spec.ips,
        pod_routes=(
            PodRoute(IPv4Network(f"{POD_GATEWAY}/32"), None),
            PodRoute(IPv4Network("0.0.0.0/0"), POD_GATEWAY),
        ),
        pod_neighbours={POD_GATEWAY: host_mac},
    )


# ---------------------------------------------------------------- writing


def _neighbour(index: int, ip: IPv4Address, mac: str) -> tuple[int, int, bytes]:
    body = NDMSG.pack(socket.AF_INET, index, NUD_PERMANENT, 0, 0)
    body += attr(NDA_DST, ip.packed) + attr(NDA_LLADDR, mac_bytes(mac))
    return RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body


def _route(index: int, route: PodRoute) -> tuple[int, int, bytes]:
    scope = RT_SCOPE_LINK if route.gateway is None else RT_SCOPE_UNIVERSE
    body = RTMSG.pack(socket.AF_INET, route.dst.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC,
                      scope, RTN_UNICAST, 0)  # fmt: skip
    if route.dst.prefixlen:
        body += attr(RTA_DST, route.dst.network_address.packed)
    if route.gateway is not None:
        body += attr(RTA_GATEWAY, route.gateway.packed)
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body + attr(RTA_OIF, u32(index))


def _address(index: int, ip: IPv4Address) -> tuple[int, int, bytes]:
    body = IFADDRMSG.pack(socket.AF_INET, 32, 0, RT_SCOPE_UNIVERSE, index)
    body += attr(IFA_LOCAL, ip.packed) + attr(IFA_ADDRESS, ip.packed)
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body


def _create_pair(host: Rtnl, spec: VethSpec) -> None:
    try:
        pod_fd = os.open(netns_path(spec.netns), os.O_RDONLY)
    except OSError as exc:
        raise PlumbingError(f"netns {spec.netns}: {exc.strerror}") from exc
    try:
        # The peer comes up in _configure_pod: asking for it here gets ENOTCONN.
        peer = ifinfo() + attr(IFLA_IFNAME, name_attr(spec.pod_interface))
        peer += attr(IFLA_NET_NS_FD, u32(pod_fd)) + attr(IFLA_MTU, u32(spec.mtu))
        if spec.mac:
            peer += attr(IFLA_ADDRESS, mac_bytes(spec.mac))
        info = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))
        body = ifinfo(up=True) + attr(IFLA_IFNAME, name_attr(spec.host_interface))
        body += attr(IFLA_MTU, u32(spec.mtu)) + attr(IFLA_LINKINFO, info)
        answers = host.batch([(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)])
    finally:
        os.close(pod_fd)
    check_answers(
        f"creating veth {spec.host_interface} <-> {spec.pod_interface} in {spec.netns}", answers
    )


def _configure_pod(pod: Rtnl, spec: VethSpec, host_mac: str) -> tuple[int, str]:
    found = pod.get_link(spec.pod_interface)
    if found is None:
        raise PlumbingError(f"pod interface {spec.pod_interface} missing in {spec.netns}")
    index, pod_mac = found.index, found.mac
    if spec.mac and pod_mac != spec.mac:
        # A MAC change needs the link down (veth has no live address change).
        body = ifinfo(index, up=False) + attr(IFLA_ADDRESS, mac_bytes(spec.mac))
        check_answers(f"setting {spec.pod_interface}'s MAC", pod.batch([(RTM_NEWLINK, 0, body)]))
        pod_mac = spec.mac
    wanted = wiring(spec, host_mac, pod_mac)
    requests = [(RTM_NEWLINK, 0, ifinfo(index, up=True) + attr(IFLA_MTU, u32(spec.mtu)))]
    requests += [_route(index, route) for route in wanted.pod_routes]
    requests += [_neighbour(index, ip, mac) for ip, mac in wanted.pod_neighbours.items()]
    check_answers(f"configuring {spec.pod_interface} in {spec.netns}", pod.batch(requests))
    return index, pod_mac


def _is_peer(host: Rtnl, link: Link, pod: Rtnl, pod_interface: str, netns: str) -> bool:
    """Is `pod_interface` in `netns` the other end of the host veth `link`?

    The host side names its peer by index within a namespace number: both must
    match (an index alone repeats in every pod namespace)."""
    found = pod.get_link(pod_interface)
    if found is None or found.index != link.peer or link.peer_netnsid is None:
        return False
    return host.netnsid(netns) == link.peer_netnsid


def attached_in(
    host_netns: str | None, host_interface: str, pod_interface: str, netns: str
) -> bool | None:
    """Is the host veth's peer `pod_interface` in `netns`? None: no such host veth."""
    with Rtnl(host_netns) as host:
        link = host.get_link(host_interface)
        if link is None:
            return None
        try:
            pod_rtnl = Rtnl(netns)
        except OSError:
            return False
        with pod_rtnl as pod:
            return _is_peer(host, link, pod, pod_interface, netns)


def _pod_rtnl(netns: str) -> Rtnl:
    try:
        return Rtnl(netns)
    except OSError as exc:
        raise PlumbingError(f"netns {netns}: {exc.strerror or exc}") from exc


@contextmanager
def _sockets(host_netns: str | None, netns: str) -> Iterator[tuple[Rtnl, Rtnl]]:
    with Rtnl(host_netns) as host, _pod_rtnl(netns) as pod:
        yield host, pod


class PairInProgress:
    """A pair `plumb_pair` made, its two sockets kept open for `plumb_addresses`
    (a socket in the pod's namespace costs a thread to open); `close` them after."""

    def __init__(self, host: Rtnl, pod: Rtnl, spec: VethSpec, plumbed: Plumbed) -> None:
        self.host, self.pod, self.spec, self.plumbed = host, pod, spec, plumbed

    def close(self) -> None:
        self.host.close()
        self.pod.close()


def _pair(host_netns: str | None, host: Rtnl, pod: Rtnl, spec: VethSpec) -> Plumbed:
    existing = host.get_link(spec.host_interface)
    if existing is not None:
        if not _is_peer(host, existing, pod, spec.pod_interface, spec.netns):
            raise AttachedElsewhere(
                f"{spec.host_interface} ({spec.container_id}/{spec.pod_interface}) "
                f"is plumbed into another network namespace, not {spec.netns}"
            )
    else:
        _create_pair(host, spec)
    body = ifinfo(up=True) + attr(IFLA_IFNAME, name_attr(spec.host_interface))
    body += attr(IFLA_MTU, u32(spec.mtu))
    if spec.container_id:
        body += attr(IFLA_IFALIAS, f"{spec.container_id}/{spec.pod_interface}".encode())
    check_answers(f"setting up {spec.host_interface}", host.batch([(RTM_NEWLINK, 0, body)]))
    found = host.get_link(spec.host_interface)
    if found is None:
        raise PlumbingError(f"{spec.host_interface} vanished while being set up")
    write_sysctls(host_netns, host_sysctls(spec.host_interface))
    pod_index, pod_mac = _configure_pod(pod, spec, found.mac)
    return Plumbed(found.mac, pod_mac, existing is None, found.index, pod_index)


def _addresses(host: Rtnl, pod: Rtnl, spec: VethSpec, pair: Plumbed) -> None:
    wanted = wiring(spec, pair.host_mac, pair.pod_mac)
    if wanted.pod_addresses:
        addresses = [_address(pair.pod_index, ip) for ip in wanted.pod_addresses]
        step = f"addresses on {spec.pod_interface} in {spec.netns}"
        check_answers(step, pod.batch(addresses))
    neighbours = [_neighbour(pair.host_index, ip, m) for ip, m in wanted.host_neighbours.items()]
    if neighbours:
        check_answers(f"neighbour entries on {spec.host_interface}", host.batch(neighbours))


def plumb(host_netns: str | None, spec: VethSpec) -> Plumbed:
    """Create (or converge) the veth pair and everything on both ends."""
    with _sockets(host_netns, spec.netns) as (host, pod):
        pair = _pair(host_netns, host, pod, spec)
        _addresses(host, pod, spec, pair)
    return pair


def plumb_pair(host_netns: str | None, spec: VethSpec) -> PairInProgress:
    """`plumb` but for the pod's addresses (`spec.ips` is not used): what can be
    done before IPAM has answered. `plumb_addresses` completes it."""
    with ExitStack() as stack:
        host = stack.enter_context(Rtnl(host_netns))
        pod = stack.enter_context(_pod_rtnl(spec.netns))
        plumbed = _pair(host_netns, host, pod, spec)
        stack.pop_all()
    return PairInProgress(host, pod, spec, plumbed)


def plumb_addresses(pair: PairInProgress, ips: tuple[IPv4Address, ...]) -> None:
    """The rest of `plumb` on a pair `plumb_pair` made: the pod's addresses `ips`
    and the host's neighbour entries for them."""
    _addresses(pair.host, pair.pod, dataclasses.replace(pair.spec, ips=ips), pair.plumbed)


def disconnect(host_netns: str | None, name: str) -> bool:
    """Set the host side `name` down (its routes go with it); True when it exists."""
    with Rtnl(host_netns) as host:
        body = ifinfo(up=False) + attr(IFLA_IFNAME, name_attr(name))
        [(code, text)] = host.batch([(RTM_NEWLINK, 0, body)])
    if code in (errno.ENODEV, errno.ENOENT):
        return False
    check_answers(f"setting {name} down", [(code, text)])
    return True


def unplumb(host_netns: str | None, name: str) -> bool:
    """Delete the host side `name` (the kernel removes the rest); True when it existed."""
    with Rtnl(host_netns) as host:
        body = ifinfo() + attr(IFLA_IFNAME, name_attr(name))
        [(code, text)] = host.batch([(RTM_DELLINK, 0, body)])
    if code in (errno.ENODEV, errno.ENOENT):
        return False
    check_answers(f"deleting {name}", [(code, text)])
    return True


# ---------------------------------------------------------------- reading back


def _read_permanent_neighbours(rtnl: Rtnl, index: int) -> dict[IPv4Address, str]:
    found = {}
    request = NDMSG.pack(socket.AF_INET, index, 0, 0, 0)
    for body in rtnl.dump(RTM_GETNEIGH, request, "neighbours"):
        _family, ifindex, state, _flags, _type = NDMSG.unpack_from(body)
        values = attributes(body, NDMSG.size)
        if ifindex == index and state & NUD_PERMANENT and len(values.get(NDA_DST, b"")) == 4:
            found[IPv4Address(values[NDA_DST])] = mac_text(values.get(NDA_LLADDR, b""))
    return found


def _read_addresses(rtnl: Rtnl, index: int) -> set[IPv4Address]:
    found = set()
    request = IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, index)
    for body in rtnl.dump(RTM_GETADDR, request, "addresses"):
        _family, prefixlen, _flags, _scope, ifindex = IFADDRMSG.unpack_from(body)
        local = attributes(body, IFADDRMSG.size).get(IFA_LOCAL, b"")
        if ifindex == index and prefixlen == 32 and len(local) == 4:
            found.add(IPv4Address(local))
    return found


def _read_routes(rtnl: Rtnl, index: int) -> set[PodRoute]:
    found = set()
    request = RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
    for body in rtnl.dump(RTM_GETROUTE, request, "routes"):
        _family, dst_len, _src, _tos, table, _proto, scope, kind, _flags = RTMSG.unpack_from(body)
        values = attributes(body, RTMSG.size)
        if (
            table != RT_TABLE_MAIN
            or kind != RTN_UNICAST
            or i32_of(values.get(RTA_OIF, b"")) != index
        ):
            continue
        dst = IPv4Address(values.get(RTA_DST, bytes(4)))
        gateway = values.get(RTA_GATEWAY)
        if gateway is None and scope != RT_SCOPE_LINK:
            continue
        hop = IPv4Address(gateway) if gateway is not None else None
        found.add(PodRoute(IPv4Network(f"{dst}/{dst_len}"), hop))
    return found


def _route_text(route: PodRoute) -> str:
    where = f"route {route.dst}" if route.dst.prefixlen else "default route"
    return f"{where} via {route.gateway}" if route.gateway else f"{where} scope link"


def check(host_netns: str | None, spec: VethSpec) -> list[str]:
    """What of the pod's veth pair no longer holds (one line each); empty when all does."""
    with Rtnl(host_netns) as host:
        link = host.get_link(spec.host_interface)
        if link is None:
            return [f"host interface {spec.host_interface} missing"]
        problems = []
        if not link.flags & IFF_UP:
            problems.append(f"host interface {spec.host_interface} is not up")
        for key, value in host_sysctls(spec.host_interface).items():
            if read_sysctl(host_netns, key) != value:
                problems.append(f"sysctl {key} is not {value}")
        host_neighbours = _read_permanent_neighbours(host, link.index)
        try:
            pod_rtnl = Rtnl(spec.netns)
        except OSError as exc:
            return [*problems, f"netns {spec.netns} unusable: {exc.strerror or exc}"]
        with pod_rtnl as pod:
            pod_link = pod.get_link(spec.pod_interface)
            if pod_link is None:
                return [*problems, f"pod interface {spec.pod_interface} missing in {spec.netns}"]
            if not _is_peer(host, link, pod, spec.pod_interface, spec.netns):
                peer = f"{spec.pod_interface} in {spec.netns}"
                return [*problems, f"{peer} is not the peer of {spec.host_interface}"]
            if not pod_link.flags & IFF_UP:
                problems.append(f"pod interface {spec.pod_interface} is not up")
            addresses = _read_addresses(pod, pod_link.index)
            routes = _read_routes(pod, pod_link.index)
            pod_neighbours = _read_permanent_neighbours(pod, pod_link.index)
    wanted = wiring(spec, link.mac, pod_link.mac)
    for ip, mac in wanted.host_neighbours.items():
        if host_neighbours.get(ip) != mac:
            problems.append(f"neighbour entry for {ip} on {spec.host_interface} missing")
    problems += [
        f"address {ip}/32 missing on {spec.pod_interface}"
        for ip in wanted.pod_addresses
        if ip not in addresses
    ]
    problems += [f"{_route_text(r)} missing in pod" for r in wanted.pod_routes if r not in routes]
    for ip, mac in wanted.pod_neighbours.items():
        if pod_neighbours.get(ip) != mac:
            problems.append(f"neighbour entry for {ip} on {spec.pod_interface} missing")
    return problems
