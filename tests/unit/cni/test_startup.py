"""The plugin's start-up stays cheap: what a CNI exec imports, checked in a fresh interpreter.

Every CNI call is a new process, so each module on the import path is paid per
pod (issue 5: ADD and DEL p50 <= 80 ms). These modules cost milliseconds each
on the dev machine and have cheap replacements (cni/jsonio.py, cni/records.py,
`_socket` in cni/h2grpc.py); a change that brings one back fails here rather
than silently in bench/cni.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cni.install import import_roots

# Each is several milliseconds (or, for grpc/protobuf, 100+) of a ~15 ms budget.
EXPENSIVE = {
    "re",
    "json",
    "enum",
    "typing",
    "dataclasses",
    "inspect",
    "socket",
    "struct",
    "contextlib",
    "functools",
    "collections",
    "ipaddress",
    "grpc",
    "google.protobuf",
}


def plugin_modules(command: str, config: dict[str, object], tmp_path: Path) -> set[str]:
    """The modules loaded by one exec of the plugin, run as the installed script runs it."""
    code = (
        f"import sys; sys.path[:0] = {import_roots()!r}\n"
        "from cni.plugin import main\n"
        "main()\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        input=json.dumps(config).encode(),
        env={
            "PATH": "/usr/bin:/bin",
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": "c0ffee",
            "CNI_IFNAME": "eth0",
            "CNI_NETNS": "",
            "CNI_PATH": "/opt/cni/bin",
        },
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert json.loads(proc.stdout or b"{}") is not None  # the answer is still JSON
    return set(proc.stderr.decode().split())


@pytest.mark.parametrize(
    ("command", "config"),
    [
        ("VERSION", {"cniVersion": "1.1.0"}),
        # DEL and STATUS go as far as dialing felix (the socket is missing: code 11 / 50).
        ("DEL", {"cniVersion": "1.1.0", "name": "n", "felix_socket": "/nonexistent/f.sock"}),
        ("STATUS", {"cniVersion": "1.1.0", "name": "n", "felix_socket": "/nonexistent/f.sock"}),
        ("ADD", {"cniVersion": "1.1.0", "name": "n", "mtu": "not a number"}),
    ],
)
def test_plugin_imports_nothing_expensive(
    command: str, config: dict[str, object], tmp_path: Path
) -> None:
    loaded = plugin_modules(command, config, tmp_path)
    assert "cni.plugin" in loaded
    assert not loaded & EXPENSIVE, f"{command} imported {sorted(loaded & EXPENSIVE)}"


def test_felix_client_is_loaded_only_by_commands_that_call_felix(tmp_path: Path) -> None:
    assert "cni.h2grpc" not in plugin_modules("VERSION", {"cniVersion": "1.1.0"}, tmp_path)
