"""Bulk route programming: felix's rtnetlink path beside `ip -batch`, same run.

For each size (10,000 and 50,000 /26 blackhole routes, like a node holding
many blocks) and each of a few runs, in a fresh network namespace each time:
- `ip -batch`: add all routes from a file, then delete them all;
- felix bulk: `RouteSocket.apply` with ADD ops, then DELETE ops;
- felix reconcile: the whole reconcile pass (diff desired vs programmed,
  plan, apply, commit) for the same routes, then a pass with nothing desired.
- feed snapshot / feed deltas: the whole felix route path as the BGP speaker
  drives it. felix's `Agent` (real `Host` on the namespace) serves
  `RouteFeed` on a unix socket; a client in another process (like the
  speaker) pushes the routes (plain `via` a connected next hop; 1,000
  prefixes per message like the speaker, `--feed-batch 1` for one message
  per prefix), either as one
  snapshot (then removes them with an empty snapshot) or as ADD deltas after
  an empty snapshot (then DEL deltas). The clock runs from the first message
  to the moment felix's programmed view (updated only from kernel acks) holds
  them all / none; the kernel count is checked after.
Prints medians and the ratio to `ip -batch` (target: within 2x), and for the
feed stages the rate in prefixes/s (issue 6 needs >= 20,000/s end to end).

Measured 2026-11-29 (load ~1, 100,000 routes, medians of 1-2 runs):
ip -batch add 2.2-2.5 s; feed snapshot 11.8 s before this session's felix
work, 5.0-5.8 s after (2.0-2.3x ip -batch); feed deltas 10.8 s -> 5.0-5.8 s.

Run as root:
`.venv/bin/python bench/routes.py [--sizes 10000 50000] [--runs 3] [--stages ...]`.
"""

from __future__ import annotations

import argparse
import asyncio
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

# The feed stages' namespace: a local link makes the next hop directly connected.
LOCAL, NEXT_HOP = "172.31.0.1/24", "172.31.0.2"
FEED_DEADLINE = 300.0


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


def feed_client(sock: str, mode: str, count: int, batch: int) -> int:
    """The speaker's side of a feed stage (runs in its own process, like gingham-bgp).

    Sends the set-up, says "ready", then one phase per line read from stdin:
    the routes (deltas: ADDs; snapshot: a snapshot of them), then their removal
    (deltas: DELs; snapshot: an empty snapshot). Stdin closing ends the stream.
    Like bird_agent's FelixSink: grpc.aio, a request stream fed from a queue,
    `batch` prefixes per RouteUpdate (`prefixes`; 1: one message per prefix).
    """
    return asyncio.run(_feed_client(sock, mode, count, batch))


async def _feed_client(sock: str, mode: str, count: int, batch: int) -> int:
    import grpc

    from gingham.v1 import dataplane_pb2 as pb
    from gingham.v1 import dataplane_pb2_grpc as pb_grpc

    begin, end = pb.RouteUpdate(type=pb.SNAPSHOT_BEGIN), pb.RouteUpdate(type=pb.SNAPSHOT_END)
    hop = [pb.NextHop(address=NEXT_HOP, node="other")]
    texts = [str(n) for n in prefixes(count)]

    def updates(kind: int) -> list[object]:
        if batch <= 1:
            return [
                pb.RouteUpdate(type=kind, prefix=t, peer=NEXT_HOP, next_hops=hop) for t in texts
            ]
        return [
            pb.RouteUpdate(type=kind, prefixes=texts[i : i + batch], peer=NEXT_HOP, next_hops=hop)
            for i in range(0, len(texts), batch)
        ]

    adds = updates(pb.ADD)
    if mode == "deltas":
        setup, phases = [begin, end], [adds, updates(pb.DEL)]
    else:
        setup, phases = [], [[begin, *adds, end], [begin, end]]
    out: asyncio.Queue[object | None] = asyncio.Queue()
    for m in setup:
        out.put_nowait(m)

    async def requests():  # type: ignore[no-untyped-def]
        while (msg := await out.get()) is not None:
            yield msg

    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
        call = pb_grpc.RouteFeedStub(channel).SyncRoutes(requests())
        reader = asyncio.create_task(call.read())  # keeps the call going
        print("ready", flush=True)
        for phase in phases:
            if not await loop.run_in_executor(None, sys.stdin.readline):
                break
            for m in phase:
                out.put_nowait(m)
        await loop.run_in_executor(None, sys.stdin.readline)
        out.put_nowait(None)
        reader.cancel()
    return 0


async def _until(probe: Callable[[], bool], what: str) -> None:
    deadline = time.perf_counter() + FEED_DEADLINE
    while not probe():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def _feed_stage(
    nets: list[IPv4Network], mode: str, tmp: Path, batch: int
) -> tuple[float, float]:
    import grpc

    from felix.agent import Agent
    from felix.host import Host
    from felix.server import RouteFeedServicer
    from gingham.v1 import dataplane_pb2_grpc as pb_grpc

    with FreshNetns() as ns:
        # No dummy module on this kernel: a veth pair inside the namespace instead.
        for cmd in (
            "link add d0 type veth peer name d1",
            f"addr add {LOCAL} dev d0",
            "link set d1 up",
            "link set d0 up",
        ):
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True)
        host = Host(ns)
        agent = Agent("bench", host, resync_interval=3600.0)
        agent.expect_datastore_kinds(set())
        sock = tmp / f"feed-{mode}.sock"
        server = grpc.aio.server()
        pb_grpc.add_RouteFeedServicer_to_server(RouteFeedServicer(agent), server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"unix:{sock}")
        await server.start()
        runner = asyncio.create_task(agent.run())
        client = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--feed-client", str(sock), mode, str(len(nets)), str(batch),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert client.stdin is not None and client.stdout is not None
        try:
            assert (await client.stdout.readline()).strip() == b"ready"
            if mode == "deltas":
                await _until(lambda: agent.feed.synced, "the empty snapshot")
                agent.mark_dirty()  # felix before 2026-11-29 missed an unchanged first snapshot
                await _until(lambda: agent.ready, "a pass after the empty snapshot")
            times = []
            for want in (len(nets), 0):
                t0 = time.perf_counter()
                client.stdin.write(b"go\n")
                await _until(
                    lambda want=want: len(agent.reconciler.programmed.routes) == want,
                    f"{want} routes programmed ({mode})",
                )
                times.append(time.perf_counter() - t0)
                assert count_owned(ns) == want
            client.stdin.close()
            await client.wait()
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await server.stop(grace=None)
            host.close()
    return times[0], times[1]


def run_feed(nets: list[IPv4Network], mode: str, tmp: Path, batch: int) -> tuple[float, float]:
    return asyncio.run(_feed_stage(nets, mode, tmp, batch))


STAGES = ("ip-batch", "bulk", "reconcile", "feed-snapshot", "feed-deltas")


def median_of(runs: int, fn: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    samples = [fn() for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> int:
    from gingham.collector import tune_gc

    tune_gc()  # the collector settings of gingham-felix, whose code the stages run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument(
        "--feed-batch",
        type=int,
        default=1000,
        help="prefixes per RouteUpdate in the feed stages (the speaker's 1000)",
    )
    parser.add_argument("--feed-client", nargs=4, metavar=("SOCK", "MODE", "N", "BATCH"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.feed_client:
        sock, mode, count, batch = args.feed_client
        return feed_client(sock, mode, int(count), int(batch))
    if os.geteuid() != 0:
        print("bench/routes.py needs root (network namespaces)", file=sys.stderr)
        return 2
    print(
        f"{'routes':>7} {'method':<16} {'add s':>8} {'del s':>8} {'add x':>7} {'del x':>7}"
        f" {'add/s':>9} {'del/s':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            nets = prefixes(size)
            # The reference always runs: every ratio is against this run's ip -batch.
            ref = median_of(args.runs, lambda nets=nets: run_ip_batch(nets, Path(tmp)))
            stages: dict[str, tuple[str, Callable[[], tuple[float, float]]]] = {
                "bulk": ("felix bulk", lambda nets=nets: run_felix_bulk(nets)),
                "reconcile": ("felix reconcile", lambda nets=nets: run_felix_reconcile(nets)),
                "feed-snapshot": (
                    "feed snapshot",
                    lambda nets=nets: run_feed(nets, "snapshot", Path(tmp), args.feed_batch),
                ),
                "feed-deltas": (
                    "feed deltas",
                    lambda nets=nets: run_feed(nets, "deltas", Path(tmp), args.feed_batch),
                ),
            }
            rows = [("ip -batch", ref)]
            rows += [
                (name, median_of(args.runs, fn))
                for key, (name, fn) in stages.items()
                if key in args.stages
            ]
            for name, (add, delete) in rows:
                print(
                    f"{size:>7} {name:<16} {add:>8.3f} {delete:>8.3f} "
                    f"{add / ref[0]:>6.2f}x {delete / ref[1]:>6.2f}x"
                    f" {size / add:>9.0f} {size / delete:>9.0f}",
                    flush=True,
                )
    print(f"(medians of {args.runs} runs, fresh netns each; x = time relative to ip -batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
