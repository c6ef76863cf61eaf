"""Concurrent assigns on one node, served in groups (gingham.ipam.grouped), and
concurrent releases, one block write at a time.

What a burst must keep: distinct addresses, each handle recorded with exactly
what it was given, a caller that gives up holding nothing, a failure of some
members leaving the others served and nothing half-assigned.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from gingham.datastore import Datastore
from gingham.ipam import IPAM, PoolExhausted
from gingham.ipam.query import allocations
from gingham.model.ipam import IPAMBlock, IPAMHandle
from tests.integration.ipam.conftest import add_node, add_pool, doc


async def _handles(store: Datastore) -> dict[str, int]:
    """Handle → how many addresses its record counts."""
    return {
        h.spec.handle_id: sum(h.spec.block.values())
        for h in (await store.list("IPAMHandle")).items
        if isinstance(h, IPAMHandle)
    }


class CountingStore:
    """The store, counting IPAMBlock writes (how many block CAS writes a burst took)."""

    def __init__(self, store: Datastore) -> None:
        self._store = store
        self.block_writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def update(self, obj: Any) -> Any:
        if obj.kind == IPAMBlock.kind:
            self.block_writes += 1
        return await self._store.update(obj)


async def test_a_burst_gets_distinct_addresses_in_few_block_writes(store: Datastore) -> None:
    await add_pool(store, "p", "10.60.0.0/24", 26)
    await add_node(store, "n1", 1)
    counting = CountingStore(store)
    ipam = IPAM(counting)
    handles = [f"pod{i}.eth0" for i in range(80)]  # more than one /26 holds
    got = await asyncio.gather(*(ipam.assign(h, "n1", {"pod": h}) for h in handles))

    assert all(len(one) == 1 for one in got)
    given = {h: one[0] for h, one in zip(handles, got, strict=True)}
    assert len(set(given.values())) == len(handles), "an address was given twice"
    held = {a.allocation.handle_id: a.allocation.address for a in await allocations(store)}
    assert held == given
    assert await _handles(store) == dict.fromkeys(handles, 1)
    # One at a time would have taken 80 block writes.
    assert counting.block_writes <= 10, counting.block_writes

    counting.block_writes = 0
    released = await asyncio.gather(*(ipam.release(h) for h in handles))
    assert sorted(a for one in released for a in one) == sorted(given.values())
    assert await allocations(store) == []
    # Released all at once, each wrote its block once: none lost a CAS race to another.
    assert counting.block_writes == len(handles), counting.block_writes


class GatedStore(CountingStore):
    """Holds every IPAMBlock write until the test lets it through."""

    def __init__(self, store: Datastore) -> None:
        super().__init__(store)
        self.permits = asyncio.Semaphore(0)
        self.held = 0
        self.opened = False

    async def update(self, obj: Any) -> Any:
        if obj.kind == IPAMBlock.kind and not self.opened:
            self.held += 1
            await self.permits.acquire()
            self.held -= 1
        return await super().update(obj)

    def let_one_through(self) -> None:
        self.permits.release()

    def open(self) -> None:
        self.opened = True
        for _ in range(self.held):
            self.permits.release()


async def _until(what: str, condition: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not await condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_callers_that_give_up_hold_nothing(store: Datastore) -> None:
    await add_pool(store, "p", "10.61.0.0/24", 26)
    await add_node(store, "n1", 1)
    gated = GatedStore(store)
    ipam = IPAM(gated)
    handles = [f"pod{i}.eth0" for i in range(20)]
    tasks = {h: asyncio.ensure_future(ipam.assign(h, "n1")) for h in handles}

    async def one_write_held() -> bool:
        return gated.held == 1

    async def next_group_held() -> bool:
        return tasks[handles[0]].done() and gated.held == 1

    # The first group (the first assign alone) is at its block write; the rest wait.
    await _until("the first group's block write", one_write_held)
    waiting_gone = [handles[1], handles[4]]
    for handle in waiting_gone:
        tasks[handle].cancel()
    # Let that write through; the next group (everyone still waiting) reaches its own.
    gated.let_one_through()
    await _until("the second group's block write", next_group_held)
    taken_gone = [handles[7], handles[10], handles[13]]
    for handle in taken_gone:
        tasks[handle].cancel()
    gated.open()

    outcomes = await asyncio.gather(*tasks.values(), return_exceptions=True)
    kept = {h: o[0] for h, o in zip(tasks, outcomes, strict=True) if isinstance(o, list)}
    assert set(kept) == set(handles) - set(waiting_gone) - set(taken_gone)

    async def given_back() -> bool:
        # A caller that gave up after its group took it: its addresses are
        # released when the group is done.
        held = {a.allocation.handle_id for a in await allocations(store)}
        return held == set(kept)

    await _until("the abandoned addresses to be given back", given_back)
    held = {a.allocation.handle_id: a.allocation.address for a in await allocations(store)}
    assert held == kept
    assert {h: n for h, n in (await _handles(store)).items() if n} == dict.fromkeys(kept, 1)


async def test_members_that_cannot_be_served_fail_alone(store: Datastore, ipam: IPAM) -> None:
    # One /30 block (4 addresses) per node at most, no borrowing: 6 at once,
    # 4 get one each, 2 are told the pool is exhausted and hold nothing.
    await add_pool(store, "small", "10.62.0.0/28", 30)
    await store.create(
        doc("IPAMConfiguration", "default", {"strictAffinity": True, "maxBlocksPerHost": 1})
    )
    await add_node(store, "n1", 1)
    handles = [f"pod{i}.eth0" for i in range(6)]
    outcomes = await asyncio.gather(
        *(ipam.assign(h, "n1") for h in handles), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 2 and all(isinstance(e, PoolExhausted) for e in errors), outcomes
    served = {h: o[0] for h, o in zip(handles, outcomes, strict=True) if isinstance(o, list)}
    held = {a.allocation.handle_id: a.allocation.address for a in await allocations(store)}
    assert held == served
    assert {h: n for h, n in (await _handles(store)).items() if n} == dict.fromkeys(served, 1)


async def test_one_handle_twice_at_once_gets_two_addresses(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "p", "10.63.0.0/24", 26)
    await add_node(store, "n1", 1)
    first, second, other = await asyncio.gather(
        ipam.assign("same.eth0", "n1"), ipam.assign("same.eth0", "n1"), ipam.assign("o", "n1")
    )
    assert len({*first, *second, *other}) == 3
    assert await _handles(store) == {"same.eth0": 2, "o": 1}
    assert Counter(a.allocation.handle_id for a in await allocations(store)) == {
        "same.eth0": 2,
        "o": 1,
    }


@pytest.mark.parametrize("count", [1, 3])
async def test_a_group_serves_multi_address_assigns(
    store: Datastore, ipam: IPAM, count: int
) -> None:
    await add_pool(store, "p", "10.64.0.0/24", 28)
    await add_node(store, "n1", 1)
    got = await asyncio.gather(*(ipam.assign(f"h{i}", "n1", count=count) for i in range(10)))
    assert all(len(one) == count for one in got)
    assert len({a for one in got for a in one}) == 10 * count
    assert await _handles(store) == {f"h{i}": count for i in range(10)}
