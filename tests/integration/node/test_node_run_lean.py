"""`gingham node run` supervises from a lean process: after planning its
children it execs `gingham.node.launch` (same PID), so the CLI, the resource
model (pydantic) and the datastore driver are not mapped for the node's
lifetime — the supervisor's private memory drops from ~30 MB to ~12 MB
(bench/scale.py). The PID its starter holds still supervises and stops
everything on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.node.test_node_run import alive, children_of, node_ns
from tests.support.netns import Netns
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]
BIN = Path(sys.executable).parent
__all__ = ["node_ns"]  # the fixture, shared with test_node_run


def mapped_libraries(pid: int) -> set[str]:
    return {
        Path(line.split()[-1]).name
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if line.endswith(".so") or ".so." in line
    }


def test_the_supervising_process_keeps_no_model_or_datastore(
    node_ns: tuple[Netns, str], tmp_path: Path
) -> None:
    ns, url = node_ns
    cmd = ["ip", "netns", "exec", ns.name, str(BIN / "gingham"), "node", "run", "--node", "n1",
           "--datastore", url, "--run-dir", str(tmp_path / "run"), "--grace", "3"]  # fmt: skip
    with (tmp_path / "node.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    seen: set[int] = set()
    try:
        felix = wait_for(
            lambda: next((p for p, c in children_of(proc.pid).items() if "gingham-felix" in c), 0),
            timeout=120,  # generous: the shared machine runs at load 50-100
            what="felix started",
        )
        seen |= set(children_of(proc.pid))
        command = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"gingham.node.launch" in command
        libraries = mapped_libraries(proc.pid)
        assert not {lib for lib in libraries if lib.startswith(("_pydantic_core", "_sqlite3"))}
        assert alive(felix)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "node.log").read_text()
        assert [p for p in seen if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
