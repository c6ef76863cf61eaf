"""The node supervisor: runs felix, the BGP speaker and (on RR nodes) the route reflector.

`plan_children` (pure) says which children a node runs and with what
arguments; `Supervisor` (the asyncio adapter) starts them, restarts each one
that exits (with `RestartPolicy`'s backoff, logging the exit status), and on
`stop()` sends SIGTERM to every child, waits ``grace`` seconds, then SIGKILLs
what is left, by PID.

Two ways to stop: `stop()` is a restart (the BGP speaker closes its sessions
without a NOTIFICATION, so graceful-restart peers keep this node's routes
until it is back); `stop(drain=True)` is for good: a child with a
``drain_signal`` (the speaker: SIGUSR2, a Cease to every peer, which then
drops our routes at once) gets that instead of SIGTERM.

Invariants:
- Every child gets ``PR_SET_PDEATHSIG = SIGKILL``: if the supervisor itself is
  killed (kill -9), the kernel kills the children too, so no agent outlives it.
- Each child has its own log file (``<run-dir>/logs/<child>.log``, appended,
  so a restart keeps the previous run's last words). All share the one run
  dir, each with its own socket name (felix.sock, speaker.sock, rr.sock): that
  is how they find each other (the speaker dials ``<run-dir>/felix.sock``),
  and where `gingham cni install --run-dir <run-dir>` points the plugin.
- After `stop()` returns no child process is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gingham.node.restart import RestartPolicy

log = logging.getLogger("gingham.node")

PR_SET_PDEATHSIG = 1
# gingham-bgp's "stop for good" signal (bird_agent.main.DRAIN_SIGNAL; a test
# checks they agree without this module importing the speaker).
SPEAKER_DRAIN_SIGNAL = signal.SIGUSR2


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: tuple[str, ...]
    log_path: Path
    # Sent instead of SIGTERM by `Supervisor.stop(drain=True)`.
    drain_signal: int | None = None


def console_script(name: str) -> str:
    """Our console script next to this interpreter (a venv), else on PATH, else the bare name."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name) or name


def plan_children(
    node: str,
    datastore: str,
    run_dir: Path,
    *,
    speaker: bool,
    route_reflector: bool,
    log_level: str = "INFO",
) -> list[ChildSpec]:
    """What this node runs. Pure: the caller found out whether a speaker exists and RR-ness."""
    logs = run_dir / "logs"
    common = ("--node", node, "--log-level", log_level)
    children = [
        ChildSpec(
            "felix",
            (
                console_script("gingham-felix"),
                *common,
                "--datastore",
                datastore,
                "--run-dir",
                str(run_dir),
            ),
            logs / "felix.log",
        )
    ]
    if speaker:
        children.append(
            ChildSpec(
                "bgp",
                (
                    console_script("gingham-bgp"),
                    *common,
                    "--datastore",
                    datastore,
                    "--run-dir",
                    str(run_dir),
                    "--felix-socket",
                    str(run_dir / "felix.sock"),
                ),
                logs / "bgp.log",
                drain_signal=SPEAKER_DRAIN_SIGNAL,
            )
        )
    if route_reflector:
        children.append(
            ChildSpec(
                "rr",
                (console_script("gingham-rr"), *common, "--run-dir", str(run_dir)),
                logs / "rr.log",
            )
        )
    return children


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL us when the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class _Child:
    spec: ChildSpec
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, children: list[ChildSpec], grace: float = 5.0) -> None:
        self._children = [_Child(spec) for spec in children]
        self._grace = grace
        self._stopping = asyncio.Event()
        self._drain = False
        self._tasks: list[asyncio.Task[None]] = []

    def pids(self) -> dict[str, int]:
        """Running children by name (what `node run` logs, what tests check)."""
        return {
            c.spec.name: c.process.pid
            for c in self._children
            if c.process is not None and c.process.returncode is None
        }

    async def run(self) -> None:
        """Supervise until `stop()`; then terminate every child."""
        self._tasks = [
            asyncio.create_task(self._keep_running(c), name=f"child:{c.spec.name}")
            for c in self._children
        ]
        await self._stopping.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self._terminate(c) for c in self._children))

    def stop(self, drain: bool = False) -> None:
        """Stop every child: a restart, or with `drain` for good (see the module docstring)."""
        self._drain = self._drain or drain
        self._stopping.set()

    async def _start(self, child: _Child) -> asyncio.subprocess.Process:
        child.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with child.spec.log_path.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *child.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        child.process = process
        child.policy.on_start(time.monotonic())
        log.info("started %s (pid %d), log %s", child.spec.name, process.pid, child.spec.log_path)
        return process

    async def _keep_running(self, child: _Child) -> None:
        while True:
            try:
                process = await self._start(child)
            except OSError as exc:  # missing executable: treat as an exit, retried with backoff
                log.error("cannot start %s: %s", child.spec.name, exc)
                child.policy.on_start(time.monotonic())
                code: int | None = None
            else:
                code = await process.wait()
            decision = child.policy.on_exit(time.monotonic())
            child.restarts += 1
            why = _describe_exit(code)
            if decision.new_loop:
                log.error(
                    "%s is crash-looping (%s); see %s", child.spec.name, why, child.spec.log_path
                )
            log.warning(
                "%s %s; restarting in %.1fs (restart #%d)",
                child.spec.name,
                why,
                decision.delay,
                child.restarts,
            )
            await asyncio.sleep(decision.delay)

    async def _terminate(self, child: _Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        drain = child.spec.drain_signal if self._drain else None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(drain or signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._grace)
        except TimeoutError:
            log.warning("%s (pid %d) ignored SIGTERM: SIGKILL", child.spec.name, process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()
        log.info("stopped %s (pid %d)", child.spec.name, process.pid)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"
