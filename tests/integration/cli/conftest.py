"""Run the real `gingham` CLI, as a separate process, against sqlite and etcd.

`gingham` (a `Gingham`) is parametrized over both backends: sqlite gets a
fresh file per test; etcd is one server on loopback for this folder's tests
(started by `tests.support.etcd.EtcdServer`, stopped by PID), wiped of
Gingham's keys before each test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gingham.datastore import open_datastore
from gingham.datastore.etcd import KEY_PREFIX
from tests.support.etcd import EtcdServer, require_etcd

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"


@dataclass
class Gingham:
    """The CLI pointed at one datastore (through $GINGHAM_DATASTORE, as a user would)."""

    datastore: str
    cwd: Path

    def run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GINGHAM_DATASTORE": self.datastore}
        return subprocess.run(
            [sys.executable, "-m", "gingham.cli.main", *argv],
            input=stdin if stdin is not None else "",
            capture_output=True,
            check=False,
            text=True,
            env=env,
            cwd=self.cwd,
            timeout=60,
        )

    def ok(self, *argv: str, stdin: str | None = None) -> str:
        """stdout of a command that must succeed (and say nothing on stderr)."""
        result = self.run(*argv, stdin=stdin)
        assert result.returncode == 0, f"gingham {' '.join(argv)}: {result.stderr}"
        assert result.stderr == "", f"gingham {' '.join(argv)}: {result.stderr}"
        return result.stdout

    def items(self, kind: str) -> list[dict[str, Any]]:
        """Every stored object of `kind`, as `get -o json` shows it."""
        body = json.loads(self.ok("get", kind, "-o", "json"))
        assert body["kind"] == "List"
        items: list[dict[str, Any]] = body["items"]
        return items

    def stored(self, *kinds: str) -> list[dict[str, Any]]:
        """Every stored object of `kinds`, read from the datastore itself (no CLI):
        a cheaper and independent check of what a command wrote."""
        return asyncio.run(_stored(self.datastore, kinds))


async def _stored(url: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    store = open_datastore(url)
    try:
        return [obj.to_document() for kind in kinds for obj in (await store.list(kind)).items]
    finally:
        await store.close()


@pytest.fixture(scope="module")
def cli_etcd() -> Iterator[EtcdServer]:
    require_etcd()
    server = EtcdServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
def gingham(request: pytest.FixtureRequest, tmp_path: Path) -> Gingham:
    if request.param == "sqlite":
        return Gingham(f"sqlite://{tmp_path}/state/gingham.db", tmp_path)
    server: EtcdServer = request.getfixturevalue("cli_etcd")
    server.wipe(KEY_PREFIX)
    return Gingham(server.url, tmp_path)


@pytest.fixture
def sqlite_gingham(tmp_path: Path) -> Gingham:
    """For behaviour that does not depend on the backend."""
    return Gingham(f"sqlite://{tmp_path}/state/gingham.db", tmp_path)
