"""RBAC as a real API server enforces it: the node agent's calls under the
`gingham-node` ServiceAccount token that manifests/rbac.yaml binds.

The session's control plane has manifests/rbac.yaml applied unchanged; the
token comes from the TokenRequest API. Everything the node agent does to the
datastore (register its Node, list core Nodes, read and follow the
configuration, claim a block and assign / release addresses, write workload
endpoints) must be allowed; a request outside the ClusterRole is refused, and
the error says which user, verb and resource.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gingham.datastore.base import Datastore, EventType, WatchEvent
from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.datastore.kubernetes_wire import Forbidden
from gingham.ipam import IPAM
from gingham.k8s.node import register_node
from gingham.k8s.rbac import NODE_ACCESS
from gingham.model import parse_resource
from gingham.model.base import Resource
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kubernetes

ROOT = Path(__file__).resolve().parents[3]
AGENT = "system:serviceaccount:kube-system:gingham-node"
CLEANUP = (
    "ippools,bgppeers,bgpconfigurations,ipamconfigurations,nodes.gingham.io,"
    "ipamblocks,blockaffinities,ipamhandles,workloadendpoints"
)


def doc(kind: str, name: str, spec: dict[str, object]) -> Resource:
    return parse_resource(
        {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


@pytest.fixture
def agent_kubeconfig(kube_cluster: KubeCluster, tmp_path: Path) -> Path:
    token = kube_cluster.service_account_token("kube-system", "gingham-node")
    return kube_cluster.plane.token_kubeconfig(tmp_path / "agent.kubeconfig", token)


@pytest.fixture
async def admin(kube_cluster: KubeCluster) -> AsyncIterator[Datastore]:
    store = KubernetesDatastore(str(kube_cluster.admin_kubeconfig), timeout=10.0)
    try:
        yield store
    finally:
        await store.close()
        kube_cluster.kubectl("delete", CLEANUP, "--all", "--wait=true", timeout=120)


@pytest.fixture
async def agent(agent_kubeconfig: Path) -> AsyncIterator[Datastore]:
    store = KubernetesDatastore(str(agent_kubeconfig), timeout=10.0)
    try:
        yield store
    finally:
        await store.close()


async def first_event(store: Datastore, kind: str, revision: str) -> WatchEvent:
    events = store.watch(kind, revision)
    try:
        return await asyncio.wait_for(anext(events), 30)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_the_node_agents_calls_are_all_allowed(admin: Datastore, agent: Datastore) -> None:
    # What an operator sets up (the agent may only read it).
    await admin.create(doc("IPPool", "rbac-pool", {"cidr": "10.77.0.0/16", "blockSize": 26}))
    await admin.create(doc("BGPConfiguration", "default", {"asNumber": 64512}))
    await admin.create(doc("BGPPeer", "rbac-peer", {"peerIP": "10.0.0.9", "asNumber": 64513}))
    for kind, operations in NODE_ACCESS.items():
        assert "list" in operations
        await agent.list(kind)  # every kind the agent follows or scans

    # Registration: our Node follows the core Node (list) and the BGP address.
    await agent.core_nodes()  # type: ignore[attr-defined]
    node = await register_node(agent, "rbac-node", ipaddress.IPv4Interface("10.0.0.5/24"))
    node = await register_node(
        agent, "rbac-node", ipaddress.IPv4Interface("10.0.0.6/24"), labels={"rack": "r1"}
    )
    assert node.metadata.labels == {"rack": "r1"}

    # IPAM on pod ADD / DEL: claim a block (affinity, block, handle), release.
    ipam = IPAM(agent)
    [address] = await ipam.assign("rbac-pod", "rbac-node", {"pod": "p", "namespace": "default"})
    assert ipaddress.ip_address(address) in ipaddress.ip_network("10.77.0.0/16")
    assert [a.spec.node for a in (await agent.list("BlockAffinity")).items] == ["rbac-node"]
    wep = doc(
        "WorkloadEndpoint",
        "rbac-node-k8s-default-p-eth0",
        {"node": "rbac-node", "containerId": "c1", "ipNetworks": [f"{address}/32"]},
    )
    created = await agent.create(wep)
    await agent.update(created)
    await agent.delete("WorkloadEndpoint", created.name)

    # Following: felix and the speaker list, then watch from the listing.
    for kind in ("IPPool", "Node", "BlockAffinity", "BGPPeer", "BGPConfiguration"):
        listing = await agent.list(kind)
        watcher = asyncio.ensure_future(first_event(agent, kind, listing.revision))
        [first, *_] = (await admin.list(kind)).items
        touched = first.metadata.model_copy(update={"labels": {"touched": "yes"}})
        await admin.update(first.model_copy(update={"metadata": touched}))
        assert (await watcher).type is EventType.MODIFIED

    assert await ipam.release("rbac-pod") == [address]


async def test_a_request_outside_the_cluster_role_is_denied_naming_verb_resource_and_user(
    admin: Datastore, agent: Datastore
) -> None:
    await admin.create(doc("IPPool", "rbac-pool", {"cidr": "10.77.0.0/16", "blockSize": 26}))

    with pytest.raises(Forbidden) as denied:
        await agent.delete("IPPool", "rbac-pool")  # pools are an operator's to remove
    message = str(denied.value)
    assert AGENT in message  # the API server's own words name user, verb, resource
    assert 'cannot delete resource "ippools" in API group "gingham.io"' in message
    assert (await admin.get("IPPool", "rbac-pool")).name == "rbac-pool"

    with pytest.raises(Forbidden) as denied:
        await agent.create(doc("IPPool", "agent-pool", {"cidr": "10.78.0.0/16"}))
    assert 'cannot create resource "ippools"' in str(denied.value)


async def test_a_watch_without_rights_ends_with_forbidden_instead_of_retrying(
    kube_cluster: KubeCluster, admin: Datastore, tmp_path: Path
) -> None:
    manifest = (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: nobody, namespace: default}\n"
    )
    kube_cluster.apply(manifest)
    token = kube_cluster.service_account_token("default", "nobody")
    kubeconfig = kube_cluster.plane.token_kubeconfig(tmp_path / "nobody.kubeconfig", token)
    revision = (await admin.list("IPPool")).revision
    # Reconnecting for 10 minutes would outlast the test's timeout: only
    # giving up on the refusal passes.
    nobody = KubernetesDatastore(str(kubeconfig), timeout=5.0, reconnect_timeout=600)
    try:
        with pytest.raises(Forbidden) as denied:
            async for _ in nobody.watch("IPPool", revision):
                pass
    finally:
        await nobody.close()
    assert 'User "system:serviceaccount:default:nobody" cannot watch resource "ippools"' in str(
        denied.value
    )


def test_the_cli_reports_a_denied_request_without_a_traceback(
    kube_cluster: KubeCluster, agent_kubeconfig: Path
) -> None:
    kube_cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "default-pool.yaml"))
    try:
        env = {**os.environ, "KUBECONFIG": str(agent_kubeconfig)}
        env.pop("GINGHAM_DATASTORE", None)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gingham.cli.main",
                "--datastore",
                "kubernetes",
                "delete",
                "ippool",
                "default-ipv4-pool",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        kube_cluster.kubectl("delete", "ippools,bgpconfigurations", "--all", "--wait=true")

    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert AGENT in result.stderr
    assert 'cannot delete resource "ippools" in API group "gingham.io"' in result.stderr
    assert "try again later" not in result.stderr
