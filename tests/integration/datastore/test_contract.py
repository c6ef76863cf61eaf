"""The datastore contract (gingham/datastore/base.py), checked on every backend.

Each test runs once per backend in conftest.BACKENDS. Revisions are compared as
integers: opaque to callers, but decimal on every backend we have.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gingham.datastore import (
    AlreadyExists,
    Conflict,
    Datastore,
    EventType,
    NotFound,
    RevisionCompacted,
    Unavailable,
    WatchEvent,
)
from gingham.model import IPPool, parse_resource
from tests.integration.datastore import workers
from tests.integration.datastore.conftest import Backend
from tests.integration.datastore.kinds import GADGET, WIDGET, gadget, widget, with_value
from tests.support.poll import async_wait_for

SPAWN = multiprocessing.get_context("spawn")


class Collector:
    """Runs a watch in a task and keeps every event it yields."""

    def __init__(self, events: AsyncIterator[WatchEvent]) -> None:
        self.events: list[WatchEvent] = []
        self.error: BaseException | None = None
        self._iterator = events
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for event in self._iterator:
                self.events.append(event)
        except Exception as exc:
            self.error = exc

    async def wait_count(self, count: int, timeout: float = 15.0) -> list[WatchEvent]:
        async def enough() -> bool:
            if self.error is not None:
                raise AssertionError(f"watch failed: {self.error!r}")
            return len(self.events) >= count

        await async_wait_for(enough, timeout=timeout, what=f"{count} watch events")
        return self.events

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def summary(events: list[WatchEvent]) -> list[tuple[str, str, int]]:
    return [(e.type.value, e.obj.name, e.obj.spec.value) for e in events]


def run_workers(target: Any, args_per_worker: list[tuple[Any, ...]], timeout: float = 90) -> None:
    processes = [SPAWN.Process(target=target, args=args) for args in args_per_worker]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout)
            assert process.exitcode == 0, f"worker exited with {process.exitcode}"
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


def drain(queue: Any, count: int) -> list[Any]:
    return [queue.get(timeout=30) for _ in range(count)]


# --- single operations -----------------------------------------------------


async def test_create_get_returns_the_stored_object_with_its_revision(store: Datastore) -> None:
    created = await store.create(widget("w1", 7, owner="me"))
    assert created.resource_version is not None

    fetched = await store.get(WIDGET, "w1")

    assert fetched.spec.value == 7 and fetched.spec.owner == "me"
    assert fetched.resource_version == created.resource_version
    assert (await store.get("contractwidgets", "w1")).name == "w1"  # any spelling of the kind


async def test_real_kind_round_trips(store: Datastore) -> None:
    pool = parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": "IPPool",
            "metadata": {"name": "pool-a", "labels": {"tier": "x"}},
            "spec": {"cidr": "10.20.0.0/16", "blockSize": 28, "natOutgoing": True},
        }
    )
    created = await store.create(pool)
    try:
        fetched = await store.get("IPPool", "pool-a")
        assert isinstance(fetched, IPPool)
        assert fetched.to_document() == created.to_document()
    finally:
        await store.delete("IPPool", "pool-a")


async def test_typed_errors(store: Datastore) -> None:
    with pytest.raises(NotFound):
        await store.get(WIDGET, "missing")
    with pytest.raises(NotFound):
        await store.update(widget("missing", 1))
    with pytest.raises(NotFound):
        await store.delete(WIDGET, "missing")

    first = await store.create(widget("w1", 1))
    with pytest.raises(AlreadyExists):
        await store.create(widget("w1", 2))

    second = await store.update(with_value(first, 2))
    assert int(second.resource_version or 0) > int(first.resource_version or 0)
    with pytest.raises(Conflict):
        await store.update(with_value(first, 3))  # stale revision
    with pytest.raises(Conflict):
        await store.delete(WIDGET, "w1", revision=first.resource_version)
    assert (await store.get(WIDGET, "w1")).spec.value == 2  # losers wrote nothing

    unconditional = await store.update(widget("w1", 4))  # no revision: no CAS
    assert unconditional.spec.value == 4
    with pytest.raises(NotFound):
        await store.delete(WIDGET, "missing", revision=unconditional.resource_version)

    removed = await store.delete(WIDGET, "w1", revision=unconditional.resource_version)
    assert removed.spec.value == 4
    assert removed.resource_version == unconditional.resource_version
    with pytest.raises(NotFound):
        await store.get(WIDGET, "w1")
    recreated = await store.create(widget("w1", 5))  # a deleted name can be reused
    assert (await store.delete(WIDGET, "w1")).spec.value == recreated.spec.value


async def test_list_by_kind_and_prefix_in_name_order_with_revision(store: Datastore) -> None:
    empty = await store.list(WIDGET)
    assert empty.items == []
    last = None
    for name in ["node2-10-0-0-64-26", "b", "node1-10-0-0-0-26", "a", "node1", "ab"]:
        last = await store.create(widget(name))
    await store.create(gadget("a"))  # another kind with a clashing name

    listing = await store.list(WIDGET)
    prefixed = await store.list(WIDGET, prefix="node1")

    assert [o.name for o in listing.items] == [
        "a",
        "ab",
        "b",
        "node1",
        "node1-10-0-0-0-26",
        "node2-10-0-0-64-26",
    ]
    assert all(o.kind == WIDGET for o in listing.items)
    assert [o.name for o in prefixed.items] == ["node1", "node1-10-0-0-0-26"]
    assert [o.name for o in (await store.list(GADGET)).items] == ["a"]
    assert last is not None
    assert int(listing.revision) > int(last.resource_version or 0)  # saw the gadget too
    assert int(listing.revision) >= max(int(o.resource_version or 0) for o in listing.items)


# --- compare-and-swap under concurrency --------------------------------------


async def test_racing_processes_exactly_one_wins_each_round(backend: Backend) -> None:
    store = backend.open()
    await store.create(widget("contested", 0))
    workers_count, rounds = 4, 5
    barrier = SPAWN.Barrier(workers_count)
    results = SPAWN.Queue()

    await asyncio.to_thread(
        run_workers,
        workers.race_rounds,
        [(backend.url, "contested", rounds, w, barrier, results) for w in range(workers_count)],
    )

    outcomes = drain(results, workers_count * rounds)
    winners = {r: [(w, rev) for (rr, w, rev) in outcomes if rr == r and rev] for r in range(rounds)}
    assert all(len(winners[r]) == 1 for r in range(rounds)), winners
    final = await store.get(WIDGET, "contested")
    assert final.spec.value == rounds
    assert final.spec.owner == f"w{winners[rounds - 1][0][0]}"
    revisions = [int(winners[r][0][1]) for r in range(rounds)]
    assert revisions == sorted(revisions)


async def test_counter_incremented_by_racing_processes_loses_no_increment(
    backend: Backend,
) -> None:
    store = backend.open()
    await store.create(widget("counter", 0))
    workers_count, times = 3, 15
    barrier = SPAWN.Barrier(workers_count)
    results = SPAWN.Queue()

    await asyncio.to_thread(
        run_workers,
        workers.increment,
        [(backend.url, "counter", times, barrier, results)] * workers_count,
    )

    conflicts = sum(drain(results, workers_count))
    assert (await store.get(WIDGET, "counter")).spec.value == workers_count * times
    print(f"[{backend.name}] {workers_count}x{times} increments, {conflicts} conflicts retried")


# --- watch -----------------------------------------------------------------------


async def test_watch_yields_ordered_events_with_objects_and_revisions(store: Datastore) -> None:
    start = await store.list(WIDGET)
    everything = Collector(store.watch(WIDGET, start.revision))
    only_b = Collector(store.watch(WIDGET, start.revision, prefix="b"))
    try:
        a1 = await store.create(widget("a", 1))
        await store.create(gadget("a", 100))  # other kind: not in this watch
        a2 = await store.update(with_value(a1, 2))
        b1 = await store.create(widget("b", 3))
        removed = await store.delete(WIDGET, "a")

        events = await everything.wait_count(4)
        b_events = await only_b.wait_count(1)
    finally:
        await everything.stop()
        await only_b.stop()

    assert summary(events) == [
        ("ADDED", "a", 1),
        ("MODIFIED", "a", 2),
        ("ADDED", "b", 3),
        ("DELETED", "a", 2),  # the object as it was last stored
    ]
    assert removed.resource_version == a2.resource_version
    revisions = [int(e.revision) for e in events]
    assert revisions == sorted(set(revisions))
    assert revisions[:3] == [int(str(o.resource_version)) for o in (a1, a2, b1)]
    assert [e.obj.resource_version for e in events[:3]] == [e.revision for e in events[:3]]
    assert all(e.obj.kind == WIDGET for e in events)
    assert summary(b_events) == [("ADDED", "b", 3)]


async def test_list_then_watch_from_its_revision_misses_and_repeats_nothing(
    backend: Backend,
) -> None:
    store, writer = backend.open(), backend.open()
    for i in range(5):
        await store.create(widget(f"w{i}", 0))

    # The listing must land inside the churn, with writes after it, on any
    # machine: on a fast idle one the churn used to finish before the listing
    # was taken (nothing left to watch). So the churn runs freely up to step
    # 20 (a slow machine lists while it goes on) and only then waits for the
    # listing, which leaves at least 11 writes for the watch to carry.
    listed = asyncio.Event()

    async def churn() -> None:
        for step in range(1, 31):
            if step == 20:
                await listed.wait()
            name = f"w{step % 7}"
            try:
                current = await writer.get(WIDGET, name)
            except NotFound:
                await writer.create(widget(name, step))
                continue
            if step % 5 == 0:
                await writer.delete(WIDGET, name)
            else:
                await writer.update(with_value(current, step))
            await asyncio.sleep(0)

    writing = asyncio.create_task(churn())
    try:
        await async_wait_for(lambda: _value_at_least(store, 3), timeout=10, what="churn under way")
        listing = await store.list(WIDGET)  # taken while writes may go on
    except BaseException:
        writing.cancel()
        raise
    watcher = Collector(store.watch(WIDGET, listing.revision))
    listed.set()
    try:
        await writing
        final = await store.list(WIDGET)
        state = {o.name: o.spec.value for o in listing.items}

        async def caught_up() -> bool:
            seen = [e for e in watcher.events if int(e.revision) <= int(final.revision)]
            if watcher.error is not None:
                raise AssertionError(f"watch failed: {watcher.error!r}")
            # The churn's last write is the store's last write, so the final
            # listing's revision is the revision of the last event to expect.
            return bool(seen) and seen[-1].revision == final.revision

        await async_wait_for(caught_up, timeout=10, what="watch to reach the final listing")
    finally:
        await watcher.stop()

    events = watcher.events
    revisions = [int(e.revision) for e in events]
    assert revisions == sorted(set(revisions)), "events repeated or out of order"
    assert all(r > int(listing.revision) for r in revisions)
    for event in events:
        if event.type is EventType.DELETED:
            assert event.obj.name in state, f"deleted {event.obj.name} never seen"
            del state[event.obj.name]
        elif event.type is EventType.ADDED:
            assert event.obj.name not in state, f"{event.obj.name} added twice"
            state[event.obj.name] = event.obj.spec.value
        else:
            assert event.obj.name in state
            state[event.obj.name] = event.obj.spec.value
    assert state == {o.name: o.spec.value for o in final.items}


async def _value_at_least(store: Datastore, value: int) -> bool:
    return any(o.spec.value >= value for o in (await store.list(WIDGET)).items)


async def test_watch_resumes_after_a_disconnect_without_loss_or_repeat(
    restartable_backend: Backend,
) -> None:
    backend = restartable_backend
    store = backend.open()
    start = await store.list(WIDGET)
    watcher = Collector(store.watch(WIDGET, start.revision))
    results = SPAWN.Queue()
    names = [f"n{i}" for i in range(8)]
    try:
        await asyncio.to_thread(
            run_workers, workers.write_batch, [(backend.url, names, 0, results)]
        )
        await watcher.wait_count(len(names))

        began = time.monotonic()
        await backend.disrupt()
        # Write at once: the watcher is likely still reconnecting and must
        # resume from its last revision, not from "now".
        await asyncio.to_thread(
            run_workers, workers.write_batch, [(backend.url, names, 100, results)]
        )
        events = await watcher.wait_count(2 * len(names), timeout=30)
        print(f"[{backend.name}] disrupt + 8 writes + catch-up: {time.monotonic() - began:.2f}s")
    finally:
        await watcher.stop()

    writes = sorted(drain(results, 2 * len(names)), key=lambda w: int(w[0]))
    assert [(e.revision, e.obj.name, e.type.value, e.obj.spec.value) for e in events] == writes


async def test_paused_watch_resumes_from_its_last_event_not_from_now(
    restartable_backend: Backend,
) -> None:
    # The consumer holds the iterator still while the backend restarts and
    # other processes write; when it asks for more, the iterator finds its
    # connection dead and must resume after the last event it yielded.
    backend = restartable_backend
    store = backend.open()
    start = await store.list(WIDGET)
    events = store.watch(WIDGET, start.revision)
    results = SPAWN.Queue()
    names = [f"p{i}" for i in range(5)]
    try:
        await asyncio.to_thread(
            run_workers, workers.write_batch, [(backend.url, names, 0, results)]
        )
        seen = [await asyncio.wait_for(anext(events), 15) for _ in names]

        await backend.disrupt()
        await asyncio.to_thread(
            run_workers, workers.write_batch, [(backend.url, names, 100, results)]
        )
        seen += [await asyncio.wait_for(anext(events), 30) for _ in names]
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()

    writes = sorted(drain(results, 2 * len(names)), key=lambda w: int(w[0]))
    assert [(e.revision, e.obj.name, e.type.value, e.obj.spec.value) for e in seen] == writes


async def test_watch_from_compacted_history_raises_revision_compacted(backend: Backend) -> None:
    store = backend.open()
    old = await store.list(WIDGET)
    for i in range(3):
        await store.create(widget(f"c{i}"))
    await backend.compact()

    with pytest.raises(RevisionCompacted):
        async with asyncio.timeout(10):
            async for _ in store.watch(WIDGET, old.revision):
                pass

    fresh = await store.list(WIDGET)  # re-list, then watching goes on
    watcher = Collector(store.watch(WIDGET, fresh.revision))
    try:
        await store.create(widget("after"))
        assert summary(await watcher.wait_count(1)) == [("ADDED", "after", 0)]
    finally:
        await watcher.stop()


# --- outage ----------------------------------------------------------------------


async def test_backend_down_raises_unavailable_in_bounded_time(
    restartable_backend: Backend,
) -> None:
    backend = restartable_backend
    store = backend.open()
    existing = await store.create(widget("before"))

    async with backend.outage():
        began = time.monotonic()
        with pytest.raises(Unavailable):
            await asyncio.wait_for(store.create(widget("during")), 15)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(store.update(with_value(existing, 1)), 15)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(store.delete(WIDGET, "before"), 15)
        if backend.reads_fail_in_outage:
            with pytest.raises(Unavailable):
                await asyncio.wait_for(store.get(WIDGET, "before"), 15)
            with pytest.raises(Unavailable):
                await asyncio.wait_for(store.list(WIDGET), 15)
        print(f"[{backend.name}] outage detected by all calls in {time.monotonic() - began:.2f}s")

    async def serves_again() -> bool:
        try:
            await store.create(widget("after"))
        except Unavailable:
            return False
        return True

    await async_wait_for(serves_again, timeout=15, interval=0.1, what="backend back")
    assert [o.name for o in (await store.list(WIDGET)).items] == ["after", "before"]


async def test_closing_the_store_ends_its_watches_with_unavailable(backend: Backend) -> None:
    store = backend.open()
    listing = await store.list(WIDGET)
    events = store.watch(WIDGET, listing.revision)
    await store.create(widget("w"))
    assert (await asyncio.wait_for(anext(events), 10)).obj.name == "w"  # stream is up
    waiting = asyncio.ensure_future(anext(events))

    await store.close()

    with pytest.raises(Unavailable):
        await asyncio.wait_for(waiting, 10)
    with pytest.raises(Unavailable):
        await store.get(WIDGET, "w")
