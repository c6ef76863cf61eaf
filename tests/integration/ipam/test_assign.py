"""assign/release behaviour on both backends: exhaustion, borrowing, strict
affinity, pool selection, static IPs, tunnel handles, release-block."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from gingham.datastore import Datastore
from gingham.ipam import (
    IPAM,
    AddressInUse,
    BlockNotReleasable,
    InvalidRequest,
    PoolExhausted,
    blocks_for_node,
    borrowed_ips,
    ipip_tunnel_handle,
)
from gingham.ipam.check import check
from gingham.ipam.query import allocations
from tests.integration.ipam.conftest import add_node, add_pool, doc

ip = ipaddress.ip_address
net = ipaddress.ip_network


async def _nodes(store: Datastore, count: int) -> list[str]:
    names = [f"n{i}" for i in range(count)]
    for i, name in enumerate(names, start=1):
        await add_node(store, name, i)
    return names


async def test_exhausted_pool_borrows_from_other_nodes(store: Datastore, ipam: IPAM) -> None:
    # /28 with /30 blocks: 4 blocks, 6 nodes → two nodes must borrow.
    await add_pool(store, "small", "10.20.0.0/28", 30)
    nodes = await _nodes(store, 6)
    got = {n: await ipam.assign(f"h-{n}", n) for n in nodes}
    owners = {cidr: n for n in nodes for cidr in await blocks_for_node(store, n)}
    assert len(owners) == 4 and set(owners.values()) == set(nodes[:4])
    for late in nodes[4:]:
        (address,) = got[late]
        assert await borrowed_ips(store, late) == [address]
        assert await blocks_for_node(store, late) == []
    # Every address of the pool can be handed out, then the pool is exhausted.
    rest = await ipam.assign("h-rest", nodes[5], count=10)
    everything = {a for v in got.values() for a in v} | set(rest)
    assert everything == set(net("10.20.0.0/28"))
    with pytest.raises(PoolExhausted, match=r'"small".*no free address'):
        await ipam.assign("h-more", nodes[0])


async def test_strict_affinity_refuses_to_borrow(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "small", "10.20.0.0/28", 30)
    await store.create(doc("IPAMConfiguration", "default", {"strictAffinity": True}))
    nodes = await _nodes(store, 5)
    for n in nodes[:4]:
        await ipam.assign(f"h-{n}", n)
    with pytest.raises(PoolExhausted, match=r"strictAffinity is set.*may not borrow"):
        await ipam.assign("h-late", nodes[4])
    assert await allocations(store, node=nodes[4]) == []
    assert await ipam.release("h-late") == []  # nothing leaked by the failure
    # A node with a block still fills its own block.
    assert len(await ipam.assign("h-more", nodes[0], count=3)) == 3


async def test_max_blocks_per_host(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "p", "10.21.0.0/26", 30)
    await store.create(doc("IPAMConfiguration", "default", {"maxBlocksPerHost": 2}))
    (a, b) = await _nodes(store, 2)
    await ipam.assign("fill-b", b, count=2)  # b owns one block, half full
    await ipam.assign("fill-a", a, count=9)  # a: its 2 blocks (8), then borrows from b
    assert len(await blocks_for_node(store, a)) == 2
    assert len(await borrowed_ips(store, a)) == 1


async def test_disabled_and_unselected_pools_are_never_used(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "off", "10.30.0.0/24", 26, disabled=True)
    await add_pool(store, "racks", "10.31.0.0/24", 26, nodeSelector="rack == 'r1'")
    await add_pool(store, "open", "10.32.0.0/24", 26)
    await add_node(store, "in-r1", 1, rack="r1")
    await add_node(store, "in-r2", 2, rack="r2")
    for _ in range(3):
        (x,) = await ipam.assign(f"r1-{_}", "in-r1", pool="10.31.0.0/24")
        assert x in net("10.31.0.0/24")
    for node in ("in-r2", "no-node-object"):
        for i in range(70):  # more than one block
            (y,) = await ipam.assign(f"{node}-{i}", node)
            assert y in net("10.32.0.0/24")
    with pytest.raises(InvalidRequest, match=r'"racks".*does not select node "in-r2"'):
        await ipam.assign("x", "in-r2", pool="racks")
    with pytest.raises(InvalidRequest, match=r'"off".*disabled'):
        await ipam.assign("x", "in-r2", pool="10.30.0.0/24")
    with pytest.raises(InvalidRequest, match="no IPPool"):
        await ipam.assign("x", "in-r2", pool="10.99.0.0/24")


async def test_static_ip_and_tunnel_handle(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "p", "10.40.0.0/24", 26)
    (a, b) = await _nodes(store, 2)
    tunnel = ipip_tunnel_handle(a)
    (t,) = await ipam.assign(tunnel, a)
    assert [h.allocation.address for h in await allocations(store, handle=tunnel)] == [t]
    assert await ipam.assign("static", b, ip=ip("10.40.0.77")) == [ip("10.40.0.77")]
    assert await ipam.assign("static", b, ip=ip("10.40.0.77")) == [ip("10.40.0.77")]  # repeat ok
    with pytest.raises(AddressInUse, match=r"10\.40\.0\.77 .*static"):
        await ipam.assign("other", a, ip=ip("10.40.0.77"))
    with pytest.raises(InvalidRequest, match=r"10\.99\.0\.1 is not inside any IPPool"):
        await ipam.assign("other", a, ip=ip("10.99.0.1"))
    # The static address's block was claimed for b.
    assert net("10.40.0.64/26") in await blocks_for_node(store, b)
    # Tunnel handles of existing nodes are live; the static one has no workload.
    report = await check(store)
    assert [leak.handle for leak in report.leaked] == ["static"]
    assert await ipam.release_ip(ip("10.40.0.77"))
    assert not await ipam.release_ip(ip("10.40.0.77"))
    assert (await check(store)).clean


async def test_release_block_gives_back_only_empty_blocks(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "p", "10.50.0.0/24", 26)
    (a,) = await _nodes(store, 1)
    (x,) = await ipam.assign("h", a)
    (block,) = await blocks_for_node(store, a)
    with pytest.raises(BlockNotReleasable, match="still holds 1 address"):
        await ipam.release_block(a, block)
    await ipam.release("h")
    assert await blocks_for_node(store, a) == [block]  # empty blocks keep affinity
    await ipam.release_block(a, block)
    assert await blocks_for_node(store, a) == []
    assert (await store.list("BlockAffinity")).items == []
    assert x in block


async def test_auto_release_empty_blocks_flag(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "p", "10.51.0.0/24", 26)
    await store.create(doc("IPAMConfiguration", "default", {"autoReleaseEmptyBlocks": True}))
    (a,) = await _nodes(store, 1)
    await ipam.assign("h", a, count=2)
    assert len(await blocks_for_node(store, a)) == 1
    await ipam.release("h")
    assert await blocks_for_node(store, a) == []


async def test_concurrent_assigns_in_one_process(store: Datastore, ipam: IPAM) -> None:
    await add_pool(store, "p", "10.52.0.0/24", 26)
    nodes = await _nodes(store, 2)
    got = await asyncio.gather(*(ipam.assign(f"h{i}", nodes[i % 2]) for i in range(60)))
    flat = [a for one in got for a in one]
    assert len(set(flat)) == 60
    assert len(await borrowed_ips(store, nodes[0])) == 0
