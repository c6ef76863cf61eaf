"""Exec a CNI plugin exactly as a runtime does: CNI_* env, config on stdin, JSON out.

Shared by the CNI spec tests, the runtime harness tests and bench/cni.py.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class PluginRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None

    @property
    def error_code(self) -> int | None:
        data = self.json
        return data.get("code") if isinstance(data, dict) else None


def exec_plugin(
    plugin: Path,
    command: str | None,
    config: dict[str, Any] | bytes | None,
    *,
    container_id: str | None = "ctr1",
    netns: str | None = "",
    ifname: str | None = "eth0",
    cni_path: str | None = "/usr/lib/cni",
    cni_args: str | None = None,
    timeout: float = 60.0,
) -> PluginRun:
    """Run `plugin` once; a None argument leaves that CNI_* variable unset."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for key, value in (
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", container_id),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", ifname),
        ("CNI_PATH", cni_path),
        ("CNI_ARGS", cni_args),
    ):
        if value is not None:
            env[key] = value
    stdin = config if isinstance(config, bytes) else json.dumps(config or {}).encode()
    proc = subprocess.run(
        [str(plugin)], input=stdin, env=env, capture_output=True, timeout=timeout, check=False
    )
    return PluginRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
