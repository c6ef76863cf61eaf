"""Our Node follows the core Node's labels and the detected BGP address,
through the kubernetes backend and the session's real API server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.k8s.node import register_node
from gingham.model.bgp import Node
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kubernetes

ADDRESS = ipaddress.IPv4Interface("172.18.0.3/16")


@pytest.fixture
async def store(kube_cluster: KubeCluster) -> AsyncIterator[KubernetesDatastore]:
    made = KubernetesDatastore(str(kube_cluster.admin_kubeconfig), timeout=10.0)
    try:
        yield made
    finally:
        await made.close()
        kube_cluster.kubectl("delete", "nodes.gingham.io", "--all", "--wait=true")
        kube_cluster.kubectl("delete", "node", "reg-worker", "--ignore-not-found", "--wait=true")


async def test_registration_merges_core_labels_and_keeps_operator_fields(
    kube_cluster: KubeCluster, store: KubernetesDatastore
) -> None:
    kube_cluster.add_core_node("reg-worker", {"rack": "rack1"}, [("InternalIP", "172.18.0.3")])
    [core] = [n for n in await store.core_nodes() if n.name == "reg-worker"]
    assert core.internal_ips == ["172.18.0.3"]

    first = await register_node(store, core.name, ADDRESS, core.labels)
    assert isinstance(first, Node) and first.spec.bgp is not None
    assert (str(first.spec.bgp.ipv4_address), first.metadata.labels) == (
        "172.18.0.3/16",
        {"rack": "rack1"},
    )

    again = await register_node(store, core.name, ADDRESS, core.labels)
    assert again.resource_version == first.resource_version  # nothing rewritten

    # An operator sets the AS number; the node moves to another address.
    with_as = first.model_copy(
        update={
            "spec": first.spec.model_copy(
                update={"bgp": first.spec.bgp.model_copy(update={"as_number": 64601})}
            )
        }
    )
    await store.update(with_as)
    moved = await register_node(store, core.name, ipaddress.IPv4Interface("172.19.0.9/16"))

    stored = await store.get("Node", "reg-worker")
    assert isinstance(stored, Node) and stored.spec.bgp is not None
    assert str(stored.spec.bgp.ipv4_address) == "172.19.0.9/16"
    assert stored.spec.bgp.as_number == 64601
    assert stored.metadata.labels == {"rack": "rack1"}
    assert stored.resource_version == moved.resource_version


async def test_concurrent_registrations_converge_on_one_node(store: KubernetesDatastore) -> None:
    results = await asyncio.gather(
        *(register_node(store, "reg-worker2", ADDRESS, {"n": str(i % 2)}) for i in range(4))
    )

    stored = await store.get("Node", "reg-worker2")
    assert stored.resource_version in {r.resource_version for r in results}
    assert [n.name for n in (await store.list("Node")).items] == ["reg-worker2"]
