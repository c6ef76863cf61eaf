"""Parse and validate one CNI invocation: the CNI_* environment plus stdin config.

Pure: takes a mapping (the environment) and bytes (stdin), returns immutable
records (cni/records.py) or raises `CniError` with the spec's code and a message
naming the variable or field at fault. No I/O; nothing heavier than `json` is
imported (`ipaddress` only when an address must be checked), so every command
pays the same small parse cost. runtimeConfig lives in cni/runtime_config.py.

Invariants:
- The config's `cniVersion` is one of `SUPPORTED_VERSIONS` before anything else
  in the config is trusted (code 1 otherwise).
- CNI_ARGS keys other than the known ones are an error unless `IgnoreUnknown`
  is true, as libcni's `LoadArgs` does.
- `runtimeConfig.portMappings` is accepted with Go's case-insensitive keys
  (`hostPort` and `HostPort` both work: containerd capitalises them).
"""

from __future__ import annotations

from cni import errors, jsonio
from cni.errors import CniError
from cni.records import Record
from cni.runtime_config import (
    PortMapping,
    check_address,
    invalid,
    parse_runtime_config,
    parse_valid_attachments,
    string_list,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc cost start-up time; mypy only needs them
    from collections.abc import Mapping

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS")
DEFAULT_FELIX_SOCKET = "/var/run/gingham/felix.sock"
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_TIMEOUT_SECONDS = 86400.0  # a day; past ~1e10 s a deadline no longer fits a time_t
# felix records "<container ID>/<ifname>" as the host veth's ifalias, which the
# kernel caps at 255 bytes; ifname takes up to 15 of them and the '/' one more.
MAX_CONTAINER_ID_LENGTH = 255 - 1 - 15
LOG_LEVELS = ("debug", "info", "warning", "error")

# CNI_ARGS keys this plugin understands (besides IgnoreUnknown).
_KNOWN_ARGS = (
    "K8S_POD_NAMESPACE",
    "K8S_POD_NAME",
    "K8S_POD_UID",
    "K8S_POD_INFRA_CONTAINER_ID",
    "IP",
)
# Which CNI_* variables each command needs (libcni's skel makes the same demands).
_REQUIRED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
}
# The first spec version that knows each command.
_MIN_VERSION = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


class PodArgs(Record):
    """What CNI_ARGS says about the pod."""

    __slots__ = ("infra_container_id", "name", "namespace", "requested_ips", "uid")
    namespace: str
    name: str
    uid: str
    infra_container_id: str
    requested_ips: tuple[str, ...]

    def __init__(
        self,
        *,
        namespace: str = "",
        name: str = "",
        uid: str = "",
        infra_container_id: str = "",
        requested_ips: tuple[str, ...] = (),
    ) -> None:
        self.namespace, self.name, self.uid = namespace, name, uid
        self.infra_container_id, self.requested_ips = infra_container_id, requested_ips


class Invocation(Record):
    """The CNI_* environment of one call."""

    __slots__ = ("args", "command", "container_id", "ifname", "netns", "path")
    command: str
    container_id: str
    netns: str
    ifname: str
    path: str
    args: PodArgs

    def __init__(
        self, *, command: str, container_id: str, netns: str, ifname: str, path: str, args: PodArgs
    ) -> None:
        self.command, self.container_id, self.netns = command, container_id, netns
        self.ifname, self.path, self.args = ifname, path, args

    def with_netns(self, netns: str) -> Invocation:
        return Invocation(
            command=self.command,
            container_id=self.container_id,
            netns=netns,
            ifname=self.ifname,
            path=self.path,
            args=self.args,
        )


class NetConf(Record):
    """The network configuration from stdin, validated."""

    __slots__ = (
        "cni_version",
        "felix_socket",
        "log_file",
        "log_level",
        "mac",
        "mtu",
        "name",
        "pools",
        "port_mappings",
        "prev_result",
        "runtime_ips",
        "timeout",
        "valid_attachments",
    )
    cni_version: str
    name: str
    felix_socket: str
    pools: tuple[str, ...]
    mtu: int
    log_level: str
    log_file: str
    timeout: float
    prev_result: Mapping[str, object] | None
    runtime_ips: tuple[str, ...]
    mac: str
    port_mappings: tuple[PortMapping, ...]
    # (container ID, ifname) pairs for GC; None when the key is absent.
    valid_attachments: tuple[tuple[str, str], ...] | None

    def __init__(
        self,
        *,
        cni_version: str,
        name: str,
        felix_socket: str,
        pools: tuple[str, ...],
        mtu: int,
        log_level: str,
        log_file: str,
        timeout: float,
        prev_result: Mapping[str, object] | None,
        runtime_ips: tuple[str, ...],
        mac: str,
        port_mappings: tuple[PortMapping, ...],
        valid_attachments: tuple[tuple[str, str], ...] | None,
    ) -> None:
        self.cni_version, self.name, self.felix_socket = cni_version, name, felix_socket
        self.pools, self.mtu, self.log_level, self.log_file = pools, mtu, log_level, log_file
        self.timeout, self.prev_result, self.runtime_ips = timeout, prev_result, runtime_ips
        self.mac, self.port_mappings = mac, port_mappings
        self.valid_attachments = valid_attachments


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise CniError(
            errors.INCOMPATIBLE_VERSION, f"cniVersion {version!r} is not a version number"
        ) from None


def read_command(env: Mapping[str, str]) -> str:
    command = env.get("CNI_COMMAND", "")
    if not command:
        raise CniError(errors.INVALID_ENVIRONMENT, "required env variable CNI_COMMAND missing")
    if command not in COMMANDS:
        raise CniError(
            errors.INVALID_ENVIRONMENT,
            f"CNI_COMMAND {command!r} is unknown (expected one of {', '.join(COMMANDS)})",
        )
    return command


def decode_config(stdin: bytes) -> dict[str, object]:
    try:
        value = jsonio.loads(stdin)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(
            errors.DECODING_FAILURE, "network configuration on stdin is not valid JSON", str(exc)
        ) from None
    except RecursionError:
        # The decoder recurses once per nesting level (`[` x 100,000 hits the
        # interpreter's limit): not a bug of ours, a document we cannot decode.
        raise CniError(
            errors.DECODING_FAILURE,
            "network configuration on stdin is not valid JSON: nested too deeply",
        ) from None
    if not isinstance(value, dict):
        raise CniError(
            errors.DECODING_FAILURE,
            f"network configuration on stdin must be a JSON object, not {type(value).__name__}",
        )
    return value


def config_version(config: Mapping[str, object], command: str) -> str:
    """The config's cniVersion, checked against what we and the command support."""
    version = config.get("cniVersion", "")
    if not isinstance(version, str) or not version:
        raise CniError(errors.INCOMPATIBLE_VERSION, "network configuration has no cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            errors.INCOMPATIBLE_VERSION,
            f"incompatible CNI versions: config is {version!r}, "
            f"plugin supports {list(SUPPORTED_VERSIONS)}",
        )
    needed = _MIN_VERSION.get(command)
    if needed and version_tuple(version) < version_tuple(needed):
        raise CniError(
            errors.INCOMPATIBLE_VERSION,
            f"config version {version} does not allow {command} (needs {needed} or later)",
        )
    return version


def _valid_container_id(value: str) -> bool:
    # libcni's rule, ASCII only: ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ ("é".isalnum() is True).
    return (
        bool(value)
        and value.isascii()
        and value[0].isalnum()
        and all(c.isalnum() or c in "_.-" for c in value)
    )


def _valid_ifname(value: str) -> bool:
    # IFNAMSIZ counts bytes, not characters (libcni checks len() of a Go string).
    return (
        0 < len(value.encode("utf-8", "surrogateescape")) <= 15
        and value not in (".", "..")
        and not any(c in "/:" or c.isspace() for c in value)
    )


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


def parse_cni_args(raw: str) -> PodArgs:
    pairs: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise CniError(
                errors.INVALID_ENVIRONMENT,
                f"CNI_ARGS: {item!r} is not KEY=VALUE",
                f"CNI_ARGS={raw}",
            )
        pairs[key] = value
    ignore_unknown = _truthy(pairs.pop("IgnoreUnknown", "false"))
    unknown = sorted(k for k in pairs if k not in _KNOWN_ARGS)
    if unknown and not ignore_unknown:
        raise CniError(
            errors.INVALID_ENVIRONMENT,
            f"CNI_ARGS: unknown key(s) {', '.join(unknown)} (set IgnoreUnknown=1 to allow them)",
        )
    requested = tuple(ip for ip in pairs.get("IP", "").split(",") if ip)
    for ip in requested:
        check_address(ip, "CNI_ARGS IP", errors.INVALID_ENVIRONMENT)
    return PodArgs(
        namespace=pairs.get("K8S_POD_NAMESPACE", ""),
        name=pairs.get("K8S_POD_NAME", ""),
        uid=pairs.get("K8S_POD_UID", ""),
        infra_container_id=pairs.get("K8S_POD_INFRA_CONTAINER_ID", ""),
        requested_ips=requested,
    )


def read_invocation(env: Mapping[str, str], command: str) -> Invocation:
    missing = [name for name in _REQUIRED_ENV.get(command, ()) if not env.get(name)]
    if missing:
        raise CniError(
            errors.INVALID_ENVIRONMENT, f"required env variables [{','.join(missing)}] missing"
        )
    container_id = env.get("CNI_CONTAINERID", "")
    if container_id and not _valid_container_id(container_id):
        raise CniError(
            errors.INVALID_ENVIRONMENT,
            f"CNI_CONTAINERID {container_id[:80]!r} has invalid characters "
            "(ASCII letters, digits, '_', '.', '-'; starting with a letter or digit)",
        )
    if len(container_id) > MAX_CONTAINER_ID_LENGTH:
        raise CniError(
            errors.INVALID_ENVIRONMENT,
            f"CNI_CONTAINERID is {len(container_id)} characters long; "
            f"at most {MAX_CONTAINER_ID_LENGTH} are supported",
        )
    ifname = env.get("CNI_IFNAME", "")
    if ifname and not _valid_ifname(ifname):
        raise CniError(
            errors.INVALID_ENVIRONMENT,
            f"CNI_IFNAME {ifname[:80]!r} is not a valid interface name "
            "(1-15 bytes, no '/', ':' or whitespace)",
        )
    return Invocation(
        command=command,
        container_id=container_id,
        netns=env.get("CNI_NETNS", ""),
        ifname=ifname,
        path=env.get("CNI_PATH", ""),
        args=parse_cni_args(env.get("CNI_ARGS", "")),
    )


def parse_netconf(config: Mapping[str, object], version: str) -> NetConf:
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise invalid("name", "must be a non-empty string")
    if any(c in "/\\:" or c.isspace() for c in name):
        raise invalid("name", f"{name!r} contains '/', '\\', ':' or whitespace")
    socket = config.get("felix_socket", DEFAULT_FELIX_SOCKET)
    if not isinstance(socket, str) or not socket.startswith("/"):
        raise invalid("felix_socket", f"must be an absolute path, got {socket!r}")
    ipam = config.get("ipam", {})
    if not isinstance(ipam, dict):
        raise invalid("ipam", "must be an object")
    pools = string_list(ipam["ipv4_pools"], "ipam.ipv4_pools") if "ipv4_pools" in ipam else ()
    mtu = config.get("mtu", 0)
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not (mtu == 0 or 68 <= mtu <= 65535):
        raise invalid("mtu", f"must be an integer 68-65535 (or 0 for automatic), got {mtu!r}")
    log_level = config.get("log_level", "info")
    if not isinstance(log_level, str) or log_level.lower() not in LOG_LEVELS:
        raise invalid("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    log_file = config.get("log_file", "")
    if not isinstance(log_file, str):
        raise invalid("log_file", "must be a path")
    timeout = config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS  # (NaN fails every comparison)
    ):
        raise invalid(
            "timeout_seconds",
            f"must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS:g}, "
            f"got {timeout!r}",
        )
    prev = config.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise invalid("prevResult", "must be an object")
    ips, mac, ports = parse_runtime_config(config)
    valid = config.get("cni.dev/valid-attachments")
    return NetConf(
        cni_version=version,
        name=name,
        felix_socket=socket,
        pools=pools,
        mtu=mtu,
        log_level=log_level.lower(),
        log_file=log_file,
        timeout=float(timeout),
        prev_result=prev,
        runtime_ips=ips,
        mac=mac,
        port_mappings=ports,
        valid_attachments=None if valid is None else parse_valid_attachments(valid),
    )
