"""Paged lists against the session's real API server (limit / continue):
every page, in name order, at the first page's revision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.model import parse_resource
from gingham.model.base import Resource
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kubernetes


def handle(name: str) -> Resource:
    return parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": "IPAMHandle",
            "metadata": {"name": name},
            "spec": {"handleId": name},
        }
    )


@pytest.fixture
async def store(kube_cluster: KubeCluster) -> AsyncIterator[KubernetesDatastore]:
    made = KubernetesDatastore(str(kube_cluster.admin_kubeconfig), page_size=2)
    try:
        yield made
    finally:
        await made.close()
        kube_cluster.kubectl("delete", "ipamhandles", "--all", "--wait=true")


async def test_paged_list_returns_every_page_in_name_order(store: KubernetesDatastore) -> None:
    for name in ["e", "a", "d", "b", "c"]:
        await store.create(handle(name))

    listing = await store.list("IPAMHandle")  # three pages of at most two

    assert [o.name for o in listing.items] == ["a", "b", "c", "d", "e"]
    # The listing's revision is the snapshot's: watching from it carries
    # what came after and nothing from before.
    events = store.watch("IPAMHandle", listing.revision)
    try:
        await store.create(handle("f"))
        first = await asyncio.wait_for(anext(events), 30)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    assert (first.type.value, first.obj.name) == ("ADDED", "f")
