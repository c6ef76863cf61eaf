"""Our route reflector with BIRD and FRR as its clients (issue 7, interop).

One whole RR node (`gingham node run` on a Node with
routeReflectorClusterID: felix, gingham-bgp and gingham-rr), BIRD and FRR
as iBGP clients configured the Calico way for external routers — BGPPeers
of the RR node (`node: node1`, `peerIP`, same AS). Each daemon must learn
the other's prefix as a reflected route: ORIGINATOR_ID = the originating
daemon's router ID, CLUSTER_LIST = [our cluster ID], next hop = the
originating daemon (unchanged), read from the daemons' own RIBs (`birdc show
route all`, `vtysh show bgp ipv4 unicast P json`). Withdrawals propagate
both ways. The RR node's own felix programs both prefixes too.
"""

from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Network

import pytest

from bird_agent.exabgp_main import STOCK_VARIABLE
from tests.integration.rr_interop.conftest import CLUSTER_ID, eventually
from tests.support import bgpd
from tests.support.bird_rr import ReflectedRoute, frr_route_attributes, route_attributes
from tests.support.node_fabric import AS, Fabric, address, kernel_route, resource

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

RR = 1
BIRD, FRR = 10, 11
BIRD_PREFIX = IPv4Network("10.66.10.0/26")
FRR_PREFIX = IPv4Network("10.66.11.0/26")


def reflected_from(origin: int) -> ReflectedRoute:
    return ReflectedRoute(
        next_hop=address(origin), originator_id=address(origin), cluster_list=(CLUSTER_ID,)
    )


@pytest.mark.parametrize("exabgp", ["pinned", "stock"])
async def test_bird_and_frr_as_clients_of_our_reflector(fabric: Fabric, exabgp: str) -> None:
    """`stock`: ExaBGP without any of bird_agent.exabgp_main's changes (what any
    other ExaBGP release runs): the speaker and the reflector still work."""
    started = time.monotonic()
    daemons: dict[str, bgpd.BgpDaemon] = {}
    for kind, index, prefix in (("bird", BIRD, BIRD_PREFIX), ("frr", FRR, FRR_PREFIX)):
        ns = fabric.add_router(index)
        peering = bgpd.DaemonPeering(
            netns=ns.name, address=address(index), asn=AS,
            neighbor=address(RR), neighbor_asn=AS, originate=[prefix],
        )  # fmt: skip
        daemons[kind] = await asyncio.to_thread(fabric.start_daemon, bgpd.DAEMONS[kind](peering))
        await fabric.apply(
            resource(
                "BGPPeer",
                f"{kind}-client",
                {"node": f"node{RR}", "peerIP": str(address(index)), "asNumber": AS},
            )
        )
    bird, frr = daemons["bird"], daemons["frr"]
    assert isinstance(bird, bgpd.Bird) and isinstance(frr, bgpd.Frr)
    env = {STOCK_VARIABLE: "1"} if exabgp == "stock" else {}
    rr = await fabric.add_node(RR, cluster_id=str(CLUSTER_ID), env=env)

    try:
        await eventually(
            lambda: route_attributes(bird, FRR_PREFIX) == [reflected_from(FRR)],
            300,
            "FRR's prefix in BIRD, reflected (originator FRR, cluster list [ours], hop FRR)",
        )
        await eventually(
            lambda: frr_route_attributes(frr, BIRD_PREFIX) == [reflected_from(BIRD)],
            120,
            "BIRD's prefix in FRR, reflected (originator BIRD, cluster list [ours], hop BIRD)",
        )
        print(f"reflected both ways: {time.monotonic() - started:.1f}s")
        # The RR node is a node like any other: its felix programs what it learned.
        await eventually(
            lambda: all(
                (kernel_route(rr.ns, str(p)) or {}).get("gateway") == str(address(i))
                for p, i in ((BIRD_PREFIX, BIRD), (FRR_PREFIX, FRR))
            ),
            120,
            "both prefixes in the RR node's kernel via their originators",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fabric.logs()}") from None

    await asyncio.to_thread(bird.withdraw, BIRD_PREFIX)
    await eventually(lambda: not frr_route_attributes(frr, BIRD_PREFIX), 90, "gone from FRR")
    await asyncio.to_thread(frr.withdraw, FRR_PREFIX)
    await eventually(lambda: not route_attributes(bird, FRR_PREFIX), 90, "gone from BIRD")
    await eventually(
        lambda: kernel_route(rr.ns, str(FRR_PREFIX)) is None, 90, "gone from the RR's kernel"
    )
    print(f"withdrawn both ways: {time.monotonic() - started:.1f}s")
    logs = [path.read_text(errors="replace") for path in rr.run_dir.glob("**/*.log")]
    ran_stock = any("running stock ExaBGP" in text for text in logs)
    assert ran_stock == (exabgp == "stock"), "ExaBGP ran patched or stock as asked"
