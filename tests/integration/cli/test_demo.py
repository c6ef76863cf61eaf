"""`make lab` (for now): the demo applies examples/fabric.yaml and prints every kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.cli.conftest import REPO, Gingham


def test_demo_applies_the_example_fabric_and_shows_it(tmp_path: Path) -> None:
    scratch = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "gingham.demo", "--dir", str(scratch)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert f"sqlite://{scratch}/gingham.db" in out
    assert 'ippool "default-pool" created' in out
    for header in ("LOGSEVERITY", "CIDR", "IPV4", "PEERIP"):
        assert header in out
    # What it printed is really stored where it said.
    gingham = Gingham(f"sqlite://{scratch}/gingham.db", tmp_path)
    names = {doc["metadata"]["name"] for doc in gingham.stored("Node", "BGPPeer")}
    assert names == {
        "node-1",
        "node-2",
        "node-3",
        "tor-rack1",
        "clients-to-reflectors",
        "reflector-mesh",
    }
