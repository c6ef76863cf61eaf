"""The long-lived half of `gingham node run`: a lean process that only supervises.

`gingham node run` needs the whole CLI, the resource model (pydantic), a
datastore driver and, in Kubernetes mode, the `kubernetes` client — but only
for a moment: to register the node and read whether it is a route reflector.
The supervisor then lives as long as the node. So `run_node` plans the
children, writes the plan to ``<run-dir>/node-run.json`` and `exec_supervisor`
replaces its own process image with ``python -m gingham.node.launch PLAN``,
which imports only the supervisor (asyncio, logging, subprocess). Measured
on the lab: the supervisor's private memory drops from ~30 MB to ~12 MB per
node (bench/scale.py).

Signals: SIGTERM/SIGINT stop every child as a restart (BGP peers keep this
node's routes through graceful restart); SIGUSR2 stops them for good
(`Supervisor.stop(drain=True)`: peers drop the routes at once). Both exit 0.
``<run-dir>/node-run.pid`` names the supervisor while it runs, for
`gingham node stop` (gingham.node.stop).

Invariants: exec keeps the PID, the kernel start time, the session, stdout
/stderr and the parent, so whoever started `node run` (a DaemonSet, the lab,
systemd) still supervises the same process, and SIGTERM still stops every
child and exits 0. Nothing is started before the exec, so no child can be
orphaned by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from gingham.logs import configure_logging
from gingham.node.supervisor import ChildSpec, Supervisor

log = logging.getLogger("gingham.node")

PLAN_FILE = "node-run.json"
PID_FILE = "node-run.pid"
DRAIN_SIGNAL = signal.SIGUSR2


def write_plan(
    run_dir: Path, node: str, children: list[ChildSpec], grace: float, level: str
) -> Path:
    path = run_dir / PLAN_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "node": node,
        "grace": grace,
        "log_level": level,
        "children": [
            {
                "name": c.name,
                "argv": list(c.argv),
                "log_path": str(c.log_path),
                "drain_signal": c.drain_signal,
            }
            for c in children
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.rename(path)
    return path


def exec_supervisor(plan: Path) -> NoReturn:
    """Become ``python -m gingham.node.launch PLAN`` (same PID): never returns."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, [sys.executable, "-m", "gingham.node.launch", str(plan)])


async def _supervise(children: list[ChildSpec], grace: float) -> None:
    supervisor = Supervisor(children, grace=grace)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop)
    loop.add_signal_handler(DRAIN_SIGNAL, lambda: supervisor.stop(drain=True))
    await supervisor.run()


def main(argv: Sequence[str] | None = None) -> int:
    [path] = list(sys.argv[1:] if argv is None else argv)
    document = json.loads(Path(path).read_text())
    configure_logging(document["log_level"])
    children = [
        ChildSpec(c["name"], tuple(c["argv"]), Path(c["log_path"]), c.get("drain_signal"))
        for c in document["children"]
    ]
    pid_file = Path(path).with_name(PID_FILE)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        asyncio.run(_supervise(children, float(document["grace"])))
    finally:
        with contextlib.suppress(OSError):
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
    log.info("node %s: every child stopped", document["node"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
