"""`gingham node stop`: a restart keeps this node's routes at its peers, `--drain` withdraws them.

One node (`gingham node run`: felix, gingham-bgp, ExaBGP) with a pod, so it
owns a block, and two graceful-restart helpers peering with it over iBGP on
the same segment: BIRD 2 and FRR bgpd (global BGPPeers).

- `gingham node stop` (what SIGTERM does): every process exits; both peers
  see the session drop and still hold the node's block (stale), and still
  hold it once the node runs again and the sessions are back.
- `gingham node stop --drain`: every process exits; within
  `WITHDRAWN_WITHIN` seconds neither peer holds the block, and the speaker
  logged the Cease sent to both. (Which NOTIFICATION a peer recorded is
  checked in tests/integration/bgp/test_planned_stop.py: here the peers'
  1 s reconnects to the exiting node overwrite their "last error".)
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from ipaddress import IPv4Network

import pytest

from tests.integration.bgp.test_planned_stop import keeps_stale
from tests.support import bgpd
from tests.support.node_fabric import AS, BIN, Fabric, NodeRun, address, resource
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

POOL = "10.72.0.0/16"
# From `gingham node stop --drain` starting (a Python CLI: ~0.3 s of it) to both
# peers holding nothing of the node's; their restart time is 120 s.
WITHDRAWN_WITHIN = 3.0
PEERS = {"bird": (bgpd.Bird, 101), "frr": (bgpd.Frr, 102)}


def node_stop(node: NodeRun, *flags: str) -> str:
    done = subprocess.run(
        [str(BIN / "gingham"), "node", "stop", "--run-dir", str(node.run_dir), *flags],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert node.proc is not None and node.proc.wait(timeout=10) == 0
    return done.stdout


async def test_restart_keeps_routes_at_bird_and_frr_and_drain_withdraws_them(
    fabric: Fabric,
) -> None:
    await fabric.apply(
        resource("IPPool", "pool", {"cidr": POOL}),
        *(
            resource("BGPPeer", kind, {"peerIP": str(address(index)), "asNumber": AS})
            for kind, (_, index) in PEERS.items()
        ),
    )
    node = await fabric.add_node(1)
    await fabric.add_pod("node1")
    [block] = [IPv4Network(b) for b in await fabric.blocks_of("node1")]
    daemons: dict[str, bgpd.BgpDaemon] = {}
    for kind, (daemon_class, index) in PEERS.items():
        ns = fabric.add_router(index)
        peering = bgpd.DaemonPeering(ns.name, address(index), AS, address(1), AS)
        daemons[kind] = await asyncio.to_thread(fabric.start_daemon, daemon_class(peering))

    def held_by(kind: str) -> bool:
        return daemons[kind].routes().get(block) == address(1)

    def held_everywhere() -> bool:
        return all(held_by(kind) for kind in daemons)

    try:
        await asyncio.to_thread(wait_for, held_everywhere, 120, 0.2, f"{block} at BIRD and FRR")

        # A restart: the sessions drop, the block stays at both peers.
        assert "as a restart" in await asyncio.to_thread(node_stop, node)
        for kind, daemon in daemons.items():
            await asyncio.to_thread(
                wait_for, lambda d=daemon: not d.established(), 20, 0.1, f"{kind} session down"
            )
        assert await asyncio.to_thread(held_everywhere), "a restart lost the block at a peer"
        for kind, daemon in daemons.items():
            assert await asyncio.to_thread(keeps_stale, daemon, block), f"{kind}: not stale"

        node.start(fabric.url)
        for kind, daemon in daemons.items():
            await asyncio.to_thread(
                wait_for, daemon.established, 120, 0.2, f"{kind} Established again"
            )
        assert await asyncio.to_thread(held_everywhere), "the block left a peer on the restart"

        # For good: both peers drop the block at once, while the node is still exiting.
        started = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(node_stop, node, "--drain"))
        withdrawn: dict[str, float] = {}
        for kind in daemons:
            await asyncio.to_thread(
                wait_for,
                lambda k=kind: not held_by(k),
                WITHDRAWN_WITHIN - (time.monotonic() - started),
                0.02,
                f"{kind} to drop {block} after the drain",
            )
            withdrawn[kind] = time.monotonic() - started
        assert "for good" in await stopping
        print(
            ", ".join(
                f"{k}: withdrawn {t:.2f}s after node stop --drain" for k, t in withdrawn.items()
            )
        )
        told = (node.run_dir / "logs" / "bgp.log").read_text()
        assert "drained: Cease sent to 2 peers" in told, told[-2000:]
    except BaseException:
        print(fabric.logs())
        raise
