"""`lab down`: remove everything a lab's `LabState` records, whatever built it.

Stops the recorded processes (SIGTERM, then SIGKILL, by PID and only if the
PID still names the process the lab started), kills what else runs inside
the lab's own namespaces, deletes the namespaces (which removes every link
in them: a lab puts no link in the host namespace) and the lab directory.
Idempotent: removing what is already gone is not an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from gingham.lab.backend import Progress
from gingham.lab.kubernetes import destroy_cluster
from gingham.lab.state import LabState, ProcessRecord, is_ours, lab_dir


def down(name: str, progress: Progress) -> bool:
    """Remove lab `name`; False when there was nothing to remove."""
    state = LabState.load(name)
    directory = lab_dir(name)
    if state is None:
        if directory.exists():
            destroy_cluster(name)
            shutil.rmtree(directory)
            return True
        return False
    destroy_cluster(name)  # a --kubernetes lab's cluster: its own record says what it made
    _stop_all(state.processes)
    # Namespaces are independent (a veth pair goes with whichever end goes first), so they
    # are removed side by side: two `ip` runs each, which a busy machine makes slow.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_remove_netns, reversed(state.namespaces)))
    shutil.rmtree(directory, ignore_errors=True)
    progress(f"lab {name}: stopped {len(state.processes)} processes, "
             f"removed {len(state.namespaces)} namespaces and {directory}")  # fmt: skip
    return True


def _stop_all(records: list[ProcessRecord], grace: float = 8.0) -> None:
    """SIGTERM every recorded process at once, then SIGKILL the ones still there after `grace`."""
    live = [r for r in records if is_ours(r)]
    for record in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for record in live:
            _reap(record.pid)
        live = [r for r in live if is_ours(r)]
        if not live:
            return
        time.sleep(0.05)
    for record in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        _reap(record.pid)


def _reap(pid: int) -> None:
    # `lab up` and `lab down` in one process (tests): collect our own child's exit.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _remove_netns(netns: str) -> None:
    _kill_inside(netns)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


def _kill_inside(netns: str) -> None:
    """SIGKILL whatever still runs inside one of the lab's own namespaces."""
    proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True,
                          check=False)  # fmt: skip
    for word in proc.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(word), signal.SIGKILL)
