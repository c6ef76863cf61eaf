"""Fixtures for IPAM integration tests: both datastore backends, worker processes.

`backend` is parametrized over sqlite (a fresh file per test) and etcd (one
server for the session, wiped after each test); a test that names
`WITH_KUBERNETES` also runs against the session's real API server (its IPAM
objects deleted after the test). `Workers` starts
``python -m tests.integration.ipam.worker`` processes that each open the
store by URL, as separate felix processes would, and stops them by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gingham.datastore import Datastore, open_datastore
from gingham.ipam import IPAM
from gingham.model import parse_resource
from tests.support.etcd import EtcdServer, require_etcd
from tests.support.kube import KubeCluster

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Backend:
    name: str
    url: str
    opened: list[Datastore] = field(default_factory=list)

    def open(self) -> Datastore:
        store = open_datastore(self.url)
        self.opened.append(store)
        return store


@pytest.fixture(scope="session")
def ipam_etcd() -> Iterator[EtcdServer]:
    require_etcd()
    server = EtcdServer(name="gingham-ipam-test")
    server.start()
    try:
        yield server
    finally:
        server.close()


# The kinds IPAM tests write, as kubectl names them (core Nodes are not ours).
IPAM_RESOURCES = (
    "ippools,nodes.gingham.io,ipamconfigurations,ipamblocks,blockaffinities,ipamhandles"
)

# A test that also runs against the session's real API server parametrizes
# `backend` with these (indirect); the default is sqlite and etcd.
WITH_KUBERNETES = [
    "sqlite",
    pytest.param("etcd", marks=pytest.mark.etcd),
    pytest.param("kubernetes", marks=pytest.mark.kubernetes),
]


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    server: EtcdServer | None = None
    cluster: KubeCluster | None = None
    if request.param == "etcd":
        server = request.getfixturevalue("ipam_etcd")
        made = Backend("etcd", server.url)
    elif request.param == "kubernetes":
        cluster = request.getfixturevalue("kube_cluster")
        made = Backend("kubernetes", f"kubernetes://?kubeconfig={cluster.admin_kubeconfig}")
    else:
        made = Backend("sqlite", f"sqlite://{tmp_path}/ipam.db")
    try:
        yield made
    finally:
        for store in made.opened:
            await store.close()
        if server is not None:
            server.wipe("/gingham/")
        if cluster is not None:
            cluster.kubectl("delete", IPAM_RESOURCES, "--all", "--wait=true", timeout=120)


@pytest.fixture
def store(backend: Backend) -> Datastore:
    return backend.open()


@pytest.fixture
def ipam(store: Datastore) -> IPAM:
    return IPAM(store)


def doc(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> Any:
    return parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": kind,
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
    )


async def add_pool(store: Datastore, name: str, cidr: str, block_size: int, **spec: Any) -> None:
    await store.create(doc("IPPool", name, {"cidr": cidr, "blockSize": block_size, **spec}))


async def add_node(store: Datastore, name: str, index: int, **labels: str) -> None:
    spec = {"bgp": {"ipv4Address": f"192.168.0.{index}/24"}}
    await store.create(doc("Node", name, spec, labels))


class Workers:
    """Worker processes started together, released together, stopped by PID."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ipam.worker", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.procs.append(proc)
        return proc

    def go(self) -> None:
        """Wait until every worker is ready, then let them all start at once."""
        for proc in self.procs:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"worker said {line!r}; stderr: {self._err(proc)}"
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def results(self, timeout: float = 120.0) -> list[Any]:
        out = []
        for proc in self.procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"worker failed ({proc.returncode}): {stderr[-3000:]}"
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out

    @staticmethod
    def _err(proc: subprocess.Popen[str]) -> str:
        if proc.poll() is None:
            return "(still running)"
        assert proc.stderr is not None
        return proc.stderr.read()[-3000:]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    made = Workers()
    try:
        yield made
    finally:
        made.stop()
