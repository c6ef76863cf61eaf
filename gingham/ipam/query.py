"""Read-only views of IPAM state: what felix, the BGP speaker and the CLI ask.

Pure summaries (`block_usage`, `pool_usage`, `borrowed_in`) over lists of
resources, plus thin async readers over a datastore. The IPAMBlock objects
are the truth here (not BlockAffinity): a node's blocks are the blocks whose
``affinity`` is ``host:<node>``; a borrowed address is one held by a node
other than its block's host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gingham.datastore.base import Datastore
from gingham.ipam import blocks as core
from gingham.model.fields import IPNetwork
from gingham.model.ipam import IPAMBlock
from gingham.model.network import IPPool


@dataclass(frozen=True)
class BlockUsage:
    cidr: IPNetwork
    node: str | None
    allocated: int
    free: int
    borrowed: int


@dataclass(frozen=True)
class PoolUsage:
    name: str
    cidr: IPNetwork
    size: int
    allocated: int
    free: int
    blocks: list[BlockUsage]
    disabled: bool


@dataclass(frozen=True)
class HeldAddress:
    block: IPNetwork
    block_node: str | None
    allocation: core.Allocation
    borrowed: bool


def block_usage(block: IPAMBlock) -> BlockUsage:
    held = core.allocations(block.spec)
    return BlockUsage(
        cidr=block.spec.cidr,
        node=block.spec.host,
        allocated=len(held),
        free=core.free_count(block.spec),
        borrowed=sum(1 for a in held if core.is_borrowed(block.spec, a)),
    )


def _inside(block: IPNetwork, pool: IPNetwork) -> bool:
    return block.version == pool.version and block.subnet_of(pool)  # type: ignore[arg-type]


def pool_usage(pools: Sequence[IPPool], blocks: Sequence[IPAMBlock]) -> list[PoolUsage]:
    """Per pool: its size, addresses allocated, addresses free (claimed or not)."""
    result = []
    for pool in sorted(pools, key=lambda p: (p.spec.cidr.version, p.spec.cidr)):
        mine = sorted(
            (block_usage(b) for b in blocks if _inside(b.spec.cidr, pool.spec.cidr)),
            key=lambda u: u.cidr,
        )
        allocated = sum(u.allocated for u in mine)
        size = pool.spec.cidr.num_addresses
        result.append(
            PoolUsage(
                name=pool.name,
                cidr=pool.spec.cidr,
                size=size,
                allocated=allocated,
                free=size - allocated,
                blocks=mine,
                disabled=pool.spec.disabled,
            )
        )
    return result


def held_addresses(blocks: Sequence[IPAMBlock]) -> list[HeldAddress]:
    return [
        HeldAddress(b.spec.cidr, b.spec.host, a, core.is_borrowed(b.spec, a))
        for b in sorted(blocks, key=lambda b: b.spec.cidr)
        for a in core.allocations(b.spec)
    ]


async def list_blocks(store: Datastore) -> list[IPAMBlock]:
    return [b for b in (await store.list(IPAMBlock.kind)).items if isinstance(b, IPAMBlock)]


async def list_pools(store: Datastore) -> list[IPPool]:
    return [p for p in (await store.list(IPPool.kind)).items if isinstance(p, IPPool)]


async def blocks_for_node(store: Datastore, node: str) -> list[IPNetwork]:
    """The CIDRs of the blocks affine to `node` (what it announces over BGP)."""
    return sorted(b.spec.cidr for b in await list_blocks(store) if b.spec.host == node)


async def borrowed_ips(store: Datastore, node: str) -> list[core.IPAddress]:
    """Addresses `node` holds in other nodes' blocks (announced as /32s)."""
    return [
        h.allocation.address
        for h in held_addresses(await list_blocks(store))
        if h.borrowed and h.allocation.node == node
    ]


async def allocations(
    store: Datastore, node: str | None = None, handle: str | None = None
) -> list[HeldAddress]:
    """Every allocated address, optionally only those of `node` / `handle`."""
    return [
        h
        for h in held_addresses(await list_blocks(store))
        if (node is None or h.allocation.node == node)
        and (handle is None or h.allocation.handle_id == handle)
    ]
