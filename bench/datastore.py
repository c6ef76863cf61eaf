"""Datastore latency: our sqlite and etcd backends beside a bare client of each.

    .venv/bin/python bench/datastore.py [--objects 300]

Per backend, one process, one object at a time: create, get, CAS update,
list of all, and watch delivery (update returns → the event reaches a watcher
in the same process). Reference rows measured in the same run:
- sqlite: bare sqlite3 with the same pragmas, one ``BEGIN IMMEDIATE; INSERT;
  COMMIT`` per write (the floor our transaction + codec + thread hop sits on);
- etcd: the synchronous pyetcd client (etcd-sdk-python) doing plain puts/gets,
  the alternative to the grpc.aio client we use.
The etcd server is a throwaway one on loopback (tests/support/etcd.py), removed
on exit, as is the temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gingham.datastore import Datastore, open_datastore  # noqa: E402
from gingham.model import Resource, parse_resource  # noqa: E402
from tests.support.etcd import EtcdServer, etcd_binary  # noqa: E402


def node(name: str, address: str = "10.0.0.1/24") -> Resource:
    return parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"rack": "r1"}},
            "spec": {"bgp": {"ipv4Address": address}},
        }
    )


def row(label: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p90 = ms[int(len(ms) * 0.9) - 1] if len(ms) > 1 else ms[0]
    print(f"  {label:<34} p50 {p50:7.3f} ms  p90 {p90:7.3f} ms  ({len(ms)} ops)")


async def timed(samples: list[float], op: Awaitable[Any]) -> Any:
    began = time.perf_counter()
    result = await op
    samples.append(time.perf_counter() - began)
    return result


async def bench_store(label: str, store: Datastore, count: int) -> None:
    print(f"{label}:")
    names = [f"bench-node-{i:04d}" for i in range(count)]
    creates: list[float] = []
    gets: list[float] = []
    updates: list[float] = []
    deliveries: list[float] = []
    try:
        for name in names:
            await timed(creates, store.create(node(name)))
        for name in names:
            await timed(gets, store.get("Node", name))
        lists: list[float] = []
        for _ in range(5):
            listing = await timed(lists, store.list("Node"))

        events = store.watch("Node", listing.revision)
        for name in names:
            current = await store.get("Node", name)
            changed = current.model_copy(
                update={"metadata": current.metadata.model_copy(update={"labels": {"rack": "r2"}})}
            )
            written = await timed(updates, store.update(changed))
            returned = time.perf_counter()
            event = await asyncio.wait_for(anext(events), 10)
            assert event.revision == written.resource_version
            deliveries.append(time.perf_counter() - returned)
        await events.aclose()  # type: ignore[attr-defined]
        row("create", creates)
        row("get", gets)
        row("update (CAS)", updates)
        row(f"list {count}", lists)
        row("watch delivery after update", deliveries)
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                await store.delete("Node", name)
        await store.close()


def bench_bare_sqlite(path: str, count: int) -> None:
    print("reference: bare sqlite3 (WAL, synchronous=FULL), one transaction per write:")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    value = b"x" * 200
    writes: list[float] = []
    reads: list[float] = []
    for i in range(count):
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO kv VALUES (?, ?)", (f"k{i}", value))
        conn.execute("COMMIT")
        writes.append(time.perf_counter() - began)
    for i in range(count):
        began = time.perf_counter()
        conn.execute("SELECT v FROM kv WHERE k = ?", (f"k{i}",)).fetchone()
        reads.append(time.perf_counter() - began)
    conn.close()
    row("insert", writes)
    row("select", reads)


def bench_pyetcd(endpoint: str, count: int) -> None:
    import pyetcd

    host, port = endpoint.rsplit(":", 1)
    print("reference: pyetcd (sync client), plain put/get:")
    client: Any = pyetcd.client(host=host, port=int(port))
    value = b"x" * 200
    writes: list[float] = []
    reads: list[float] = []
    for i in range(count):
        began = time.perf_counter()
        client.put(f"/bench/{i}", value)
        writes.append(time.perf_counter() - began)
    for i in range(count):
        began = time.perf_counter()
        client.get(f"/bench/{i}")
        reads.append(time.perf_counter() - began)
    client.delete_prefix("/bench/")
    client.close()
    row("put", writes)
    row("get", reads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gingham-bench-") as scratch:
        asyncio.run(bench_store("sqlite", open_datastore(f"sqlite://{scratch}/g.db"), args.objects))
        bench_bare_sqlite(f"{scratch}/bare.db", args.objects)
        if etcd_binary() is None:
            print("etcd: skipped (etcd not installed)")
            return
        server = EtcdServer()
        try:
            server.start()
            asyncio.run(bench_store("etcd", open_datastore(server.url), args.objects))
            bench_pyetcd(server.endpoint, args.objects)
        finally:
            server.close()


if __name__ == "__main__":
    main()
