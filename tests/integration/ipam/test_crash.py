"""A claimer that dies between its writes: the next assign still succeeds, and
no address is ever handed out twice.

The half-done states are written straight into the store, exactly as a
process killed between two writes leaves them; then a real ``kill -9`` of
processes looping on claims checks the same on live races.
"""

from __future__ import annotations

import ipaddress
import json
import random

from gingham.datastore import Datastore, NotFound
from gingham.ipam import IPAM, blocks_for_node
from gingham.ipam import blocks as core
from gingham.ipam.check import check, repair
from gingham.ipam.query import allocations
from gingham.model.base import Metadata
from gingham.model.ipam import (
    AffinityState,
    BlockAffinity,
    BlockAffinitySpec,
    IPAMBlock,
    IPAMHandle,
    IPAMHandleSpec,
    affinity_name,
    block_name,
)
from tests.integration.ipam.conftest import Backend, Workers, add_node, add_pool, doc

FIRST = ipaddress.ip_network("10.60.0.0/30")
SECOND = ipaddress.ip_network("10.60.0.4/30")


async def _setup(store: Datastore) -> None:
    await add_pool(store, "p", "10.60.0.0/24", 30)
    await add_node(store, "crashed", 1)
    await add_node(store, "other", 2)


async def _pending_claim(store: Datastore, node: str, cidr: ipaddress.IPv4Network) -> None:
    spec = BlockAffinitySpec(node=node, cidr=cidr, state=AffinityState.PENDING)
    await store.create(BlockAffinity(metadata=Metadata(name=affinity_name(node, cidr)), spec=spec))


async def _affinity(store: Datastore, node: str, cidr: ipaddress.IPv4Network) -> str | None:
    try:
        found = await store.get("BlockAffinity", affinity_name(node, cidr))
    except NotFound:
        return None
    assert isinstance(found, BlockAffinity)
    return str(found.spec.state)


async def test_claim_died_after_affinity_other_node_takes_the_block(
    store: Datastore, ipam: IPAM
) -> None:
    await _setup(store)
    await _pending_claim(store, "crashed", FIRST)  # died before creating the block
    (address,) = await ipam.assign("h1", "other")
    assert address in FIRST
    assert await _affinity(store, "other", FIRST) == "confirmed"
    assert await _affinity(store, "crashed", FIRST) is None  # the dead claim is cleaned up


async def test_claim_died_after_affinity_same_node_finishes_it(
    store: Datastore, ipam: IPAM
) -> None:
    await _setup(store)
    await _pending_claim(store, "crashed", FIRST)
    (address,) = await ipam.assign("h1", "crashed")
    assert address in FIRST
    assert await _affinity(store, "crashed", FIRST) == "confirmed"


async def test_claim_died_after_block_before_confirm(store: Datastore, ipam: IPAM) -> None:
    await _setup(store)
    await _pending_claim(store, "crashed", FIRST)
    block = IPAMBlock(
        metadata=Metadata(name=block_name(FIRST)), spec=core.empty_block(FIRST, "crashed")
    )
    await store.create(block)
    # Another node sees a taken block and takes the next one.
    (theirs,) = await ipam.assign("h-other", "other")
    assert theirs in SECOND
    # The crashed node, back, uses its block and confirms the claim.
    (mine,) = await ipam.assign("h-crashed", "crashed")
    assert mine in FIRST
    assert await _affinity(store, "crashed", FIRST) == "confirmed"
    assert await blocks_for_node(store, "crashed") == [FIRST]


async def test_release_block_died_midway(store: Datastore, ipam: IPAM) -> None:
    await _setup(store)
    # release-block deleted the block but died before deleting the affinity.
    spec = BlockAffinitySpec(node="crashed", cidr=FIRST, state=AffinityState.PENDING_DELETION)
    await store.create(
        BlockAffinity(metadata=Metadata(name=affinity_name("crashed", FIRST)), spec=spec)
    )
    (address,) = await ipam.assign("h1", "crashed")
    assert address in FIRST
    assert await _affinity(store, "crashed", FIRST) == "confirmed"


async def test_assign_died_after_handle_before_block(store: Datastore, ipam: IPAM) -> None:
    await _setup(store)
    (live,) = await ipam.assign("abc123.eth0", "crashed")
    # felix's record of that pod: the allocation is live, not a leak.
    wep = {
        "node": "crashed",
        "containerId": "abc123",
        "endpoint": "eth0",
        "ipNetworks": [f"{live}/32"],
    }
    await store.create(doc("WorkloadEndpoint", "crashed-k8s-default-pod-eth0", wep))
    # The handle record was incremented, the block write never happened.
    spec = IPAMHandleSpec(handle_id="ghost.eth0", block={str(FIRST): 1})
    await store.create(IPAMHandle(metadata=Metadata(name="ghost.eth0"), spec=spec))
    report = await check(store)
    assert report.stale_handles == ["ghost.eth0"]
    assert report.leaked == []
    await repair(ipam, report)
    try:
        await store.get("IPAMHandle", "ghost.eth0")
        raise AssertionError("stale handle record survived repair")
    except NotFound:
        pass
    assert await ipam.release("ghost.eth0") == []  # and release is a no-op either way
    (again,) = await ipam.assign("ghost.eth0", "crashed")
    assert again in FIRST
    assert len({h.allocation.address for h in await allocations(store)}) == 2


async def test_kill_9_while_claiming(
    backend: Backend, store: Datastore, ipam: IPAM, workers: Workers
) -> None:
    await add_pool(store, "p", "10.70.0.0/22", 30)  # 256 tiny blocks: nearly every step claims
    for i, node in enumerate(("victim", "rival"), start=1):
        await add_node(store, node, i)
    rng = random.Random()
    told: dict[str, list[str]] = {}
    for round_ in range(3):
        workers.procs.clear()
        victim = workers.start("claim-loop", backend.url, "victim", f"v{round_}", "4")
        rival = workers.start("claim-loop", backend.url, "rival", f"r{round_}", "4")
        workers.go()
        assert victim.stdout is not None and rival.stdout is not None
        for _ in range(rng.randint(2, 6)):
            for proc in (victim, rival):
                line = proc.stdout.readline() if proc.stdout else ""
                assert line, "worker died on its own"
                for handle, address in json.loads(line):
                    told.setdefault(handle, []).append(address)
        workers.stop()  # SIGKILL, wherever they are

        # The next assign on each node succeeds with an address nobody holds.
        before = {h.allocation.address for h in await allocations(store)}
        for node in ("victim", "rival"):
            (fresh,) = await ipam.assign(f"after-{round_}-{node}", node)
            assert fresh not in before
        held = await allocations(store)
        addresses = [h.allocation.address for h in held]
        assert len(addresses) == len(set(addresses))
        # Everything a worker was told is still held by that worker's handle.
        by_handle: dict[str, list[str]] = {}
        for h in held:
            by_handle.setdefault(h.allocation.handle_id or "", []).append(str(h.allocation.address))
        for handle, addrs in told.items():
            assert sorted(by_handle.get(handle, [])) == sorted(addrs), handle

    # No block ended up with two owners; ipam check repairs the rest.
    affinities = [
        a for a in (await store.list("BlockAffinity")).items if isinstance(a, BlockAffinity)
    ]
    confirmed = [a.spec.cidr for a in affinities if a.spec.state == AffinityState.CONFIRMED]
    assert len(confirmed) == len(set(confirmed))
    report = await check(store)
    await repair(ipam, report)
    final = await check(store)
    assert final.clean, final.lines()
    assert await allocations(store) == []


async def test_release_finds_addresses_whose_handle_record_is_gone(
    store: Datastore, ipam: IPAM
) -> None:
    # e.g. `ipam check --repair` saw the handle record before the block write
    # landed and removed it as stale.
    await _setup(store)
    (address,) = await ipam.assign("racy.eth0", "crashed")
    await store.delete("IPAMHandle", "racy.eth0")
    assert await ipam.release("racy.eth0") == [address]
    assert await allocations(store) == []


async def test_one_repair_fixes_a_crash_in_an_assign_across_two_blocks(
    store: Datastore, ipam: IPAM
) -> None:
    await _setup(store)
    (address,) = await ipam.assign("split.eth0", "crashed")
    # Its second chunk counted a block in the handle record, then the process died.
    record = await store.get("IPAMHandle", "split.eth0")
    assert isinstance(record, IPAMHandle)
    counts = {**record.spec.block, str(SECOND): 2}
    await store.update(
        record.model_copy(update={"spec": record.spec.model_copy(update={"block": counts})})
    )
    report = await check(store)
    assert [leak.address for leak in report.leaked] == [address]
    await repair(ipam, report)
    final = await check(store)
    assert final.clean, final.lines()
    assert (await store.list("IPAMHandle")).items == []
