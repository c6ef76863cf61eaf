"""Convergence of a `gingham lab`, per topology, beside BIRD doing the same job in the same run.

    .venv/bin/python bench/converge.py [--nodes 20] [--pods 20] [--topologies mesh,rr,racks]

For each topology (one pod per node to start with):
1. ``lab up`` → every pod pings every other pod (`gingham.lab.build.up` +
   `wait_converged`, the same code as ``gingham lab up``).
2. A new pod's CNI ADD returning → its first echo reply, from a pod on
   another node and (reference: no routing involved) from a pod on the same
   node; p50/p90 over ``--pods`` pods. Target p50 ≤ 50 ms (the pod's block is
   already routed). Pingers are raw-socket loops started beforehand in the
   pods (2 ms between probes), so no process start is timed.
3. A new node: its ``node run`` starts, sessions come up, its first pod's ADD
   claims a block → that block routed on every other node (timed from the
   ADD's return, from ``ip monitor route`` events). Target ≤ 1 s at 20 nodes.
4. kill -9 of that node's ``node run`` → its block withdrawn on every other node.
Reference, same run, same number of receiving speakers: BIRD 2 speakers on a
bridge (iBGP full mesh; for rr, clients of one BIRD reflector; racks use BIRD
ToRs so a node can be added by reconfiguring them), one enables a
static /26 → programmed in every other kernel; then that BIRD is killed → the
route deleted everywhere. Ratios are Gingham / BIRD.

Prints the load average with each topology (the machine is shared). Labs are
named h8c<topology>; everything made is removed at the end, also on failure.

Measured 2026-11-29 (session 4), 20 nodes, `--pods 5`, before → after idle
ExaBGP woke every 100 ms instead of 10 ms and the sqlite watches of a process
shared one poll (bird_agent/exabgp_main, gingham/datastore/sqlite): a 20-node
lab had spent ~1.5 of the 2 cores idling (load 25-35 with nothing to do).
- mesh (12:54 → 13:03): new node's block routed on 20 nodes max 1,798 →
  480 ms (median 397; BIRD 28 ms); CNI ADD p50 1,376 → 215 ms; new node's
  sessions up 29.8 → 4.1 s; kill -9 withdrawn max 591 → 237 ms; lab up →
  full reachability 78 → 56 s.
- rr (13:15, after): new block max 840 ms (median 771; BIRD 13 ms), ADD p50
  250 ms, withdrawn max 391 ms.
- racks (13:17, after, BIRD ToRs): new block max 550 ms on the 15 nodes of
  the other racks; kill -9 → withdrawn after ~120 s, the ToRs' graceful-
  restart window (a BIRD helper keeps a killed speaker's routes).
The ≤ 1 s target for a new node's block is met in all three at this load.
- rr (session 5, 15:57, `--pods 20`, after the reflection path was cut down
  for bench/rr.py): new block max 840 → 382 ms (median 356; BIRD 10 ms),
  ADD p50 199 ms, withdrawn max 392 ms, lab up → full reachability 49 s.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labkit import (
    BirdFabric,
    Pinger,
    RouteWatch,
    add_node,
    add_pod,
    block_of,
    build,
    felix_up,
    kill_node,
    load,
    ms,
    percentile,
    sessions_established,
    spread,
    wait_until,
)

from gingham.lab.observe import node_run_dir, speaker_status
from gingham.lab.state import LabState
from gingham.lab.topology import LabOptions, plan_lab


def quiet(_line: str) -> None:
    pass


def pod_latencies(state: LabState, pods: int) -> list[str]:
    nodes = list(state.nodes)
    base = {p.node: p for p in state.pods}
    pingers = {node: Pinger(base[node].netns) for node in nodes}
    cross: list[float] = []
    same: list[float] = []
    adds: list[float] = []
    add_errors: list[str] = []
    failed = 0
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for i in range(pods):
                node, other = nodes[i % len(nodes)], nodes[(i + 1) % len(nodes)]
                try:
                    record, add_time, returned = add_pod(state, node, i)
                except Exception as exc:  # a failed ADD is a result, not the end of the run
                    add_errors.append(f"{node}: {exc}")
                    continue
                assert record.address is not None
                adds.append(add_time)
                far = pool.submit(pingers[other].first_reply, record.address, 5.0)
                near = pool.submit(pingers[node].first_reply, record.address, 5.0)
                far_t, near_t = far.result(), near.result()
                if far_t is None or near_t is None:
                    failed += 1
                    continue
                cross.append(far_t - returned)
                same.append(near_t - returned)
    finally:
        for pinger in pingers.values():
            pinger.close()
    lines = [
        f"  CNI ADD (whole chain)              p50 {ms(percentile(adds, 0.5) if adds else None)}"
        f" ms  p90 {ms(percentile(adds, 0.9) if adds else None)} ms"
        f"  (failed {len(add_errors)}/{pods})"
    ]
    lines += [f"    failed ADD: {error}" for error in add_errors[:3]]
    if cross:
        c50, c90 = percentile(cross, 0.5), percentile(cross, 0.9)
        s50, s90 = percentile(same, 0.5), percentile(same, 0.9)
        lines += [
            f"  ADD → first ping, other node      p50 {ms(c50)} ms  p90 {ms(c90)} ms"
            f"  (target p50 ≤ 50 ms; n={len(cross)}, failed {failed})",
            f"  reference: same node             p50 {ms(s50)} ms  p90 {ms(s90)} ms"
            f"  (ratio p50 {c50 / s50 if s50 else float('nan'):.2f}x)",
        ]
    else:
        lines.append(f"  ADD → first ping: no pod answered within 5 s ({failed} tried)")
    return lines


def join_and_kill(state: LabState, watch: RouteWatch) -> tuple[list[str], tuple[float, float]]:
    """Lines, and (join max, withdraw max) seconds for the ratio against BIRD."""
    node, started = add_node(state, watch)
    # With BIRD ToRs (what racks use here: they reconfigure in place) a node's
    # rack neighbours never hold its block: the route would carry their own AS
    # and BIRD has no as-override, so they reach it by their default route via
    # the ToR (gingham.lab.tor). Every other node must have it.
    others = [
        n.name
        for n in plan_lab(LabOptions(**{**state.options, "nodes": len(state.nodes)})).nodes
        if n.name != node.name and (node.rack is None or n.rack != node.rack)
    ]
    ready = wait_until(
        lambda: felix_up(state, node.name) and sessions_established(state, node.name), 180, 0.1
    )
    sessions_at = time.monotonic()
    if not ready:
        status = speaker_status(node_run_dir(state, node.name)) or {}
        peers = ", ".join(f"{p.get('address')} {p.get('state')}" for p in status.get("peers", []))
        return [
            f"  new node {node.name}: sessions not all Established within 180 s"
            f" (felix serving: {felix_up(state, node.name)}; peers: {peers or 'none'})"
        ], (0, 0)
    # felix claims the block inside ADD and the speaker announces it at once: the
    # route can reach the other nodes before the whole CNI chain returns, so
    # this is timed from the ADD's start (an upper bound on claim → routed).
    record, add_time, returned = add_pod(state, node.name, 0)
    assert record.address is not None
    block = block_of(record.address)
    add_start = returned - add_time
    seen = watch.wait_all(others, block, add_start, deleted=False, timeout=30)
    med, worst, missed = spread(seen, add_start)
    lines = [
        f"  new node {node.name}: node run start → all its sessions Established "
        f"{sessions_at - started:5.1f} s",
        f"  new node's block {block}: ADD start → routed on {len(others)} nodes   median {ms(med)}"
        f" ms  max {ms(worst)} ms  (target ≤ 1000 ms; missing on {missed}; ADD took"
        f" {ms(add_time)} ms)",
    ]
    killed = kill_node(state, node.name)
    # 150 s: a BGP peer that is a graceful-restart helper (the racks ToRs) keeps a
    # killed speaker's routes for its restart time (kill -9 looks like a restart).
    gone = watch.wait_all(others, block, killed, deleted=True, timeout=150)
    gmed, gworst, gmissed = spread(gone, killed)
    lines.append(
        f"  kill -9 node run → block withdrawn on {len(others)} nodes  median {ms(gmed)} ms"
        f"  max {ms(gworst)} ms  (still routed on {gmissed})"
    )
    return lines, (worst or 0.0, gworst or 0.0)


def bird_reference(tag: str, receivers: int, reflector: bool) -> tuple[list[str], float, float]:
    fabric = BirdFabric(tag, receivers + 1, reflector)
    try:
        fabric.up()
        if not wait_until(fabric.established, 60, 0.2):
            return ["  BIRD reference: sessions not Established within 60 s"], 0.0, 0.0
        watch = RouteWatch(fabric.receivers()).start()
        try:
            time.sleep(0.2)  # `ip monitor` subscribed (its start is not observable otherwise)
            announced = fabric.announce()
            seen = watch.wait_all(list(fabric.receivers()), fabric.PREFIX, announced, False, 30)
            med, worst, missed = spread(seen, announced)
            killed = fabric.kill_origin()
            gone = watch.wait_all(list(fabric.receivers()), fabric.PREFIX, killed, True, 60)
            gmed, gworst, gmissed = spread(gone, killed)
        finally:
            watch.stop()
        shape = "clients of 1 BIRD RR" if reflector else "iBGP full mesh"
        lines = [
            f"  reference: BIRD {shape}, new /26 → {receivers} kernels   median {ms(med)} ms"
            f"  max {ms(worst)} ms  (missing on {missed})",
            f"  reference: kill -9 BIRD → withdrawn in {receivers} kernels   median {ms(gmed)} ms"
            f"  max {ms(gworst)} ms  (still routed on {gmissed})",
        ]
        return lines, worst or 0.0, gworst or 0.0
    finally:
        fabric.down()


def one_topology(topology: str, nodes: int, pods: int, wait: float) -> None:
    name = f"h8c{topology}"[:12]
    options = LabOptions(name=name, nodes=nodes, topology=topology, pods_per_node=1,
                         racks=min(4, max(1, nodes // 5)), tor="bird")  # fmt: skip
    print(f"\n== {topology}: {nodes} nodes (load average before: {load()})", flush=True)
    build.down(name, quiet)  # a leftover from an interrupted run
    watch: RouteWatch | None = None
    try:
        started = time.monotonic()
        state = build.up(options, quiet, wait=wait)
        built = time.monotonic()
        converged = build.wait_converged(state, quiet, wait)
        done = time.monotonic()
        if not converged:
            print(f"  lab up → full reachability: NOT converged within {wait:.0f} s after the"
                  f" build ({built - started:.1f} s)", flush=True)  # fmt: skip
            return
        print(f"  lab up → full reachability       {done - started:6.1f} s"
              f"  (build + pods {built - started:.1f} s, then {done - built:.1f} s)",
              flush=True)  # fmt: skip
        for line in pod_latencies(state, pods):
            print(line, flush=True)
        watch = RouteWatch(dict(state.nodes)).start()
        time.sleep(0.2)  # `ip monitor` subscribed
        lines, (join, withdraw) = join_and_kill(state, watch)
        for line in lines:
            print(line, flush=True)
        ref_lines, bird_join, bird_withdraw = bird_reference(
            f"h8b{topology[:3]}", nodes, topology == "rr"
        )
        for line in ref_lines:
            print(line, flush=True)
        if bird_join and join:
            print(f"  ratio Gingham/BIRD: new block {join / bird_join:5.1f}x, "
                  f"withdrawal {withdraw / bird_withdraw if bird_withdraw else float('nan'):5.1f}x"
                  f"  (load average after: {load()})", flush=True)  # fmt: skip
    finally:
        if watch is not None:
            watch.stop()
        build.down(name, quiet)


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (e.g. `timeout`): unwind so every lab is taken down


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--pods", type=int, default=20, help="new pods timed per topology")
    parser.add_argument("--topologies", default="mesh,rr,racks")
    parser.add_argument("--wait", type=float, default=180.0, help="convergence deadline, s")
    args = parser.parse_args()
    for topology in args.topologies.split(","):
        try:
            one_topology(topology, args.nodes, args.pods, args.wait)
        except build.LabError as exc:
            print(f"  {topology}: lab failed: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
