"""`gingham ipam check`: find leaked addresses and stale claims, and repair them.

`find_problems` is pure: given blocks, affinities, handle records, the names
of existing nodes and the handles of live workloads, it lists what is wrong.
`check` reads those from a datastore; `repair` fixes what `check` found
through the allocator (so every fix is a compare-and-swap write).

What counts as wrong:
- a leaked allocation: its handle belongs to no live workload, i.e. no
  WorkloadEndpoint (on an existing node) carries it, and it is not the
  IPIP/VXLAN tunnel handle of an existing node — or its node is gone;
- an orphan block: affine to a node that has no Node resource;
- a stale affinity: its node is gone, or its claim never completed (pending
  or pendingDeletion while the block is missing or held by another node), or
  it disagrees with its block (pending while the block says it is the host's);
- a missing affinity: a block affine to a node with no BlockAffinity for it;
- a stale handle record: it counts addresses no block holds for it.

Repair order matters: leaked addresses first (so orphan blocks become empty
and can be deleted), then blocks, then affinities, then handle records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gingham.datastore.base import Datastore, NotFound
from gingham.ipam import blocks as core
from gingham.ipam.allocator import IPAM, ipip_tunnel_handle, vxlan_tunnel_handle
from gingham.ipam.errors import BlockNotReleasable
from gingham.ipam.query import held_addresses, list_blocks
from gingham.model.bgp import Node
from gingham.model.fields import IPNetwork
from gingham.model.ipam import (
    AffinityState,
    BlockAffinity,
    IPAMBlock,
    IPAMHandle,
    affinity_name,
    block_name,
)
from gingham.model.workload import WorkloadEndpoint


@dataclass(frozen=True)
class LeakedAllocation:
    address: core.IPAddress
    block: IPNetwork
    handle: str | None
    node: str | None
    reason: str


@dataclass(frozen=True)
class AffinityProblem:
    name: str
    node: str
    cidr: IPNetwork
    reason: str
    # What repair does: "delete", "confirm" or "create".
    action: str


@dataclass
class CheckReport:
    leaked: list[LeakedAllocation] = field(default_factory=list)
    orphan_blocks: list[tuple[IPNetwork, str]] = field(default_factory=list)
    affinities: list[AffinityProblem] = field(default_factory=list)
    stale_handles: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.leaked or self.orphan_blocks or self.affinities or self.stale_handles)

    def lines(self) -> list[str]:
        out = [
            f"leaked address {x.address} (block {x.block}, handle {x.handle}, node {x.node}):"
            f" {x.reason}"
            for x in self.leaked
        ]
        out += [
            f"block {cidr} is affine to node {node!r}, which does not exist"
            for cidr, node in self.orphan_blocks
        ]
        out += [f"BlockAffinity {a.name}: {a.reason}" for a in self.affinities]
        out += [f"IPAMHandle {h}: counts addresses no block holds" for h in self.stale_handles]
        return out


def tunnel_handles(nodes: Iterable[str]) -> set[str]:
    return {h for n in nodes for h in (ipip_tunnel_handle(n), vxlan_tunnel_handle(n))}


def find_problems(
    blocks: Sequence[IPAMBlock],
    affinities: Sequence[BlockAffinity],
    handles: Sequence[IPAMHandle],
    nodes: set[str],
    live_handles: set[str],
) -> CheckReport:
    report = CheckReport()
    alive = live_handles | tunnel_handles(nodes)
    held_by_handle: dict[str, int] = {}
    for held in held_addresses(blocks):
        a = held.allocation
        if a.handle_id is not None:
            held_by_handle[a.handle_id] = held_by_handle.get(a.handle_id, 0) + 1
        if a.node is not None and a.node not in nodes:
            reason = f"node {a.node!r} does not exist"
        elif a.handle_id is None or a.handle_id not in alive:
            reason = "no live workload has this handle"
        else:
            continue
        report.leaked.append(LeakedAllocation(a.address, held.block, a.handle_id, a.node, reason))

    by_cidr = {b.spec.cidr: b for b in blocks}
    for block in sorted(blocks, key=lambda b: b.spec.cidr):
        host = block.spec.host
        if host is not None and host not in nodes:
            report.orphan_blocks.append((block.spec.cidr, host))

    seen: set[tuple[str, IPNetwork]] = set()
    for aff in sorted(affinities, key=lambda a: a.name):
        spec = aff.spec
        seen.add((spec.node, spec.cidr))
        claimed = by_cidr.get(spec.cidr)
        owner = claimed.spec.host if claimed is not None else None
        problem: tuple[str, str] | None = None
        if spec.node not in nodes:
            problem = (f"node {spec.node!r} does not exist", "delete")
        elif claimed is None:
            problem = (f"{spec.state} claim of {spec.cidr}, which has no block", "delete")
        elif owner != spec.node:
            problem = (f"{spec.state} claim of {spec.cidr}, held by {owner!r}", "delete")
        elif spec.state != AffinityState.CONFIRMED:
            problem = (f"{spec.state}, but block {spec.cidr} is the node's", "confirm")
        if problem is not None:
            report.affinities.append(AffinityProblem(aff.name, spec.node, spec.cidr, *problem))
    for block in blocks:
        host = block.spec.host
        if host is not None and host in nodes and (host, block.spec.cidr) not in seen:
            report.affinities.append(
                AffinityProblem(
                    affinity_name(host, block.spec.cidr),
                    host,
                    block.spec.cidr,
                    f"missing for block {block.spec.cidr} of node {host!r}",
                    "create",
                )
            )

    for record in handles:
        counted = sum(record.spec.block.values())
        if counted and held_by_handle.get(record.spec.handle_id, 0) == 0:
            report.stale_handles.append(record.spec.handle_id)
    return report


async def check(store: Datastore) -> CheckReport:
    nodes = {n.name for n in (await store.list(Node.kind)).items}
    live = {
        w.spec.handle
        for w in (await store.list(WorkloadEndpoint.kind)).items
        if isinstance(w, WorkloadEndpoint) and w.spec.node in nodes
    }
    affinities = (await store.list(BlockAffinity.kind)).items
    handles = (await store.list(IPAMHandle.kind)).items
    return find_problems(
        await list_blocks(store),
        [a for a in affinities if isinstance(a, BlockAffinity)],
        [h for h in handles if isinstance(h, IPAMHandle)],
        nodes,
        live,
    )


async def repair(ipam: IPAM, report: CheckReport) -> list[str]:
    """Fix what `report` lists; returns one line per change made."""
    store = ipam.store
    done: list[str] = []
    for leak in report.leaked:
        if await ipam.release_ip(leak.address):
            done.append(f"released {leak.address} (handle {leak.handle})")
    for cidr, node in report.orphan_blocks:
        done += await _unhost_block(ipam, cidr, node)
    for problem in report.affinities:
        if problem.action == "delete":
            with contextlib.suppress(NotFound):
                await store.delete(BlockAffinity.kind, problem.name)
                done.append(f"deleted BlockAffinity {problem.name}")
        else:
            await ipam.records.confirm_affinity(problem.node, problem.cidr)
            done.append(f"confirmed BlockAffinity {problem.name}")
    # Releasing leaks can empty a handle whose record also counted a block
    # write that never happened (a crash mid-assign across two blocks): look
    # again, so one repair leaves no stale record behind.
    stale = report.stale_handles
    if report.leaked:
        stale = sorted(set(stale) | set((await check(store)).stale_handles))
    for handle in stale:
        released = await ipam.release(handle)
        done.append(
            f"deleted IPAMHandle {handle}" + (f" ({len(released)} freed)" if released else "")
        )
    return done


async def _unhost_block(ipam: IPAM, cidr: IPNetwork, node: str) -> list[str]:
    """A block of a node that is gone: delete it when empty, else drop its
    affinity (the addresses other nodes borrowed in it stay theirs)."""
    try:
        await ipam.release_block(node, cidr)
        return [f"released block {cidr} of missing node {node!r}"]
    except BlockNotReleasable:  # not empty: keep the live allocations, drop the host
        pass
    store = ipam.store
    try:
        block = await store.get(IPAMBlock.kind, block_name(cidr))
    except NotFound:
        return []
    assert isinstance(block, IPAMBlock)
    if block.spec.host == node:
        spec = block.spec.model_copy(update={"affinity": None})
        await store.update(block.model_copy(update={"spec": spec}))
    with contextlib.suppress(NotFound):
        await store.delete(BlockAffinity.kind, affinity_name(node, cidr))
    return [f"removed missing node {node!r}'s affinity from non-empty block {cidr}"]


async def forget_nodes(ipam: IPAM, names: set[str]) -> list[str]:
    """What nodes that left the cluster held, given back; one line per change.

    Their workload endpoints (the pods ran there), their pods' addresses and
    handles, their blocks (released when empty, else their affinity dropped:
    addresses other nodes borrowed stay theirs) and their block affinities.
    The nodes' Node records must be gone already (`check` then sees them as
    missing); nothing of any other node is touched.
    """
    store = ipam.store
    done: list[str] = []
    for item in (await store.list(WorkloadEndpoint.kind)).items:
        if isinstance(item, WorkloadEndpoint) and item.spec.node in names:
            with contextlib.suppress(NotFound):
                await store.delete(WorkloadEndpoint.kind, item.name)
                done.append(f"deleted WorkloadEndpoint {item.name}")
    report = await check(store)
    theirs = [leak for leak in report.leaked if leak.node in names]
    for handle in sorted({leak.handle for leak in theirs if leak.handle is not None}):
        released = await ipam.release(handle)
        done.append(f"released handle {handle} ({len(released)} addresses)")
    for leak in theirs:
        if leak.handle is None and await ipam.release_ip(leak.address):
            done.append(f"released {leak.address}")
    for cidr, node in report.orphan_blocks:
        if node in names:
            done += await _unhost_block(ipam, cidr, node)
    for problem in report.affinities:
        if problem.node in names and problem.action == "delete":
            with contextlib.suppress(NotFound):
                await store.delete(BlockAffinity.kind, problem.name)
                done.append(f"deleted BlockAffinity {problem.name}")
    return done
