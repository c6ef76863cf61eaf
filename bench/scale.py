"""The largest full mesh and RR fabric this machine holds, with memory per node.

    .venv/bin/python bench/scale.py [--topologies mesh,rr] [--steps 10,20,30,40,50]
                                    [--deadline 300]

For each topology, node counts step up until a lab does not converge within
``--deadline`` seconds of its build (or the build fails): one pod per node;
converged = every node has a route to every other node's block (N*(N-1) via
routes, read from the kernels) and a ring of pings (each pod → the next
node's pod) all answer. Then, per node, the memory of the `node run`
process tree — supervisor, felix, gingham-bgp, ExaBGP and its API bridge,
gingham-rr on reflectors — as RSS, PSS (shared pages split among their
users: what the node really costs) and USS (private pages only), mean per
node, from /proc/PID/smaps_rollup. Target (issue 8): a 50-node RR fabric,
≤ 150 MB per node.

Reference, same run: the same memory figures for a bare ``python3 -c pass``
and one BIRD daemon (what a speaker can cost). Load average is printed with
each step (the machine is shared). Labs are named h8s<topology>; each is
removed before the next step, also on failure.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labkit import (
    build,
    cpu_table,
    load,
    memory_table,
    node_cpu,
    node_memory,
    remote_block_routes,
    smaps,
)

from gingham.lab.observe import ping
from gingham.lab.state import LabState
from gingham.lab.topology import LabOptions


def quiet(_line: str) -> None:
    pass


def ring_ok(state: LabState) -> bool:
    pods = [p for p in state.pods if p.address]
    pairs = [(a, pods[(i + 1) % len(pods)]) for i, a in enumerate(pods)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return all(pool.map(lambda ab: ping(ab[0], ab[1], 1.0), pairs))


def converge(state: LabState, nodes: int, deadline: float) -> tuple[bool, int]:
    full = nodes * (nodes - 1)
    routes = 0
    while time.monotonic() < deadline:
        routes = remote_block_routes(state)
        if routes >= full and ring_ok(state):
            return True, routes
        time.sleep(1.0)
    return False, routes


def references() -> list[str]:
    lines = []
    bare = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    time.sleep(0.5)  # let it finish starting (read-only: nothing is timed)
    rss, pss, uss = smaps(bare.pid)
    bare.communicate(b"")
    lines.append(f"  reference: bare python3           RSS {rss / 1024:5.1f}  PSS {pss / 1024:5.1f}"
                 f"  USS {uss / 1024:5.1f} MB")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="h8s-") as tmp:
        conf = Path(tmp) / "bird.conf"
        conf.write_text("router id 10.0.0.1;\nprotocol device { scan time 5; }\n")
        bird = subprocess.Popen(["bird", "-f", "-c", str(conf), "-s", f"{tmp}/bird.ctl"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(0.5)
        rss, pss, uss = smaps(bird.pid)
        bird.kill()
        bird.wait()
    lines.append(f"  reference: one idle BIRD          RSS {rss / 1024:5.1f}  PSS {pss / 1024:5.1f}"
                 f"  USS {uss / 1024:5.1f} MB")  # fmt: skip
    return lines


def step(topology: str, nodes: int, deadline_s: float) -> bool:
    name = f"h8s{topology}"[:12]
    options = LabOptions(name=name, nodes=nodes, topology=topology, pods_per_node=1)
    print(f"\n== {topology} {nodes} nodes (load average before: {load()})", flush=True)
    build.down(name, quiet)
    try:
        started = time.monotonic()
        try:
            state = build.up(options, quiet, wait=deadline_s)
        except build.LabError as exc:
            print(f"  build failed: {exc}", flush=True)
            return False
        built = time.monotonic()
        ok, routes = converge(state, nodes, built + deadline_s)
        done = time.monotonic()
        print(f"  build + pods {built - started:6.1f} s, then converged in {done - built:6.1f} s:"
              f" {'yes' if ok else 'NO'} (block routes {routes}/{nodes * (nodes - 1)})",
              flush=True)  # fmt: skip
        time.sleep(3.0)  # settle: the figures are steady-state memory, not start-up peaks
        for line in memory_table(node_memory(state)):
            print(line, flush=True)
        for line in cpu_table(node_cpu(state, 5.0)):
            print(line, flush=True)
        print(f"  load average after: {load()}", flush=True)
        return ok
    finally:
        build.down(name, quiet)


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (e.g. `timeout`): unwind so every lab is taken down


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topologies", default="mesh,rr")
    parser.add_argument("--steps", default="10,20,30,40,50")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds after the build")
    args = parser.parse_args()
    for line in references():
        print(line, flush=True)
    largest: dict[str, int] = {}
    for topology in args.topologies.split(","):
        for nodes in (int(n) for n in args.steps.split(",")):
            if not step(topology, nodes, args.deadline):
                break
            largest[topology] = nodes
    print("\nlargest converged:", ", ".join(f"{t} {n} nodes" for t, n in largest.items()) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
