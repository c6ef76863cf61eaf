"""The guest agent: runs the host's commands inside a VM, over the shared directory.

Started by the guest's boot script as `python -m gingham.lab.vm.agent DIR
[DOORBELL]`, where DIR is the writable 9p share and DOORBELL a serial port
(`/dev/ttyS1`) on which the host sends a byte after each request.

Why a doorbell: under TCG, polling the share (a 9p directory listing every
50 ms) cost a quarter of the guest's only vCPU. With the doorbell the agent
sleeps in `select` and rescans the share only when rung — or every
`IDLE_RESCAN_SECONDS`, so a lost byte delays a request but never loses it.
Without a doorbell (tests on the host) it polls. Protocol (all JSON files, each written to
a temporary name and renamed, so a reader never sees half a file):

- host writes `DIR/req/<id>.json`: `{"argv": [...], "timeout": s, "env": {..},
  "background": bool}` or `{"op": "shutdown"}`;
- agent answers `DIR/res/<id>.json`: `{"rc", "stdout", "stderr"}`, or for a
  background command `{"rc": 0, "pid": N, "log": path}` once it is started
  (its output goes to `DIR/logs/<id>.log`);
- agent writes `DIR/ready` once it polls (the host's "booted" signal).

Each request runs on its own thread, so a long command never delays another.
Only the standard library is imported: the guest pays for every import under
TCG. A request the agent cannot parse gets rc 126 and the reason on stderr.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.05
IDLE_RESCAN_SECONDS = 1.0


def open_doorbell(path: str) -> int | None:
    """The serial port in raw mode (no echo, no line discipline), or None."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
    except OSError as exc:
        print(f"agent: no doorbell on {path} ({exc}): polling", file=sys.stderr)
        return None
    return fd


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    tmp.rename(path)


def _run(share: Path, rid: str, request: dict[str, Any]) -> dict[str, Any]:
    argv = request["argv"]
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a list of strings")
    env = {**os.environ, **request.get("env", {})}
    if request.get("background"):
        log = share / "logs" / f"{rid}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return {"rc": 0, "pid": proc.pid, "log": str(log)}
    try:
        done = subprocess.run(
            argv, capture_output=True, env=env, timeout=request.get("timeout"), check=False
        )
    except subprocess.TimeoutExpired as exc:
        return {"rc": 124, "stdout": (exc.stdout or b"").decode(errors="replace"),
                "stderr": f"timed out after {request.get('timeout')}s"}  # fmt: skip
    return {
        "rc": done.returncode,
        "stdout": done.stdout.decode(errors="replace"),
        "stderr": done.stderr.decode(errors="replace"),
    }


def _serve_one(share: Path, rid: str, request: dict[str, Any]) -> None:
    try:
        reply = _run(share, rid, request)
    except Exception as exc:  # a bad request or a missing binary: tell the host
        reply = {"rc": 126, "stdout": "", "stderr": f"{type(exc).__name__}: {exc}"}
    _write_json(share / "res" / f"{rid}.json", reply)


def serve(share: Path, doorbell: int | None = None) -> None:
    for sub in ("req", "res", "logs"):
        (share / sub).mkdir(exist_ok=True)
    seen: set[str] = set()
    (share / "ready").write_text(f"{time.monotonic():.3f}\n")
    while True:
        for entry in sorted(os.listdir(share / "req")):
            if not entry.endswith(".json") or entry in seen:
                continue
            seen.add(entry)
            rid = entry[: -len(".json")]
            try:
                request = json.loads((share / "req" / entry).read_text())
            except (OSError, ValueError) as exc:
                reply = {"rc": 126, "stdout": "", "stderr": f"bad request: {exc}"}
                _write_json(share / "res" / entry, reply)
                continue
            if request.get("op") == "shutdown":
                os.sync()
                _write_json(share / "res" / entry, {"rc": 0, "stdout": "", "stderr": ""})
                return
            threading.Thread(target=_serve_one, args=(share, rid, request), daemon=True).start()
        if doorbell is None:
            time.sleep(POLL_SECONDS)
        elif select.select([doorbell], [], [], IDLE_RESCAN_SECONDS)[0]:
            os.read(doorbell, 4096)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), open_doorbell(sys.argv[2]) if len(sys.argv) > 2 else None)
