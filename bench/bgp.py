"""BGP receive path: BIRD → ExaBGP → our adapter, beside BIRD → FRR, same run.

For each size (10,000 and 100,000 /26s) a BIRD in its own namespace holds the
prefixes as static routes with its BGP session administratively down; the
clock starts at `birdc enable peer` and stops when the receiver holds them all:

- gingham: BIRD → ExaBGP → API bridge → `ExaBGPAdapter` typed events →
  import policy (`ImportFilter`) → `LearnedRoutes` (selected routes);
- reference: BIRD → FRR bgpd (no zebra), counted by `pfxRcd`.

- end to end (`kernel s`): BIRD → ExaBGP → the `gingham-bgp` process →
  felix's route feed → the real `gingham-felix` → routes in the kernel,
  counted with `ip route show proto 77` (the target is ≥ 20,000 prefixes/s).
  Measured 2026-11-29, 10,000 prefixes: the speaker has them all selected
  in ~1 s, the kernel has them after 20 to 90 s. Felix alone, fed the same
  10,000 routes as one snapshot, programs them in 2.9 s; fed as deltas after
  an empty snapshot (what a speaker does while a session comes up), 110 s:
  the bottleneck is felix's per-delta path, not the speaker.

Also prints the CPU seconds ExaBGP and our own process spent (in-process
path). Run as root:
`.venv/bin/python bench/bgp.py [--sizes 10000 100000] [--runs 1] [--no-kernel]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bird_agent.events import PeerUp, RoutesAnnounced
from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.learned import LearnedRoutes
from bird_agent.peers import PeerSpec, PeerType
from bird_agent.policy import ImportFilter, PolicyView
from tests.support import bgpd
from tests.support.names import unique_prefix

US, THEM = IPv4Address("172.31.0.1"), IPv4Address("172.31.0.2")
# 100,000 /26s from 10.64.0.0 reach 10.161.x: the pool must hold them all.
POOL = IPv4Network("10.0.0.0/8")
DEADLINE = 300.0


def prefixes(count: int) -> list[IPv4Network]:
    return [IPv4Network((0x0A400000 + (i << 6), 26)) for i in range(count)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Pair:
    """Two namespaces on a veth; BIRD (session disabled) originating `count` prefixes."""

    def __init__(self, count: int) -> None:
        tag = unique_prefix("bb")
        self.us, self.them = f"{tag}u", f"{tag}t"
        self.bird = bgpd.Bird(
            bgpd.DaemonPeering(
                self.them, THEM, 65002, US, 64512, originate=prefixes(count), enabled=False
            )
        )
        try:
            for ns in (self.us, self.them):
                bgpd.create_netns(ns)
            bgpd.veth_between(
                bgpd.VethEnd(self.us, "eth0", IPv4Interface(f"{US}/24")),
                bgpd.VethEnd(self.them, "eth0", IPv4Interface(f"{THEM}/24")),
            )
            self.bird.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        bgpd.stop_quietly(self.bird)
        for ns in (self.us, self.them):
            bgpd.delete_netns(ns)


async def through_gingham(count: int) -> tuple[float, float, float]:
    pair = Pair(count)
    try:
        with TemporaryDirectory() as tmp:
            command = ("ip", "netns", "exec", pair.us, sys.executable, "-m", "exabgp")
            adapter = ExaBGPAdapter(
                ExaBGPOptions(run_dir=Path(tmp), listen_addresses=(US,), exabgp_command=command)
            )
            spec = PeerSpec(THEM, 65002, 64512, US, US, PeerType.GLOBAL, "bird", hold_time=9)
            learned = LearnedRoutes(ImportFilter(PolicyView(pools=(POOL,))))
            peers = {THEM: spec}
            await adapter.start([spec])
            try:
                events = adapter.events()
                started = time.monotonic()
                exabgp_cpu = our_cpu = 0.0
                pair.bird.enable()
                while True:
                    remaining = DEADLINE - (time.monotonic() - started)
                    event = await asyncio.wait_for(anext(events), max(remaining, 0.001))
                    if isinstance(event, PeerUp) and adapter.pid is not None:
                        exabgp_cpu, our_cpu = cpu_seconds(adapter.pid), time.process_time()
                    learned.apply(event, peers)
                    if isinstance(event, RoutesAnnounced) and len(learned.selected) >= count:
                        break
                elapsed = time.monotonic() - started
                assert adapter.pid is not None
                return (
                    elapsed,
                    cpu_seconds(adapter.pid) - exabgp_cpu,
                    time.process_time() - our_cpu,
                )
            finally:
                await adapter.stop()
    finally:
        pair.close()


def kernel_routes(ns: str) -> int:
    out = subprocess.run(
        ["ip", "-n", ns, "route", "show", "proto", "77"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if " via " in line)


def through_kernel(count: int) -> float:
    """BIRD → gingham-bgp → gingham-felix → kernel, both real processes."""
    from tests.integration.felix.daemon import FELIX, HTTP_PORT, Felix, resource, seed
    from tests.support.netns import Netns
    from tests.support.poll import wait_for
    from tests.support.speaker import SpeakerProcess

    class BenchFelix(Felix):
        """The test helper's felix, with the production resync interval (the
        tests' 0.5 s would re-read the whole kernel table all the time)."""

        def start(self) -> None:
            args = ["ip", "netns", "exec", self.ns.name, FELIX, "--node", self.node,
                    "--datastore", self.url, "--run-dir", str(self.run_dir),
                    "--http", f"127.0.0.1:{HTTP_PORT}"]  # fmt: skip
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
            wait_for(self.healthy, timeout=20, what="felix serving health")

    pair = Pair(count)
    try:
        with TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            url = f"sqlite:///{tmp}/store.db"
            objects = [
                resource("IPPool", "pool", {"cidr": str(POOL)}),
                resource("Node", "n1", {"bgp": {"ipv4Address": f"{US}/24"}}),
                resource("BGPPeer", "bird", {"peerIP": str(THEM), "asNumber": 65002}),
            ]
            asyncio.run(seed(url, objects))
            us = Netns(pair.us)
            run = tmp / "run"
            felix = BenchFelix(us, url, run, tmp / "felix.log", node="n1")
            speaker = SpeakerProcess(us, "n1", url, run, tmp / "bgp.log")
            try:
                felix.start()
                speaker.start()
                wait_for((run / "bgp" / "speaker.sock").exists, 30, 0.05, "speaker up")
                started = time.monotonic()
                pair.bird.enable()
                while kernel_routes(pair.us) < count:
                    if time.monotonic() - started > DEADLINE:
                        print(f"kernel: not all {count} routes after {DEADLINE}s", file=sys.stderr)
                        return float("inf")
                    time.sleep(0.2)
                return time.monotonic() - started
            finally:
                speaker.stop()
                felix.kill9()
    finally:
        pair.close()


def through_frr(count: int) -> float:
    pair = Pair(count)
    frr = bgpd.Frr(bgpd.DaemonPeering(pair.us, US, 64512, THEM, 65002))
    try:
        frr.start()
        started = time.monotonic()
        pair.bird.enable()
        while frr.received_count() < count:
            if time.monotonic() - started > DEADLINE:
                raise TimeoutError(f"FRR did not receive {count} prefixes in {DEADLINE}s")
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        bgpd.stop_quietly(frr)
        pair.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-kernel", action="store_true", help="skip the end-to-end stage")
    args = parser.parse_args()
    print(f"{'prefixes':>9} {'gingham s':>10} {'prefix/s':>9} {'exabgp cpu':>11} "
          f"{'our cpu':>8} {'kernel s':>9} {'prefix/s':>9} "
          f"{'BIRD→FRR s':>11} {'prefix/s':>9}")  # fmt: skip
    for size in args.sizes:
        ours, exabgp_cpu, our_cpu, frr, kernel = [], [], [], [], []
        for _ in range(args.runs):
            if not args.no_kernel:
                kernel.append(through_kernel(size))
            elapsed, exa, own = asyncio.run(through_gingham(size))
            ours.append(elapsed)
            exabgp_cpu.append(exa)
            our_cpu.append(own)
            frr.append(through_frr(size))
        g, f = statistics.median(ours), statistics.median(frr)
        k = statistics.median(kernel) if kernel else float("nan")
        print(
            f"{size:>9} {g:>10.2f} {size / g:>9.0f} {statistics.median(exabgp_cpu):>11.2f} "
            f"{statistics.median(our_cpu):>8.2f} {k:>9.2f} {size / k:>9.0f} "
            f"{f:>11.2f} {size / f:>9.0f}"
        )


if __name__ == "__main__":
    main()
