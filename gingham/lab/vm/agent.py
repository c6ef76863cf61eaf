"""The guest agent: runs the host's commands inside a VM, over the shared directory.

Started by the guest's boot script as `python -m gingham.lab.vm.agent DIR`,
where DIR is the writable 9p share. Protocol (all JSON files, each written to
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
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.05


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


def serve(share: Path) -> None:
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
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
