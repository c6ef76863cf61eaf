"""A long churn through the real CNI plugin against the real felix (issue 16 item 10).

Hundreds of pods come and go (ADD, then DEL of the oldest, a few live at any
time); at pod 100 one pod's netns is removed by hand without a DEL
while felix resyncs every second. Afterwards: no ADD or DEL failed, IPAM holds
exactly the live pods' addresses (the vanished pod's until its DEL), `gingham
ipam check` is clean, and felix's memory and file descriptors stayed flat.
`GINGHAM_SOAK_CYCLES` changes the number of pods (default 600: ~45-60 s on an
idle 2-core machine; a busy one stops after 90 s, but not before 300).
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

import pytest

from tests.integration.felix.cni_node import cni_node, pod_namespaces
from tests.support.runtimes.netns import ping

pytestmark = [pytest.mark.root, pytest.mark.slow]

CYCLES = int(os.environ.get("GINGHAM_SOAK_CYCLES", "600"))
# On a busy machine stop after this long, but never before MIN_CYCLES.
BUDGET_S, MIN_CYCLES = 90.0, min(CYCLES, 300)
VANISH_AT = 100
LIVE = 4
WARM_UP = 40  # cycles before the baseline: imports, caches and pools filled once
RSS_TOLERANCE_KIB = 8 * 1024
FD_TOLERANCE = 4


def test_churn_with_a_vanished_netns_stays_clean_and_flat(tmp_path: Path) -> None:
    assert CYCLES > VANISH_AT * 2, "GINGHAM_SOAK_CYCLES too small to measure growth"
    with cni_node(tmp_path, resync=1.0) as node, pod_namespaces() as pods:
        live: deque[tuple[str, str, str]] = deque()
        failures: list[str] = []
        vanished: tuple[str, str, str] | None = None
        baseline = (0, 0)
        samples: list[int] = []  # felix's RSS (KiB) every 100 cycles after the warm-up
        started = time.monotonic()
        cycles = 0
        for i in range(CYCLES):
            if i >= MIN_CYCLES and time.monotonic() - started > BUDGET_S:
                break
            cycles += 1
            netns, cid = pods.make(), f"soak{i}"
            add = node.add(netns, cid, pod_name=f"soak-{i}")
            if add.returncode != 0:
                failures.append(f"ADD {cid}: {add.stdout.strip()}")
                pods.remove(netns)
            else:
                ip = add.json["ips"][0]["address"].split("/")[0]
                assert ip not in {pod[2] for pod in live}, f"{ip} given to two live pods"
                live.append((netns, cid, ip))
            if i == VANISH_AT:
                vanished = live.popleft()
                pods.remove(vanished[0])  # no DEL: a crashed runtime
            while len(live) > LIVE:
                netns, cid, _ip = live.popleft()
                delete = node.delete(netns, cid, pod_name=cid.replace("soak", "soak-"))
                if delete.returncode != 0:
                    failures.append(f"DEL {cid}: {delete.stdout.strip()}")
                pods.remove(netns)
            if i % 50 == 0 and live:
                assert ping(node.netns, live[-1][2]), f"pod {live[-1][1]} unreachable"
            if i == WARM_UP:
                baseline = (node.felix_rss_kib(), node.felix_fds())
            if i >= WARM_UP and i % 100 == 0:
                samples.append(node.felix_rss_kib())
        elapsed = time.monotonic() - started
        rss, fds = node.felix_rss_kib(), node.felix_fds()
        print(
            f"\nsoak: {cycles} ADD/DEL cycles in {elapsed:.1f} s; felix RSS "
            f"{baseline[0]} -> {rss} KiB ({rss - baseline[0]:+d}), fds {baseline[1]} -> {fds}; "
            f"RSS every 100 cycles: {samples}"
        )

        assert failures == [], failures[:5]
        assert vanished is not None
        held = node.held()
        assert held.get(f"{vanished[1]}.eth0") == [vanished[2]], "vanished pod freed before DEL"
        assert node.delete(vanished[0], vanished[1]).returncode == 0
        held = node.held()
        assert held == {f"{cid}.eth0": [ip] for _ns, cid, ip in live}, "leaked or lost addresses"
        assert node.endpoints() == {cid: [ip] for _ns, cid, ip in live}
        assert node.ipam_problems() == []
        assert node.problems() == []
        assert rss - baseline[0] <= RSS_TOLERANCE_KIB, f"felix RSS grew {rss - baseline[0]} KiB"
        assert fds - baseline[1] <= FD_TOLERANCE, f"felix fds grew {baseline[1]} -> {fds}"

        for netns, cid, _ip in live:
            assert node.delete(netns, cid).returncode == 0
        assert node.held() == {} and node.endpoints() == {}
