"""Assign and release addresses over the datastore, Calico's way.

`IPAM(store)` is the one entry point: felix (pods, tunnel addresses), the CLI
and the tests call `assign`, `release`, `release_ip`, `release_block`; the
read side (`blocks_for_node`, `borrowed_ips`, `allocations`) lives in
gingham.ipam.query.

How an address is found (`assign`):
1. a free address in a block affine to the node (in a usable pool);
2. else claim the next free block of a usable pool, unless the node already
   has `maxBlocksPerHost` blocks;
3. else borrow a free address from another node's block, unless strict
   affinity is on (then `PoolExhausted` says so).
A pool is usable when it is enabled and its `nodeSelector` matches the labels
of the node's `Node` resource (no Node: only ``all()`` matches).

Writes and what a crash between them leaves (no multi-key transactions; the
claim/confirm/release-block/handle writes themselves are gingham.ipam.records):
- claim: BlockAffinity(pending) → IPAMBlock(affinity host:node) with create
  (exactly one creator wins) → BlockAffinity confirmed. The block is the
  truth. A crash after the affinity leaves a pending affinity without a
  block: whoever claims that CIDR next (the same node or another) wins it and
  deletes the stale claim. A crash after the block leaves a block with a
  pending affinity: the next assign on that node confirms it (and `ipam check`
  repairs it); other nodes see a taken block and move on.
- allocate: the handle records are incremented first, then the block is
  written with compare-and-swap; if the block write loses, the handles are
  decremented again. Concurrent assigns for one node in this process are
  served as a group (gingham.ipam.grouped): one block write gives each of
  them its addresses, after every one of their handles was written. So a
  crash can leave a handle that over-counts (found and fixed by release /
  `ipam check`) but never an address held by no findable handle, and never
  an address given twice (only a CAS block write hands one out).
- every `Conflict` (and the AlreadyExists/NotFound that a lost race looks
  like) retries the whole step from fresh reads with jittered exponential
  backoff, up to `max_attempts`; `Unavailable` becomes `IPAMUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from gingham.datastore.base import Conflict, Datastore, NotFound, Unavailable
from gingham.ipam import blocks as core
from gingham.ipam import query
from gingham.ipam.errors import (
    AddressInUse,
    BlockNotReleasable,
    ConflictRetriesExceeded,
    InvalidRequest,
    IPAMUnavailable,
    PoolExhausted,
)
from gingham.ipam.grouped import AssignGroups, PendingAssign, fail_unserved
from gingham.ipam.records import LostRace, Records
from gingham.keyed_locks import KeyedLocks
from gingham.model.base import Resource
from gingham.model.bgp import Node
from gingham.model.fields import IPNetwork
from gingham.model.ipam import (
    IPAM_CONFIGURATION_NAME,
    IPAMBlock,
    IPAMBlockSpec,
    IPAMConfiguration,
    IPAMConfigurationSpec,
    IPAMHandle,
    block_name,
    handle_name,
)
from gingham.model.network import IPPool
from gingham.selector import All

log = logging.getLogger("gingham.ipam")

T = TypeVar("T")
R = TypeVar("R", bound=Resource)
IPAddress = core.IPAddress


def ipip_tunnel_handle(node: str) -> str:
    return f"ipip-tunnel-addr-{node}"


def vxlan_tunnel_handle(node: str) -> str:
    return f"vxlan-tunnel-addr-{node}"


class IPAM:
    def __init__(
        self,
        store: Datastore,
        *,
        max_attempts: int = 100,
        backoff_base: float = 0.002,
        backoff_cap: float = 0.2,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.records = Records(store, max_attempts, backoff_base, backoff_cap)
        # node → {block cidr: free addresses when last read}: a hint that lets a
        # steady-state assign read one block instead of listing them all. Only
        # a hint: every use re-reads the block and checks its affinity.
        self._known_blocks: dict[str, dict[IPNetwork, int]] = {}
        self._groups = AssignGroups()
        self._block_turns = KeyedLocks()

    # --- retry plumbing --------------------------------------------------------

    async def _retrying(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.max_attempts):
            try:
                return await step()
            except (Conflict, LostRace):
                await self.records.backoff(attempt)
            except Unavailable as exc:
                raise IPAMUnavailable(
                    f"{what}: datastore unavailable ({exc}); try again later"
                ) from exc
        raise ConflictRetriesExceeded(
            f"{what}: lost {self.max_attempts} compare-and-swap races in a row; try again later"
        )

    # --- read side (gingham.ipam.query), here for callers holding an IPAM -------

    async def blocks_for_node(self, node: str) -> list[IPNetwork]:
        return await query.blocks_for_node(self.store, node)

    async def borrowed_ips(self, node: str) -> list[IPAddress]:
        return await query.borrowed_ips(self.store, node)

    # --- what the node may use -------------------------------------------------

    async def configuration(self) -> IPAMConfigurationSpec:
        try:
            config = await self.store.get(IPAMConfiguration.kind, IPAM_CONFIGURATION_NAME)
        except NotFound:
            return IPAMConfigurationSpec()
        assert isinstance(config, IPAMConfiguration)
        return config.spec

    async def _node_labels(self, node: str) -> dict[str, str] | None:
        try:
            found = await self.store.get(Node.kind, node)
        except NotFound:
            return None
        return dict(found.metadata.labels)

    async def usable_pools(
        self, node: str, pool: str | None = None, version: int = 4
    ) -> list[IPPool]:
        """Enabled pools whose selector picks `node` (only `pool`, by CIDR or name,
        when given; `InvalidRequest` saying why when that one is not usable)."""
        labels, listing = await asyncio.gather(
            self._node_labels(node), self.store.list(IPPool.kind)
        )
        pools = [p for p in listing.items if isinstance(p, IPPool)]

        def selects(p: IPPool) -> bool:
            if labels is None:
                return isinstance(p.node_selector, All)
            return p.selects_node(labels)

        if pool is not None:
            chosen = [p for p in pools if p.name == pool or str(p.spec.cidr) == pool]
            if not chosen:
                raise InvalidRequest(f'no IPPool has the name or cidr "{pool}"')
            found = chosen[0]
            if found.spec.disabled:
                raise InvalidRequest(f'IPPool "{found.name}" ({found.spec.cidr}) is disabled')
            if not selects(found):
                raise InvalidRequest(
                    f'IPPool "{found.name}": spec.nodeSelector "{found.spec.node_selector}"'
                    f' does not select node "{node}"'
                )
            return [found]
        usable = [
            p
            for p in pools
            if not p.spec.disabled and p.spec.cidr.version == version and selects(p)
        ]
        return sorted(usable, key=lambda p: p.spec.cidr)

    async def _list_blocks(self) -> list[IPAMBlock]:
        return [
            b for b in (await self.store.list(IPAMBlock.kind)).items if isinstance(b, IPAMBlock)
        ]

    # --- assign ------------------------------------------------------------------

    async def assign(
        self,
        handle: str,
        node: str,
        attributes: Mapping[str, str] | None = None,
        *,
        pool: str | None = None,
        count: int = 1,
        ip: IPAddress | None = None,
    ) -> list[IPAddress]:
        """`count` addresses (or exactly `ip`) for `handle` on `node`."""
        if not handle:
            raise InvalidRequest("the IPAM handle is empty")
        if not node:
            raise InvalidRequest("the node name is empty")
        if count < 1:
            raise InvalidRequest(f"count {count} is less than 1")
        secondary = {**(attributes or {}), "node": node}
        if ip is not None:
            await self._retrying(
                f"assign {ip} to {handle}",
                lambda: self._assign_ip_once(handle, node, secondary, ip),
            )
            return [ip]
        # Concurrent assigns for one node in this process would all pick the
        # same free address and lose CAS races to each other (each loss costs
        # two writes); queued one by one, each waits for all before it. So
        # they are served in groups (gingham.ipam.grouped): one block write
        # for every assign that was waiting.
        pending = PendingAssign(handle, secondary, count)
        return await self._groups.assign(
            node,
            pool,
            pending,
            functools.partial(self._serve_group, node, pool),
            self._release_quietly,
        )

    async def _serve_group(self, node: str, pool: str | None, group: list[PendingAssign]) -> None:
        """Addresses for every assign of `group`; each one that cannot be served
        gets the error, and what it had got is given back (all or nothing)."""
        first = group[0].handle
        others = f" (and {len(group) - 1} more)" if len(group) > 1 else ""
        what = f'assign for handle "{first}"{others} on node "{node}"'
        try:
            unserved = group
            while unserved:
                step = functools.partial(self._assign_once, node, pool, unserved)
                await self._retrying(what, step)
                unserved = [p for p in unserved if p.missing]
        except Exception as exc:
            partial = fail_unserved(group, exc)
            if partial:
                await self._release_quietly(partial)

    async def _release_quietly(self, ips: Sequence[IPAddress]) -> None:
        for address in ips:
            try:
                await self.release_ip(address)
            except Exception:
                log.warning("could not give back %s after a failed assign", address, exc_info=True)

    async def _assign_once(
        self, node: str, pool: str | None, group: Sequence[PendingAssign]
    ) -> None:
        """Addresses from one block for as many of `group` as it holds (at least one)."""
        known = self._known_blocks.setdefault(node, {})
        hinted = sorted(c for c, free in known.items() if free)
        # Independent reads, the block the hint names first among them: one
        # round trip's wait instead of four.
        config, pools, first = await asyncio.gather(
            self.configuration(),
            self.usable_pools(node, pool),
            self._block_or_none(hinted[0]) if hinted else _nothing(),
        )
        if not pools:
            raise PoolExhausted(f'no enabled IPv4 IPPool selects node "{node}"')
        for cidr in hinted:
            if _pool_of(pools, cidr) is None:
                continue
            block = first if cidr == hinted[0] else await self._block_or_none(cidr)
            if block is None:
                del known[cidr]
                continue
            if block.spec.host != node:
                del known[cidr]
                continue
            known[cidr] = core.free_count(block.spec)
            if known[cidr]:
                await self.records.ensure_confirmed(node, block)
                return await self._allocate_in(block, group)

        every_block = await self._list_blocks()
        in_pools = [b for b in every_block if _pool_of(pools, b.spec.cidr) is not None]
        mine = sorted((b for b in in_pools if b.spec.host == node), key=lambda b: b.spec.cidr)
        self._known_blocks[node] = {
            b.spec.cidr: core.free_count(b.spec) for b in every_block if b.spec.host == node
        }
        for block in mine:
            if core.free_count(block.spec):
                await self.records.ensure_confirmed(node, block)
                return await self._allocate_in(block, group)

        owned = sum(1 for b in every_block if b.spec.host == node)
        limit = config.max_blocks_per_host
        if limit == 0 or owned < limit:
            taken = {b.spec.cidr for b in every_block}
            for p in pools:
                for cidr in core.blocks_of_pool(p.spec.cidr, p.spec.block_size):
                    if cidr in taken:
                        continue
                    claimed = await self.records.claim(node, cidr, config.strict_affinity)
                    if claimed is not None:
                        self._known_blocks[node][cidr] = core.free_count(claimed.spec)
                        return await self._allocate_in(claimed, group)
                    # Lost this one to another node: take the next.

        names = ", ".join(f'"{p.name}" ({p.spec.cidr})' for p in pools)
        why = (
            f"node has maxBlocksPerHost={limit} blocks"
            if limit and owned >= limit
            else "no free block is left"
        )
        if config.strict_affinity:
            raise PoolExhausted(
                f'IPPool {names}: {why} for node "{node}" and strictAffinity is set,'
                " so it may not borrow from other nodes' blocks"
            )
        for block in in_pools:
            foreign = block.spec.host != node and not block.spec.strict_affinity
            if foreign and core.free_count(block.spec):
                return await self._allocate_in(block, group)
        raise PoolExhausted(f'IPPool {names}: no free address left for node "{node}"')

    async def _block_or_none(self, cidr: IPNetwork) -> IPAMBlock | None:
        try:
            return await self.records.get(IPAMBlock, block_name(cidr))
        except NotFound:
            return None

    async def _allocate_in(self, block: IPAMBlock, group: Sequence[PendingAssign]) -> None:
        spec = block.spec
        taken: list[tuple[PendingAssign, list[IPAddress]]] = []
        for pending in group:
            spec, ips = core.allocate(spec, pending.missing, pending.handle, pending.secondary)
            if not ips:
                break  # the block is full: the rest go to the next one
            taken.append((pending, ips))
        await self._write_allocation(block, spec, [(p.handle, len(ips)) for p, ips in taken])
        for pending, ips in taken:
            pending.got += ips

    async def _write_allocation(
        self, block: IPAMBlock, spec: IPAMBlockSpec, counts: Sequence[tuple[str, int]]
    ) -> None:
        # Handles first: a crash after them leaves over-counting handles, never
        # an address that no handle record points at.
        cidr = str(block.spec.cidr)
        await self._add_to_handles(cidr, counts)
        try:
            await self.store.update(block.model_copy(update={"spec": spec}))
        except (Conflict, NotFound):
            await self._add_to_handles(cidr, [(handle, -n) for handle, n in counts])
            raise LostRace from None

    async def _add_to_handles(self, cidr: str, counts: Sequence[tuple[str, int]]) -> None:
        """Move several handles' counts at once (distinct handles: no race among
        them); if one fails, the others are moved back and the failure raised."""
        if len(counts) == 1:
            await self.records.add_to_handle(counts[0][0], cidr, counts[0][1])
            return
        outcomes = await asyncio.gather(
            *(self.records.add_to_handle(h, cidr, n) for h, n in counts), return_exceptions=True
        )
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is None:
            return
        moved = [(h, -n) for (h, n), o in zip(counts, outcomes, strict=True) if o is None]
        if moved:
            await asyncio.gather(
                *(self.records.add_to_handle(h, cidr, n) for h, n in moved),
                return_exceptions=True,  # an over-counting handle is safe; release fixes it
            )
        raise failure

    async def _assign_ip_once(
        self, handle: str, node: str, secondary: Mapping[str, str], ip: IPAddress
    ) -> None:
        config = await self.configuration()
        pools = [p for p in (await self.store.list(IPPool.kind)).items if isinstance(p, IPPool)]
        containing = [p for p in pools if p.spec.cidr.version == ip.version and ip in p.spec.cidr]
        if not containing:
            raise InvalidRequest(f"{ip} is not inside any IPPool")
        pool = containing[0]
        usable = await self.usable_pools(node, pool.name, ip.version)
        cidr = core.block_containing(usable[0].spec.cidr, usable[0].spec.block_size, ip)
        try:
            found = await self.store.get(IPAMBlock.kind, block_name(cidr))
            assert isinstance(found, IPAMBlock)
            block: IPAMBlock | None = found
        except NotFound:
            block = await self.records.claim(node, cidr, config.strict_affinity)
        if block is None:
            raise LostRace  # another node claimed it just now: read it again
        ordinal = core.ordinal_of(block.spec.cidr, ip)
        index = block.spec.allocations[ordinal]
        if index is not None and block.spec.attributes[index].handle_id == handle:
            return  # already ours: a repeated request is not an error
        try:
            spec = core.allocate_address(block.spec, ip, handle, secondary)
        except core.AddressInUse as exc:
            raise AddressInUse(str(exc)) from None
        await self._write_allocation(block, spec, [(handle, 1)])

    # --- release -----------------------------------------------------------------

    async def release(self, handle: str) -> list[IPAddress]:
        """Free everything `handle` holds; an unknown handle frees nothing."""
        return await self._retrying(
            f'release handle "{handle}"', lambda: self._release_once(handle)
        )

    async def _release_once(self, handle: str) -> list[IPAddress]:
        name = handle_name(handle)
        try:
            record = await self.records.get(IPAMHandle, name)
        except NotFound:
            return await self._release_unrecorded(handle)
        released: list[IPAddress] = []
        for cidr_text in record.spec.block:
            cidr = ipaddress.ip_network(cidr_text)
            # Concurrent releases in this process (a burst of pod DELs) would
            # all write the same block and lose its CAS to each other: one
            # read-and-write of a block at a time here (others still race).
            async with self._block_turns.hold(cidr):
                try:
                    block = await self.store.get(IPAMBlock.kind, block_name(cidr))
                except NotFound:
                    continue
                assert isinstance(block, IPAMBlock)
                spec, ips = core.release_handle(block.spec, handle)
                if ips:
                    await self._write_release(block, spec)
                    released += ips
        # CAS: if an assign added to the handle meanwhile, redo with its blocks.
        # NotFound: a concurrent release of the same handle finished first.
        with contextlib.suppress(NotFound):
            await self.store.delete(IPAMHandle.kind, name, record.resource_version)
        return released

    async def _release_unrecorded(self, handle: str) -> list[IPAddress]:
        """Release a handle that has no record: normally it holds nothing (a
        repeated release), but a record removed by a racing `ipam check --repair`
        must not turn the handle's addresses into leaks, so look in every block."""
        released: list[IPAddress] = []
        for block in await self._list_blocks():
            spec, ips = core.release_handle(block.spec, handle)
            if ips:
                await self._write_release(block, spec)
                released += ips
        return released

    async def _write_release(self, block: IPAMBlock, spec: IPAMBlockSpec) -> None:
        try:
            await self.store.update(block.model_copy(update={"spec": spec}))
        except NotFound:
            raise LostRace from None
        if core.is_empty(spec) and spec.host is not None:
            config = await self.configuration()
            if config.auto_release_empty_blocks:
                with contextlib.suppress(BlockNotReleasable):  # refilled meanwhile: keep it
                    await self.release_block(spec.host, spec.cidr)

    async def release_ip(self, ip: IPAddress) -> bool:
        """Free one address whoever holds it; False when it was not allocated."""
        return await self._retrying(f"release {ip}", lambda: self._release_ip_once(ip))

    async def _release_ip_once(self, ip: IPAddress) -> bool:
        for block in await self._list_blocks():
            if block.spec.cidr.version == ip.version and ip in block.spec.cidr:
                spec, lost = core.release_addresses(block.spec, [ip])
                if not lost and spec is block.spec:
                    return False
                await self._write_release(block, spec)
                for handle, count in lost.items():
                    await self.records.add_to_handle(handle, str(block.spec.cidr), -count)
                return True
        return False

    async def release_block(self, node: str, cidr: IPNetwork) -> None:
        """Give an empty block of `node` back to the pool (block and affinity)."""
        await self._retrying(
            f"release block {cidr} of node {node}",
            lambda: self.records.release_block_once(node, cidr),
        )


async def _nothing() -> None:
    return None


def _pool_of(pools: Sequence[IPPool], cidr: IPNetwork) -> IPPool | None:
    for pool in pools:
        if pool.spec.cidr.version == cidr.version and cidr.subnet_of(pool.spec.cidr):  # type: ignore[arg-type]
            return pool
    return None
