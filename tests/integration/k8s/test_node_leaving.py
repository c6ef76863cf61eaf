"""The DaemonSet's preStop decision reads the core Node: cordoned, being deleted or gone
means the pod stops for good (gingham.node.stop.should_drain)."""

from __future__ import annotations

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.node.stop import should_drain
from tests.support.fake_apiserver import FakeApiServer


async def test_a_cordoned_or_deleted_node_drains_and_a_schedulable_one_restarts(
    fake: FakeApiServer, store: KubernetesDatastore
) -> None:
    for name in ("kept", "cordoned", "deleted"):
        fake.seed_node(name, {}, [("InternalIP", "172.18.0.3")])
    by_name = {n["metadata"]["name"]: n for n in fake.state.nodes}
    by_name["cordoned"]["spec"]["unschedulable"] = True
    by_name["deleted"]["metadata"]["deletionTimestamp"] = "2026-12-08T01:00:00Z"

    cores = {core.name: core for core in await store.core_nodes()}
    assert {name: should_drain(core) for name, core in cores.items()} == {
        "kept": False,
        "cordoned": True,
        "deleted": True,
    }
    assert should_drain(cores.get("gone"))
