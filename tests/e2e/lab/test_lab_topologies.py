"""The issue's lab checks, each through the CLI as a person runs it, each ending with `lab down`.

- mesh with 4 nodes: every node peers with the 3 others (node-to-node mesh);
- rr with 6 nodes: 2 reflectors (one cluster ID) and 4 clients that peer only
  with the reflectors, mesh off; every node still routes every other node's
  block, and `lab graph` draws it;
- racks 2x3 behind FRR ToRs with a VXLAN CrossSubnet pool: eBGP to the rack's
  ToR, AS per rack; same-rack traffic leaves plain (``dev eth0`` via the other
  node), cross-rack traffic through ``vxlan.gingham``.

Each asserts the full pod-to-pod ping matrix (polled: a lab that has just come
up on a loaded machine may still be programming routes), then that `lab down`
leaves no namespace, process or file, and that a second `lab down` is
harmless. One lab per test, every assertion on it: building a lab is the cost.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.lab import lab_run

# Building a lab takes a minute on an idle machine and several at load 60-200 (seen here).
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1200)]
SVG = "{http://www.w3.org/2000/svg}"


def established(peer: dict[str, object]) -> bool:
    return str(peer.get("state", "")).lower() == "established"


def test_mesh_of_four(tmp_path: Path) -> None:
    with lab_run(tmp_path / "labs") as lab:
        lab.up("--nodes", "4", "--topology", "mesh")
        lab.wait_full_matrix()
        assert lab.name in lab.cli("list").stdout
        status = lab.status()
        assert len(status["pods"]) == 8
        assert len({p["address"] for p in status["pods"]}) == 8
        for node in status["nodes"]:
            assert node["felix_serving"], node["name"]
            peers = node["speaker"]["peers"]
            assert len(peers) == 3 and all(established(p) for p in peers), peers
            assert {p["peer_type"] for p in peers} == {"node-to-node mesh"}
            # One own block (blackhole) and three learned ones, each via its owner.
            assert sum(r.startswith("blackhole ") for r in node["routes"]) == 1
            assert sum(" via 10.200.0." in r for r in node["routes"]) == 3
        lab.down_leaves_nothing()


def test_route_reflectors_six_nodes_and_graph(tmp_path: Path) -> None:
    with lab_run(tmp_path / "labs") as lab:
        lab.up("--nodes", "6", "--topology", "rr")
        lab.wait_full_matrix(timeout=120)
        status = lab.status()
        reflectors = {"node1", "node2"}
        addresses = {n["name"]: n["speaker"]["address"] for n in status["nodes"]}
        for node in status["nodes"]:
            peers = {p["address"]: p for p in node["speaker"]["peers"]}
            assert all(established(p) for p in peers.values()), peers
            if node["name"] in reflectors:
                # Every client, plus the other reflector.
                assert set(peers) == {a for n, a in addresses.items() if n != node["name"]}
            else:
                assert set(peers) == {addresses[r] for r in reflectors}
                assert {p["peer_type"] for p in peers.values()} == {"route reflector"}
            # Reflected routes keep the originating node as next hop: 5 remote blocks.
            assert sum(" via 10.200.0." in r for r in node["routes"]) == 5, node["routes"]

        done = lab.cli("graph", "--name", lab.name, "-o", str(tmp_path / "picture.svg"))
        assert done.returncode == 0, done.stderr
        svg, png = tmp_path / "picture.svg", tmp_path / "picture.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        root = ET.parse(svg).getroot()
        texts = {t.text for t in root.iter(f"{SVG}text")}
        titles = [t.text or "" for t in root.iter(f"{SVG}title")]
        assert {f"node{i}" for i in range(1, 7)} <= texts
        sessions = [t for t in titles if t.startswith("BGP ")]
        # 4 clients x 2 reflectors + the reflectors' own session, all up.
        assert len(sessions) == 9 and all(t.endswith(": established") for t in sessions)
        assert "BGP node1 ↔ node2: established" in sessions
        lab.down_leaves_nothing()


def test_racks_behind_frr_tors_vxlan_cross_subnet(tmp_path: Path) -> None:
    with lab_run(tmp_path / "labs") as lab:
        lab.up("--nodes", "6", "--topology", "racks", "--racks", "2", "--tor", "frr",
               "--encap", "vxlan")  # fmt: skip
        lab.wait_full_matrix(timeout=120)
        status = lab.status()
        for tor in status["tors"]:
            assert tor["daemon"] == "frr"
            # Three nodes of its rack and the other ToR.
            assert len(tor["sessions"]) == 4, tor
            assert all(s["state"] == "Established" for s in tor["sessions"]), tor
        nodes = {n["name"]: n for n in status["nodes"]}
        for node in nodes.values():
            (peer,) = node["speaker"]["peers"]
            assert established(peer) and peer["peer_type"] == "node specific"
        pods = {p["name"]: p for p in status["pods"]}
        # node1, node3, node5 are rack 1 (10.200.1.0/24); node2, node4, node6 rack 2.
        node1, node4 = nodes["node1"]["netns"], nodes["node4"]["netns"]
        lab.wait_route(node1, pods["node3-pod1"]["address"], "eth0",
                       gateway=nodes["node3"]["speaker"]["address"])  # fmt: skip
        lab.wait_route(node1, pods["node2-pod1"]["address"], "vxlan.gingham")
        lab.wait_route(node4, pods["node5-pod2"]["address"], "vxlan.gingham")
        lab.down_leaves_nothing()
