"""Stopping a node as a restart or for good: who gets which signal, and when to drain.

End to end with BIRD and FRR: tests/integration/node/test_node_stop.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bird_agent.main import DRAIN_SIGNAL
from gingham.node.launch import PID_FILE, PLAN_FILE
from gingham.node.stop import Outcome, should_drain, stop_node, supervisor_pid
from gingham.node.supervisor import ChildSpec, Supervisor, plan_children


def test_only_the_speaker_is_drained_and_with_the_signal_it_handles() -> None:
    children = plan_children("n1", "sqlite:///x.db", Path("/r"), speaker=True, route_reflector=True)
    drains = {c.name: c.drain_signal for c in children}
    assert drains == {"felix": None, "bgp": DRAIN_SIGNAL, "rr": None}


@dataclass(frozen=True)
class Core:
    unschedulable: bool = False
    deleting: bool = False


@pytest.mark.parametrize(
    ("core", "drain"),
    [
        (Core(), False),  # a rolling update: the Node stays schedulable
        (Core(unschedulable=True), True),  # kubectl drain cordons first
        (Core(deleting=True), True),
        (None, True),  # the Node is gone
    ],
)
def test_a_pod_stops_for_good_when_its_node_is_on_its_way_out(
    core: Core | None, drain: bool
) -> None:
    assert should_drain(core) is drain


# A child that records the first signal it gets, then exits.
RECORDER = """
import signal, sys, time
def got(signum, frame):
    open(sys.argv[1], "w").write(signal.Signals(signum).name)
    sys.exit(0)
for s in (signal.SIGTERM, signal.SIGUSR2):
    signal.signal(s, got)
open(sys.argv[1] + ".ready", "w").close()
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("drain", [False, True], ids=["restart", "for-good"])
async def test_the_supervisor_sends_the_drain_signal_only_when_stopping_for_good(
    tmp_path: Path, drain: bool
) -> None:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    specs = [
        ChildSpec(
            name,
            (sys.executable, str(script), str(tmp_path / name)),
            tmp_path / f"{name}.log",
            drain_signal=signal.SIGUSR2 if name == "bgp" else None,
        )
        for name in ("felix", "bgp")
    ]
    supervisor = Supervisor(specs, grace=10)
    running = asyncio.create_task(supervisor.run())
    deadline = asyncio.get_running_loop().time() + 30
    while not all((tmp_path / f"{name}.ready").exists() for name in ("felix", "bgp")):
        assert asyncio.get_running_loop().time() < deadline, "children never started"
        await asyncio.sleep(0.02)
    supervisor.stop(drain=drain)
    await asyncio.wait_for(running, 30)
    assert (tmp_path / "felix").read_text() == "SIGTERM"
    assert (tmp_path / "bgp").read_text() == ("SIGUSR2" if drain else "SIGTERM")


def test_a_stale_pid_file_is_never_signalled(tmp_path: Path) -> None:
    # Our own PID: alive, but not a `gingham.node.launch` of this run dir.
    (tmp_path / PID_FILE).write_text(f"{os.getpid()}\n")
    (tmp_path / PLAN_FILE).write_text("{}")
    assert supervisor_pid(tmp_path) is None
    assert stop_node(tmp_path, drain=True, timeout=1).outcome is Outcome.NOT_RUNNING


def test_no_pid_file_is_not_running(tmp_path: Path) -> None:
    assert stop_node(tmp_path, drain=False, timeout=1).outcome is Outcome.NOT_RUNNING
