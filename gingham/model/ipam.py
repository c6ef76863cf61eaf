"""IPAM kinds: IPAMConfiguration, IPAMBlock, BlockAffinity, IPAMHandle.

The layout follows Calico's so an operator who knows `calicoctl ipam` reads it
at once:

- `IPAMBlock` (name: the CIDR dashed, ``10-0-0-0-26``) is the authority for
  which addresses are taken. `allocations[ordinal]` is an index into
  `attributes` (or None when free); `unallocated` lists the free ordinals in
  the order they will be handed out (released ones go to the back);
  `affinity` is ``host:<node>`` for the node that claimed the block.
- `BlockAffinity` (name ``<node>-<cidr dashed>``) is the index felix and the
  BGP speaker watch: a node announces the blocks whose affinity is
  ``confirmed``. ``pending`` is a claim in progress; ``pendingDeletion`` a
  release in progress. Where they disagree the block wins (see
  gingham.ipam.allocator for the repair rules).
- `IPAMHandle` counts, per block, the addresses a handle holds, so a release
  visits only those blocks and a leak is findable from either side. Handle
  IDs (``<container id>.eth0``, ``ipip-tunnel-addr-node1``) are kept verbatim
  in `spec.handle_id`; `metadata.name` is a DNS-safe form of it
  (`handle_name`).

Invariants of a valid block (checked on construction): every ordinal is
either allocated or in `unallocated`, never both, never twice; every
allocation points at an existing attributes entry.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import ClassVar

from pydantic import Field, model_validator

from gingham.model.base import Model, Resource, register_kind
from gingham.model.fields import (
    CIDR,
    Bool,
    IPNetwork,
    dns_subdomain_problem,
    invalid,
)

IPAM_CONFIGURATION_NAME = "default"
AFFINITY_HOST_PREFIX = "host:"


def dashed(cidr: IPNetwork) -> str:
    """``10.0.0.0/26`` → ``10-0-0-0-26`` (``fd00::/122`` → ``fd00--122``)."""
    return re.sub(r"[.:/]", "-", str(cidr))


def block_name(cidr: IPNetwork) -> str:
    return dashed(cidr)


def affinity_name(node: str, cidr: IPNetwork) -> str:
    return f"{node}-{dashed(cidr)}"


def handle_name(handle_id: str) -> str:
    """A DNS-1123 name for `handle_id`: itself when it already is one, else a
    lower-cased, dash-substituted form with a hash suffix (so two IDs that
    differ only in case or punctuation never share a record)."""
    if dns_subdomain_problem(handle_id) is None:
        return handle_id
    safe = re.sub(r"[^a-z0-9.-]", "-", handle_id.lower()).strip("-.")[:200]
    digest = hashlib.sha256(handle_id.encode()).hexdigest()[:12]
    return f"{safe}-{digest}" if safe else f"h-{digest}"


def host_affinity(node: str) -> str:
    return f"{AFFINITY_HOST_PREFIX}{node}"


class IPAMConfigurationSpec(Model):
    strict_affinity: Bool = False
    # 0: no limit.
    # A Field constraint (not a plain validator) so the generated CRD carries it too.
    max_blocks_per_host: int = Field(default=0, ge=0)
    # Give a block back (delete it and its affinity) when its last address is
    # released. Off by default, as in Calico: a node keeps its blocks.
    auto_release_empty_blocks: Bool = False


@register_kind
class IPAMConfiguration(Resource):
    kind: ClassVar[str] = "IPAMConfiguration"
    plural: ClassVar[str] = "ipamconfigurations"
    aliases: ClassVar[tuple[str, ...]] = ("ipamconfig", "ipamconfiguration")

    spec: IPAMConfigurationSpec = Field(default_factory=IPAMConfigurationSpec)

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        if name != IPAM_CONFIGURATION_NAME:
            return f'the IPAM configuration must be named "{IPAM_CONFIGURATION_NAME}"'
        return None


class AllocationAttribute(Model):
    handle_id: str | None = None
    # namespace, pod, node, ...: what a person needs to find the owner.
    secondary: dict[str, str] = Field(default_factory=dict)


class IPAMBlockSpec(Model):
    cidr: CIDR
    affinity: str | None = None
    strict_affinity: Bool = False
    allocations: list[int | None]
    unallocated: list[int]
    attributes: list[AllocationAttribute] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> IPAMBlockSpec:
        size = self.cidr.num_addresses
        if len(self.allocations) != size:
            raise invalid(
                f"has {len(self.allocations)} entries, the block {self.cidr} has {size} addresses",
                path="spec.allocations",
            )
        free = set(self.unallocated)
        if len(free) != len(self.unallocated) or not free <= set(range(size)):
            raise invalid("lists an ordinal twice or outside the block", path="spec.unallocated")
        for ordinal, index in enumerate(self.allocations):
            if index is None:
                if ordinal not in free:
                    raise invalid(f"ordinal {ordinal} is neither allocated nor free", "spec")
            elif ordinal in free:
                raise invalid(f"ordinal {ordinal} is both allocated and free", "spec")
            elif not 0 <= index < len(self.attributes):
                raise invalid(f"ordinal {ordinal} points at no attributes entry", "spec")
        return self

    @property
    def host(self) -> str | None:
        """The node this block is affine to (None: no affinity)."""
        if self.affinity and self.affinity.startswith(AFFINITY_HOST_PREFIX):
            return self.affinity[len(AFFINITY_HOST_PREFIX) :]
        return None


@register_kind
class IPAMBlock(Resource):
    kind: ClassVar[str] = "IPAMBlock"
    plural: ClassVar[str] = "ipamblocks"
    aliases: ClassVar[tuple[str, ...]] = ("ipamblock", "block", "blocks")

    spec: IPAMBlockSpec


class AffinityState(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PENDING_DELETION = "pendingDeletion"


class BlockAffinitySpec(Model):
    node: str
    cidr: CIDR
    state: AffinityState = AffinityState.PENDING
    deleted: Bool = False


@register_kind
class BlockAffinity(Resource):
    kind: ClassVar[str] = "BlockAffinity"
    plural: ClassVar[str] = "blockaffinities"
    aliases: ClassVar[tuple[str, ...]] = ("blockaffinity", "affinity", "affinities")

    spec: BlockAffinitySpec


class IPAMHandleSpec(Model):
    handle_id: str
    # block CIDR (text) → how many addresses of that block the handle holds.
    block: dict[str, int] = Field(default_factory=dict)


@register_kind
class IPAMHandle(Resource):
    kind: ClassVar[str] = "IPAMHandle"
    plural: ClassVar[str] = "ipamhandles"
    aliases: ClassVar[tuple[str, ...]] = ("ipamhandle", "handle", "handles")

    spec: IPAMHandleSpec
