"""What a VM lab reads from its guests: pool routes from `ip -j route`, the ping script's matrix."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Network
from typing import Any

from gingham.lab.state import PodRecord
from gingham.lab.vm.lab import ping_script
from gingham.lab.vm.probe import route_lines

POOL = IPv4Network("10.244.0.0/16")


def test_route_lines_keep_the_pool_and_show_the_tunnel() -> None:
    routes: list[dict[str, Any]] = [
        {"dst": "default", "gateway": "10.200.0.254", "dev": "eth0"},
        {"dst": "10.200.0.0/24", "dev": "eth0", "protocol": "kernel"},
        {"type": "blackhole", "dst": "10.244.1.0/26", "protocol": "77"},
        {"dst": "10.244.1.5", "dev": "gh1234567890a", "scope": "link"},
        {"dst": "10.244.2.64/26", "gateway": "10.200.0.2", "dev": "tunl0", "flags": ["onlink"]},
    ]
    assert route_lines(routes, POOL) == [
        "blackhole 10.244.1.0/26",
        "10.244.1.5 dev gh1234567890a",
        "10.244.2.64/26 via 10.200.0.2 dev tunl0",
    ]


def test_ping_script_covers_every_pair_from_the_local_pods() -> None:
    a = PodRecord("a", "node1", "lab-node1-p1", "c1", "127.0.0.1")
    b = PodRecord("b", "node2", "lab-node2-p1", "c2", "127.0.0.2")
    c = PodRecord("c", "node2", "lab-node2-p2", "c3", None)  # no address yet: not pinged
    script = ping_script([a], [a, b, c], timeout=1.0)
    # Run it with `ip` replaced by a stub that fails for b's address, as a missing route would.
    stub = 'ip() { shift 3; [ "${@: -1}" != 127.0.0.2 ]; }\n'
    out = subprocess.run(["bash", "-c", stub + script], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.split() == ["a", "b", "1"]
