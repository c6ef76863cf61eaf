"""kill -9 of felix, gingham-bgp and ExaBGP on a live node loses no pod traffic.

Two nodes (`gingham node run` each: felix, gingham-bgp, ExaBGP; node-to-node
mesh), a pod on each, and a ping every `INTERVAL` seconds from node1's pod to
node2's for the whole test. On node1, one after the other: felix, then
gingham-bgp, then ExaBGP get SIGKILL; after each the test waits until the
supervisor (or, for ExaBGP, the speaker) has started a new one and the node
is whole again (felix live, the BGP session Established). Then the pings
stop, and at most `LOST_AT_MOST` may be missing: felix never removes kernel
routes while it or the speaker restarts, and node2 keeps node1's block
through graceful restart while node1's speaker is gone. (By hand, on an idle
machine: 0 lost.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from functools import partial

import pytest

from tests.integration.node.test_node_run import children_of, felix_live
from tests.support.node_fabric import BIN, Fabric, NodeRun, Pings, resource
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

POOL = "10.73.0.0/16"
INTERVAL = 0.05
# Replies in flight when ping is stopped count as lost: allow for them.
LOST_AT_MOST = 2


def child(node: NodeRun, needle: str) -> int | None:
    """The PID of `node`'s child (or, for ExaBGP, grandchild) whose command has `needle`."""
    assert node.proc is not None
    for pid, command in children_of(node.proc.pid).items():
        if needle in command:
            return pid
        for grandchild, its_command in children_of(pid).items():
            if needle in its_command:
                return grandchild
    return None


def sessions_established(node: NodeRun) -> bool:
    done = subprocess.run(
        [str(BIN / "gingham"), "node", "status", "--run-dir", str(node.run_dir), "-o", "json"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return False
    peers = json.loads(done.stdout)["peers"]
    return bool(peers) and all(p["state"] == "established" for p in peers)


def whole(node: NodeRun) -> bool:
    return felix_live(node.ns) and sessions_established(node)


def kill_and_wait_for_a_new_one(node: NodeRun, needle: str) -> None:
    old: int = wait_for(lambda: child(node, needle) or 0, 30, 0.1, f"{node.name}'s {needle}")
    os.kill(old, signal.SIGKILL)
    wait_for(
        lambda: (new := child(node, needle)) is not None and new != old,
        60, 0.1, f"a new {needle} on {node.name}",
    )  # fmt: skip
    wait_for(lambda: whole(node), 120, 0.2, f"{node.name} whole again after killing {needle}")


async def test_kill_9_of_felix_speaker_and_exabgp_under_traffic_loses_no_pings(
    fabric: Fabric,
) -> None:
    await fabric.apply(resource("IPPool", "pool", {"cidr": POOL}))
    node1 = await fabric.add_node(1)
    node2 = await fabric.add_node(2)
    await fabric.add_pod("node1")
    target = await fabric.add_pod("node2")
    wait_for(fabric.all_pods_ping, 120, 0.2, "pod to pod across the nodes")
    for node in (node1, node2):
        wait_for(partial(whole, node), 120, 0.2, f"{node.name} whole")

    pings = Pings(fabric.pods["node1"], target, INTERVAL)
    try:
        for needle in ("gingham-felix", "gingham-bgp", "bird_agent.exabgp"):
            kill_and_wait_for_a_new_one(node1, needle)
        wait_for(lambda: whole(node2), 60, 0.2, "node2 whole")
    finally:
        sent, received = pings.stop()
    print(f"kill -9 felix, gingham-bgp, ExaBGP under traffic: {sent - received} of {sent} lost")
    assert sent >= 20, pings.output  # the pings ran through the kills
    assert sent - received <= LOST_AT_MOST, (pings.output[-500:], fabric.logs())
