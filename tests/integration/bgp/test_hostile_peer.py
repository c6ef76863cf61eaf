"""A hostile BIRD peer: a default route, a prefix covering our node address and a
prefix outside every pool all arrive through ExaBGP and are all refused by the
import policy, with counters to show for it; its legitimate pool block passes.
Through the whole node, so are routes that would capture our own segment or
take over parts of the block this node owns (a /27 of it, a /32 of an
unassigned address in it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from bird_agent.events import EndOfRib, RoutesAnnounced
from bird_agent.policy import ImportFilter, PolicyView, RejectReason
from gingham.ipam.blocks import empty_block
from tests.integration.bgp.conftest import (
    OUR_BLOCK,
    POOL,
    THEIR_BLOCK,
    THEIR_EBGP_AS,
    Lab,
    our_address,
    their_address,
)
from tests.integration.felix.daemon import Felix, resource, seed
from tests.support.netns import Netns
from tests.support.poll import wait_for
from tests.support.speaker import SpeakerProcess

pytestmark = [pytest.mark.root, pytest.mark.slow]

DEFAULT = IPv4Network("0.0.0.0/0")
COVERS_US = IPv4Network("10.77.0.0/16")
OUTSIDE = IPv4Network("198.51.100.0/24")
# Inside our node's subnet (10.77.1.0/24), away from both session addresses.
INSIDE_SEGMENT = IPv4Network("10.77.1.128/26")
# Inside the block node n1 owns: a part of it, and an address nobody holds.
PART_OF_OUR_BLOCK = IPv4Network("10.244.1.32/27")
UNASSIGNED_IN_OUR_BLOCK = IPv4Network("10.244.1.7/32")


@pytest.mark.parametrize("cluster_peer", [True, False], ids=["mesh-peer", "external-peer"])
async def test_hostile_announcements_are_rejected_and_counted(lab: Lab, cluster_peer: bool) -> None:
    peer = their_address(1)
    await lab.daemon(
        "bird", 1, ibgp=cluster_peer, originate=[DEFAULT, COVERS_US, OUTSIDE, THEIR_BLOCK]
    )
    _, log = await lab.adapter([lab.spec(1, ibgp=cluster_peer)], listen=(our_address(1),))
    await log.wait(EndOfRib, peer)

    policy = ImportFilter(
        PolicyView(pools=(POOL,), node_addresses=frozenset({our_address(1), peer}))
    )
    installed: list[IPv4Network] = []
    for update in log.of(RoutesAnnounced, peer):
        accepted, _ = policy.filter(peer, cluster_peer, update.prefixes)
        installed += accepted

    assert installed == [THEIR_BLOCK]
    assert policy.rejected_by_reason == {
        RejectReason.DEFAULT_ROUTE: 1,
        RejectReason.COVERS_NODE_ADDRESS: 1,
        RejectReason.OUTSIDE_POOLS: 1,
    }
    assert policy.rejected_by_peer[peer] == 3
    assert policy.accepted_by_peer[peer] == 1


async def test_hostile_routes_never_reach_felix_kernel(lab: Lab, tmp_path: Path) -> None:
    """The whole path: BIRD → ExaBGP → gingham-bgp → felix's route feed → kernel.
    Only the pool block is programmed; the rejections show in `node status`."""
    peer = their_address(1)
    hostile = [INSIDE_SEGMENT, PART_OF_OUR_BLOCK, UNASSIGNED_IN_OUR_BLOCK]
    await lab.daemon(
        "bird", 1, ibgp=False, originate=[DEFAULT, COVERS_US, OUTSIDE, THEIR_BLOCK, *hostile]
    )
    url = f"sqlite:///{tmp_path}/store.db"
    block = empty_block(OUR_BLOCK, "n1").model_dump(mode="json", by_alias=True)
    await seed(
        url,
        [
            resource("IPPool", "pool", {"cidr": str(POOL)}),
            resource("Node", "n1", {"bgp": {"ipv4Address": f"{our_address(1)}/24"}}),
            resource("IPAMBlock", "10-244-1-0-26", block),
            resource("BGPConfiguration", "default", {"holdTime": "9s"}),
            resource("BGPPeer", "tor", {"peerIP": str(peer), "asNumber": THEIR_EBGP_AS}),
        ],
    )
    us = Netns(lab.us)
    run = tmp_path / "run"
    felix = Felix(us, url, run, tmp_path / "felix.log", node="n1")
    speaker = SpeakerProcess(us, "n1", url, run, tmp_path / "bgp.log")
    try:
        await asyncio.to_thread(felix.start)
        speaker.start()
        want = f"{THEIR_BLOCK} via {peer}"
        await asyncio.to_thread(
            wait_for, lambda: want in us.routes(), 30, 0.1, "the pool block programmed by felix"
        )
        routes = us.routes()
        for refused in (DEFAULT, COVERS_US, OUTSIDE, *hostile):
            shown = "default" if refused == DEFAULT else str(refused).removesuffix("/32")
            assert f"{shown} via" not in routes, routes
        status = subprocess.run(
            [sys.executable, "-m", "gingham.cli.main", "node", "status",
             "--run-dir", str(run), "-o", "json"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        doc = json.loads(status.stdout)
        assert doc["rejected_by_reason"] == {
            RejectReason.DEFAULT_ROUTE.value: 1,
            RejectReason.COVERS_NODE_ADDRESS.value: 1,
            RejectReason.OUTSIDE_POOLS.value: 1,
            RejectReason.INSIDE_CONNECTED_SUBNET.value: 1,
            RejectReason.INSIDE_OWN_BLOCK.value: 2,
        }
        assert doc["rejected_by_peer"] == {str(peer): 6}
        # Each reason names the latest route it refused, and who sent it.
        examples = doc["rejected_example"]
        assert (
            examples[RejectReason.INSIDE_CONNECTED_SUBNET.value] == f"{INSIDE_SEGMENT} from {peer}"
        )
        assert examples[RejectReason.INSIDE_OWN_BLOCK.value] in {
            f"{PART_OF_OUR_BLOCK} from {peer}",
            f"{UNASSIGNED_IN_OUR_BLOCK} from {peer}",
        }
        assert doc["felix_in_sync"] is True
        assert [r["prefix"] for r in doc["learned"]] == [str(THEIR_BLOCK)]
    finally:
        await asyncio.to_thread(speaker.stop)
        felix.kill9()
