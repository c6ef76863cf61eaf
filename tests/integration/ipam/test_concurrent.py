"""Many processes assigning at once: unique addresses, one owner per block."""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter

import pytest

from gingham.datastore import Datastore
from gingham.ipam import IPAM, blocks_for_node
from gingham.ipam.check import check
from gingham.ipam.query import allocations
from gingham.model.ipam import AffinityState, BlockAffinity, IPAMHandle
from tests.integration.ipam.conftest import (
    WITH_KUBERNETES,
    Backend,
    Workers,
    add_node,
    add_pool,
)

NODES = ["node-a", "node-b", "node-c", "node-d"]
PROCESSES = 8
PER_PROCESS = 50


@pytest.mark.parametrize("backend", WITH_KUBERNETES, indirect=True)
async def test_eight_processes_four_nodes_get_distinct_addresses(
    backend: Backend, store: Datastore, ipam: IPAM, workers: Workers
) -> None:
    await add_pool(store, "pool-1", "10.10.0.0/22", 26)
    for i, node in enumerate(NODES, start=1):
        await add_node(store, node, i)
    for p in range(PROCESSES):
        workers.start("assign", backend.url, NODES[p % len(NODES)], f"w{p}", str(PER_PROCESS))
    workers.go()
    results = workers.results()

    given = {handle: ipaddress.ip_address(ip) for result in results for handle, ip in result}
    assert len(given) == PROCESSES * PER_PROCESS
    assert len(set(given.values())) == PROCESSES * PER_PROCESS, "an address was given twice"

    # The store agrees with what the workers were told, address by address.
    held = await allocations(store)
    assert {h.allocation.handle_id: h.allocation.address for h in held} == given
    for h in held:
        assert h.allocation.address in h.block
        assert h.block_node == h.allocation.node or h.borrowed, h

    # One confirmed affinity per block, naming the block's host; no stray claims.
    affinities = [
        a for a in (await store.list("BlockAffinity")).items if isinstance(a, BlockAffinity)
    ]
    per_cidr = Counter(a.spec.cidr for a in affinities)
    assert max(per_cidr.values()) == 1, f"a block with two affinities: {per_cidr}"
    owners = {cidr: node for node in NODES for cidr in await blocks_for_node(store, node)}
    assert {a.spec.cidr: a.spec.node for a in affinities} == owners
    assert all(a.spec.state == AffinityState.CONFIRMED for a in affinities)

    handles = (await store.list("IPAMHandle")).items
    assert all(isinstance(h, IPAMHandle) and sum(h.spec.block.values()) == 1 for h in handles)
    assert len(handles) == len(given)

    # Release everything (concurrently, from several clients) → nothing left.
    clients = [IPAM(backend.open()) for _ in range(4)]
    handles_list = sorted(given)
    await asyncio.gather(
        *(_release_all(clients[i], handles_list[i :: len(clients)]) for i in range(len(clients)))
    )
    assert await allocations(store) == []
    assert (await store.list("IPAMHandle")).items == []
    report = await check(store)
    assert report.clean, report.lines()


async def _release_all(ipam: IPAM, handles: list[str]) -> None:
    for handle in handles:
        assert len(await ipam.release(handle)) == 1
        assert await ipam.release(handle) == []  # idempotent
