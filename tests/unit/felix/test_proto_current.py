"""The committed generated code in gingham/v1 matches proto/ (scripts/gen-proto)."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], check=True, cwd=ROOT)
    fresh = tmp_path / "gingham" / "v1"
    committed = ROOT / "gingham" / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names, "gen-proto produced nothing"
    missing = [n for n in names if not (committed / n).exists()]
    stale = [
        n
        for n in names
        if n not in missing and not filecmp.cmp(fresh / n, committed / n, shallow=False)
    ]
    assert not missing and not stale, (
        f"gingham/v1 is out of date ({missing or stale}): run scripts/gen-proto and commit"
    )


def test_messages_round_trip() -> None:
    from gingham.v1 import dataplane_pb2 as pb

    update = pb.RouteUpdate(
        type=pb.ADD,
        prefix="10.65.1.0/26",
        next_hops=[pb.NextHop(address="192.0.2.2", node="n2")],
        encapsulation=pb.ENCAPSULATION_VXLAN,
        peer="192.0.2.2",
    )
    assert pb.RouteUpdate.FromString(update.SerializeToString()) == update
