"""MD5 passwords end to end: datastore → the real gingham-bgp → ExaBGP → BIRD, FRR, GoBGP.

One node (n1) on a shared segment with four daemons:

    BIRD  10.78.0.2  eBGP, BGPPeer "bird"   (password in the BGPPeer)
    FRR   10.78.0.3  eBGP, BGPPeer "frr"    (password in the BGPPeer)
    GoBGP 10.78.0.4  eBGP, BGPPeer "gobgp"  (password in the BGPPeer)
    BIRD  10.78.0.5  iBGP, Node "n2"        (the mesh: BGPConfiguration nodeMeshPassword)

- The right password: Established on both sides, for each daemon and the mesh.
- A wrong one (FRR's BGPPeer starts wrong): never Established, the kernel of
  our namespace counts TCPMD5Failure, and `gingham node status` shows the
  peer not established with an info text naming the MD5 password.
- Fixing the password in the datastore brings that session up; changing
  another peer's password resets only that session (the others keep their
  "since"), which comes back once the daemon has the same new password.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from gingham.datastore import open_datastore
from gingham.model.bgp import BGPPeer
from tests.integration.bgp.conftest import daemon_says
from tests.integration.felix.daemon import resource, seed
from tests.support import bgpd
from tests.support.names import unique_prefix
from tests.support.netns import Netns
from tests.support.speaker import SpeakerProcess

pytestmark = [pytest.mark.root, pytest.mark.slow]

OUR_AS = 64512
US = IPv4Address("10.78.0.1")
# name -> (address, AS, the daemon's password)
PEERS = {
    "bird": (IPv4Address("10.78.0.2"), 65002, "bird-secret"),
    "frr": (IPv4Address("10.78.0.3"), 65003, "frr-secret"),
    "gobgp": (IPv4Address("10.78.0.4"), 65004, "gobgp-secret"),
}
MESH_PEER = IPv4Address("10.78.0.5")
MESH_PASSWORD = "mesh-secret"
# The load on the shared machine makes a Python daemon's start take tens of seconds.
SLOW = 120


class Segment:
    """Our namespace and one per daemon on one bridge; every daemon peers with us."""

    def __init__(self) -> None:
        tag = unique_prefix("md")
        self.us = f"{tag}u"
        self.switch = f"{tag}s"
        self.namespaces = [self.us, self.switch]
        self.daemons: dict[str, bgpd.BgpDaemon] = {}
        for name in (self.us, self.switch):
            bgpd.create_netns(name)
        members = [bgpd.VethEnd(self.us, "eth0", IPv4Interface(f"{US}/24"))]
        self.peerings: dict[str, bgpd.DaemonPeering] = {}
        for index, (name, (address, asn, password)) in enumerate(
            [*PEERS.items(), ("mesh", (MESH_PEER, OUR_AS, MESH_PASSWORD))]
        ):
            ns = f"{tag}{index}"
            bgpd.create_netns(ns)
            self.namespaces.append(ns)
            members.append(bgpd.VethEnd(ns, "eth0", IPv4Interface(f"{address}/24")))
            self.peerings[name] = bgpd.DaemonPeering(ns, address, asn, US, OUR_AS, password)
        bgpd.shared_segment(self.switch, members)

    def start_daemons(self) -> None:
        kinds = {"bird": bgpd.Bird, "frr": bgpd.Frr, "gobgp": bgpd.GoBgp, "mesh": bgpd.Bird}
        for name, peering in self.peerings.items():
            daemon = kinds[name](peering)
            self.daemons[name] = daemon
            daemon.start()

    def close(self) -> None:
        for daemon in self.daemons.values():
            bgpd.stop_quietly(daemon)
        for name in self.namespaces:
            bgpd.delete_netns(name)


@pytest.fixture
def segment() -> Iterator[Segment]:
    made = Segment()
    try:
        made.start_daemons()
        yield made
    finally:
        made.close()


@pytest.fixture
async def speaker(segment: Segment, tmp_path: Path) -> AsyncIterator[SpeakerProcess]:
    url = f"sqlite:///{tmp_path}/store.db"
    peers = [
        resource(
            "BGPPeer",
            name,
            {
                "peerIP": str(address),
                "asNumber": asn,
                # FRR's starts wrong on purpose.
                "password": "not-" + password if name == "frr" else password,
            },
        )
        for name, (address, asn, password) in PEERS.items()
    ]
    await seed(
        url,
        [
            resource("IPPool", "pool", {"cidr": "10.244.0.0/16"}),
            resource("Node", "n1", {"bgp": {"ipv4Address": f"{US}/24"}}),
            resource("Node", "n2", {"bgp": {"ipv4Address": f"{MESH_PEER}/24"}}),
            resource(
                "BGPConfiguration",
                "default",
                {"asNumber": OUR_AS, "holdTime": "9s", "nodeMeshPassword": MESH_PASSWORD},
            ),
            *peers,
        ],
    )
    process = SpeakerProcess(Netns(segment.us), "n1", url, tmp_path / "run", tmp_path / "bgp.log")
    process.start()
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)


def node_status(run: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "gingham.cli.main", "node", "status",
         "--run-dir", str(run), "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def peer_row(run: Path, address: IPv4Address) -> dict[str, Any]:
    rows = [p for p in node_status(run)["peers"] if p["address"] == str(address)]
    assert len(rows) == 1, rows
    return rows[0]


async def set_password(url: str, name: str, password: str) -> None:
    store = open_datastore(url)
    try:
        peer = await store.get("BGPPeer", name)
        assert isinstance(peer, BGPPeer)
        await store.update(peer.model_copy(update={"spec": peer.spec.model_copy(
            update={"password": password})}))  # fmt: skip
    finally:
        await store.close()


async def test_md5_passwords_from_the_datastore(
    segment: Segment, speaker: SpeakerProcess, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    daemons = segment.daemons
    for name in ("bird", "gobgp", "mesh"):
        await daemon_says(daemons[name].established, SLOW, f"{name} Established with MD5")
    assert (await asyncio.to_thread(peer_row, run, MESH_PEER))["peer_type"] == "node-to-node mesh"

    # FRR: the datastore's password is wrong. FRR keeps connecting to us; our
    # kernel drops its segments and counts them; no session on either side.
    frr_address = PEERS["frr"][0]
    before = bgpd.md5_failures(segment.us)
    await daemon_says(
        lambda: bgpd.md5_failures(segment.us) >= before + 3, 60, "TCPMD5Failure counted"
    )
    assert not await asyncio.to_thread(daemons["frr"].established)
    row = await asyncio.to_thread(peer_row, run, frr_address)
    assert row["state"] != "established"
    assert "MD5" in row["info"] and "check the password" in row["info"], row

    # The right password in the datastore: FRR comes up; nobody else resets.
    since = {
        name: (await asyncio.to_thread(peer_row, run, PEERS[name][0]))["since"]
        for name in ("bird", "gobgp")
    }
    bird_since = await asyncio.to_thread(daemons["bird"].session_since)  # type: ignore[attr-defined]
    url = f"sqlite:///{tmp_path}/store.db"
    await set_password(url, "frr", PEERS["frr"][2])
    await daemon_says(
        daemons["frr"].established, SLOW, "FRR Established once the password is fixed"
    )
    await daemon_says(
        lambda: peer_row(run, frr_address)["state"] == "established", 30, "status: FRR up"
    )
    for name in ("bird", "gobgp"):
        row = await asyncio.to_thread(peer_row, run, PEERS[name][0])
        assert (row["state"], row["since"]) == ("established", since[name]), name
    assert await asyncio.to_thread(daemons["bird"].session_since) == bird_since  # type: ignore[attr-defined]

    # BIRD's password changes in the datastore only: that session goes down
    # and stays down; FRR, GoBGP and the mesh are untouched.
    since = {
        address: (await asyncio.to_thread(peer_row, run, address))["since"]
        for address in (frr_address, PEERS["gobgp"][0], MESH_PEER)
    }
    await set_password(url, "bird", "rotated-secret")
    await daemon_says(
        lambda: not daemons["bird"].established(), 60, "BIRD down after our password changed"
    )
    await daemon_says(
        lambda: "MD5" in peer_row(run, PEERS["bird"][0])["info"], 30, "status says MD5"
    )
    for address, when in since.items():
        row = await asyncio.to_thread(peer_row, run, address)
        assert (row["state"], row["since"]) == ("established", when), address

    # BIRD takes the new password too: back up.
    bird = daemons["bird"]
    assert isinstance(bird, bgpd.Bird)
    bird.peering.password = "rotated-secret"
    await asyncio.to_thread(bird.write_config)
    await asyncio.to_thread(bird.birdc, "configure")
    await daemon_says(bird.established, SLOW, "BIRD Established with the rotated password")
