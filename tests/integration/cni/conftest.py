"""Fixtures for CNI spec tests: the plugin installed in a temp bin dir, a netns, a FAKE felix."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cni.install import install
from tests.support.cni_exec import PluginRun, exec_plugin
from tests.support.fake_felix import FakeFelix, serve_fake_felix
from tests.support.names import unique_prefix


class Installed:
    def __init__(self, root: Path) -> None:
        self.bin_dir = root / "bin"
        self.conf_dir = root / "conf"
        self.run_dir = root / "run"
        self.run_dir.mkdir(parents=True)
        install(self.bin_dir, self.conf_dir, run_dir=str(self.run_dir))
        self.plugin = self.bin_dir / "gingham"
        self.socket = str(self.run_dir / "felix.sock")

    def config(self, version: str = "1.1.0", **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "cniVersion": version,
            "name": "gingham",
            "type": "gingham",
            "felix_socket": self.socket,
            "timeout_seconds": 5,
        }
        conf.update(extra)
        return conf

    def run(self, command: str | None, config: Any, **env: Any) -> PluginRun:
        env.setdefault("cni_path", str(self.bin_dir))
        return exec_plugin(self.plugin, command, config, **env)


@pytest.fixture
def installed(tmp_path: Path) -> Installed:
    return Installed(tmp_path)


@pytest.fixture
def fake_felix(installed: Installed) -> Iterator[FakeFelix]:
    with serve_fake_felix(installed.socket) as fake:
        yield fake


@pytest.fixture
def netns() -> Iterator[str]:
    name = unique_prefix("cn")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/var/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
