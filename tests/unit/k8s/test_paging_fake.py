"""Paged lists against the FAKE API server: the number of pages requested, and
a restart when the snapshot expires between pages (which a real API server
does only after its compaction interval, minutes). Paging against a real
server: tests/integration/k8s/test_paging.py."""

from __future__ import annotations

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.model import parse_resource
from gingham.model.base import Resource
from tests.support.fake_apiserver import FakeApiServer


def handle(name: str) -> Resource:
    return parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": "IPAMHandle",
            "metadata": {"name": name},
            "spec": {"handleId": name},
        }
    )


async def test_paged_list_asks_page_by_page(fake: FakeApiServer) -> None:
    store = KubernetesDatastore(str(fake.kubeconfig), page_size=2)
    try:
        for name in ["e", "a", "d", "b", "c"]:
            await store.create(handle(name))
        fake.requests.clear()

        listing = await store.list("IPAMHandle")

        assert [o.name for o in listing.items] == ["a", "b", "c", "d", "e"]
        assert fake.requests.count(("gingham.io", "ipamhandles", "list")) == 3
        assert listing.revision == str(fake.state.revision)
    finally:
        await store.close()


async def test_expired_continue_token_restarts_the_list(fake: FakeApiServer) -> None:
    store = KubernetesDatastore(str(fake.kubeconfig), page_size=2)
    try:
        for name in ["a", "b", "c"]:
            await store.create(handle(name))
        # Expire the snapshot between the first and the second page.
        original = fake.listing
        calls = 0

        def listing(resource: str, query: dict[str, str]) -> tuple[int, dict[str, object]]:
            nonlocal calls
            calls += 1
            if calls == 2:
                fake.state.snapshots.clear()
            return original(resource, query)

        fake.listing = listing  # type: ignore[method-assign]

        result = await store.list("IPAMHandle")

        assert [o.name for o in result.items] == ["a", "b", "c"]
        assert calls == 4  # page 1, expired page 2, then pages 1 and 2 again
    finally:
        await store.close()
