"""etcd-only behaviour: key layout, endpoint failover, giving up on a dead etcd."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from gingham.datastore import Unavailable, open_datastore
from gingham.datastore.etcd import EtcdDatastore
from gingham.datastore.url import EtcdEndpoint
from tests.integration.datastore.kinds import WIDGET, widget
from tests.support.etcd import EtcdCluster, EtcdServer, free_port, require_etcd

pytestmark = pytest.mark.etcd


@pytest.fixture
def own_etcd() -> Iterator[EtcdServer]:
    require_etcd()
    server = EtcdServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def shared_etcd(etcd_server: EtcdServer) -> Iterator[EtcdServer]:
    try:
        yield etcd_server
    finally:
        etcd_server.wipe("/gingham/")


def raw_get(server: EtcdServer, key: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://{server.endpoint}/v3/kv/range",
        data=json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode(),
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        kvs = json.load(reply).get("kvs", [])
    assert len(kvs) == 1, f"{key} not stored"
    kv: dict[str, object] = kvs[0]
    return kv


async def test_keys_and_values_are_plain_json_under_gingham_v1(shared_etcd: EtcdServer) -> None:
    store = open_datastore(shared_etcd.url)
    try:
        created = await store.create(widget("node1-10-0-0-0-26", 3))
    finally:
        await store.close()

    kv = raw_get(shared_etcd, "/gingham/v1/ContractWidget/node1-10-0-0-0-26")

    assert str(kv["mod_revision"]) == created.resource_version
    document = json.loads(base64.b64decode(str(kv["value"])))
    assert document["kind"] == "ContractWidget"
    assert document["spec"] == {"value": 3, "owner": ""}
    assert "resourceVersion" not in document["metadata"]  # the revision is the key's


async def test_a_dead_endpoint_is_skipped_for_the_next(shared_etcd: EtcdServer) -> None:
    dead = f"127.0.0.1:{free_port()}"
    store = open_datastore(f"etcd://{dead},{shared_etcd.endpoint}")
    try:
        listing = await store.list(WIDGET)
        watch = store.watch(WIDGET, listing.revision)
        await store.create(widget("w", 1))
        event = await asyncio.wait_for(anext(watch), 10)
        assert event.obj.name == "w"
        await watch.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_writes_and_a_watch_move_to_another_member_when_one_stops() -> None:
    require_etcd()
    with EtcdCluster(3) as cluster:
        store = open_datastore(cluster.url)
        try:
            listing = await store.list(WIDGET)  # served by the first member
            watch = store.watch(WIDGET, listing.revision)
            first = await store.create(widget("w0"))
            seen = [await asyncio.wait_for(anext(watch), 10)]

            cluster.members[0].stop()  # the member both the calls and the stream use
            written = [first] + [await store.create(widget(f"w{i}")) for i in (1, 2)]
            seen += [await asyncio.wait_for(anext(watch), 15) for _ in (1, 2)]
            await watch.aclose()  # type: ignore[attr-defined]
        finally:
            await store.close()

    assert [(e.obj.name, e.revision) for e in seen] == [
        (o.name, o.resource_version) for o in written
    ]


async def test_no_reachable_endpoint_is_unavailable_naming_them() -> None:
    dead = [EtcdEndpoint("127.0.0.1", free_port()) for _ in range(2)]
    store = EtcdDatastore(dead, timeout=2.0)
    try:
        began = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await store.get(WIDGET, "w")
        elapsed = time.monotonic() - began
    finally:
        await store.close()
    assert all(str(e) in str(caught.value) for e in dead)
    print(f"[etcd] unreachable reported in {elapsed:.3f}s")


async def test_a_watch_gives_up_when_etcd_stays_down(own_etcd: EtcdServer) -> None:
    store = EtcdDatastore(
        [EtcdEndpoint("127.0.0.1", own_etcd.client_port)], timeout=2.0, reconnect_timeout=1.0
    )
    try:
        listing = await store.list(WIDGET)
        watch = store.watch(WIDGET, listing.revision)
        await store.create(widget("w"))
        assert (await asyncio.wait_for(anext(watch), 10)).obj.name == "w"

        own_etcd.stop()

        with pytest.raises(Unavailable):
            await asyncio.wait_for(anext(watch), 15)
    finally:
        await store.close()


async def test_idle_watches_cost_little_cpu(shared_etcd: EtcdServer) -> None:
    import resource

    store = open_datastore(shared_etcd.url)
    start = await store.list(WIDGET)
    tasks = [asyncio.ensure_future(anext(store.watch(WIDGET, start.revision))) for _ in range(5)]
    try:
        await asyncio.sleep(0.2)  # let the streams open (not synchronisation: just a warm-up)
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        done, _ = await asyncio.wait(tasks, timeout=1.0)
        cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
        assert not done
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        print(f"[etcd] 5 idle watches: {100 * cpu / wall:.1f}% of a core (client side)")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
