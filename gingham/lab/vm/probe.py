"""Run inside a guest: one node's health, peers, pool routes and tunl0 counters as JSON.

    python -m gingham.lab.vm.probe RUN_DIR POOL_CIDR [SUPERVISOR_PID]

The host cannot reach a guest's unix sockets (they live in the guest's
kernel), so `gingham lab status` / the convergence progress of a VM lab ask
this module, through the guest agent, for what `gingham.lab.observe` reads
directly in the namespace lab. The field names are those of
`observe.lab_status`'s node entries, plus ``tunl0`` (packet counters; null
without the device); ``supervisor_running`` says whether the PID the lab
recorded for `gingham node run` (the agent's answer to its spawn) is alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from gingham.lab.observe import felix_serving, speaker_status
from gingham.lab.topology import POOL_CIDR


def _ip_json(*args: str) -> Any:
    done = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(done.stdout or "[]") if done.returncode == 0 else []


def route_lines(routes: list[dict[str, Any]], pool: IPv4Network) -> list[str]:
    """`ip -j route` entries inside `pool`, as `observe.pool_routes` prints them."""
    lines = []
    for route in routes:
        dst = str(route.get("dst", ""))
        try:
            net = IPv4Network(dst if "/" in dst else f"{dst}/32")
        except ValueError:
            continue
        if not net.subnet_of(pool):
            continue
        how = "blackhole " if route.get("type") == "blackhole" else ""
        via = f" via {route['gateway']}" if "gateway" in route else ""
        dev = f" dev {route['dev']}" if "dev" in route else ""
        lines.append(f"{how}{dst}{via}{dev}".strip())
    return lines


def tunl0() -> dict[str, Any] | None:
    links = _ip_json("-s", "addr", "show", "dev", "tunl0")
    if not links:
        return None
    link = links[0]
    stats = link.get("stats64", {})
    addrs = [a["local"] for a in link.get("addr_info", []) if a.get("family") == "inet"]
    return {"up": "UP" in link.get("flags", []), "addresses": addrs,
            "tx_packets": int(stats.get("tx", {}).get("packets", 0)),
            "rx_packets": int(stats.get("rx", {}).get("packets", 0))}  # fmt: skip


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# Per gRPC call. A TCG guest has one emulated vCPU shared with felix and the
# speaker: 1 s (the namespace lab's figure) failed there while both were busy,
# and the lab reported healthy daemons as "not serving".
GUEST_RPC_TIMEOUT = 15.0


def probe(run_dir: Path, pool: IPv4Network, supervisor: int | None) -> dict[str, Any]:
    return {
        "supervisor_running": _alive(supervisor),
        "felix_serving": felix_serving(run_dir, timeout=GUEST_RPC_TIMEOUT),
        "speaker": speaker_status(run_dir, timeout=GUEST_RPC_TIMEOUT),
        "routes": route_lines(_ip_json("route", "show"), pool),
        "tunl0": tunl0(),
    }


if __name__ == "__main__":
    pool = IPv4Network(sys.argv[2] if len(sys.argv) > 2 else POOL_CIDR)
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(probe(Path(sys.argv[1]), pool, pid)))
