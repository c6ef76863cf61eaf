"""What a test run leaves behind: its processes, namespaces and host links.

A pytest plugin (its hooks are imported by `tests/conftest.py`). At the start
of a run it marks the environment: `GINGHAM_TEST_RUN` names this run (pytest's
PID and a random token, so two runs on one machine never claim each other's
processes) and `GINGHAM_TEST_ID` the test being set up, so every process the
run starts, at any depth and however it daemonises, carries in
`/proc/<pid>/environ` both the run and the test it was started under.
`GINGHAM_TEST_NAMES` points at a file where `tests.support.names` records every
namespace/link prefix it hands out (from worker processes too).

At the end of the run, after every fixture has been torn down, whatever is
still alive and ours is a leak:

- a process carrying this run's mark, or still a descendant of pytest (a
  process started with an environment of its own, e.g. a CNI plugin's);
- a network namespace or a host link whose name starts with a recorded prefix.

Processes get a short polled grace period to finish exiting (a daemon stopped
by the last teardown may still be flushing). What survives it is killed by PID,
namespaces and links are deleted, and the run fails with a report that names
each leftover and the test that started it.

Never touched: anything without this run's mark that is not pytest's own
descendant, and namespaces whose names this run did not hand out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.names import NAMES_VARIABLE

RUN_VARIABLE = "GINGHAM_TEST_RUN"
TEST_VARIABLE = "GINGHAM_TEST_ID"

EXIT_GRACE_SECONDS = 10.0

_started_here: dict[str, str] = {}


@dataclass(frozen=True)
class Leftover:
    kind: str  # "process", "netns" or "link"
    name: str  # pid and command line, or the namespace / link name
    test: str  # the test it was started under, when known

    def describe(self) -> str:
        started = f"  (started under {self.test})" if self.test else ""
        return f"{self.kind} {self.name}{started}"


# --- processes -------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    pid: int
    started: int  # clock ticks after boot: with the pid, names one process for good
    test: str
    command: str


def _environ(pid: int) -> dict[bytes, bytes] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    return dict(item.partition(b"=")[::2] for item in raw.split(b"\0") if item)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) from /proc/<pid>/stat, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160] or "?"


def _pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _descendants(root: int, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _interpreter_helpers() -> set[int]:
    """multiprocessing's resource tracker and fork server: they live until pytest exits."""
    from multiprocessing import forkserver, resource_tracker

    pids = {
        getattr(resource_tracker._resource_tracker, "_pid", None),
        getattr(forkserver._forkserver, "_forkserver_pid", None),
    }
    return {pid for pid in pids if isinstance(pid, int)}


def our_processes(run: str, root: int) -> list[Process]:
    """Live (non-zombie) processes marked with `run` or descended from `root`."""
    mark = run.encode()
    ignored = {root, *_interpreter_helpers()}
    parents: dict[int, int] = {}
    found: dict[int, tuple[int, str]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or stat[0] in "ZX":
            continue
        parents[pid] = stat[1]
        environ = _environ(pid)
        if pid not in ignored and environ and environ.get(RUN_VARIABLE.encode()) == mark:
            found[pid] = (stat[2], environ.get(TEST_VARIABLE.encode(), b"").decode())
    for pid in _descendants(root, parents) - ignored:
        stat = _stat(pid)
        if pid not in found and stat is not None:
            found[pid] = (stat[2], "")
    return [
        Process(pid, started, test, _command(pid)) for pid, (started, test) in sorted(found.items())
    ]


def _kill(process: Process) -> None:
    stat = _stat(process.pid)
    if stat is not None and stat[2] == process.started:  # not a reused PID
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


def surviving_processes(run: str, root: int, grace: float = EXIT_GRACE_SECONDS) -> list[Process]:
    """Our processes still alive after `grace` seconds of polling (exiting ones get to go)."""
    deadline = time.monotonic() + grace
    while True:
        alive = our_processes(run, root)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def run_marks() -> dict[str, str]:
    """This run's marks, for a child started with an environment of its own (which
    would otherwise be recognised only while pytest is still its ancestor)."""
    return {k: os.environ[k] for k in (RUN_VARIABLE, TEST_VARIABLE) if k in os.environ}


# --- namespaces and links ----------------------------------------------------------


def recorded_prefixes(names_file: Path) -> set[str]:
    try:
        return {line for line in names_file.read_text().splitlines() if line}
    except FileNotFoundError:
        return set()


def _netns_names() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _host_links() -> set[str]:
    return {Path(p).name for p in Path("/sys/class/net").iterdir()}


def _ours(names: Iterable[str], prefixes: set[str]) -> list[str]:
    return sorted(n for n in names if any(n.startswith(p) for p in prefixes))


def leftover_names(prefixes: set[str]) -> tuple[list[str], list[str]]:
    """(namespaces, host links) whose names start with one of `prefixes`."""
    return _ours(_netns_names(), prefixes), _ours(_host_links(), prefixes)


def _remove_netns(name: str) -> None:
    # Processes inside a namespace this run created and named are this run's.
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    for pid in out.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _remove_link(name: str) -> None:
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


# --- the check -----------------------------------------------------------------


def collect_and_remove(run: str, root: int, names_file: Path) -> list[Leftover]:
    """Everything of this run still present; each one is killed or removed."""
    leftovers: list[Leftover] = []
    processes = surviving_processes(run, root)
    for process in processes:
        leftovers.append(Leftover("process", f"{process.pid}: {process.command}", process.test))
        _kill(process)
    namespaces, links = leftover_names(recorded_prefixes(names_file))
    for name in namespaces:
        leftovers.append(Leftover("netns", name, ""))
        _remove_netns(name)
    for name in links:
        leftovers.append(Leftover("link", name, ""))
        _remove_link(name)
    if processes:
        surviving_processes(run, root, grace=2.0)  # let the kills land, reap our zombies
    return leftovers


def pytest_configure(config: pytest.Config) -> None:
    if RUN_VARIABLE in _started_here:
        return
    run = f"{os.getpid()}-{secrets.token_hex(4)}"
    names_dir = tempfile.mkdtemp(prefix="gingham-test-run-")
    _started_here[RUN_VARIABLE] = run
    _started_here[NAMES_VARIABLE] = str(Path(names_dir) / "prefixes")
    os.environ[RUN_VARIABLE] = run
    os.environ[NAMES_VARIABLE] = _started_here[NAMES_VARIABLE]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    os.environ[TEST_VARIABLE] = item.nodeid


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = _started_here.get(RUN_VARIABLE)
    if run is None:
        return
    names_file = Path(_started_here[NAMES_VARIABLE])
    leftovers = collect_and_remove(run, os.getpid(), names_file)
    with contextlib.suppress(OSError):
        names_file.unlink(missing_ok=True)
        names_file.parent.rmdir()
    if not leftovers:
        return
    lines = [
        f"this test run left {len(leftovers)} thing(s) behind "
        f"(now killed/removed; every test must stop what it starts, even on failure):",
        *(f"  {leftover.describe()}" for leftover in leftovers),
    ]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("!", "LEFT BEHIND BY THIS RUN", red=True, bold=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
