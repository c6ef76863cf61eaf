"""What `gingham node run` starts: gingham-rr only on route reflector nodes,
in the run dir the speaker dials (`<run-dir>/rr.sock`)."""

from __future__ import annotations

from pathlib import Path

from gingham.node.supervisor import plan_children


def test_route_reflector_nodes_also_run_gingham_rr_in_the_shared_run_dir() -> None:
    run = Path("/run/gingham/n1")
    children = plan_children("n1", "sqlite:///x.db", run, speaker=True, route_reflector=True)
    by_name = {c.name: c for c in children}
    assert set(by_name) == {"felix", "bgp", "rr"}
    rr = by_name["rr"].argv
    assert rr[0].endswith("gingham-rr")
    assert rr[rr.index("--run-dir") + 1] == str(run)
    bgp = by_name["bgp"].argv
    # The speaker's default rr socket is <its run dir>/rr.sock: the same directory.
    assert bgp[bgp.index("--run-dir") + 1] == str(run)


def test_other_nodes_run_no_reflector() -> None:
    children = plan_children(
        "n2", "sqlite:///x.db", Path("/run/g"), speaker=True, route_reflector=False
    )
    assert [c.name for c in children] == ["felix", "bgp"]
