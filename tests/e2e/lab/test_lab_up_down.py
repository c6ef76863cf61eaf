"""`gingham lab up --topology racks --tor bird`, a routed fabric without tunnels; `lab down`.

One node per rack behind BIRD ToRs (the FRR default is covered in
test_lab_topologies.py): the pool is unencapsulated, so the ToRs route pod
traffic themselves — a node's route to the other rack's block goes via its
ToR. Status must show the ToRs' own sessions (read through birdc), the full
matrix must answer, and `lab down` must leave nothing behind (twice).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.lab import lab_run

# Building a lab takes a minute on an idle machine and several at load 60-200 (seen here).
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1200)]


def test_racks_behind_bird_tors_route_through_the_tor(tmp_path: Path) -> None:
    with lab_run(tmp_path / "labs") as lab:
        lab.up("--nodes", "2", "--topology", "racks", "--tor", "bird")
        # fabric, two ToRs, two nodes, four pods
        assert len(lab.namespaces()) == 1 + 2 + 2 + 4
        lab.wait_full_matrix()
        status = lab.status()
        for tor in status["tors"]:
            assert tor["daemon"] == "bird"
            assert {s["state"] for s in tor["sessions"]} == {"Established"}, tor
            assert len(tor["sessions"]) == 2  # its node and the other ToR
        node1 = next(n for n in status["nodes"] if n["name"] == "node1")
        other = next(p for p in status["pods"] if p["node"] == "node2")
        route = lab.route(node1["netns"], other["address"])
        assert route["dev"] == "eth0" and route["gateway"] == "10.200.1.1", route
        lab.down_leaves_nothing()
