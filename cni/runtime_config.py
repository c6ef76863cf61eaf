"""Validation of the network config's runtimeConfig and list-valued fields.

Pure, split from cni/request.py: `runtimeConfig` (`ips`, `mac`, `portMappings`
with Go's case-insensitive keys, since containerd capitalises them as
`HostPort`), `cni.dev/valid-attachments` (GC), and the small checks both files
share. Errors are `CniError` code 7 naming the field, except addresses taken
from CNI_ARGS, which the caller reports with code 4.
"""

from __future__ import annotations

from cni import errors
from cni.errors import CniError
from cni.records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class PortMapping(Record):
    __slots__ = ("container_port", "host_ip", "host_port", "protocol")
    host_port: int
    container_port: int
    protocol: str
    host_ip: str

    def __init__(self, *, host_port: int, container_port: int, protocol: str, host_ip: str) -> None:
        self.host_port, self.container_port = host_port, container_port
        self.protocol, self.host_ip = protocol, host_ip


def check_address(value: str, where: str, code: int) -> str:
    """An address, or an address with a prefix length; returns the bare address."""
    import ipaddress  # only calls that carry addresses pay for it

    try:
        return str(ipaddress.ip_interface(value).ip)
    except ValueError:
        raise CniError(code, f"{where}: {value!r} is not an IP address") from None


def invalid(field: str, reason: str) -> CniError:
    return CniError(errors.INVALID_NETWORK_CONFIG, f"network config field {field}: {reason}")


def string_list(value: object, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise invalid(field, "must be a list of non-empty strings")
    return tuple(value)


def _port(entry: Mapping[str, object], key: str, field: str, required: bool) -> int:
    # Go's encoding/json matches keys case-insensitively; runtimes rely on it.
    value = next((v for k, v in entry.items() if k.lower() == key.lower()), None)
    if value is None and not required:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise invalid(f"{field}.{key}", f"must be a port number 1-65535, got {value!r}")
    return value


def _port_mappings(value: object) -> tuple[PortMapping, ...]:
    field = "runtimeConfig.portMappings"
    if not isinstance(value, list):
        raise invalid(field, "must be a list")
    out = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict):
            raise invalid(where, "must be an object")
        folded = {k.lower(): v for k, v in entry.items()}
        protocol = folded.get("protocol", "tcp")
        if not isinstance(protocol, str) or protocol.lower() not in ("tcp", "udp", "sctp"):
            raise invalid(f"{where}.protocol", f"must be tcp, udp or sctp, got {protocol!r}")
        host_ip = folded.get("hostip", "")
        if not isinstance(host_ip, str):
            raise invalid(f"{where}.hostIP", "must be a string")
        if host_ip:
            check_address(host_ip, f"{where}.hostIP", errors.INVALID_NETWORK_CONFIG)
        out.append(
            PortMapping(
                host_port=_port(entry, "hostPort", where, required=True),
                container_port=_port(entry, "containerPort", where, required=True),
                protocol=protocol.lower(),
                host_ip=host_ip,
            )
        )
    return tuple(out)


def parse_valid_attachments(value: object) -> tuple[tuple[str, str], ...]:
    field = "cni.dev/valid-attachments"
    if not isinstance(value, list):
        raise invalid(field, "must be a list of {containerID, ifname}")
    out = []
    for i, entry in enumerate(value):
        cid = entry.get("containerID") if isinstance(entry, dict) else None
        ifname = entry.get("ifname") if isinstance(entry, dict) else None
        if not isinstance(cid, str) or not cid or not isinstance(ifname, str) or not ifname:
            raise invalid(f"{field}[{i}]", "needs non-empty string containerID and ifname")
        out.append((cid, ifname))
    return tuple(out)


def _mac(value: object) -> str:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    ):
        raise invalid(
            "runtimeConfig.mac", f"must be a MAC address aa:bb:cc:dd:ee:ff, got {value!r}"
        )
    return str(value).lower()


def parse_runtime_config(
    config: Mapping[str, object],
) -> tuple[tuple[str, ...], str, tuple[PortMapping, ...]]:
    runtime = config.get("runtimeConfig", {})
    if not isinstance(runtime, dict):
        raise invalid("runtimeConfig", "must be an object")
    ips: tuple[str, ...] = ()
    if "ips" in runtime:
        ips = tuple(
            check_address(ip, "runtimeConfig.ips", errors.INVALID_NETWORK_CONFIG)
            for ip in string_list(runtime["ips"], "runtimeConfig.ips")
        )
    mac = _mac(runtime["mac"]) if runtime.get("mac") else ""
    ports = _port_mappings(runtime["portMappings"]) if "portMappings" in runtime else ()
    return ips, mac, ports
