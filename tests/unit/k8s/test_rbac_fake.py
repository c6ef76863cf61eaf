"""RBAC checked against the API calls the code makes, with the FAKE API server
(tests/support/fake_apiserver.py), which records every request it serves.
RBAC as a real API server enforces it: tests/integration/k8s/test_rbac_apiserver.py.

The backend declares which verbs each datastore operation requests
(`OPERATION_VERBS`); here every operation runs, in each of its modes, against
the fake API server, and the requests it recorded must be exactly the
declared ones. The ClusterRole in manifests/rbac.yaml must then equal what the
node agent's operations (gingham.k8s.rbac.NODE_ACCESS) need: no wildcard,
nothing missing, nothing extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from gingham.datastore.kubernetes import OPERATION_VERBS, KubernetesDatastore
from gingham.k8s.rbac import NODE_ACCESS, required_rules
from gingham.model import parse_resource
from gingham.model.base import KINDS, Resource
from tests.support.fake_apiserver import FakeApiServer

ROOT = Path(__file__).resolve().parents[3]


def pool(name: str, nat: bool = False) -> Resource:
    return parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": "IPPool",
            "metadata": {"name": name},
            "spec": {"cidr": "10.9.0.0/16", "natOutgoing": nat},
        }
    )


def store_document(name: str) -> dict[str, Any]:
    return pool(name).to_document()


async def recorded(fake: FakeApiServer, action: Callable[[], Awaitable[Any]]) -> set[str]:
    fake.requests.clear()
    await action()
    assert {(g, r) for g, r, _ in fake.requests} == {("gingham.io", "ippools")}
    return {verb for _, _, verb in fake.requests}


async def test_each_operation_requests_exactly_its_declared_verbs(
    fake: FakeApiServer, store: KubernetesDatastore
) -> None:
    async def first_event(revision: str | None) -> None:
        events = store.watch("IPPool", revision)
        try:
            waiting = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0)  # let the watch start before the write it should see
            while fake.requests.count(("gingham.io", "ippools", "watch")) == 0:
                await asyncio.sleep(0.01)
            with fake.cond:  # written inside the fake: not a request of the store's
                fake.create("ippools", store_document(f"w{len(fake.requests)}"))
            await asyncio.wait_for(waiting, 10)
        finally:
            await events.aclose()

    seen: dict[str, set[str]] = {}
    seen["create"] = await recorded(fake, lambda: store.create(pool("a")))
    seen["get"] = await recorded(fake, lambda: store.get("IPPool", "a"))
    seen["list"] = await recorded(fake, lambda: store.list("IPPool"))
    current = await store.get("IPPool", "a")
    seen["update"] = await recorded(fake, lambda: store.update(current.model_copy()))
    seen["update"] |= await recorded(fake, lambda: store.update(pool("a", nat=True)))
    listing = await store.list("IPPool")
    seen["watch"] = await recorded(fake, lambda: first_event(listing.revision))
    seen["watch"] |= await recorded(fake, lambda: first_event(None))
    latest = await store.get("IPPool", "a")
    seen["delete"] = await recorded(
        fake, lambda: store.delete("IPPool", "a", latest.resource_version)
    )
    await store.create(pool("b"))
    seen["delete"] |= await recorded(fake, lambda: store.delete("IPPool", "b"))

    assert seen == {op: set(verbs) for op, verbs in OPERATION_VERBS.items()}


async def test_core_nodes_reads_names_labels_and_internal_addresses(
    fake: FakeApiServer, store: KubernetesDatastore
) -> None:
    fake.seed_node(
        "kind-worker", {"rack": "r1"}, [("InternalIP", "172.18.0.3"), ("Hostname", "kind-worker")]
    )
    fake.seed_node("kind-control-plane", {}, [("InternalIP", "172.18.0.2")])
    fake.requests.clear()

    nodes = await store.core_nodes()

    assert [(n.name, n.labels, n.internal_ips) for n in nodes] == [
        ("kind-control-plane", {}, ["172.18.0.2"]),
        ("kind-worker", {"rack": "r1"}, ["172.18.0.3"]),
    ]
    assert fake.requests == [("", "nodes", "list")]


def _role_rules() -> set[tuple[str, str, str]]:
    documents = list(yaml.safe_load_all((ROOT / "manifests" / "rbac.yaml").read_text()))
    [role] = [d for d in documents if d["kind"] == "ClusterRole"]
    rules = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames etc.
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), rule
                    rules.add((group, resource, verb))
    return rules


def test_cluster_role_grants_exactly_what_the_node_agent_uses() -> None:
    import gingham.model  # noqa: F401  (registers every kind)

    model_kinds = {k for k, cls in KINDS.items() if cls.__module__.startswith("gingham.")}
    assert set(NODE_ACCESS) == model_kinds, "every kind needs a decision in NODE_ACCESS"
    granted, needed = _role_rules(), required_rules()
    assert granted - needed == set(), "granted but never requested"
    assert needed - granted == set(), "requested but not granted"


def test_binding_gives_the_role_to_the_daemonsets_service_account() -> None:
    documents = {
        d["kind"]: d for d in yaml.safe_load_all((ROOT / "manifests" / "rbac.yaml").read_text())
    }
    binding, account = documents["ClusterRoleBinding"], documents["ServiceAccount"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": documents["ClusterRole"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gingham-node", "namespace": "kube-system"}
    ]
    assert (account["metadata"]["name"], account["metadata"]["namespace"]) == (
        "gingham-node",
        "kube-system",
    )
