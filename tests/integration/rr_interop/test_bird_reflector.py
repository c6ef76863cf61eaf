"""Our nodes as clients of a BIRD route reflector (issue 7, interop).

Three whole nodes (`gingham node run`: felix + gingham-bgp) on one segment,
the node-to-node mesh off, one global BGPPeer: BIRD at 10.71.0.100, which
reflects between them (`rr client; rr cluster id 1.1.1.1`). A pod on each
node. Each node's IPAM block must land in the other nodes' kernels with the
*originating* node as next hop (a reflector keeps the next hop), every pod
must reach every other, and a block withdrawn at its node must disappear from
BIRD and from every other kernel.
"""

from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Network

import pytest

from tests.integration.rr_interop.conftest import CLUSTER_ID, eventually
from tests.support import bgpd
from tests.support.bird_rr import BirdReflector, route_attributes
from tests.support.node_fabric import AS, Fabric, address, kernel_route, resource

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

RR_INDEX = 100
NODES = (1, 2, 3)


async def test_nodes_behind_a_bird_reflector(fabric: Fabric) -> None:
    started = time.monotonic()
    rr_ns = fabric.add_router(RR_INDEX)
    bird = BirdReflector(
        bgpd.DaemonPeering(
            netns=rr_ns.name, address=address(RR_INDEX), asn=AS,
            neighbor=address(NODES[0]), neighbor_asn=AS,
        ),
        clients=[address(i) for i in NODES],
        cluster_id=CLUSTER_ID,
    )  # fmt: skip
    await asyncio.to_thread(fabric.start_daemon, bird)
    await fabric.apply(
        resource("BGPPeer", "bird-rr", {"peerIP": str(address(RR_INDEX)), "asNumber": AS})
    )
    for i in NODES:
        await fabric.add_node(i)
    for i in NODES:
        await fabric.add_pod(f"node{i}")
    try:
        await eventually(bird.established, 300, "every node Established with the BIRD RR")
        blocks = {i: (await fabric.blocks_of(f"node{i}"))[0] for i in NODES}

        def programmed_with_origin_next_hop() -> bool:
            for i, block in blocks.items():
                for j in NODES:
                    if j == i:
                        continue
                    route = kernel_route(fabric.nodes[f"node{j}"].ns, block)
                    if route is None or route.get("gateway") != str(address(i)):
                        return False
            return True

        await eventually(
            programmed_with_origin_next_hop, 180, "each block in the others' kernels via its node"
        )
        print(f"blocks programmed everywhere: {time.monotonic() - started:.1f}s")
        # BIRD learned each block from its node, next hop untouched.
        for i, block in blocks.items():
            (path,) = await asyncio.to_thread(route_attributes, bird, _net(block))
            assert path.next_hop == address(i), path
        await eventually(fabric.all_pods_ping, 120, "every pod pings every other")
        print(f"pods ping: {time.monotonic() - started:.1f}s")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fabric.logs()}") from None

    # node3's block goes away at its source: withdrawn by node3, then by BIRD.
    gone = blocks[3]
    await fabric.delete("IPAMBlock", _block_name(gone))

    def withdrawn_everywhere() -> bool:
        if _net(gone) in bird.routes():
            return False
        return all(kernel_route(fabric.nodes[f"node{j}"].ns, gone) is None for j in (1, 2))

    await eventually(withdrawn_everywhere, 90, "node3's block gone from BIRD and every kernel")
    assert await asyncio.to_thread(fabric.pings, "node1", "node2")
    print(f"withdrawal propagated: {time.monotonic() - started:.1f}s")


def _net(cidr: str) -> IPv4Network:
    return IPv4Network(cidr)


def _block_name(cidr: str) -> str:
    return cidr.replace(".", "-").replace("/", "-")
