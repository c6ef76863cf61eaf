"""Our Node follows the core Node's labels and the detected BGP address,
through the kubernetes backend and the fake API server."""

from __future__ import annotations

import asyncio
import ipaddress

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.k8s.node import register_node
from gingham.model.bgp import Node
from tests.support.fake_apiserver import FakeApiServer

ADDRESS = ipaddress.IPv4Interface("172.18.0.3/16")


async def test_registration_merges_core_labels_and_keeps_operator_fields(
    fake: FakeApiServer, store: KubernetesDatastore
) -> None:
    fake.seed_node("kind-worker", {"rack": "rack1"}, [("InternalIP", "172.18.0.3")])
    [core] = await store.core_nodes()

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

    stored = await store.get("Node", "kind-worker")
    assert isinstance(stored, Node) and stored.spec.bgp is not None
    assert str(stored.spec.bgp.ipv4_address) == "172.19.0.9/16"
    assert stored.spec.bgp.as_number == 64601
    assert stored.metadata.labels == {"rack": "rack1"}
    assert stored.resource_version == moved.resource_version


async def test_concurrent_registrations_converge_on_one_node(
    fake: FakeApiServer, store: KubernetesDatastore
) -> None:
    results = await asyncio.gather(
        *(register_node(store, "kind-worker2", ADDRESS, {"n": str(i % 2)}) for i in range(4))
    )

    stored = await store.get("Node", "kind-worker2")
    assert stored.resource_version in {r.resource_version for r in results}
    assert [k for k in fake.state.objects if k[0] == "nodes"] == [("nodes", "kind-worker2")]
