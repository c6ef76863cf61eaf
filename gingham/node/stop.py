"""`gingham node stop`: stop a running `gingham node run`, as a restart or for good.

A restart (the default, like SIGTERM): the BGP speaker closes its sessions
without a NOTIFICATION and graceful-restart peers keep routing to this node
until it is back (or their restart time, 120 s by default, runs out) — a
rolling update, an upgrade, `systemctl restart`. For good (``--drain``, the
supervisor's SIGUSR2): every Established session first gets a Cease
NOTIFICATION, Administrative Shutdown, and peers drop this node's routes at
once — a node being drained, decommissioned or deleted.

`should_drain` (pure) is the DaemonSet's preStop decision: a pod stops for
good when its Kubernetes Node is cordoned (``kubectl drain`` cordons first),
being deleted, or gone; otherwise the stop is a rolling update.

Invariants: the supervisor is found through ``<run-dir>/node-run.pid``
(written by gingham.node.launch) and only signalled when ``/proc`` says that
PID runs ``gingham.node.launch`` on this run dir's plan — a stale file naming
a recycled PID is never signalled. Waiting polls ``/proc`` with a deadline.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from gingham.node.launch import DRAIN_SIGNAL, PID_FILE, PLAN_FILE


class Outcome(Enum):
    STOPPED = "stopped"
    NOT_RUNNING = "not running"
    STILL_RUNNING = "still running"


@dataclass(frozen=True)
class StopResult:
    outcome: Outcome
    pid: int | None


class CoreNodeState(Protocol):
    """What a Kubernetes Node says about leaving (gingham.datastore.kubernetes.CoreNode)."""

    @property
    def unschedulable(self) -> bool: ...

    @property
    def deleting(self) -> bool: ...


def should_drain(core: CoreNodeState | None) -> bool:
    """Whether a pod stopping on this Kubernetes Node stops for good (pure)."""
    return core is None or core.unschedulable or core.deleting


def supervisor_pid(run_dir: Path) -> int | None:
    """The running `node run` supervisor of `run_dir`, or None."""
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    words = [a.decode(errors="replace") for a in argv]
    plan = str((run_dir / PLAN_FILE).absolute())
    if "gingham.node.launch" in words and plan in words and _alive(pid):
        return pid
    return None


def stop_node(run_dir: Path, *, drain: bool, timeout: float) -> StopResult:
    """Signal the supervisor (SIGUSR2 with `drain`, else SIGTERM) and wait for it to exit."""
    pid = supervisor_pid(run_dir)
    if pid is None:
        return StopResult(Outcome.NOT_RUNNING, None)
    try:
        os.kill(pid, DRAIN_SIGNAL if drain else signal.SIGTERM)
    except ProcessLookupError:
        return StopResult(Outcome.NOT_RUNNING, None)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return StopResult(Outcome.STILL_RUNNING, pid)
        time.sleep(0.05)
    return StopResult(Outcome.STOPPED, pid)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie has exited; its parent has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
