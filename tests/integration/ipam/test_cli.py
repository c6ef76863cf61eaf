"""`gingham ipam ...` end to end on a sqlite store (the CLI is backend-agnostic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gingham.cli.main import main

FABRIC = """
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: p1}
spec: {cidr: 10.9.0.0/28, blockSize: 30}
---
apiVersion: gingham.io/v1
kind: Node
metadata: {name: n1}
spec: {bgp: {ipv4Address: 192.168.0.1/24}}
"""


@pytest.fixture
def gingham(tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    url = f"sqlite://{tmp_path}/cli.db"
    (tmp_path / "fabric.yaml").write_text(FABRIC)
    assert main(["--datastore", url, "apply", "-f", str(tmp_path / "fabric.yaml")]) == 0
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--datastore", url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_allocate_show_release(gingham) -> None:  # type: ignore[no-untyped-def]
    assert gingham("ipam", "allocate", "--node", "n1", "--handle", "h1") == (0, "10.9.0.0\n", "")
    code, out, _ = gingham("ipam", "allocate", "--node", "n1", "--handle", "st", "--ip", "10.9.0.9")
    assert (code, out) == (0, "10.9.0.9\n")
    code, _, err = gingham("ipam", "allocate", "--node", "n1", "--handle", "x", "--ip", "10.9.0.9")
    assert code == 1 and "10.9.0.9 is already allocated (handle st)" in err
    code, out, _ = gingham("ipam", "show", "-o", "json", "--show-blocks")
    (pool,) = json.loads(out)
    assert (pool["size"], pool["allocated"], pool["free"]) == (16, 2, 14)
    assert {b["cidr"]: b["affinity"] for b in pool["blocks"]} == {
        "10.9.0.0/30": "host:n1",
        "10.9.0.8/30": "host:n1",
    }
    code, out, _ = gingham("ipam", "show", "--show-blocks")
    assert code == 0 and "10.9.0.8/30" in out and "host:n1" in out
    assert gingham("ipam", "release", "--ip", "10.9.0.9")[:2] == (0, "released 10.9.0.9\n")
    assert gingham("ipam", "release", "--handle", "h1")[:2] == (0, "released 10.9.0.0\n")
    assert gingham("ipam", "release", "--handle", "h1")[0] == 0  # unknown handle: fine
    code, _, err = gingham("ipam", "release")
    assert code == 1 and "exactly one of --handle" in err


def test_check_and_repair(gingham) -> None:  # type: ignore[no-untyped-def]
    gingham("ipam", "allocate", "--node", "n1", "--handle", "leak")
    gingham("ipam", "allocate", "--node", "gone", "--handle", "gone-pod")
    code, out, _ = gingham("ipam", "check")
    assert code == 1
    assert "leaked address 10.9.0.0" in out and "node 'gone' does not exist" in out
    code, out, _ = gingham("ipam", "check", "--repair")
    assert code == 0 and "repaired: IPAM is consistent" in out
    assert gingham("ipam", "check")[0] == 0


def test_release_block(gingham) -> None:  # type: ignore[no-untyped-def]
    gingham("ipam", "allocate", "--node", "n1", "--handle", "h")
    code, _, err = gingham("ipam", "release-block", "--node", "n1", "--cidr", "10.9.0.0/30")
    assert code == 1 and "still holds 1 address" in err
    gingham("ipam", "release", "--handle", "h")
    code, out, _ = gingham("ipam", "release-block", "--node", "n1", "--cidr", "10.9.0.0/30")
    assert code == 0 and "released block 10.9.0.0/30" in out
    code, _, err = gingham("ipam", "release-block", "--node", "n1", "--cidr", "10.9.0.1/30")
    assert code == 1 and "not a network CIDR" in err
