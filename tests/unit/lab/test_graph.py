"""`gingham lab graph`'s picture: every node, ToR and session drawn, coloured by state.

Pure: a plan and a status document in (shaped like `lab_status`'s), files out.
The SVG must parse as XML and name every node and every session; the PNG must
be a real PNG of the scene's size.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gingham.lab.graph import (
    STATE_COLOURS,
    NoPillow,
    build_scene,
    output_paths,
    session_health,
    write_graph,
)
from gingham.lab.topology import LabOptions, LabPlan, plan_lab

SVG = "{http://www.w3.org/2000/svg}"


def status_of(plan: LabPlan, down: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A status where node i announces 10.244.i.0/26 and every planned session is up,
    except those naming a node in `down` (that end reports Idle)."""
    address = {n.name: str(n.address.ip) for n in plan.nodes}
    reflectors = [n.name for n in plan.nodes if n.route_reflector]
    nodes = []
    for i, node in enumerate(plan.nodes):
        if plan.tors:
            tor = plan.tors[(node.rack or 1) - 1]
            peers = [(str(tor.rack_address.ip), "node specific")]
        elif plan.options.topology == "rr":
            others = reflectors if not node.route_reflector else [n.name for n in plan.nodes]
            peers = [(address[o], "route reflector") for o in others if o != node.name]
        else:
            peers = [(address[o], "node-to-node mesh") for o in address if o != node.name]
        state = "idle" if node.name in down else "established"
        nodes.append(
            {
                "name": node.name,
                "felix_serving": True,
                "routes": [f"blackhole 10.244.{i}.0/26", f"10.244.{i}.1 dev gh0"],
                "speaker": {
                    "peers": [{"address": a, "peer_type": t, "state": state} for a, t in peers]
                },
            }
        )
    tors = [
        {"name": t.name, "sessions": [
            {"name": o.name, "address": str(o.spine_address.ip), "state": "Established"}
            for o in plan.tors if o is not t]}
        for t in plan.tors
    ]  # fmt: skip
    return {"nodes": nodes, "tors": tors}


def svg_texts(path: Path) -> tuple[list[str], list[str]]:
    root = ET.parse(path).getroot()
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    return texts, titles


def test_racks_graph_names_every_node_tor_session_and_block(tmp_path: Path) -> None:
    plan = plan_lab(LabOptions(name="g", nodes=6, topology="racks", racks=2))
    svg, png = output_paths(str(tmp_path / "g.png"), "g")
    assert (svg.name, png.name) == ("g.svg", "g.png")
    scene = write_graph(plan, status_of(plan), svg, png)
    texts, titles = svg_texts(svg)
    for name in [n.name for n in plan.nodes] + [t.name for t in plan.tors]:
        assert name in texts
    for i in range(6):
        assert f"announces 10.244.{i}.0/26" in texts
    # 6 node-ToR sessions and one ToR-ToR session, each drawn once.
    assert len(scene.sessions) == 7
    for a, b, _state in scene.sessions:
        title = f"BGP {a} ↔ {b}: "
        assert any(t.startswith(title) and t.lower().endswith("established") for t in titles)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width > scene.width and image.height > scene.height


def test_rr_sessions_coloured_by_the_worst_end(tmp_path: Path) -> None:
    plan = plan_lab(LabOptions(name="g", nodes=6, topology="rr"))
    scene = build_scene(plan, status_of(plan, down=frozenset({"node5"})))
    # Clients peer with both reflectors, the reflectors with each other: 4*2 + 1.
    assert len(scene.sessions) == 9
    states = {frozenset((a, b)): session_health(s) for a, b, s in scene.sessions}
    assert states[frozenset(("node1", "node5"))] == "down"
    assert states[frozenset(("node1", "node2"))] == "up"
    assert sum(h == "up" for h in states.values()) == 7
    svg = tmp_path / "rr.svg"
    write_graph(plan, status_of(plan, down=frozenset({"node5"})), svg, tmp_path / "rr.png")
    root = ET.parse(svg).getroot()
    colours = {line.get("stroke") for line in root.iter(f"{SVG}line")}
    assert {STATE_COLOURS["up"], STATE_COLOURS["down"]} <= colours


def test_mesh_graph_of_a_lab_with_no_speaker_yet(tmp_path: Path) -> None:
    plan = plan_lab(LabOptions(name="g", nodes=4))
    status = {"nodes": [{"name": n.name, "speaker": None, "routes": []} for n in plan.nodes]}
    svg, png = tmp_path / "m.svg", tmp_path / "m.png"
    scene = write_graph(plan, status, svg, png)
    assert scene.sessions == []
    texts, _titles = svg_texts(svg)
    assert texts.count("announces no block yet") == 4
    assert png.stat().st_size > 0


def test_session_health_words() -> None:
    assert session_health("Established") == "up"
    assert session_health("established") == "up"
    assert session_health("Active") == "pending"
    assert session_health("OpenSent") == "pending"
    assert session_health("Idle") == "down"
    assert session_health("") == "down"


def test_without_pillow_the_svg_is_written_and_the_png_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # what `import PIL` meets when not installed
    plan = plan_lab(LabOptions(name="g", nodes=2))
    status = {"nodes": [{"name": n.name, "speaker": None, "routes": []} for n in plan.nodes]}
    svg, png = tmp_path / "n.svg", tmp_path / "n.png"
    with pytest.raises(
        NoPillow, match=r"n\.png: the PNG needs Pillow: pip install 'gingham\[graph\]'"
    ):
        write_graph(plan, status, svg, png)
    assert ET.parse(svg).getroot().tag == f"{SVG}svg"
    assert not png.exists()
