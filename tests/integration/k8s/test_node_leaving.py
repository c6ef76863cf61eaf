"""The DaemonSet's preStop decision reads the core Node: cordoned, being deleted or gone
means the pod stops for good (gingham.node.stop.should_drain). Against the
session's real API server: a cordon is `kubectl cordon`, "being deleted" is a
delete held back by a finalizer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.node.stop import should_drain
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kubernetes

NAMES = ("leave-kept", "leave-cordoned", "leave-deleted")
HOLD = "gingham.io/test-hold"


@pytest.fixture
async def store(kube_cluster: KubeCluster) -> AsyncIterator[KubernetesDatastore]:
    made = KubernetesDatastore(str(kube_cluster.admin_kubeconfig), timeout=10.0)
    try:
        yield made
    finally:
        await made.close()
        release = json.dumps({"metadata": {"finalizers": None}})
        for name in NAMES:
            kube_cluster.kubectl("patch", "node", name, "--type=merge", "-p", release, check=False)
            kube_cluster.kubectl("delete", "node", name, "--ignore-not-found", "--wait=true")


async def test_a_cordoned_or_deleted_node_drains_and_a_schedulable_one_restarts(
    kube_cluster: KubeCluster, store: KubernetesDatastore
) -> None:
    for name in NAMES:
        kube_cluster.add_core_node(name, {}, [("InternalIP", "172.18.0.3")])
    kube_cluster.kubectl("cordon", "leave-cordoned")
    hold = json.dumps({"metadata": {"finalizers": [HOLD]}})
    kube_cluster.kubectl("patch", "node", "leave-deleted", "--type=merge", "-p", hold)
    kube_cluster.kubectl("delete", "node", "leave-deleted", "--wait=false")

    cores = {core.name: core for core in await store.core_nodes() if core.name in NAMES}
    assert {name: should_drain(core) for name, core in cores.items()} == {
        "leave-kept": False,
        "leave-cordoned": True,
        "leave-deleted": True,
    }
    assert should_drain(cores.get("gone"))
