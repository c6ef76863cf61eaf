"""BGP receive path: BIRD → ExaBGP → our adapter, beside BIRD → FRR, same run.

For each size (10,000 and 100,000 /26s) a BIRD in its own namespace holds the
prefixes as static routes with its BGP session administratively down; the
clock starts at `birdc enable peer` and stops when the receiver holds them all:

- gingham: BIRD → ExaBGP → API bridge → `ExaBGPAdapter` typed events →
  import policy (`ImportFilter`) → `LearnedRoutes` (selected routes);
- reference: BIRD → FRR bgpd (no zebra), counted by `pfxRcd`.

Also prints the CPU seconds ExaBGP and our own process spent. The kernel stage
(felix programming the routes) is not wired yet: see issue 6; the target there
is ≥ 20,000 prefixes/s end to end.

Run as root: `.venv/bin/python bench/bgp.py [--sizes 10000 100000] [--runs 1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
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
    args = parser.parse_args()
    print(f"{'prefixes':>9} {'gingham s':>10} {'prefix/s':>9} {'exabgp cpu':>11} "
          f"{'our cpu':>8} {'BIRD→FRR s':>11} {'prefix/s':>9}")  # fmt: skip
    for size in args.sizes:
        ours, exabgp_cpu, our_cpu, frr = [], [], [], []
        for _ in range(args.runs):
            elapsed, exa, own = asyncio.run(through_gingham(size))
            ours.append(elapsed)
            exabgp_cpu.append(exa)
            our_cpu.append(own)
            frr.append(through_frr(size))
        g, f = statistics.median(ours), statistics.median(frr)
        print(
            f"{size:>9} {g:>10.2f} {size / g:>9.0f} {statistics.median(exabgp_cpu):>11.2f} "
            f"{statistics.median(our_cpu):>8.2f} {f:>11.2f} {size / f:>9.0f}"
        )


if __name__ == "__main__":
    main()
