"""The guest agent's file protocol and lab clean-up, without booting a guest.

The agent runs here as a host process over a temporary "share"; `Vm.run` /
`Vm.spawn` talk to it exactly as they do to a guest (the agent only needs a
directory). Orphan reaping is checked on a real namespace left behind by a
"lab" whose owner is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from gingham.lab.vm import machine
from gingham.lab.vm.machine import GuestError, Vm, reap_orphaned_labs
from tests.support.poll import wait_for


@pytest.fixture
def agent_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vm]:
    share = tmp_path / "share"
    share.mkdir()
    # On the host the share is not mounted at GUEST_SHARE: map paths to it directly.
    monkeypatch.setattr(machine, "GUEST_SHARE", str(share))
    proc = subprocess.Popen([sys.executable, "-m", "gingham.lab.vm.agent", str(share)])
    vm = Vm("vm1", IPv4Interface("198.18.0.1/24"), share, tmp_path / "serial", proc=proc)
    try:
        wait_for((share / "ready").exists, timeout=10, what="agent ready")
        yield vm
    finally:
        proc.kill()
        proc.wait()


def test_run_returns_status_and_output(agent_vm: Vm) -> None:
    result = agent_vm.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.rc, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert agent_vm.run(["sh", "-c", "echo $X"], env={"X": "42"}).stdout == "42\n"
    with pytest.raises(GuestError, match="exited 3"):
        agent_vm.run(["sh", "-c", "exit 3"])


def test_bad_requests_are_answered_not_fatal(agent_vm: Vm) -> None:
    missing = agent_vm.run(["/nonexistent/binary"], check=False)
    assert missing.rc == 126 and "FileNotFoundError" in missing.stderr
    slow = agent_vm.run(["sleep", "5"], timeout=0.2, check=False)
    assert slow.rc == 124
    assert agent_vm.run(["true"]).rc == 0  # still serving


def test_spawn_runs_in_background_with_a_log(agent_vm: Vm) -> None:
    proc = agent_vm.spawn(["sh", "-c", "echo started; sleep 30"])
    wait_for(lambda: proc.log.read_text() == "started\n", timeout=10, what="spawned output")
    assert agent_vm.run(["kill", "-0", str(proc.pid)]).rc == 0
    os.kill(proc.pid, 9)


def test_shutdown_ends_the_agent(agent_vm: Vm) -> None:
    agent_vm.shutdown(timeout=10)
    assert agent_vm.proc is not None and agent_vm.proc.returncode == 0


@pytest.mark.root
def test_labs_whose_owner_died_are_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    monkeypatch.setattr(machine, "STATE_DIR", tmp_path / "state")
    (tmp_path / "state").mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    netns = f"ghvm-r{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        workdir = tmp_path / "work"
        workdir.mkdir()
        state = {"owner": f"{dead.pid}:1", "netns": netns, "workdir": str(workdir), "pids": []}
        (tmp_path / "state" / "gone.json").write_text(json.dumps(state))
        mine: dict[str, object] = {
            "owner": machine._process_identity(os.getpid()),
            "netns": "x",
            "pids": [],
        }
        (tmp_path / "state" / "alive.json").write_text(json.dumps(mine))
        assert reap_orphaned_labs() == ["gone"]
        assert netns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                           text=True, check=True).stdout  # fmt: skip
        assert not workdir.exists()
        assert (tmp_path / "state" / "alive.json").exists()
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
