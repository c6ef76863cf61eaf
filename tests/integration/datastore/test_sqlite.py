"""SQLite-only behaviour: the file on disk, retention, processes, threads."""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gingham.datastore import RevisionCompacted, Unavailable, open_datastore
from gingham.datastore.sqlite import SqliteDatastore
from tests.integration.datastore import workers
from tests.integration.datastore.kinds import WIDGET, gadget, widget

SPAWN = multiprocessing.get_context("spawn")


async def test_open_creates_parent_dirs_and_a_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "gingham" / "gingham.db"
    store = open_datastore(f"sqlite://{path}")
    try:
        await store.create(widget("w"))
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 1


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "gingham.db"
    path.write_bytes(b"this is not sqlite\n" * 100)
    store = SqliteDatastore(str(path))
    try:
        with pytest.raises(Unavailable, match=str(path)):
            await store.get(WIDGET, "w")
    finally:
        await store.close()


async def test_fresh_file_opened_by_racing_processes(tmp_path: Path) -> None:
    # Schema creation and the switch to WAL race when every process starts at once.
    url = f"sqlite://{tmp_path / 'new' / 'gingham.db'}"
    results: Any = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=workers.write_batch, args=(url, [f"p{i}"], i, results))
        for i in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    store = open_datastore(url)
    try:
        listing = await store.list(WIDGET)
    finally:
        await store.close()
    assert [o.name for o in listing.items] == ["p0", "p1", "p2", "p3"]
    assert listing.revision == "4"


async def test_history_is_kept_by_rows_or_by_age(tmp_path: Path) -> None:
    by_rows = SqliteDatastore(
        str(tmp_path / "rows.db"), changelog_keep_rows=10, changelog_keep_seconds=0, compact_every=5
    )
    by_age = SqliteDatastore(
        str(tmp_path / "age.db"),
        changelog_keep_rows=10,
        changelog_keep_seconds=300,
        compact_every=5,
    )
    try:
        for store in (by_rows, by_age):
            for i in range(30):
                await store.create(widget(f"w{i}"))

        with pytest.raises(RevisionCompacted):
            await anext(by_rows.watch(WIDGET, "0"))
        kept = by_rows.watch(WIDGET, "20")  # the last 10 revisions are kept
        assert (await anext(kept)).obj.name == "w20"
        await kept.aclose()  # type: ignore[attr-defined]

        young = by_age.watch(WIDGET, "0")  # everything is younger than 300 s
        assert (await anext(young)).obj.name == "w0"
        await young.aclose()  # type: ignore[attr-defined]
    finally:
        await by_rows.close()
        await by_age.close()


async def test_close_releases_the_worker_thread(tmp_path: Path) -> None:
    def store_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("gingham-sqlite")]

    before = len(store_threads())
    store = SqliteDatastore(str(tmp_path / "g.db"))
    watch = store.watch(WIDGET, "0")
    await store.create(widget("w"))
    assert (await anext(watch)).obj.name == "w"
    assert len(store_threads()) == before + 1

    await store.close()

    assert len(store_threads()) == before
    with pytest.raises(Unavailable):
        await anext(watch)  # a watch of a closed store ends, it does not hang


async def test_idle_watches_cost_little_cpu(tmp_path: Path) -> None:
    # Measured, not asserted: five idle watches polling for one second.
    store = SqliteDatastore(str(tmp_path / "g.db"))
    start = await store.list(WIDGET)
    tasks = [asyncio.ensure_future(anext(store.watch(WIDGET, start.revision))) for _ in range(5)]
    try:
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        done, _ = await asyncio.wait(tasks, timeout=1.0)
        cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
        assert not done
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        print(f"[sqlite] 5 idle watches: {100 * cpu / wall:.1f}% of a core")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()


async def test_idle_watches_of_one_store_share_one_poll_per_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five idle watches (the speaker's kinds) poll the counter once per tick
    # together, not once each; another process's write still reaches all five.
    from gingham.datastore import sqlite as module

    store = SqliteDatastore(str(tmp_path / "gingham.db"), poll_interval=0.02)
    writer = SqliteDatastore(str(tmp_path / "gingham.db"))
    reads = 0
    meta = module._meta

    def counting(conn: sqlite3.Connection, key: str) -> int:
        nonlocal reads
        if conn is store._poll_conn:
            reads += 1
        return meta(conn, key)

    monkeypatch.setattr(module, "_meta", counting)
    seen: list[str] = []

    async def follow() -> None:
        async for event in store.watch(WIDGET):
            seen.append(event.obj.name)
            return

    try:
        await store.create(widget("first"))  # opens the store (schema, connections)
        tasks = [asyncio.create_task(follow()) for _ in range(5)]
        await asyncio.sleep(0.2)  # (idle: nothing to wait for but time itself)
        idle_reads, reads = reads, 0
        assert idle_reads <= 0.2 / 0.02 * 2, idle_reads  # one per tick, not five
        await writer.create(widget("second"))  # not this store's write: seen by polling
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert seen == ["second"] * 5
    finally:
        await store.close()
        await writer.close()


async def test_a_watch_passes_this_stores_writes_of_other_kinds_without_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A watch of widgets while the same store writes gadgets (felix's IPAM and
    # endpoint writes beside its IPPool/Node/BlockAffinity watches): no
    # changelog read per write, and every widget event still arrives, in
    # order, across compactions and another process's writes.
    from gingham.datastore import sqlite as module

    store = SqliteDatastore(str(tmp_path / "g.db"), compact_every=7, changelog_keep_rows=3)
    writer = SqliteDatastore(str(tmp_path / "g.db"))
    reads = 0
    changes = module._changes

    def counting(conn: sqlite3.Connection, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return changes(conn, **kwargs)

    monkeypatch.setattr(module, "_changes", counting)
    seen: list[str] = []

    async def follow(revision: str) -> None:
        async for event in store.watch(WIDGET, revision):
            seen.append(event.obj.name)
            if len(seen) == 3:
                return

    try:
        await store.create(widget("w0"))
        task = asyncio.create_task(follow((await store.list(WIDGET)).revision))
        await store.create(widget("w1"))
        deadline = time.monotonic() + 5
        while not seen:  # the watch has read once: its first event
            assert time.monotonic() < deadline, "the watch never saw w1"
            await asyncio.sleep(0.01)
        reads = 0
        for i in range(60):
            await store.create(gadget(f"g{i}"))
            await asyncio.sleep(0)  # the watch looks at each write as it comes
        gadget_reads = reads
        await writer.create(widget("w2"))  # another process's write: read from the changelog
        await store.create(widget("w3"))
        await asyncio.wait_for(task, 5)
        assert seen == ["w1", "w2", "w3"]
        # Only the writes that compacted (every 7th revision) make it read.
        assert gadget_reads <= 60 // 7 + 2, gadget_reads
    finally:
        await store.close()
        await writer.close()
