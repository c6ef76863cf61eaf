"""CNI results: felix's answer rendered in the caller's cniVersion, and CHECK's diff.

Pure. `Attachment` is the plugin's plain view of what felix made for one pod
(the felix client builds it from the gRPC reply); `render_result` prints it in
the result shape of the requested version:

- 1.0.0 / 1.1.0: `ips[]` without `version`; 1.1.0 adds `interfaces[].mtu`.
- 0.3.0 / 0.3.1 / 0.4.0: `ips[].version` is "4" or "6".

The host-side interface never has a `sandbox`; the pod side always does.

`expected_from_prev_result` and `check_problems` implement CHECK: the
prevResult the runtime cached says which addresses and MAC the pod interface
has, and each difference from felix's record becomes one precise line.
"""

from __future__ import annotations

from cni import errors
from cni.errors import CniError
from cni.records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc cost start-up time; mypy only needs them
    from collections.abc import Mapping, Sequence


class Interface(Record):
    __slots__ = ("mac", "name", "sandbox")
    name: str
    mac: str
    sandbox: str  # "" for the host side

    def __init__(self, name: str, mac: str, sandbox: str) -> None:
        self.name, self.mac, self.sandbox = name, mac, sandbox


class IpConfig(Record):
    __slots__ = ("address", "gateway", "interface")
    address: str  # CIDR
    gateway: str
    interface: int  # index into Attachment.interfaces

    def __init__(self, address: str, gateway: str, interface: int) -> None:
        self.address, self.gateway, self.interface = address, gateway, interface


class Route(Record):
    __slots__ = ("dst", "gw")
    dst: str
    gw: str

    def __init__(self, dst: str, gw: str) -> None:
        self.dst, self.gw = dst, gw


class Attachment(Record):
    __slots__ = ("interfaces", "ips", "mtu", "routes")
    interfaces: tuple[Interface, ...]
    ips: tuple[IpConfig, ...]
    routes: tuple[Route, ...]
    mtu: int

    def __init__(
        self,
        *,
        interfaces: tuple[Interface, ...],
        ips: tuple[IpConfig, ...],
        routes: tuple[Route, ...],
        mtu: int,
    ) -> None:
        self.interfaces, self.ips, self.routes, self.mtu = interfaces, ips, routes, mtu


class RecordedWorkload(Record):
    """What felix holds for one attachment (from ListWorkloads)."""

    __slots__ = ("host_interface", "ips", "mac")
    ips: frozenset[str]  # bare addresses
    mac: str
    host_interface: str

    def __init__(self, ips: frozenset[str], mac: str, host_interface: str) -> None:
        self.ips, self.mac, self.host_interface = ips, mac, host_interface


class ExpectedAttachment(Record):
    """What the runtime's cached prevResult says the pod interface has."""

    __slots__ = ("host_interface", "ips", "mac")
    ips: frozenset[str]  # bare addresses
    mac: str
    host_interface: str  # the first interface without a sandbox, or ""

    def __init__(self, ips: frozenset[str], mac: str, host_interface: str = "") -> None:
        self.ips, self.mac, self.host_interface = ips, mac, host_interface


def _legacy(version: str) -> bool:
    return version.startswith("0.")


def render_result(attachment: Attachment, version: str) -> dict[str, object]:
    interfaces: list[dict[str, object]] = []
    for itf in attachment.interfaces:
        entry: dict[str, object] = {"name": itf.name}
        if itf.mac:
            entry["mac"] = itf.mac
        if itf.sandbox:
            entry["sandbox"] = itf.sandbox
            if version == "1.1.0" and attachment.mtu:
                entry["mtu"] = attachment.mtu
        interfaces.append(entry)
    ips: list[dict[str, object]] = []
    for ip in attachment.ips:
        ip_entry: dict[str, object] = {}
        if _legacy(version):
            ip_entry["version"] = "6" if ":" in ip.address else "4"
        ip_entry["address"] = ip.address
        if ip.gateway:
            ip_entry["gateway"] = ip.gateway
        ip_entry["interface"] = ip.interface
        ips.append(ip_entry)
    routes: list[dict[str, object]] = []
    for route in attachment.routes:
        route_entry: dict[str, object] = {"dst": route.dst}
        if route.gw:
            route_entry["gw"] = route.gw
        routes.append(route_entry)
    return {
        "cniVersion": version,
        "interfaces": interfaces,
        "ips": ips,
        "routes": routes,
        "dns": {},
    }


def _bad_prev(reason: str) -> CniError:
    return CniError(errors.INVALID_NETWORK_CONFIG, f"CHECK: prevResult {reason}")


def _bare(address: str) -> str:
    return address.partition("/")[0]


def expected_from_prev_result(
    prev: Mapping[str, object] | None, ifname: str, netns: str
) -> ExpectedAttachment:
    """The pod interface `ifname` in `netns` and its addresses, per prevResult."""
    if prev is None:
        raise _bad_prev("is missing (the runtime must pass the cached ADD result)")
    interfaces = prev.get("interfaces", [])
    if not isinstance(interfaces, list):
        raise _bad_prev("field interfaces must be a list")
    index = -1
    mac = ""
    for i, itf in enumerate(interfaces):
        if isinstance(itf, dict) and itf.get("name") == ifname and itf.get("sandbox"):
            if itf.get("sandbox") != netns:
                raise CniError(
                    errors.CHECK_MISMATCH,
                    f"CHECK: prevResult puts {ifname} in sandbox {itf.get('sandbox')!r}, "
                    f"but CNI_NETNS is {netns!r}",
                )
            index, mac = i, str(itf.get("mac", "")).lower()
            break
    if index < 0:
        raise _bad_prev(f"has no interface {ifname!r} with a sandbox")
    ips = prev.get("ips", [])
    if not isinstance(ips, list):
        raise _bad_prev("field ips must be a list")
    addresses = frozenset(
        _bare(str(ip["address"]))
        for ip in ips
        if isinstance(ip, dict) and "address" in ip and ip.get("interface") == index
    )
    if not addresses:
        raise _bad_prev(f"lists no address on interface {ifname!r} (index {index})")
    host = next(
        (
            str(i.get("name", ""))
            for i in interfaces
            if isinstance(i, dict) and not i.get("sandbox")
        ),
        "",
    )
    return ExpectedAttachment(ips=addresses, mac=mac, host_interface=host)


def check_problems(
    expected: ExpectedAttachment, recorded: RecordedWorkload | None, kernel_problems: Sequence[str]
) -> list[str]:
    """Every way the attachment differs from prevResult, one line each; [] if none."""
    problems = list(kernel_problems)
    if recorded is None:
        return [*problems, "felix has no record of this attachment"]
    missing = sorted(expected.ips - recorded.ips)
    extra = sorted(recorded.ips - expected.ips)
    if missing:
        problems.append(f"address(es) {', '.join(missing)} from prevResult not assigned by felix")
    if extra:
        problems.append(f"felix assigned {', '.join(extra)} which prevResult does not list")
    if expected.mac and recorded.mac and expected.mac != recorded.mac.lower():
        problems.append(f"MAC is {recorded.mac.lower()}, prevResult says {expected.mac}")
    return problems
