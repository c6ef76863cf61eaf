"""IPPool: a range pods get addresses from, carved into per-node blocks.

Invariants (checked on every construction, so a stored pool always holds them):
- `cidr` is a network address (no host bits) of either family.
- `block_size` is 20..32 for IPv4 (default 26) and 116..128 for IPv6 (default
  122), and no shorter than the pool's own prefix (one block fits the pool).
- At most one encapsulation is on: `ipip_mode` and `vxlan_mode` are not both
  other than Never; IPIP only for IPv4 pools.
- `node_selector` parses (`selects_node` uses the cached parse).

Overlap between pools is a cross-object rule: see `gingham.model.documents`.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_serializer, field_validator, model_validator

from gingham.model.base import Model, Resource, register_kind
from gingham.model.fields import CIDR, Bool, SelectorText, invalid, shown
from gingham.selector import Selector, parse_selector

IPV4_BLOCK_SIZES = (20, 32)
IPV6_BLOCK_SIZES = (116, 128)
DEFAULT_IPV4_BLOCK_SIZE = 26
DEFAULT_IPV6_BLOCK_SIZE = 122


class EncapsulationMode(enum.StrEnum):
    NEVER = "Never"
    ALWAYS = "Always"
    CROSS_SUBNET = "CrossSubnet"

    @classmethod
    def parse(cls, value: Any) -> EncapsulationMode:
        if isinstance(value, cls):
            return value
        for mode in cls:
            if value == mode.value:
                return mode
        choices = ", ".join(m.value for m in cls)
        raise invalid(f"{shown(value)} is not one of {choices}")


class IPPoolSpec(Model):
    cidr: CIDR
    # validate_default: the default must still fit the pool (a /28 pool).
    block_size: int = Field(default=DEFAULT_IPV4_BLOCK_SIZE, validate_default=True)
    ipip_mode: EncapsulationMode = EncapsulationMode.NEVER
    vxlan_mode: EncapsulationMode = EncapsulationMode.NEVER
    nat_outgoing: Bool = False
    disabled: Bool = False
    node_selector: SelectorText = Field(default="all()")

    @model_validator(mode="before")
    @classmethod
    def _default_block_size(cls, data: Any) -> Any:
        # The default depends on the family, which only the cidr text tells.
        if isinstance(data, dict) and "blockSize" not in data and "block_size" not in data:
            cidr = data.get("cidr")
            if isinstance(cidr, str) and ":" in cidr:
                return {**data, "blockSize": DEFAULT_IPV6_BLOCK_SIZE}
        return data

    @field_validator("block_size", mode="plain")
    @classmethod
    def _check_block_size(cls, value: Any, info: ValidationInfo) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"expected an integer, got {shown(value)}")
        cidr = info.data.get("cidr")
        if cidr is None:  # cidr invalid (reported already): accept either family's range
            if any(low <= value <= high for low, high in (IPV4_BLOCK_SIZES, IPV6_BLOCK_SIZES)):
                return value
            raise invalid(
                f"{value} is outside {IPV4_BLOCK_SIZES[0]}..{IPV4_BLOCK_SIZES[1]} (IPv4)"
                f" and {IPV6_BLOCK_SIZES[0]}..{IPV6_BLOCK_SIZES[1]} (IPv6)"
            )
        low, high = IPV4_BLOCK_SIZES if cidr.version == 4 else IPV6_BLOCK_SIZES
        if not low <= value <= high:
            raise invalid(f"{value} is outside {low}..{high}")
        if cidr is not None and value < cidr.prefixlen:
            raise invalid(
                f"a block of /{value} is larger than the pool {cidr}: use a blockSize of"
                f" {cidr.prefixlen} or more, or a larger cidr"
            )
        return value

    @field_validator("ipip_mode", mode="plain")
    @classmethod
    def _check_ipip(cls, value: Any, info: ValidationInfo) -> EncapsulationMode:
        mode = EncapsulationMode.parse(value)
        cidr = info.data.get("cidr")
        if mode is not EncapsulationMode.NEVER and cidr is not None and cidr.version == 6:
            raise invalid(f"IPIP carries IPv4 only: {cidr} is IPv6, set ipipMode: Never")
        return mode

    @field_validator("vxlan_mode", mode="plain")
    @classmethod
    def _check_vxlan(cls, value: Any, info: ValidationInfo) -> EncapsulationMode:
        mode = EncapsulationMode.parse(value)
        ipip = info.data.get("ipip_mode")
        if mode is not EncapsulationMode.NEVER and ipip not in (None, EncapsulationMode.NEVER):
            raise invalid(
                f"ipipMode ({ipip}) and vxlanMode ({mode}) cannot both be on:"
                " set one of them to Never"
            )
        return mode

    @field_serializer("ipip_mode", "vxlan_mode", when_used="json")
    def _mode_text(self, mode: EncapsulationMode) -> str:
        # Explicit: pydantic warns when serialising an enum a plain validator made.
        return mode.value

    @field_validator("node_selector")
    @classmethod
    def _blank_selector_is_all(cls, value: str) -> str:
        return value or "all()"


@register_kind
class IPPool(Resource):
    kind: ClassVar[str] = "IPPool"
    plural: ClassVar[str] = "ippools"
    aliases: ClassVar[tuple[str, ...]] = ("ippool", "pool", "pools")

    spec: IPPoolSpec

    @property
    def node_selector(self) -> Selector:
        return parse_selector(self.spec.node_selector)

    def selects_node(self, labels: dict[str, str]) -> bool:
        """Whether nodes with `labels` may take blocks from this pool."""
        return self.node_selector.matches(labels)
