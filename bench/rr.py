"""Route reflection: the pure core, then the real thing beside BIRD in the same run.

Stage `core` — the reflector alone (no sockets), 1 RR, `--clients` x
`--per-client` /26s:
- core, batched: each client announces its prefixes in one UPDATE (what BIRD
  sends: one attribute set, many NLRI) straight into `Reflector`;
- core, one prefix per UPDATE: the worst case for per-call overhead;
- gRPC: the same batched inputs over a real `Reflect` stream on a unix socket
  (in-process server), protobuf both ways, until the last answer arrives;
- churn: every client withdraws then re-announces 10% of its prefixes.
Each run checks the result against a from-scratch recomputation and that
every client holds the others' prefixes. Prints medians.

Stage `real` — for each `--sizes` entry CLIENTSxPREFIXES (default 20x250,
20x1000, 20x5000, 200x100): that many BIRD 2 clients, one network namespace
and one BIRD process each, on one bridge (tests.support.rr_scale: sessions on
172.16.0.0/16, prefixes from the pool 10.128.0.0/9, never overlapping), and
as the RR in the same run:
- BIRD 2 (`rr client; rr cluster id`, `passive`: it only accepts the
  clients' connections), the reference;
- our RR node: `gingham node run` on a Node with routeReflectorClusterID
  (felix + gingham-bgp/ExaBGP + gingham-rr), the clients as BGPPeers of the
  node, mesh off — once per `--speeds` value of ExaBGP's
  `exabgp_reactor_speed` ('default': Gingham's; set GINGHAM_EXABGP_STOCK=1 to
  run stock ExaBGP, without bird_agent.exabgp_main's changes).
The clients start with their session disabled; once the RR is fully up (for
ours: ExaBGP's API attached, felix fed, gingham-rr serving), every client is
enabled at once (t0). Timed: every session Established, the clients holding
99 % of the routes they should hold between them, and every client holding
every other client's prefixes (polled with birdc every ~0.1 s; with 200
clients one poll takes a while, for both). Also the RR side's CPU seconds by
process while converging, CPU % over 5 s of idle afterwards, and peak RSS
(VmHWM) by process. A last table puts the sizes side by side.

Notes (the history; the README has the current figures):
- 2026-11-29 (sessions 4-5): 20 x 250 went from 65 s to 2.65 s (BIRD 1.11 s)
  by sharing route changes among neighbors in ExaBGP, reading families from a
  table, parsing prefixes fast, answering a new peer from the best paths held,
  and ExaBGP's attribute commands inserted per neighbor in one pass.
- 2026-12-07 (idle machine): above ~800 prefixes per client nothing ever
  converged — ExaBGP and the API bridge deadlocked once both pipes were full
  (bird_agent/exabgp_bridge.py now relays both directions non-blocking), and
  the old address plan's prefixes covered the peering segment.
- 2026-12-08 (session 6, load 3-13 from other work on the machine): with the
  bridge fixed, 20 x 5,000 converged in 166.8 s (BIRD 3.1 s): the speaker
  copied and re-diffed every peer's whole table on every reflector output
  (quadratic). With per-prefix change sets: 34.4 s / 25.9 s / 33.4 s (BIRD
  3.2-4.0 s, 8.2-8.8x), RR CPU ~27-33 s (ExaBGP 10.5, gingham-bgp 9.5, felix
  7.7, gingham-rr 5.0), peak RSS 1.23 GB (gingham-bgp 416, felix 302, ExaBGP
  289, gingham-rr 190). 200 x 100 (load ~9-13): 123 s vs BIRD 17.3 s (7.1x),
  ExaBGP 44 s CPU, 1.05 GB. 20 x 1,000 on stock ExaBGP (no patches): 90.9 s
  vs BIRD 3.15 s, ExaBGP 55.8 s CPU and 1.4 GB (patched: ~5 s).
  Then the adapter keeps no copy of what it sent (ExaBGP's RIB is the
  record), builds the next batch while ExaBGP works on the last, and ExaBGP
  finds a command's neighbors by address (a regular expression per neighbor
  and selector was 58 % of its CPU with 200 clients). Sweep at load 1-3
  (02:02 UTC): 20 x 250 1.87 s vs BIRD 1.66 s (1.1x), 20 x 1,000 3.57 vs
  3.20 s (1.1x), 20 x 5,000 16.8 vs 3.1 s (5.4x; 13.9-20.1 s in other runs),
  RR CPU 23 s, peak RSS 1.06-1.08 GB; 200 x 100 after the neighbor lookup
  (load 1.5): 61.3 s vs BIRD 15.5 s (3.9x; was 85.5 s, 6.4x), ExaBGP 23 s CPU.
  What limited it: every layer kept and handled one table per client, so the
  work and memory grew with routes x clients (1.9 M at 20 x 5,000, 4 M at
  200 x 100): gingham-rr's Adj-RIB-Out, the speaker's link and sent tables,
  ExaBGP's outgoing RIB and UPDATE building per neighbor (~5 us each).
- 2026-12-08 (session 7): update groups, end to end. gingham-rr keeps one
  table (best path, reflected attributes, audience key per prefix) and says
  each change once per group of peers; the speaker keeps one table with
  interned peer groups; ExaBGP builds a command's UPDATEs once per distinct
  negotiation and queues the same bytes on every session of the group (no
  outgoing RIB), writing a session's queue 64 KiB at a time; the pipes to
  ExaBGP hold 1 MiB. Four runs at load 12-18 (three other engineers'
  builds and tests on the 2 cores): 20 x 5,000 in 13.7 / 16.0 / 18.4 /
  24.3 s vs BIRD 3.4 / 3.1 / 4.3 / 3.7 s (4.1-6.5x), RR CPU 8.1-10.9 s
  (was 23 s: ExaBGP 2.4-3.3, gingham-bgp 2.3-3.0, felix 1.5-2.4,
  gingham-rr 1.7-2.1), peak RSS 504-523 MB (was 1.06 GB: gingham-bgp 155,
  felix 117-123, gingham-rr 102-122, ExaBGP 89-92, node-run 22, bridge
  12-15); 200 x 100 in 45.6 / 31.3 / 33.9 s vs BIRD 12.0 / 10.1 / 14.7 s
  (3.8 / 3.1 / 2.3x), CPU 14-15 s, peak RSS 426 -> 327 MB (bounded peer-
  group memos); 20 x 1,000 3.18 s vs 3.25 s (1.0x), 296 MB. The RR CPU is
  now ~8x BIRD's (1.0-1.3 s, which also programs no kernel: our RR node's
  felix installs the 100,000 routes), so on a loaded machine the wall time
  follows the CPU share the five processes get. What is left per route:
  ExaBGP parsing the clients' UPDATEs and the reflected commands' prefixes
  (Python objects per NLRI), the JSON between ExaBGP and the speaker, the
  protobuf between the speaker and gingham-rr, and a new peer's whole table
  walked in each process.
  Later the same day, with ExaBGP's parsed-command cache and per-neighbor RIB
  patches gone and malloc returning large blocks (load 2-9): 20 x 5,000 in
  8.33 s vs BIRD 3.06 s (2.7x) and 14.1 s vs 3.08 s (4.6x), RR CPU 7.9-9.3 s,
  peak RSS 434-441 MB (ExaBGP 89 -> 33-35 MB); 200 x 100 in 23.7 s vs
  13.7 s (1.7x) and 9.4 s vs 12.4 s (0.8x), 306-317 MB; 20 x 1,000 2.85 s
  vs 3.22 s; 20 x 250 1.38 s vs 3.18 s.

Run: `.venv/bin/python bench/rr.py [--stages core real] [--runs 5]
[--clients 20] [--per-client 250] [--sizes 20x250 20x1000 ...] [--speeds
default 0.1] [--limit S]` (root for `real`; 10-15 minutes for the default
sizes). `BENCH_TIMELINE=1` prints the clients'
sessions and routes at every poll.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from bird_agent.exabgp_main import IDLE_SPEED
from gingham.v1 import reflector_pb2_grpc as pb_grpc
from route_reflector.api.convert import encode_input
from route_reflector.api.messages import (
    Announce,
    FeedInput,
    GroupChange,
    PathAttributes,
    Peer,
    PeerUp,
    SnapshotBegin,
    SnapshotEnd,
)
from route_reflector.reflect import Reflector, expected_adj_rib_out
from route_reflector.server import Metrics, ReflectorServicer
from tests.support import bgpd
from tests.support.bird_rr import BirdReflector
from tests.support.rr_scale import AS, CLUSTER_ID, RR_ADDRESS, ScaleFabric, client_prefixes
from tests.support.rr_scale import client_address as scale_client

TIMELINE = bool(os.environ.get("BENCH_TIMELINE"))  # print the clients' progress per poll
CLUSTER = IPv4Address("224.0.0.1")
RR_ID = IPv4Address("192.0.2.250")


def client_address(i: int) -> IPv4Address:
    return IPv4Address(0xC0000201 + i)  # 192.0.2.1 upwards


def attributes(i: int) -> PathAttributes:
    return PathAttributes(next_hop=client_address(i))


def fresh(clients: int) -> Reflector:
    reflector = Reflector(CLUSTER, RR_ID)
    for i in range(clients):
        address = client_address(i)
        reflector.peer_up(Peer(address, address, client=True))
    return reflector


def check(reflector: Reflector, clients: int, per_client: int) -> None:
    expected = expected_adj_rib_out(reflector)
    for i in range(clients):
        address = client_address(i)
        out = reflector.adj_rib_out(address)
        assert dict(out) == expected[address], "incremental != from scratch"
        assert len(out) == (clients - 1) * per_client, f"client {i} holds {len(out)}"


def reach(changes: list[GroupChange]) -> int:
    """Changes per prefix x peer (what the UPDATEs carry), from changes per group."""
    return sum(len(change.peers) for change in changes)


def core_batched(clients: int, per_client: int) -> tuple[float, int]:
    reflector = fresh(clients)
    start = time.perf_counter()
    changes = 0
    for i in range(clients):
        changes += reach(
            reflector.announce(client_address(i), client_prefixes(i, per_client), attributes(i))
        )
    elapsed = time.perf_counter() - start
    check(reflector, clients, per_client)
    return elapsed, changes


def core_single(clients: int, per_client: int) -> tuple[float, int]:
    reflector = fresh(clients)
    start = time.perf_counter()
    changes = 0
    for i in range(clients):
        address, attrs = client_address(i), attributes(i)
        for prefix in client_prefixes(i, per_client):
            changes += reach(reflector.announce(address, [prefix], attrs))
    elapsed = time.perf_counter() - start
    check(reflector, clients, per_client)
    return elapsed, changes


def churn(clients: int, per_client: int) -> tuple[float, int]:
    reflector = fresh(clients)
    for i in range(clients):
        reflector.announce(client_address(i), client_prefixes(i, per_client), attributes(i))
    start = time.perf_counter()
    changes = 0
    for i in range(clients):
        some = client_prefixes(i, per_client)[: per_client // 10]
        changes += reach(reflector.withdraw(client_address(i), some))
        changes += reach(reflector.announce(client_address(i), some, attributes(i)))
    elapsed = time.perf_counter() - start
    check(reflector, clients, per_client)
    return elapsed, changes


async def _grpc_run(clients: int, per_client: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as run_dir:
        sock = Path(run_dir) / "rr.sock"
        server = grpc.aio.server()
        servicer = ReflectorServicer("bench", Metrics())
        pb_grpc.add_ReflectorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"unix:{sock}")
        await server.start()
        channel = grpc.aio.insecure_channel(f"unix:{sock}")
        try:
            inputs: list[FeedInput] = [SnapshotBegin(CLUSTER, RR_ID), SnapshotEnd()]
            inputs += [
                PeerUp(Peer(client_address(i), client_address(i), client=True))
                for i in range(clients)
            ]
            inputs += [
                Announce(client_address(i), tuple(client_prefixes(i, per_client)), attributes(i))
                for i in range(clients)
            ]
            messages = [encode_input(e) for e in inputs]
            start = time.perf_counter()
            stub = pb_grpc.ReflectorStub(channel)  # type: ignore[no-untyped-call]
            call = stub.Reflect(iter(messages))
            changes = 0
            async for output in call:
                for diff in output.diffs:
                    routes = sum(len(g.prefixes) for g in diff.announce) + len(diff.withdraw)
                    changes += routes * max(len(diff.peers), 1)
                if output.received == len(messages):
                    break
            elapsed = time.perf_counter() - start
            call.cancel()
            return elapsed, changes
        finally:
            await channel.close()
            await server.stop(None)


def over_grpc(clients: int, per_client: int) -> tuple[float, int]:
    return asyncio.run(_grpc_run(clients, per_client))


# -- the real thing: BIRD clients, BIRD or gingham as the RR (tests.support.rr_scale) --------


@dataclass
class RealResult:
    name: str
    established: float | None  # t0 (clients enabled) → every session Established
    converged: float | None  # t0 → every client imported every other client's prefixes
    cpu: dict[str, float]  # RR-side CPU seconds t0 → converged, by process role
    idle: dict[str, float]  # RR-side CPU % while idle after convergence, by role
    rss_mb: dict[str, float]
    most: float | None = None  # t0 → the clients held 99 % of those routes between them
    held: float = 1.0  # share of the routes the clients should hold that they held at the end
    reset_reasons: dict[str, int] = field(default_factory=dict)
    resets: int = 0  # sessions torn down between t0 and convergence (ours: bgp.log)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, utime+stime ticks) of `pid`, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[0], []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    for needle, name in (("exabgp_bridge", "exabgp-bridge"), ("exabgp", "exabgp"),
                         ("gingham-bgp", "gingham-bgp"), ("bird_agent", "gingham-bgp"),
                         ("gingham-rr", "gingham-rr"), ("route_reflector", "gingham-rr"),
                         ("gingham-felix", "felix"), ("node run", "node-run"),
                         ("gingham.node", "node-run"), ("bird ", "bird")):  # fmt: skip
        if needle in cmd:
            return name
    return cmd.split(" ", 1)[0].rsplit("/", 1)[-1] or "?"


def cpu_by_role(root: int) -> dict[str, int]:
    ticks: dict[str, int] = {}
    for pid in process_tree(root):
        if (st := _stat(pid)) is not None:
            ticks[role(pid)] = ticks.get(role(pid), 0) + st[1]
    return ticks


def rss_by_role(root: int) -> dict[str, float]:
    """Peak resident memory (VmHWM, MB) of the RR's processes, by role."""
    rss: dict[str, float] = {}
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss[role(pid)] = rss.get(role(pid), 0.0) + int(line.split()[1]) / 1024
        except OSError:
            continue
    return rss


def ticks_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    return {k: (after.get(k, 0) - before.get(k, 0)) / hz for k in after}


def measure(fabric: ScaleFabric, rr_pid: int, name: str, limit: float) -> RealResult:
    """Enable every client at once; time sessions and full tables; CPU of the RR tree."""
    clients = len(fabric.clients)
    want = fabric.expected_per_client
    before = cpu_by_role(rr_pid)
    t0 = time.monotonic()
    fabric.enable_all()
    up: dict[int, float] = {}
    full: dict[int, float] = {}
    deadline = t0 + limit
    imported: dict[int, int] = {}
    most: float | None = None
    while len(full) < clients and time.monotonic() < deadline:
        states = fabric.progress(frozenset(full))
        now = time.monotonic()
        for i, (established, count) in states.items():
            imported[i] = count
            if established:
                up.setdefault(i, now)
            if count >= want:
                full[i] = now
        if most is None and sum(min(n, want) for n in imported.values()) >= 0.99 * (want * clients):
            most = now - t0
        if TIMELINE:
            late = {i: imported.get(i, 0) for i in range(clients) if i not in full}
            print(f"    t={now - t0:5.2f}s up {len(up):2} full {len(full):2}"
                  f" held {sum(imported.values()):6}"
                  f"{f'  not full: {late}' if len(late) <= 3 else ''}", flush=True)  # fmt: skip
        time.sleep(0.1)  # poll cadence (a bench, not a test)
    after = cpu_by_role(rr_pid)
    time.sleep(5)
    idle = {k: 100 * v / 5 for k, v in ticks_delta(after, cpu_by_role(rr_pid)).items()}
    done = len(full) == clients
    return RealResult(
        name,
        max(up.values()) - t0 if len(up) == clients else None,
        max(full.values()) - t0 if done else None,
        ticks_delta(before, after), idle, rss_by_role(rr_pid),
        held=sum(min(n, want) for n in imported.values()) / (want * clients),
        most=most,
    )  # fmt: skip


def bird_round(clients: int, per_client: int, limit: float) -> RealResult:
    fabric = ScaleFabric(clients, per_client)
    try:
        peering = bgpd.DaemonPeering(
            netns=fabric.rr.name, address=RR_ADDRESS, asn=AS,
            neighbor=scale_client(0), neighbor_asn=AS,
        )  # fmt: skip
        rr = BirdReflector(
            peering, [scale_client(i) for i in range(clients)], CLUSTER_ID, passive=True
        )
        rr.start()
        try:
            assert rr.proc is not None
            return measure(fabric, rr.proc.pid, "BIRD 2 as RR (reference)", limit)
        finally:
            rr.stop()
    finally:
        fabric.close()


def gingham_round(clients: int, per_client: int, speed: str | None, limit: float) -> RealResult:
    fabric = ScaleFabric(clients, per_client)
    try:
        # Nothing of our start-up is timed: `start_gingham_rr` returns once
        # ExaBGP's API is attached, felix is fed and gingham-rr serves.
        node = fabric.start_gingham_rr({"exabgp_reactor_speed": speed} if speed else None)
        assert node.proc is not None
        label = f"gingham RR (reactor speed {speed or f'{IDLE_SPEED}, Gingham default'})"
        log = node.run_dir / "logs" / "bgp.log"
        offset = len(log.read_bytes())
        result = measure(fabric, node.proc.pid, label, limit)
        with log.open("rb") as text:
            text.seek(offset)
            reasons = re.findall(r"PeerDown\(peer=[^,]+, reason='([^']*)'", text.read().decode())
        # 'closing connection' is also what ExaBGP says of its own refused or
        # collided connection attempts (no session was up): not counted.
        result.resets = sum(1 for reason in reasons if reason != "closing connection")
        result.reset_reasons = dict(Counter(reasons))
        return result
    finally:
        fabric.close()


def secs(value: float | None) -> str:
    return f"{value:.2f}s" if value is not None else "timeout"


def print_real(results: list[RealResult], limit: float) -> None:
    reference = results[0]

    def ratio(ours: float | None, theirs: float | None) -> str:
        if theirs is None:
            return "n/a"
        return f">{limit / theirs:.1f}" if ours is None else f"{ours / theirs:.1f}"

    print(f"\n{'RR':40} {'sessions up':>11} {'99% held':>9} {'x BIRD':>7} {'all hold all':>12}"
          f" {'x BIRD':>7} {'RR CPU s':>9} {'resets':>6}")  # fmt: skip
    for r in results:
        partial = (
            f"  (clients held {100 * r.held:.0f}% at the limit)" if r.converged is None else ""
        )
        print(f"{r.name:40} {secs(r.established):>11} {secs(r.most):>9}"
              f" {ratio(r.most, reference.most):>7} {secs(r.converged):>12}"
              f" {ratio(r.converged, reference.converged):>7} {sum(r.cpu.values()):9.2f}"
              f" {r.resets:6}{partial}")  # fmt: skip
    for r in results:
        busy = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(r.cpu.items(), key=lambda kv: -kv[1]))
        idle = ", ".join(f"{k} {v:.1f}%" for k, v in sorted(r.idle.items(), key=lambda kv: -kv[1]))
        rss = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.rss_mb.items(), key=lambda kv: -kv[1]))
        if r.reset_reasons:
            print(f"  {r.name}: PeerDown events after t0, by reason: {r.reset_reasons}")
        print(f"  {r.name}\n    CPU while converging: {busy}\n    CPU idle after: {idle}"
              f"\n    peak RSS MB: {rss} (total {sum(r.rss_mb.values()):.0f})")  # fmt: skip


def real_stage(clients: int, per_client: int, speeds: list[str], limit: float) -> list[RealResult]:
    total = clients * per_client
    print(f"\nreal stage: 1 RR, {clients} BIRD clients x {per_client} /26s ({total} prefixes);"
          " clients start disabled, t0 = all enabled at once (BIRD connect delay 1 s in both);"
          f" load before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")  # fmt: skip
    results = [bird_round(clients, per_client, limit)]
    print(f"  done: {results[-1].name} {secs(results[-1].converged)}", flush=True)
    for speed in speeds:
        actual = None if speed == "default" else speed
        results.append(gingham_round(clients, per_client, actual, limit))
        print(f"  done: {results[-1].name} {secs(results[-1].converged)}", flush=True)
    print_real(results, limit)
    return results


def parse_size(text: str) -> tuple[int, int]:
    clients, _, per_client = text.partition("x")
    try:
        return int(clients), int(per_client)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want CLIENTSxPREFIXES, e.g. 20x1000") from None


def print_sweep(rows: list[tuple[tuple[int, int], list[RealResult]]]) -> None:
    """One line per size: BIRD and ours, every client holding every route."""
    print("\nsweep (t0 → every client holds every route; peak RSS of the RR's processes)")
    print(f"{'size':>10} {'BIRD':>8} {'ours':>8} {'x BIRD':>7} {'99% x':>6}"
          f" {'CPU BIRD':>9} {'CPU ours':>9} {'RSS BIRD':>9} {'RSS ours':>9}")  # fmt: skip
    for (clients, per_client), results in rows:
        bird, ours = results[0], results[1]
        both = ours.converged and bird.converged
        ratio = f"{ours.converged / bird.converged:.1f}" if both else "-"  # type: ignore[operator]
        most = f"{ours.most / bird.most:.1f}" if ours.most and bird.most else "-"
        cpu = f"{sum(bird.cpu.values()):8.2f}s {sum(ours.cpu.values()):8.2f}s"
        rss = f"{sum(bird.rss_mb.values()):7.0f}MB {sum(ours.rss_mb.values()):7.0f}MB"
        size = f"{clients}x{per_client}"
        print(f"{size:>10} {secs(bird.converged):>8} {secs(ours.converged):>8}"
              f" {ratio:>7} {most:>6} {cpu} {rss}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20, help="for the core stage")
    parser.add_argument("--per-client", type=int, default=250, help="for the core stage")
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[(20, 250), (20, 1000), (20, 5000), (200, 100)],
        help="real stage: CLIENTSxPREFIXES per client, each run with BIRD and ours",
    )
    parser.add_argument("--stages", nargs="+", choices=("core", "real"), default=["core", "real"])
    parser.add_argument(
        "--speeds",
        nargs="+",
        default=["default"],
        help="exabgp_reactor_speed per gingham round ('default' = Gingham's 10: 100 ms idle"
        " poll, no wait while API work is queued; ExaBGP's own default is 1.0)",
    )
    parser.add_argument(
        "--limit", type=float, default=300, help="seconds a round may take before it is cut off"
    )
    args = parser.parse_args()
    if "core" in args.stages:
        core_stage(args.clients, args.per_client, args.runs)
    if "real" in args.stages:
        if os.geteuid() != 0:
            sys.exit("the real stage needs root (network namespaces); try --stages core")
        rows = [(size, real_stage(*size, args.speeds, args.limit)) for size in args.sizes]
        print_sweep(rows)


def core_stage(clients: int, per_client: int, runs: int) -> None:
    total = clients * per_client
    print(f"1 RR, {clients} clients, {total} prefixes; median of {runs} runs")
    cases: list[tuple[str, Callable[[int, int], tuple[float, int]], int]] = [
        ("core, one UPDATE per client", core_batched, total),
        ("core, one prefix per UPDATE", core_single, total),
        ("gRPC stream, one UPDATE per client", over_grpc, total),
        ("churn: 10% withdrawn + re-announced", churn, 2 * (total // 10)),
    ]
    print(f"{'case':40} {'seconds':>9} {'prefixes in/s':>14} {'changes out/s':>14}")
    for name, run, inputs in cases:
        results = [run(clients, per_client) for _ in range(runs)]
        seconds = statistics.median(r[0] for r in results)
        changes = results[0][1]
        print(f"{name:40} {seconds:9.3f} {inputs / seconds:14,.0f} {changes / seconds:14,.0f}")


if __name__ == "__main__":
    main()
