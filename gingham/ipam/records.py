"""The multi-write protocols on IPAM records, each safe to interrupt anywhere.

`Records` owns how a node claims a block (BlockAffinity pending → IPAMBlock
created → affinity confirmed), how a claim that died half-way is finished or
cleaned up, how an empty block is given back (affinity pendingDeletion →
block deleted with CAS → affinity deleted), and how a handle record's
per-block counts move. gingham.ipam.allocator decides *what* to do; this
module does the writes.

Every method either completes, raises `LostRace` (a racing writer changed
what it read: the caller redoes its step from fresh reads), or lets the
datastore's own errors through. The block is the truth: an affinity that
disagrees with its block is repaired towards the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TypeVar

from gingham.datastore.base import AlreadyExists, Conflict, Datastore, NotFound
from gingham.ipam import blocks as core
from gingham.ipam.errors import BlockNotReleasable, ConflictRetriesExceeded
from gingham.model.base import Metadata, Resource
from gingham.model.fields import IPNetwork
from gingham.model.ipam import (
    AffinityState,
    BlockAffinity,
    BlockAffinitySpec,
    IPAMBlock,
    IPAMHandle,
    IPAMHandleSpec,
    affinity_name,
    block_name,
    handle_name,
)

R = TypeVar("R", bound=Resource)


class LostRace(Exception):
    """A read-then-write step raced with another writer: redo it from fresh reads."""


class Records:
    def __init__(
        self, store: Datastore, max_attempts: int, backoff_base: float, backoff_cap: float
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._random = random.Random()
        # (node, block cidr) whose BlockAffinity this process saw confirmed.
        self.confirmed: set[tuple[str, IPNetwork]] = set()

    async def backoff(self, attempt: int) -> None:
        """Jittered exponential backoff before retry number `attempt` + 1."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt, 16))
        await asyncio.sleep(self._random.uniform(0, delay))

    # --- handles -----------------------------------------------------------------

    async def add_to_handle(self, handle: str, cidr: str, delta: int) -> None:
        name = handle_name(handle)
        # A new handle is the common case (one per pod): try to create first.
        try_create = delta > 0
        for attempt in range(self.max_attempts):
            if try_create:
                spec = IPAMHandleSpec(handle_id=handle, block={cidr: delta})
                try:
                    await self.store.create(IPAMHandle(metadata=Metadata(name=name), spec=spec))
                    return
                except AlreadyExists:
                    pass
            try:
                record = await self.store.get(IPAMHandle.kind, name)
            except NotFound:
                if delta <= 0:
                    return
                try_create = True
                continue
            try_create = False
            assert isinstance(record, IPAMHandle)
            counts = dict(record.spec.block)
            counts[cidr] = counts.get(cidr, 0) + delta
            if counts[cidr] <= 0:
                del counts[cidr]
            try:
                if counts:
                    spec = record.spec.model_copy(update={"block": counts})
                    await self.store.update(record.model_copy(update={"spec": spec}))
                else:
                    await self.store.delete(IPAMHandle.kind, name, record.resource_version)
                return
            except (Conflict, NotFound):
                await self.backoff(attempt)
        raise ConflictRetriesExceeded(f'IPAMHandle "{handle}": too many concurrent updates')

    # --- claiming blocks ---------------------------------------------------------

    async def claim(self, node: str, cidr: IPNetwork, strict: bool) -> IPAMBlock | None:
        """Claim `cidr` for `node`: the block, or None when another node has it."""
        name = affinity_name(node, cidr)
        pending = BlockAffinity(
            metadata=Metadata(name=name), spec=BlockAffinitySpec(node=node, cidr=cidr)
        )
        try:
            affinity = await self.store.create(pending)
        except AlreadyExists:
            # Our own earlier claim (perhaps by a process that died mid-claim).
            affinity = await self.get_or_race(BlockAffinity, name)
            if affinity.spec.state == AffinityState.PENDING_DELETION:
                # A release is under way, or died after deleting the block: in
                # that case finish it. Either way look again afterwards.
                try:
                    await self.store.get(IPAMBlock.kind, block_name(cidr))
                except NotFound:
                    await self.delete_quietly(BlockAffinity.kind, name, affinity.resource_version)
                raise LostRace from None
        new_block = IPAMBlock(
            metadata=Metadata(name=block_name(cidr)), spec=core.empty_block(cidr, node, strict)
        )
        try:
            block = await self.store.create(new_block)
        except AlreadyExists:
            block = await self.get_or_race(IPAMBlock, block_name(cidr))
            if block.spec.host != node:
                await self.delete_quietly(BlockAffinity.kind, name, affinity.resource_version)
                return None
        assert isinstance(affinity, BlockAffinity) and isinstance(block, IPAMBlock)
        await self.confirm(node, cidr, affinity)
        await self.drop_stale_claims(node, cidr)
        return block

    async def get(self, cls: type[R], name: str) -> R:
        found = await self.store.get(cls.kind, name)
        if not isinstance(found, cls):
            raise TypeError(f"{cls.kind} {name!r}: the store returned a {found.kind}")
        return found

    async def get_or_race(self, cls: type[R], name: str) -> R:
        try:
            return await self.get(cls, name)
        except NotFound:
            raise LostRace from None  # deleted between our create and get

    async def confirm(self, node: str, cidr: IPNetwork, affinity: BlockAffinity | None) -> None:
        name = affinity_name(node, cidr)
        for _ in range(self.max_attempts):
            if affinity is None:
                spec = BlockAffinitySpec(node=node, cidr=cidr, state=AffinityState.CONFIRMED)
                try:
                    await self.store.create(BlockAffinity(metadata=Metadata(name=name), spec=spec))
                    break
                except AlreadyExists:
                    pass
            elif affinity.spec.state == AffinityState.CONFIRMED:
                break
            else:
                spec = affinity.spec.model_copy(update={"state": AffinityState.CONFIRMED})
                try:
                    await self.store.update(affinity.model_copy(update={"spec": spec}))
                    break
                except (Conflict, NotFound):
                    pass
            try:
                found = await self.store.get(BlockAffinity.kind, name)
                assert isinstance(found, BlockAffinity)
                affinity = found
            except NotFound:
                affinity = None
        else:
            raise ConflictRetriesExceeded(f'BlockAffinity "{name}": too many concurrent updates')
        self.confirmed.add((node, cidr))

    async def confirm_affinity(self, node: str, cidr: IPNetwork) -> None:
        """Make `node`'s BlockAffinity for `cidr` confirmed (creating it if missing)."""
        self.confirmed.discard((node, cidr))
        try:
            affinity: BlockAffinity | None = await self.get(
                BlockAffinity, affinity_name(node, cidr)
            )
        except NotFound:
            affinity = None
        await self.confirm(node, cidr, affinity)

    async def ensure_confirmed(self, node: str, block: IPAMBlock) -> None:
        """Repair a claim that died after writing its block (once per process)."""
        if (node, block.spec.cidr) in self.confirmed:
            return
        try:
            found = await self.store.get(BlockAffinity.kind, affinity_name(node, block.spec.cidr))
            assert isinstance(found, BlockAffinity)
            affinity: BlockAffinity | None = found
        except NotFound:
            affinity = None
        await self.confirm(node, block.spec.cidr, affinity)

    async def drop_stale_claims(self, winner: str, cidr: IPNetwork) -> None:
        """Other nodes' pending claims of a block `winner` now holds: they lost
        (or died trying); nothing will ever confirm them."""
        for other in (await self.store.list(BlockAffinity.kind)).items:
            assert isinstance(other, BlockAffinity)
            spec = other.spec
            if spec.cidr == cidr and spec.node != winner and spec.state == AffinityState.PENDING:
                await self.delete_quietly(BlockAffinity.kind, other.name, other.resource_version)

    async def delete_quietly(self, kind: str, name: str, revision: str | None) -> None:
        with contextlib.suppress(NotFound, Conflict):  # someone else dealt with it
            await self.store.delete(kind, name, revision)

    async def release_block_once(self, node: str, cidr: IPNetwork) -> None:
        name = affinity_name(node, cidr)
        try:
            found = await self.store.get(IPAMBlock.kind, block_name(cidr))
        except NotFound:
            await self.delete_quietly(BlockAffinity.kind, name, None)
            return
        assert isinstance(found, IPAMBlock)
        if found.spec.host != node:
            holder = f'node "{found.spec.host}"' if found.spec.host else "no node"
            raise BlockNotReleasable(f"IPAMBlock {cidr}: affine to {holder}, not node {node!r}")
        used = len(core.allocations(found.spec))
        if used:
            raise BlockNotReleasable(
                f"IPAMBlock {cidr}: still holds {used} address(es); release them first"
            )
        affinity: BlockAffinity | None
        try:
            got = await self.store.get(BlockAffinity.kind, name)
            assert isinstance(got, BlockAffinity)
            spec = got.spec.model_copy(update={"state": AffinityState.PENDING_DELETION})
            affinity = got.model_copy(update={"spec": spec})
            affinity = affinity.with_revision((await self.store.update(affinity)).resource_version)
        except NotFound:
            affinity = None
        try:
            await self.store.delete(IPAMBlock.kind, found.name, found.resource_version)
        except (Conflict, NotFound):
            # Someone allocated meanwhile: the block stays, and so does its claim.
            if affinity is not None:
                self.confirmed.discard((node, cidr))
                await self.confirm(node, cidr, affinity)
            raise LostRace from None
        self.confirmed.discard((node, cidr))
        await self.delete_quietly(BlockAffinity.kind, name, None)
