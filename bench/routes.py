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

`--memory` (sizes 10k, 50k, 100k, 200k unless `--sizes`): felix's memory
holding a learned table. The real `gingham-felix`, its own process as on a
node, in a fresh namespace, takes the routes over `RouteFeed` from a
speaker-like client (split over 20 peers, each its own next hop: the
reflector of issue 15 with 20 clients) as one snapshot, programs them, and
resyncs (`--resync 3`: a whole-kernel dump is inside the peak). Printed:
idle RSS, RSS after, VmHWM (median and range over runs), VmHWM above idle
per route, felix's CPU and wall from the first message to the last route in
the kernel, the namespace's FIB trie size. Reference, same run: BIRD 2
holding the same routes (static, same next hops) and exporting them through
its kernel protocol (its whole VmHWM, idle included, per route).

Measured 2026-11-29 (load ~1, 100,000 routes, medians of 1-2 runs):
ip -batch add 2.2-2.5 s; feed snapshot 11.8 s before this session's felix
work, 5.0-5.8 s after (2.0-2.3x ip -batch); feed deltas 10.8 s -> 5.0-5.8 s.

Measured 2026-12-08 (load 10-28; memory does not follow the load, wall
does), `--memory`, felix's VmHWM before this session's memory work -> after,
BIRD in the same run; ranges over the day's runs (2-4 per size and tree):
  10k: 86 -> 72 MB (BIRD 7); 50k: 172-180 -> 98-99 MB (17); 100k: 202-290
  -> 125-127 MB (30); 200k: 333-448 -> 182-184 MB (55). felix idle is
  65.6 MB either way (its imports: grpc ~20 MB, pyroute2 ~22, the resource
  model ~20). Above idle, per route: 1,400-2,320 bytes before, its peak
  swinging with where a resync's dump fell (the dump held a second copy of
  the table); 620-700 after, no cliff from 10k to 200k; BIRD ~290 with its
  idle. At 100k, one change at a time (single runs): a parsed prefix keeps
  two ints instead of an address, netmask and length in an instance dict
  (265 -> 160 bytes) and a resync's dump reuses the routes felix believes
  programmed, sharing hops tuples: 281 -> 183 MB; the feed keeps one table
  by prefix, not a second by (prefix, peer), and the tracker keeps a plain
  result as its Route: -> 162; a pass works through the feed's changes
  10,000 prefixes at a time and keeps only the refused ops' results: -> 156;
  malloc maps blocks of 128 KiB and more on their own (glibc's rising
  threshold left the holes of dropped dicts in the heap): -> 137; one shared
  path object per peer and next hops instead of a LearnedRoute and a tuple
  per prefix: -> 126.
  CPU (felix's own, first message to the last route in the kernel, resync
  out of the window, 100k, 5 runs interleaved, load ~10): before 1.27 s
  (1.14-1.33), after 1.17 s (1.08-1.26), medians (ranges). In-process, the
  same snapshot (3 runs each, load ~15): feed + pass 1.27-1.38 -> 1.11-1.26
  s; a resync of the 100k table 0.80-0.86 -> 0.59-0.62 s (the dump's routes
  are the programmed ones, so the comparison meets the same objects).

Run as root:
`.venv/bin/python bench/routes.py [--sizes 10000 50000] [--runs 3] [--stages ...]`,
`.venv/bin/python bench/routes.py --memory [--runs 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import NamedTuple

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


def next_hop(peer: int) -> str:
    """The next hop of peer `peer` (0: NEXT_HOP), on the namespace's local link."""
    return f"172.31.0.{2 + peer}"


def feed_client(sock: str, mode: str, count: int, batch: int, peers: int = 1) -> int:
    """The speaker's side of a feed stage (runs in its own process, like gingham-bgp).

    Sends the set-up, says "ready", then one phase per line read from stdin:
    the routes (deltas: ADDs; snapshot: a snapshot of them), then their removal
    (deltas: DELs; snapshot: an empty snapshot). Stdin closing ends the stream.
    Like bird_agent's FelixSink: grpc.aio, a request stream fed from a queue,
    `batch` prefixes per RouteUpdate (`prefixes`; 1: one message per prefix).
    The prefixes are split evenly among `peers` peers, each its own next hop.
    """
    return asyncio.run(_feed_client(sock, mode, count, batch, peers))


async def _feed_client(sock: str, mode: str, count: int, batch: int, peers: int) -> int:
    import grpc

    from gingham.v1 import dataplane_pb2 as pb
    from gingham.v1 import dataplane_pb2_grpc as pb_grpc

    begin, end = pb.RouteUpdate(type=pb.SNAPSHOT_BEGIN), pb.RouteUpdate(type=pb.SNAPSHOT_END)
    texts = [str(n) for n in prefixes(count)]
    share = -(-count // peers)

    def updates(kind: int) -> list[object]:
        out: list[object] = []
        for peer in range(peers):
            address = next_hop(peer)
            hop = [pb.NextHop(address=address, node=f"node{peer}")]
            mine = texts[peer * share : (peer + 1) * share]
            if batch <= 1:
                out += [
                    pb.RouteUpdate(type=kind, prefix=t, peer=address, next_hops=hop) for t in mine
                ]
                continue
            out += [
                pb.RouteUpdate(type=kind, prefixes=mine[i : i + batch], peer=address, next_hops=hop)
                for i in range(0, len(mine), batch)
            ]
        return out

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
            "1", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


# ---- memory: the real gingham-felix holding a learned table, beside BIRD

MEMORY_SIZES = [10_000, 50_000, 100_000, 200_000]
# The reflector of issue 15: 20 clients' prefixes, each client its own next hop.
MEMORY_PEERS = 20
# Short, so the measurement includes a resync (a whole-kernel dump) after the table is in.
MEMORY_RESYNC = 3.0


class Usage(NamedTuple):
    """One process holding `count` routes: memory in MB, CPU and wall seconds."""

    idle_mb: float  # VmRSS before the routes
    rss_mb: float  # VmRSS after them (and, for felix, a resync)
    peak_mb: float  # VmHWM: the high-water mark
    cpu_s: float  # user + system CPU from the first route to the last in the kernel
    wall_s: float
    trie_kb: int  # the kernel's FIB trie for the namespace's main table


def status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fib_trie(ns: str) -> tuple[int, int]:
    """(prefixes, total size in kB) of the namespace's main FIB trie."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/net/fib_triestat"],
        capture_output=True, text=True, check=True,
    ).stdout.split("Main:", 1)[1].split("Local:", 1)[0]  # fmt: skip
    count = re.search(r"Prefixes:\s+(\d+)", out)
    size = re.search(r"Total size:\s+(\d+)", out)
    assert count is not None and size is not None, out
    return int(count.group(1)), int(size.group(1))


def _memory_netns(ns: str) -> None:
    for cmd in (
        "link set lo up",
        "link add d0 type veth peer name d1",
        f"addr add {LOCAL} dev d0",
        "link set d1 up",
        "link set d0 up",
    ):
        subprocess.run(["ip", "-n", ns, *cmd.split()], check=True)


def _wait_prefixes(ns: str, want: int, pid: int, what: str) -> None:
    deadline = time.perf_counter() + FEED_DEADLINE
    while fib_trie(ns)[0] < want:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what}: {fib_trie(ns)[0]} of {want} prefixes in the kernel")
        if not Path(f"/proc/{pid}").exists():
            raise RuntimeError(f"{what} exited")
        time.sleep(0.05)


def run_felix_memory(count: int, tmp: Path) -> Usage:
    """gingham-felix (its own process, as on a node) takes `count` learned routes
    from a speaker-like client as one snapshot (a cold start: the speaker's
    first snapshot after its sessions came up), programs them, then resyncs."""
    from tests.integration.felix.daemon import FELIX, HTTP_PORT, resource, seed

    url = f"sqlite:///{tmp}/memory-{count}.db"
    node = resource("Node", "bench", {"bgp": {"ipv4Address": LOCAL}})
    asyncio.run(seed(url, [node]))
    run_dir = tmp / f"memory-{count}"
    run_dir.mkdir()
    with FreshNetns() as ns:
        _memory_netns(ns)
        before = fib_trie(ns)[0]
        args = ["ip", "netns", "exec", ns, FELIX, "--node", "bench", "--datastore", url,
                "--run-dir", str(run_dir), "--http", f"127.0.0.1:{HTTP_PORT}",
                "--resync", str(MEMORY_RESYNC), "--log-level", "WARNING"]  # fmt: skip
        with (tmp / f"felix-{count}.log").open("wb") as log:
            felix = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = None
        try:
            sock = run_dir / "felix.sock"
            deadline = time.perf_counter() + 120
            while not sock.exists():
                if time.perf_counter() > deadline or felix.poll() is not None:
                    raise RuntimeError(f"felix did not start: {felix.returncode}")
                time.sleep(0.05)
            client = subprocess.Popen(
                [sys.executable, __file__, "--feed-client", str(sock), "snapshot", str(count),
                 "1000", str(MEMORY_PEERS)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            assert client.stdin is not None and client.stdout is not None
            assert client.stdout.readline().strip() == b"ready"
            time.sleep(MEMORY_RESYNC + 1)  # past felix's start-up passes and first resync
            idle = status_mb(felix.pid, "VmRSS")
            cpu0, t0 = cpu_seconds(felix.pid), time.perf_counter()
            client.stdin.write(b"go\n")
            client.stdin.flush()
            _wait_prefixes(ns, before + count, felix.pid, "felix")
            wall, cpu = time.perf_counter() - t0, cpu_seconds(felix.pid) - cpu0
            time.sleep(2 * MEMORY_RESYNC)  # at least one resync with the whole table
            usage = Usage(
                idle, status_mb(felix.pid, "VmRSS"), status_mb(felix.pid, "VmHWM"), cpu, wall,
                fib_trie(ns)[1],
            )  # fmt: skip
            assert count_owned(ns) == count
            return usage
        finally:
            for proc in (client, felix):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()


def run_bird_memory(count: int, tmp: Path) -> Usage:
    """BIRD 2 holding the same routes (static, through the same next hops) in its
    tables and exporting them to the kernel through its kernel protocol."""
    share = -(-count // MEMORY_PEERS)
    statics = "".join(
        f"  route {net} via {next_hop(i // share)};\n" for i, net in enumerate(prefixes(count))
    )
    conf = tmp / f"bird-{count}.conf"
    conf.write_text(
        "router id 172.31.0.1;\nprotocol device {}\n"
        f"protocol static {{\n  ipv4;\n{statics}}}\n"
        "protocol kernel { ipv4 { export all; }; }\n"
    )
    with FreshNetns() as ns:
        _memory_netns(ns)
        before = fib_trie(ns)[0]
        t0 = time.perf_counter()
        bird = subprocess.Popen(
            ["ip", "netns", "exec", ns, "bird", "-f", "-c", str(conf), "-s", str(tmp / "bird.ctl")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_prefixes(ns, before + count, bird.pid, "BIRD")
            wall, cpu = time.perf_counter() - t0, cpu_seconds(bird.pid)
            time.sleep(1)
            return Usage(
                float("nan"), status_mb(bird.pid, "VmRSS"), status_mb(bird.pid, "VmHWM"),
                cpu, wall, fib_trie(ns)[1],
            )  # fmt: skip
        finally:
            bird.kill()
            bird.wait()


def memory_sweep(sizes: list[int], runs: int) -> None:
    print(f"{'routes':>7} {'process':<7} {'idle MB':>8} {'RSS MB':>7} {'VmHWM MB':>9} "
          f"{'x BIRD':>7} {'B/route':>8} {'cpu s':>6} {'wall s':>7} {'trie kB':>8} "
          f"{'VmHWM range':>12}")  # fmt: skip
    with tempfile.TemporaryDirectory() as name:
        for size in sizes:
            samples = {
                "BIRD": [run_bird_memory(size, Path(name)) for _ in range(runs)],
                "felix": [],
            }
            for run in range(runs):
                tmp = Path(name) / f"run{run}"
                tmp.mkdir(exist_ok=True)
                samples["felix"].append(run_felix_memory(size, tmp))
            bird_peak = statistics.median(u.peak_mb for u in samples["BIRD"])
            for proc, usages in samples.items():
                med = Usage(*(statistics.median(u[i] for u in usages) for i in range(6)))
                peaks = [u.peak_mb for u in usages]
                base = med.idle_mb if proc == "felix" else 0.0
                per_route = (med.peak_mb - base) * (1 << 20) / size
                print(
                    f"{size:>7} {proc:<7} {med.idle_mb:>8.1f} {med.rss_mb:>7.1f} "
                    f"{med.peak_mb:>9.1f} {med.peak_mb / bird_peak:>6.1f}x {per_route:>8.0f} "
                    f"{med.cpu_s:>6.2f} {med.wall_s:>7.2f} {med.trie_kb:>8.0f} "
                    f"{min(peaks):>5.0f}-{max(peaks):<6.0f}",
                    flush=True,
                )
    print(
        f"(medians of {runs}; {MEMORY_PEERS} next hops; B/route: VmHWM above felix's idle RSS "
        "(BIRD: all of it) per route; cpu/wall: first route to the last in the kernel)"
    )


STAGES = ("ip-batch", "bulk", "reconcile", "feed-snapshot", "feed-deltas")


def median_of(runs: int, fn: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    samples = [fn() for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> int:
    from gingham.collector import tune_gc

    tune_gc()  # the collector settings of gingham-felix, whose code the stages run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="felix's memory holding a learned table, beside BIRD (sizes: 10k to 200k)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument(
        "--feed-batch",
        type=int,
        default=1000,
        help="prefixes per RouteUpdate in the feed stages (the speaker's 1000)",
    )
    parser.add_argument("--feed-client", nargs=5, metavar=("SOCK", "MODE", "N", "BATCH", "PEERS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.feed_client:
        sock, mode, count, batch, peers = args.feed_client
        return feed_client(sock, mode, int(count), int(batch), int(peers))
    if os.geteuid() != 0:
        print("bench/routes.py needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.memory:
        memory_sweep(args.sizes or MEMORY_SIZES, args.runs)
        return 0
    args.sizes = args.sizes or [10_000, 50_000]
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
