"""IPAM assignments per second on both backends, sequential and 8 processes.

    .venv/bin/python bench/ipam.py [--count 400] [--processes 8]

Per backend (a fresh sqlite file; a throwaway etcd on loopback started with
tests/support/etcd.py), one /20 pool with /26 blocks and 4 nodes:
- reference: compare-and-swap updates of one object per second, one process
  (an assign costs two CAS writes — handle record, then block — plus reads,
  so about half this rate is the ceiling for one process);
- sequential: `count` assigns from one process (nodes round-robin), then
  `count` releases;
- concurrent: `processes` separate processes, `count / processes` assigns
  each, released to start together; wall time from release to the last one
  done. Worker start-up is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gingham.datastore import Datastore, open_datastore  # noqa: E402
from gingham.ipam import IPAM, IPAMUnavailable  # noqa: E402
from gingham.model import parse_resource  # noqa: E402
from tests.support.etcd import EtcdServer, etcd_binary  # noqa: E402

NODES = ("node-a", "node-b", "node-c", "node-d")


def _doc(kind: str, name: str, spec: dict[str, object]) -> object:
    return parse_resource(
        {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


async def prepare(url: str) -> None:
    store = open_datastore(url)
    try:
        await store.create(_doc("IPPool", "bench", {"cidr": "10.128.0.0/20", "blockSize": 26}))  # type: ignore[arg-type]
        for i, name in enumerate(NODES, start=1):
            await store.create(_doc("Node", name, {"bgp": {"ipv4Address": f"192.168.0.{i}/24"}}))  # type: ignore[arg-type]
    finally:
        await store.close()


async def reference_cas(store: Datastore, count: int) -> float:
    obj = await store.create(_doc("Node", "cas-probe", {"bgp": {"ipv4Address": "192.168.9.9/24"}}))  # type: ignore[arg-type]
    began = time.perf_counter()
    for _ in range(count):
        obj = await store.update(obj)
    rate = count / (time.perf_counter() - began)
    await store.delete("Node", "cas-probe")
    return rate


async def sequential(url: str, count: int) -> tuple[float, float, float]:
    store = open_datastore(url)
    try:
        cas = await reference_cas(store, count)
        ipam = IPAM(store)
        began = time.perf_counter()
        for i in range(count):
            await ipam.assign(f"seq-{i}", NODES[i % len(NODES)])
        assigned = count / (time.perf_counter() - began)
        began = time.perf_counter()
        for i in range(count):
            await ipam.release(f"seq-{i}")
        released = count / (time.perf_counter() - began)
        return cas, assigned, released
    finally:
        await store.close()


def concurrent(url: str, count: int, processes: int) -> float:
    per = count // processes
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, NODES[p % len(NODES)], f"c{p}", str(per)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        began = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        got = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"a worker failed: {err[-2000:]}"
            got += json.loads(out.strip().splitlines()[-1])
        elapsed = time.perf_counter() - began
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert len(set(got)) == per * processes, "duplicate addresses"
    return per * processes / elapsed


def worker(url: str, node: str, prefix: str, count: int) -> None:
    async def run() -> list[str]:
        store = open_datastore(url)
        try:
            ipam = IPAM(store)
            got = []
            for i in range(count):
                for attempt in range(5):  # as a runtime retries CNI error 11
                    try:
                        got += [str(a) for a in await ipam.assign(f"{prefix}-{i}", node)]
                        break
                    except IPAMUnavailable as exc:
                        print(f"try again later: {exc}", file=sys.stderr)
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.5 * (attempt + 1))
            return got
        finally:
            await store.close()

    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(asyncio.run(run())), flush=True)


def bench(label: str, url: str, count: int, processes: int) -> None:
    asyncio.run(prepare(url))
    cas, assigned, released = asyncio.run(sequential(url, count))
    parallel = concurrent(url, count, processes)
    print(f"{label}:")
    print(f"  reference: CAS updates of one object, 1 process   {cas:8.0f} /s")
    print(f"  assign, sequential (1 process)                   {assigned:8.0f} /s")
    print(f"  release, sequential (1 process)                  {released:8.0f} /s")
    print(f"  assign, {processes} processes at once                     {parallel:8.0f} /s")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gingham-bench-ipam-") as tmp:
        bench("sqlite", f"sqlite://{tmp}/ipam.db", args.count, args.processes)
    if etcd_binary() is None:
        print("etcd: skipped (no etcd binary; Debian package etcd-server)")
        return
    server = EtcdServer(name="gingham-bench-ipam")
    server.start()
    try:
        bench("etcd", server.url, args.count, args.processes)
    finally:
        server.close()


if __name__ == "__main__":
    main()
