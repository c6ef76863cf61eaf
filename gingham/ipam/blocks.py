"""Pure block arithmetic and allocation: no I/O, values in, new values out.

A pool is cut into aligned blocks of `block_size`; an address in a block is
named by its ordinal (offset from the block's first address). As in Calico,
every address of a block is usable, including its first and last: a block is
a routing unit, not a subnet on a wire. The pool's own network and broadcast
addresses are not special either.

Allocation functions take an `IPAMBlockSpec` and return a new one (the input
is never mutated), so the allocator can write the result with compare-and-swap
and simply recompute from a fresh read when it loses the race.

Invariants kept by every function here (and checked by the spec's validator):
- an ordinal is either allocated (points at an attributes entry) or listed
  once in `unallocated`;
- `allocate` hands out ordinals from the front of `unallocated`; released
  ordinals go to its back, so a just-freed address is reused last;
- no attributes entry is left unreferenced after a release.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from gingham.model.fields import IPNetwork
from gingham.model.ipam import AllocationAttribute, IPAMBlockSpec, host_affinity

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressInUse(Exception):
    """A specific address was asked for and is already allocated."""


class AddressOutsideBlock(ValueError):
    pass


def blocks_of_pool(pool: IPNetwork, block_size: int) -> Iterator[IPNetwork]:
    """Every block of `pool`, in address order."""
    return pool.subnets(new_prefix=block_size)


def block_containing(pool: IPNetwork, block_size: int, ip: IPAddress) -> IPNetwork:
    """The block of `pool` that holds `ip` (ValueError when `ip` is outside the pool)."""
    if ip not in pool:
        raise AddressOutsideBlock(f"{ip} is not in {pool}")
    return ipaddress.ip_network(f"{ip}/{block_size}", strict=False)


def ordinal_of(block: IPNetwork, ip: IPAddress) -> int:
    if ip.version != block.version or ip not in block:
        raise AddressOutsideBlock(f"{ip} is not in block {block}")
    return int(ip) - int(block.network_address)


def address_of(block: IPNetwork, ordinal: int) -> IPAddress:
    if not 0 <= ordinal < block.num_addresses:
        raise AddressOutsideBlock(f"ordinal {ordinal} is outside block {block}")
    return ipaddress.ip_address(int(block.network_address) + ordinal)


def empty_block(cidr: IPNetwork, node: str | None, strict_affinity: bool = False) -> IPAMBlockSpec:
    size = cidr.num_addresses
    return IPAMBlockSpec(
        cidr=cidr,
        affinity=host_affinity(node) if node is not None else None,
        strict_affinity=strict_affinity,
        allocations=[None] * size,
        unallocated=list(range(size)),
        attributes=[],
    )


@dataclass(frozen=True)
class Allocation:
    """One allocated address of a block, with who holds it."""

    address: IPAddress
    ordinal: int
    handle_id: str | None
    attributes: Mapping[str, str]

    @property
    def node(self) -> str | None:
        return self.attributes.get("node")


def allocations(spec: IPAMBlockSpec) -> list[Allocation]:
    result = []
    for ordinal, index in enumerate(spec.allocations):
        if index is not None:
            attr = spec.attributes[index]
            result.append(
                Allocation(address_of(spec.cidr, ordinal), ordinal, attr.handle_id, attr.secondary)
            )
    return result


def is_borrowed(spec: IPAMBlockSpec, allocation: Allocation) -> bool:
    """Held by a node other than the block's affine host (or the block has none)."""
    host = spec.host
    return host is None or (allocation.node is not None and allocation.node != host)


def free_count(spec: IPAMBlockSpec) -> int:
    return len(spec.unallocated)


def _attribute_index(
    attributes: list[AllocationAttribute], handle_id: str, secondary: Mapping[str, str]
) -> int:
    """Index of an equal attributes entry, appending one when there is none."""
    wanted = AllocationAttribute(handle_id=handle_id, secondary=dict(secondary))
    for index, existing in enumerate(attributes):
        if existing == wanted:
            return index
    attributes.append(wanted)
    return len(attributes) - 1


def allocate(
    spec: IPAMBlockSpec, count: int, handle_id: str, secondary: Mapping[str, str]
) -> tuple[IPAMBlockSpec, list[IPAddress]]:
    """Take up to `count` free addresses (fewer when the block has fewer)."""
    taken = spec.unallocated[:count]
    if not taken:
        return spec, []
    attributes = list(spec.attributes)
    index = _attribute_index(attributes, handle_id, secondary)
    slots = list(spec.allocations)
    for ordinal in taken:
        slots[ordinal] = index
    new = spec.model_copy(
        update={
            "allocations": slots,
            "unallocated": spec.unallocated[len(taken) :],
            "attributes": attributes,
        }
    )
    return new, [address_of(spec.cidr, o) for o in taken]


def allocate_address(
    spec: IPAMBlockSpec, ip: IPAddress, handle_id: str, secondary: Mapping[str, str]
) -> IPAMBlockSpec:
    """Take exactly `ip`; `AddressInUse` naming its holder when it is taken."""
    ordinal = ordinal_of(spec.cidr, ip)
    index = spec.allocations[ordinal]
    if index is not None:
        holder = spec.attributes[index].handle_id or "an unknown handle"
        raise AddressInUse(f"{ip} is already allocated (handle {holder})")
    attributes = list(spec.attributes)
    new_index = _attribute_index(attributes, handle_id, secondary)
    slots = list(spec.allocations)
    slots[ordinal] = new_index
    return spec.model_copy(
        update={
            "allocations": slots,
            "unallocated": [o for o in spec.unallocated if o != ordinal],
            "attributes": attributes,
        }
    )


def _release(spec: IPAMBlockSpec, ordinals: Sequence[int]) -> IPAMBlockSpec:
    if not ordinals:
        return spec
    slots = list(spec.allocations)
    for ordinal in ordinals:
        slots[ordinal] = None
    # Drop attributes no allocation refers to any more, renumbering the rest.
    used = sorted({i for i in slots if i is not None})
    renumber = {old: new for new, old in enumerate(used)}
    return spec.model_copy(
        update={
            "allocations": [None if i is None else renumber[i] for i in slots],
            "unallocated": [*spec.unallocated, *ordinals],
            "attributes": [spec.attributes[old] for old in used],
        }
    )


def release_handle(spec: IPAMBlockSpec, handle_id: str) -> tuple[IPAMBlockSpec, list[IPAddress]]:
    """Free every address `handle_id` holds in this block."""
    ordinals = [
        ordinal
        for ordinal, index in enumerate(spec.allocations)
        if index is not None and spec.attributes[index].handle_id == handle_id
    ]
    return _release(spec, ordinals), [address_of(spec.cidr, o) for o in ordinals]


def release_addresses(
    spec: IPAMBlockSpec, ips: Sequence[IPAddress]
) -> tuple[IPAMBlockSpec, dict[str, int]]:
    """Free the given addresses (free ones are skipped); returns how many each
    handle lost, so the caller can fix the handle records."""
    ordinals: list[int] = []
    lost: dict[str, int] = {}
    for ip in ips:
        ordinal = ordinal_of(spec.cidr, ip)
        index = spec.allocations[ordinal]
        if index is None or ordinal in ordinals:
            continue
        ordinals.append(ordinal)
        handle = spec.attributes[index].handle_id
        if handle is not None:
            lost[handle] = lost.get(handle, 0) + 1
    return _release(spec, ordinals), lost


def is_empty(spec: IPAMBlockSpec) -> bool:
    return len(spec.unallocated) == len(spec.allocations)
