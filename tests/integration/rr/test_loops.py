"""Loop prevention on the wire: a peer sends routes with ORIGINATOR_ID and CLUSTER_LIST.

A real `gingham-bgp` (node "rr1", a route reflector of cluster 224.0.0.1,
with its `gingham-rr`) peers over iBGP with an external router configured
the Calico way (`node: rr1`, `peerIP`, same AS — so an RR client). The
router is our own ExaBGP adapter, which can send any attributes:

- a reflected route from elsewhere (ORIGINATOR_ID and CLUSTER_LIST of
  another cluster) is accepted and selected;
- a route whose ORIGINATOR_ID is rr1's router ID is dropped (it is ours,
  come back);
- a route whose CLUSTER_LIST holds rr1's cluster ID is dropped by the
  speaker and by the reflector (RFC 4456 §8);

and `gingham node status` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from route_reflector.api.messages import PathAttributes
from tests.integration.bgp.conftest import Lab, our_address, their_address
from tests.integration.felix.daemon import resource, seed
from tests.support.netns import Netns
from tests.support.poll import async_wait_for
from tests.support.speaker import SpeakerProcess

pytestmark = [pytest.mark.root, pytest.mark.slow]

GINGHAM = str(Path(sys.executable).with_name("gingham"))
CLUSTER = IPv4Address("224.0.0.1")
FOREIGN, OURS, LOOPED = (IPv4Network(f"10.244.{i}.0/26") for i in (20, 21, 22))


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    made = Lab(tmp_path)
    try:
        yield made
    finally:
        await made.close()


def status(netns: str, run_dir: Path) -> dict[str, object]:
    """`gingham node status -o json`; {} while the speaker does not answer yet."""
    done = subprocess.run(
        ["ip", "netns", "exec", netns, GINGHAM, "node", "status", "--run-dir", str(run_dir),
         "-o", "json"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        return {}
    document: dict[str, object] = json.loads(done.stdout)
    return document


async def test_routes_looping_back_are_dropped_reflected_ones_accepted(
    lab: Lab, tmp_path: Path
) -> None:
    netns = lab.link(1)
    rr1, router = their_address(1), our_address(1)
    url = f"sqlite:///{tmp_path}/store.db"
    await seed(
        url,
        [
            resource("IPPool", "default", {"cidr": "10.244.0.0/16"}),
            resource("BGPConfiguration", "default", {"nodeToNodeMeshEnabled": False}),
            resource(
                "Node",
                "rr1",
                {"bgp": {"ipv4Address": f"{rr1}/24", "routeReflectorClusterID": str(CLUSTER)}},
            ),
            resource("BGPPeer", "tor", {"node": "rr1", "peerIP": str(router), "asNumber": 64512}),
        ],
    )
    run = tmp_path / "rr1"
    (run / "bgp").mkdir(parents=True)
    with (tmp_path / "rr.log").open("ab") as out:
        reflector = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "route_reflector",
             "--node", "rr1", "--run-dir", str(run / "bgp")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    speaker = SpeakerProcess(Netns(netns), "rr1", url, run, tmp_path / "bgp.log")
    speaker.start()
    try:
        adapter, _ = await lab.adapter([lab.spec(1, ibgp=True)])
        routes = {
            FOREIGN: PathAttributes(
                next_hop=router,
                originator_id=IPv4Address("10.9.9.9"),
                cluster_list=(IPv4Address("224.0.0.9"),),
            ),
            OURS: PathAttributes(next_hop=router, originator_id=rr1),
            LOOPED: PathAttributes(
                next_hop=router,
                originator_id=IPv4Address("10.9.9.8"),
                cluster_list=(IPv4Address("224.0.0.9"), CLUSTER),
            ),
        }
        only = frozenset({rr1})
        adapter.set_reflected(
            {p: (a, only) for p, a in routes.items()}, dict.fromkeys(routes, only)
        )

        async def judged() -> dict[str, object] | None:
            document = await asyncio.to_thread(status, netns, run / "bgp")
            rejected = document.get("rejected_by_reason")
            if not isinstance(rejected, dict):
                return None
            if rejected.get("originator-loop") and rejected.get("cluster-loop"):
                return document
            return None

        try:
            found = await async_wait_for(judged, 90, 0.5, "both loops seen by the speaker")
        except AssertionError:
            logs = "\n".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("*.log")))
            raise AssertionError(f"loops not seen\n{logs}") from None
        document = found or {}
        learned = document["learned"]
        assert isinstance(learned, list)
        assert [r["prefix"] for r in learned] == [str(FOREIGN)]
        assert learned[0]["next_hop"] == str(router)
        peers = document["peers"]
        assert isinstance(peers, list) and len(peers) == 1
        assert peers[0]["peer_type"] == "route reflector client"

        async def reflector_dropped_both() -> bool:
            reflected = (await asyncio.to_thread(status, netns, run / "bgp")).get("route_reflector")
            return isinstance(reflected, dict) and reflected["loops_dropped"] == 2

        await async_wait_for(reflector_dropped_both, 30, 0.5, "the reflector's loop count")
    finally:
        await asyncio.to_thread(speaker.stop)
        reflector.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            reflector.wait(10)
        if reflector.poll() is None:
            reflector.kill()
            reflector.wait(10)
