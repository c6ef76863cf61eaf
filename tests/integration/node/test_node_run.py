"""`gingham node run` in a netns: felix up, restarted after kill -9, SIGTERM stops all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import Netns, sh
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]
BIN = Path(sys.executable).parent


def children_of(pid: int) -> dict[int, str]:
    """Direct children of `pid`: {pid: command line}."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except (OSError, IndexError, ValueError):
            continue
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def felix_live(ns: Netns) -> bool:
    """felix's /liveness: /liveness also waits for the speaker's first route snapshot."""
    script = (
        "import urllib.request,sys\n"
        "try:\n print(urllib.request.urlopen('http://127.0.0.1:9099/liveness',timeout=1).status)\n"
        "except Exception as e:\n print(e)\n"
    )
    out = sh(["ip", "netns", "exec", ns.name, sys.executable, "-c", script], check=False)
    return out.stdout.strip() == "200"


@pytest.fixture
def node_ns(tmp_path: Path) -> Iterator[tuple[Netns, str]]:
    ns = Netns.create("nr")
    try:
        ns.ip("addr add 10.99.0.1/32 dev lo")
        url = f"sqlite:///{tmp_path / 'lab.db'}"
        docs = [
            {"kind": "IPPool", "metadata": {"name": "p"}, "spec": {"cidr": "10.98.0.0/16"}},
            {"kind": "Node", "metadata": {"name": "n1"},
             "spec": {"bgp": {"ipv4Address": "10.99.0.1/32"}}},
        ]  # fmt: skip
        path = tmp_path / "r.json"
        path.write_text(
            "\n---\n".join(json.dumps({"apiVersion": "gingham.io/v1", **d}) for d in docs)
        )
        sh([str(BIN / "gingham"), "--datastore", url, "apply", "-f", str(path)])
        yield ns, url
    finally:
        sh(["ip", "netns", "del", ns.name], check=False)


def test_node_run_supervises_and_stops_everything(
    node_ns: tuple[Netns, str], tmp_path: Path
) -> None:
    ns, url = node_ns
    run_dir = tmp_path / "run"
    log = (tmp_path / "node.log").open("wb")
    cmd = ["ip", "netns", "exec", ns.name, str(BIN / "gingham"), "node", "run", "--node", "n1",
           "--datastore", url, "--run-dir", str(run_dir), "--grace", "3"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    seen: set[int] = set()
    try:
        wait_for(lambda: felix_live(ns), timeout=30, interval=0.2, what="felix liveness")
        felix = {p for p, c in children_of(proc.pid).items() if "gingham-felix" in c}
        assert len(felix) == 1
        first = felix.pop()
        seen |= set(children_of(proc.pid))
        os.kill(first, signal.SIGKILL)

        def restarted() -> int | None:
            now = [p for p, c in children_of(proc.pid).items() if "gingham-felix" in c]
            return next((p for p in now if p != first), None)

        second = wait_for(restarted, timeout=15, interval=0.1, what="felix restarted")
        wait_for(lambda: felix_live(ns), timeout=30, interval=0.2, what="felix live again")
        seen |= set(children_of(proc.pid))
        assert second in seen
        assert "felix was killed by SIGKILL" in (tmp_path / "node.log").read_text()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        left = [p for p in seen if alive(p)]
        assert left == [], f"children left behind: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
