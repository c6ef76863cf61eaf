"""Bulk route programming: felix's rtnetlink path beside `ip -batch`, same run.

For each size (10,000 and 50,000 /26 blackhole routes, like a node holding
many blocks) and each of a few runs, in a fresh network namespace each time:
- `ip -batch`: add all routes from a file, then delete them all;
- felix bulk: `RouteSocket.apply` with ADD ops, then DELETE ops;
- felix reconcile: the whole reconcile pass (diff desired vs programmed,
  plan, apply, commit) for the same routes, then a pass with nothing desired.
Prints medians and the ratio to `ip -batch` (target: within 2x).

Run as root: `.venv/bin/python bench/routes.py [--sizes 10000 50000] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from felix.dataplane import GINGHAM_RTPROT, Action, KernelState, Route, RouteOp
from felix.kernel import NetlinkKernel
from felix.reconcile import Reconciler, reconcile_once
from felix.rtnl import RouteSocket


def prefixes(count: int) -> list[IPv4Network]:
    # /26s from 10.64.0.0 upwards: 4 per /24.
    return [IPv4Network((0x0A400000 + (i << 6), 26)) for i in range(count)]


class FreshNetns:
    def __init__(self) -> None:
        self.name = f"gtbench{os.getpid():x}"

    def __enter__(self) -> str:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def count_owned(ns: str) -> int:
    out = subprocess.run(
        ["ip", "-n", ns, "-4", "route", "show", "proto", str(GINGHAM_RTPROT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.count("\n")


def run_ip_batch(nets: list[IPv4Network], tmp: Path) -> tuple[float, float]:
    add, delete = tmp / "add.batch", tmp / "del.batch"
    add.write_text("".join(f"route add blackhole {n} proto {GINGHAM_RTPROT}\n" for n in nets))
    delete.write_text("".join(f"route del {n} proto {GINGHAM_RTPROT}\n" for n in nets))
    with FreshNetns() as ns:
        t0 = time.perf_counter()
        subprocess.run(["ip", "-n", ns, "-batch", str(add)], check=True)
        t1 = time.perf_counter()
        assert count_owned(ns) == len(nets)
        t2 = time.perf_counter()
        subprocess.run(["ip", "-n", ns, "-batch", str(delete)], check=True)
        t3 = time.perf_counter()
        assert count_owned(ns) == 0
    return t1 - t0, t3 - t2


def run_felix_bulk(nets: list[IPv4Network]) -> tuple[float, float]:
    routes = [Route.blackhole(n) for n in nets]
    with FreshNetns() as ns, RouteSocket(ns) as rs:
        t0 = time.perf_counter()
        results = rs.apply([RouteOp(Action.ADD, r) for r in routes])
        t1 = time.perf_counter()
        assert all(r.ok for r in results) and count_owned(ns) == len(nets)
        t2 = time.perf_counter()
        results = rs.apply([RouteOp(Action.DELETE, r) for r in routes])
        t3 = time.perf_counter()
        assert all(r.ok for r in results) and count_owned(ns) == 0
    return t1 - t0, t3 - t2


def run_felix_reconcile(nets: list[IPv4Network]) -> tuple[float, float]:
    desired = KernelState(routes={n: Route.blackhole(n) for n in nets})
    with FreshNetns() as ns:
        kernel = NetlinkKernel(ns)
        try:
            rec = Reconciler(datastore_synced=True, routes_synced=True)
            t0 = time.perf_counter()
            results = reconcile_once(rec, kernel, desired, 0.0, resync=False)
            t1 = time.perf_counter()
            assert all(r.ok for r in results) and count_owned(ns) == len(nets)
            t2 = time.perf_counter()
            results = reconcile_once(rec, kernel, KernelState(), 1.0, resync=False)
            t3 = time.perf_counter()
            assert all(r.ok for r in results) and count_owned(ns) == 0
        finally:
            kernel.close()
    return t1 - t0, t3 - t2


def median_of(runs: int, fn: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    samples = [fn() for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/routes.py needs root (network namespaces)", file=sys.stderr)
        return 2
    print(f"{'routes':>7} {'method':<16} {'add s':>8} {'del s':>8} {'add x':>7} {'del x':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            nets = prefixes(size)
            ref = median_of(args.runs, lambda nets=nets: run_ip_batch(nets, Path(tmp)))
            rows = [
                ("ip -batch", ref),
                ("felix bulk", median_of(args.runs, lambda nets=nets: run_felix_bulk(nets))),
                (
                    "felix reconcile",
                    median_of(args.runs, lambda nets=nets: run_felix_reconcile(nets)),
                ),
            ]
            for name, (add, delete) in rows:
                print(
                    f"{size:>7} {name:<16} {add:>8.3f} {delete:>8.3f} "
                    f"{add / ref[0]:>6.2f}x {delete / ref[1]:>6.2f}x"
                )
    print(f"(medians of {args.runs} runs, fresh netns each; x = time relative to ip -batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
