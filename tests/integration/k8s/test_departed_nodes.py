"""A core Node deleted (`kubectl delete node`) takes its Gingham Node and what it
held in IPAM with it (gingham.ipam.departed), against the session's real API
server; the node that stays keeps everything."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from gingham.datastore.base import NotFound
from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.ipam.allocator import IPAM
from gingham.ipam.check import check
from gingham.ipam.departed import forget_deleted_nodes
from gingham.ipam.query import blocks_for_node
from gingham.model.bgp import Node
from gingham.model.ipam import BlockAffinity
from tests.integration.ipam.conftest import IPAM_RESOURCES, add_node, add_pool
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kubernetes

KEPT, GONE = "departed-kept", "departed-gone"


@pytest.fixture
async def store(kube_cluster: KubeCluster) -> AsyncIterator[KubernetesDatastore]:
    made = KubernetesDatastore(str(kube_cluster.admin_kubeconfig), timeout=10.0)
    try:
        yield made
    finally:
        for name in (KEPT, GONE):
            with contextlib.suppress(NotFound):
                await made.delete(Node.kind, name)
            kube_cluster.kubectl("delete", "node", name, "--ignore-not-found", "--wait=true")
        await made.close()
        kube_cluster.kubectl("delete", IPAM_RESOURCES, "--all", "--wait=true", timeout=120)
        kube_cluster.kubectl("delete", "ippools.gingham.io", "departed", "--ignore-not-found")


async def test_a_deleted_core_node_frees_its_record_blocks_and_addresses(
    kube_cluster: KubeCluster, store: KubernetesDatastore
) -> None:
    await add_pool(store, "departed", "10.251.0.0/24", 28)
    for index, name in enumerate((KEPT, GONE), start=21):
        kube_cluster.add_core_node(name, {}, [("InternalIP", f"172.18.0.{index}")])
        await add_node(store, name, index)
    ipam = IPAM(store)
    (kept_address,) = await ipam.assign("pod-kept", KEPT)
    await ipam.assign("pod-gone", GONE)
    assert await blocks_for_node(store, GONE)
    assert await forget_deleted_nodes(store, ipam) == []  # both still there: nothing to do

    kube_cluster.kubectl("delete", "node", GONE, "--wait=true")
    done = await forget_deleted_nodes(store, ipam)
    assert f"deleted Node {GONE!r}: its core Node is gone" in done
    with pytest.raises(NotFound):
        await store.get(Node.kind, GONE)
    affinities = list((await store.list(BlockAffinity.kind)).items)
    assert {a.spec.node for a in affinities if isinstance(a, BlockAffinity)} == {KEPT}
    assert await blocks_for_node(store, GONE) == []
    report = await check(store)
    # Nothing of the departed node is left: no address, orphan block or stale claim.
    # (pod-kept counts as leaked here only because the test made no endpoint for it.)
    assert [leak.node for leak in report.leaked] == [KEPT], report
    assert report.orphan_blocks == [] and report.affinities == [], report
    # The node that stays keeps its block and its pod's address.
    assert await blocks_for_node(store, KEPT)
    assert await ipam.release("pod-kept") == [kept_address]
    assert await forget_deleted_nodes(store, ipam) == []  # idempotent
