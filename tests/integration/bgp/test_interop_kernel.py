"""The whole node against BIRD, FRR and GoBGP: datastore → gingham-bgp → felix → kernel.

Per daemon, as an eBGP ToR (global BGPPeer) and as an iBGP peer: our IPAM
block (an IPAMBlock affine to the node) shows up in their RIB with the node's
address as next hop; their pool block is programmed in our kernel by the real
felix; their withdrawal removes it from our kernel; the affinity going away
withdraws ours from their RIB.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gingham.datastore import open_datastore
from gingham.ipam import blocks as core
from gingham.model.base import Metadata
from gingham.model.ipam import IPAMBlock
from tests.integration.bgp.conftest import (
    OUR_AS,
    OUR_BLOCK,
    POOL,
    THEIR_BLOCK,
    THEIR_EBGP_AS,
    Lab,
    daemon_says,
    our_address,
    their_address,
)
from tests.integration.felix.daemon import Felix, resource, seed
from tests.support.netns import Netns
from tests.support.poll import wait_for
from tests.support.speaker import SpeakerProcess

pytestmark = [pytest.mark.root, pytest.mark.slow]

BLOCK_NAME = "10-244-1-0-26"


@pytest.mark.parametrize("ibgp", [False, True], ids=["ebgp", "ibgp"])
@pytest.mark.parametrize("kind", ["bird", "frr", "gobgp"])
async def test_ipam_block_out_pool_block_into_the_kernel(
    lab: Lab, tmp_path: Path, kind: str, ibgp: bool
) -> None:
    peer = their_address(1)
    daemon = await lab.daemon(kind, 1, ibgp=ibgp, originate=[THEIR_BLOCK])
    url = f"sqlite:///{tmp_path}/store.db"
    block = IPAMBlock(metadata=Metadata(name=BLOCK_NAME), spec=core.empty_block(OUR_BLOCK, "n1"))
    await seed(
        url,
        [
            resource("IPPool", "pool", {"cidr": str(POOL)}),
            resource("Node", "n1", {"bgp": {"ipv4Address": f"{our_address(1)}/24"}}),
            resource("BGPConfiguration", "default", {"asNumber": OUR_AS, "holdTime": "9s"}),
            resource(
                "BGPPeer",
                "tor",
                {"peerIP": str(peer), "asNumber": OUR_AS if ibgp else THEIR_EBGP_AS},
            ),
            block,
        ],
    )
    us = Netns(lab.us)
    run = tmp_path / "run"
    felix = Felix(us, url, run, tmp_path / "felix.log", node="n1")
    speaker = SpeakerProcess(us, "n1", url, run, tmp_path / "bgp.log")
    try:
        await asyncio.to_thread(felix.start)
        speaker.start()
        await daemon_says(
            lambda: daemon.routes().get(OUR_BLOCK) == our_address(1),
            timeout=30,
            what=f"our IPAM block via {our_address(1)} in {kind}'s RIB",
        )
        programmed = f"{THEIR_BLOCK} via {peer}"
        await asyncio.to_thread(
            wait_for, lambda: programmed in us.routes(), 30, 0.1, "their block in our kernel"
        )

        await asyncio.to_thread(daemon.withdraw, THEIR_BLOCK)
        await asyncio.to_thread(
            wait_for, lambda: programmed not in us.routes(), 15, 0.1, "their block withdrawn"
        )

        store = open_datastore(url)
        try:
            await store.delete("IPAMBlock", BLOCK_NAME)
        finally:
            await store.close()
        await daemon_says(
            lambda: OUR_BLOCK not in daemon.routes(), what="our block withdrawn from their RIB"
        )
    finally:
        await asyncio.to_thread(speaker.stop)
        felix.kill9()
