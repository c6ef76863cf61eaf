"""`gingham lab up --nodes 2` (mesh, racks), then `lab down` leaves nothing behind.

The real thing end to end, as a person runs it: the CLI builds the namespaces,
starts `gingham node run` in each node, creates pods through the CNI plugin,
and `lab ping` reports the matrix. Same-node pairs must answer; cross-node
pairs are asserted when this build has a BGP speaker that feeds felix
(otherwise the test says why it skips that part). `lab down` must leave no
namespace, no process, no file — and a second `lab down` is harmless.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]
GINGHAM = str(Path(sys.executable).parent / "gingham")


def lab(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GINGHAM, "lab", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def pids_in(namespaces: set[str]) -> set[int]:
    pids: set[int] = set()
    for ns in namespaces:
        out = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
        )
        pids |= {int(p) for p in out.stdout.split()}
    return pids


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def speaker_feeds_felix() -> str | None:
    """None when cross-node pings should work, else why not."""
    from gingham.cli.node import speaker_available

    if not speaker_available():
        return "the BGP speaker (gingham-bgp) is not available in this build"
    try:
        import bird_agent.felix_sink  # noqa: F401
    except ImportError:
        return "the BGP speaker does not feed felix yet (no bird_agent.felix_sink)"
    return None


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    name = f"e{secrets.token_hex(3)}"
    env = {**os.environ, "GINGHAM_LAB_ROOT": str(tmp_path / "labs")}
    try:
        yield env, name
    finally:
        lab(env, "down", "--name", name)
        for ns in netns_names():  # only if `lab down` itself failed: our own prefix
            if ns.startswith(f"{name}-"):
                for pid in pids_in({ns}):
                    os.kill(pid, 9)
                subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.parametrize(
    ("topology", "namespaces"),
    [("mesh", 1 + 2 + 4), ("racks", 1 + 2 + 2 + 4)],  # fabric, (ToRs), nodes, pods
)
def test_lab_up_ping_down(
    lab_env: tuple[dict[str, str], str], topology: str, namespaces: int
) -> None:
    """mesh: one L2 segment; racks: one node per rack behind BIRD ToRs (eBGP, routed)."""
    env, name = lab_env
    up = lab(env, "up", "--name", name, "--nodes", "2", "--topology", topology,
             "--pods-per-node", "2", "--wait", "20")  # fmt: skip
    assert up.returncode == 0, up.stderr
    ours = {ns for ns in netns_names() if ns.startswith(f"{name}-")}
    assert len(ours) == namespaces
    processes = pids_in(ours)
    state = json.loads((Path(env["GINGHAM_LAB_ROOT"]) / name / "state.json").read_text())
    processes |= {p["pid"] for p in state["processes"]}
    assert processes

    listed = lab(env, "list")
    assert name in listed.stdout

    status = json.loads(lab(env, "status", "--name", name, "-o", "json").stdout)
    assert all(node["felix_serving"] for node in status["nodes"])
    pods = {p["name"]: p for p in status["pods"]}
    assert len(pods) == 4 and len({p["address"] for p in pods.values()}) == 4

    ping = lab(env, "ping", "--name", name)
    failed = {tuple(line[5:].split(" → ")) for line in ping.stdout.splitlines()
              if line.startswith("FAIL ")}  # fmt: skip
    same_node = [
        (a, b) for a in pods for b in pods if a != b and pods[a]["node"] == pods[b]["node"]
    ]
    assert not failed & set(same_node), ping.stdout

    why_not = speaker_feeds_felix()
    if why_not is None:
        assert ping.returncode == 0 and not failed, ping.stdout
    else:
        print(f"cross-node pings not asserted: {why_not}")

    down = lab(env, "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert not {ns for ns in netns_names() if ns.startswith(f"{name}-")}
    assert not [pid for pid in processes if alive(pid)]
    assert not (Path(env["GINGHAM_LAB_ROOT"]) / name).exists()
    again = lab(env, "down", "--name", name)
    assert again.returncode == 0 and "nothing to remove" in again.stderr
    if why_not is not None:
        pytest.skip(f"same-node pings and clean teardown checked; cross-node skipped: {why_not}")
