"""BGP kinds: BGPConfiguration, BGPPeer and Node (a host's BGP identity).

Invariants:
- BGPConfiguration is named ``default`` (cluster-wide) or ``node.<nodename>``
  (one node's overrides). The global one always has `as_number`,
  `node_to_node_mesh_enabled`, `listen_port` and `log_severity` filled in
  (defaults 64512, true, 179, Info); in a per-node one `None` means "inherit
  the global value", and it may not set `as_number` or
  `node_to_node_mesh_enabled` at all (as in Calico).
- Timers (`keepalive_time`, `hold_time`) are whole seconds; documents write
  them Go-style (``"90s"``; ``"1m30s"`` or a bare number of seconds is also
  accepted). Hold time is 0 (no keepalives) or 3..65535 s, and keepalive is
  shorter than hold.
- A BGPPeer names its peer by exactly one of `peer_ip` / `peer_selector`, and
  its local side by at most one of `node` / `node_selector` (neither = every
  node). Blank selectors mean "not set". A `peer_ip` peer needs `as_number`;
  a `peer_selector` peer takes each selected node's AS.
- Node `spec.bgp` has at least one address; `ipv4_address` is an interface
  address with prefix (``10.0.0.1/24``), not a network address.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import (
    AliasChoices,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from gingham.model.base import Metadata, Model, Resource, register_kind
from gingham.model.fields import (
    ASNumber,
    Bool,
    DNSName,
    Duration,
    IPv4Address,
    IPv4Interface,
    IPv6Interface,
    MACAddress,
    Port,
    SelectorText,
    Text,
    dns_subdomain_problem,
    invalid,
    shown,
)
from gingham.selector import Selector, parse_selector

DEFAULT_AS_NUMBER = 64512
DEFAULT_LISTEN_PORT = 179
GLOBAL_BGP_CONFIGURATION = "default"
NODE_CONFIGURATION_PREFIX = "node."


class LogSeverity(enum.StrEnum):
    DEBUG = "Debug"
    INFO = "Info"
    WARNING = "Warning"
    ERROR = "Error"
    FATAL = "Fatal"


def _log_severity(value: Any) -> LogSeverity:
    for level in LogSeverity:
        # Calico accepts any case here ("info"); keep the canonical spelling.
        if isinstance(value, str) and value.lower() == level.value.lower():
            return level
    choices = ", ".join(level.value for level in LogSeverity)
    raise invalid(f"{shown(value)} is not one of {choices}")


class BGPConfigurationSpec(Model):
    as_number: ASNumber | None = None
    node_to_node_mesh_enabled: Bool | None = None
    listen_port: Port | None = None
    # Calico spells it logSeverityScreen; both are read, logSeverity is written.
    log_severity: LogSeverity | None = Field(
        default=None,
        validation_alias=AliasChoices("logSeverity", "logSeverityScreen", "log_severity"),
        serialization_alias="logSeverity",
    )
    node_mesh_password: Text | None = None
    keepalive_time: Duration | None = None
    hold_time: Duration | None = None

    @field_validator("log_severity", mode="plain")
    @classmethod
    def _check_log_severity(cls, value: Any) -> LogSeverity | None:
        return None if value is None else _log_severity(value)

    @field_serializer("log_severity", when_used="json")
    def _severity_text(self, level: LogSeverity | None) -> str | None:
        # Explicit: pydantic warns when serialising an enum a plain validator made.
        return None if level is None else level.value

    @field_validator("hold_time")
    @classmethod
    def _check_hold(cls, value: int | None) -> int | None:
        if value is not None and 0 < value < 3:
            raise invalid(f"{value}s is too short: use 0s (no keepalives) or at least 3s")
        return value

    @model_validator(mode="after")
    def _check_timers(self) -> BGPConfigurationSpec:
        keepalive, hold = self.keepalive_time, self.hold_time
        if keepalive is not None and hold and keepalive >= hold:
            raise invalid(
                f"keepaliveTime ({keepalive}s) must be shorter than holdTime ({hold}s);"
                " a third of it is usual"
            )
        return self


@register_kind
class BGPConfiguration(Resource):
    kind: ClassVar[str] = "BGPConfiguration"
    plural: ClassVar[str] = "bgpconfigurations"
    aliases: ClassVar[tuple[str, ...]] = ("bgpconfiguration", "bgpconfig", "bgpconfigs")

    spec: BGPConfigurationSpec = Field(default_factory=BGPConfigurationSpec)

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        if name == GLOBAL_BGP_CONFIGURATION:
            return None
        if name.startswith(NODE_CONFIGURATION_PREFIX):
            node = name.removeprefix(NODE_CONFIGURATION_PREFIX)
            return dns_subdomain_problem(node) if node else "node.<nodename> needs a node name"
        return (
            f'"{name}" must be "default" (the cluster-wide configuration)'
            ' or "node.<nodename>" (one node\'s overrides)'
        )

    @property
    def node_name(self) -> str | None:
        """The node a per-node configuration applies to; None for the global one."""
        if self.metadata.name.startswith(NODE_CONFIGURATION_PREFIX):
            return self.metadata.name.removeprefix(NODE_CONFIGURATION_PREFIX)
        return None

    @model_validator(mode="after")
    def _defaults_or_inherit(self) -> BGPConfiguration:
        spec = self.spec
        if self.metadata.name != GLOBAL_BGP_CONFIGURATION:
            for field, alias in (
                ("as_number", "asNumber"),
                ("node_to_node_mesh_enabled", "nodeToNodeMeshEnabled"),
            ):
                if getattr(spec, field) is not None:
                    raise invalid(
                        'can only be set in the global configuration "default", not per node',
                        path=f"spec.{alias}",
                    )
            return self
        defaults = {
            "as_number": DEFAULT_AS_NUMBER,
            "node_to_node_mesh_enabled": True,
            "listen_port": DEFAULT_LISTEN_PORT,
            "log_severity": LogSeverity.INFO,
        }
        missing = {k: v for k, v in defaults.items() if getattr(spec, k) is None}
        if missing:
            # A copy: the caller may have passed a spec object it still holds.
            self.spec = spec.model_copy(update=missing)
        return self


def effective_bgp_configuration(
    configs: Iterable[BGPConfiguration], node: str
) -> BGPConfigurationSpec:
    """The settings `node` runs with: the global configuration (defaults if there
    is none) overlaid with what ``node.<node>`` sets."""
    by_name = {c.name: c for c in configs}
    default = by_name.get(GLOBAL_BGP_CONFIGURATION) or BGPConfiguration(
        metadata=Metadata(name=GLOBAL_BGP_CONFIGURATION)
    )
    override = by_name.get(NODE_CONFIGURATION_PREFIX + node)
    if override is None:
        return default.spec
    # Attribute values, not a dump: the overlay must keep Python types (ints, enums).
    update = {
        field: value
        for field in BGPConfigurationSpec.model_fields
        if (value := getattr(override.spec, field)) is not None
    }
    return default.spec.model_copy(update=update)


def split_peer_address(
    text: str,
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None]:
    """``10.0.0.1``, ``10.0.0.1:180``, ``fd00::1`` or ``[fd00::1]:180`` → (address, port)."""
    host, port_text = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(text)
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    address = ipaddress.ip_address(host)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(text)
        port = int(port_text)
    return address, port


def _peer_ip(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"expected an IP address, got {shown(value)}")
    text = value.strip()
    try:
        split_peer_address(text)
    except ValueError:
        raise invalid(
            f'"{text}" is not an IP address or IP:port (e.g. 192.0.2.1, 192.0.2.1:1179,'
            " [2001:db8::1]:1179)"
        ) from None
    return text


class BGPPeerSpec(Model):
    peer_ip: str | None = Field(default=None, alias="peerIP")
    as_number: ASNumber | None = None
    node: DNSName | None = None
    node_selector: SelectorText | None = None
    peer_selector: SelectorText | None = None
    password: Text | None = None
    keep_original_next_hop: Bool = False
    # Calico's "UseNodeIP" (default behaviour) or "None", or an explicit address.
    source_address: Text | None = None

    @field_validator("peer_ip", mode="plain")
    @classmethod
    def _check_peer_ip(cls, value: Any) -> str | None:
        return None if value is None else _peer_ip(value)

    @field_validator("node_selector", "peer_selector")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("source_address")
    @classmethod
    def _check_source(cls, value: str | None) -> str | None:
        if value is None or value in ("UseNodeIP", "None"):
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise invalid(
                f'"{value}" is not "UseNodeIP", "None" or an IP address of this node'
            ) from None
        return value

    @model_validator(mode="after")
    def _check_exclusive(self) -> BGPPeerSpec:
        if self.peer_ip is not None and self.peer_selector is not None:
            raise invalid("peerIP and peerSelector are mutually exclusive")
        if self.peer_ip is None and self.peer_selector is None:
            raise invalid("one of peerIP or peerSelector is required")
        if self.node is not None and self.node_selector is not None:
            raise invalid("node and nodeSelector are mutually exclusive")
        if self.peer_ip is not None and self.as_number is None:
            raise invalid("asNumber is required when peerIP is set")
        return self

    @property
    def peer_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        return None if self.peer_ip is None else split_peer_address(self.peer_ip)[0]

    @property
    def peer_port(self) -> int | None:
        return None if self.peer_ip is None else split_peer_address(self.peer_ip)[1]


@register_kind
class BGPPeer(Resource):
    kind: ClassVar[str] = "BGPPeer"
    plural: ClassVar[str] = "bgppeers"
    aliases: ClassVar[tuple[str, ...]] = ("bgppeer", "peer", "peers")

    spec: BGPPeerSpec

    @property
    def is_global(self) -> bool:
        """Applies to every node (neither `node` nor `node_selector` is set)."""
        return self.spec.node is None and self.spec.node_selector is None

    def applies_to_node(self, name: str, labels: dict[str, str]) -> bool:
        """Whether the node `name` with `labels` is a local side of this peering."""
        if self.spec.node is not None:
            return self.spec.node == name
        if self.spec.node_selector is not None:
            return parse_selector(self.spec.node_selector).matches(labels)
        return True

    @property
    def peer_selector(self) -> Selector | None:
        if self.spec.peer_selector is None:
            return None
        return parse_selector(self.spec.peer_selector)


class NodeBGPSpec(Model):
    ipv4_address: IPv4Interface | None = None
    ipv6_address: IPv6Interface | None = None
    as_number: ASNumber | None = None
    route_reflector_cluster_id: IPv4Address | None = Field(
        default=None, alias="routeReflectorClusterID"
    )
    ipv4_ipip_tunnel_addr: IPv4Address | None = Field(default=None, alias="ipv4IPIPTunnelAddr")

    @model_validator(mode="after")
    def _needs_address(self) -> NodeBGPSpec:
        if self.ipv4_address is None and self.ipv6_address is None:
            raise invalid("bgp needs ipv4Address or ipv6Address (e.g. ipv4Address: 10.0.0.1/24)")
        return self


class NodeVXLANSpec(Model):
    tunnel_address: IPv4Address | None = None
    tunnel_mac: MACAddress | None = Field(default=None, alias="tunnelMAC")


# Calico keeps the VTEP on the Node spec itself; Gingham groups it under vxlan.
_CALICO_VXLAN_FIELDS = {"ipv4VXLANTunnelAddr": "tunnelAddress", "vxlanTunnelMACAddr": "tunnelMAC"}


class NodeSpec(Model):
    bgp: NodeBGPSpec | None = None
    vxlan: NodeVXLANSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _calico_vxlan_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not _CALICO_VXLAN_FIELDS.keys() & data.keys():
            return data
        vxlan = data.get("vxlan")
        if vxlan is not None and not isinstance(vxlan, dict):
            return data  # reported as "expected a mapping" by the field
        moved = dict(vxlan or {})
        rest = {}
        for key, value in data.items():
            if key in _CALICO_VXLAN_FIELDS:
                moved[_CALICO_VXLAN_FIELDS[key]] = value
            else:
                rest[key] = value
        return {**rest, "vxlan": moved}


@register_kind
class Node(Resource):
    kind: ClassVar[str] = "Node"
    plural: ClassVar[str] = "nodes"
    aliases: ClassVar[tuple[str, ...]] = ("node", "no")

    spec: NodeSpec = Field(default_factory=NodeSpec)

    @property
    def is_route_reflector(self) -> bool:
        return self.spec.bgp is not None and self.spec.bgp.route_reflector_cluster_id is not None
