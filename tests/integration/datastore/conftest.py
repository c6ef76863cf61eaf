"""Backends for the datastore contract suite.

Every test of the contract takes `backend` (a shared server where the backend
has one) or `restartable_backend` (a server of its own that the test may stop),
both parametrized over `BACKENDS`. A `Backend` bundles what a test needs beyond
the `Datastore` protocol: the URL (for worker processes), a fresh client, and
per-backend ways to compact history, cause an outage and disrupt connections.

Adding a backend is one factory below plus one entry in `BACKENDS` (and in
`BACKEND_MARKS` if it needs a marker). The kubernetes backend runs against
the session's real API server (tests/support/kube.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from gingham.datastore import Datastore
from gingham.datastore.etcd import EtcdDatastore
from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.datastore.sqlite import SqliteDatastore
from gingham.datastore.url import EtcdEndpoint
from gingham.k8s.crds import crd
from tests.integration.datastore.kinds import ContractGadget, ContractWidget
from tests.support.etcd import EtcdServer, require_etcd
from tests.support.kube import KubeCluster


@dataclass
class Backend:
    name: str
    # What a separate process passes to open_datastore.
    url: str
    # A new client of the backend under test (the test closes it, or the fixture does).
    connect: Callable[[], Datastore]
    # Drop all watch history up to now.
    compact: Callable[[], Awaitable[None]]
    # Inside the context the backend cannot serve writes (and reads, if
    # `reads_fail_in_outage`); on exit it is back.
    outage: Callable[[], AbstractAsyncContextManager[None]]
    reads_fail_in_outage: bool
    # Break live connections and come back (a restart where there is a server).
    disrupt: Callable[[], Awaitable[None]]
    opened: list[Datastore] = field(default_factory=list)

    def open(self) -> Datastore:
        store = self.connect()
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


# --- sqlite --------------------------------------------------------------------


@asynccontextmanager
async def sqlite_backend(
    request: pytest.FixtureRequest, own_server: bool
) -> AsyncIterator[Backend]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    path = str(tmp_path / "state" / "gingham.db")

    async def compact() -> None:
        store = SqliteDatastore(path)
        try:
            await store.compact(keep_rows=0, keep_seconds=0)
        finally:
            await store.close()

    @asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        # Another process holding the write lock past busy_timeout is what
        # "down" means for a file: writers cannot get in. WAL readers still can.
        locker = sqlite3.connect(path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            yield
        finally:
            locker.close()

    async def disrupt() -> None:
        # Nothing to restart; the most disruptive legal thing another process
        # can do is fold the WAL back and truncate it under the watcher.
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    yield Backend(
        name="sqlite",
        url=f"sqlite://{path}",
        connect=lambda: SqliteDatastore(path, busy_timeout=0.5),
        compact=compact,
        outage=outage,
        reads_fail_in_outage=False,
        disrupt=disrupt,
    )


# --- etcd ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """One etcd for the whole session; tests must not stop it."""
    require_etcd()
    server = EtcdServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@asynccontextmanager
async def etcd_backend(request: pytest.FixtureRequest, own_server: bool) -> AsyncIterator[Backend]:
    require_etcd()
    owned = EtcdServer() if own_server else None
    if owned is not None:
        owned.start()
    server = owned or request.getfixturevalue("etcd_server")
    endpoint = EtcdEndpoint("127.0.0.1", server.client_port)

    async def compact() -> None:
        server.compact()

    @asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        if owned is None:
            raise RuntimeError("outage needs restartable_backend (its own etcd)")
        owned.stop()
        try:
            yield
        finally:
            owned.start()

    async def disrupt() -> None:
        if owned is None:
            raise RuntimeError("disrupt needs restartable_backend (its own etcd)")
        owned.stop()
        owned.start()

    try:
        yield Backend(
            name="etcd",
            url=server.url,
            connect=lambda: EtcdDatastore([endpoint], timeout=2.0),
            compact=compact,
            outage=outage,
            reads_fail_in_outage=True,
            disrupt=disrupt,
        )
    finally:
        if owned is not None:
            owned.close()
        else:
            server.wipe("/gingham/")


# --- kubernetes (a real API server) -------------------------------------------------


CONTRACT_KINDS = (ContractWidget, ContractGadget)


@pytest.fixture(scope="session")
def contract_crds(kube_cluster: KubeCluster) -> KubeCluster:
    """The suite's own kinds as CRDs on the session's API server."""
    kube_cluster.apply(yaml.safe_dump_all([crd(kind) for kind in CONTRACT_KINDS]))
    names = [f"crd/{kind.plural}.gingham.io" for kind in CONTRACT_KINDS]
    kube_cluster.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")
    return kube_cluster


@asynccontextmanager
async def kubernetes_backend(
    request: pytest.FixtureRequest, own_server: bool
) -> AsyncIterator[Backend]:
    # One API server for the session: "own_server" tests stop and start its
    # kube-apiserver process (etcd and the data stay), so no other test may
    # run meanwhile (the suite runs tests one at a time).
    cluster: KubeCluster = request.getfixturevalue("contract_crds")
    plane = cluster.plane
    kubeconfig = str(cluster.admin_kubeconfig)

    async def compact() -> None:
        # The API server's watch cache keeps recent events in memory whatever
        # etcd holds; a restart (an upgrade, a failover) drops them, and only
        # then is old history really gone for a client.
        await asyncio.to_thread(cluster.compact_etcd)
        await asyncio.to_thread(plane.restart, "kube-apiserver")

    @asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        if not own_server:
            raise RuntimeError("outage needs restartable_backend")
        await asyncio.to_thread(plane.stop_component, "kube-apiserver")
        try:
            yield
        finally:
            await asyncio.to_thread(plane.start_component, "kube-apiserver")

    async def disrupt() -> None:
        # Cut every client connection to the API server (the kernel aborts the
        # sockets): what a load balancer or a network blip does. Restarting the
        # API server instead would also drop its watch cache (see compact).
        await asyncio.to_thread(
            subprocess.run,
            ["ss", "-K", "dst", plane.address, "dport", "=", f":{plane.port}"],
            check=True,
            capture_output=True,
        )

    try:
        yield Backend(
            name="kubernetes",
            url=f"kubernetes://?kubeconfig={kubeconfig}",
            connect=lambda: KubernetesDatastore(kubeconfig, timeout=5.0),
            compact=compact,
            outage=outage,
            reads_fail_in_outage=True,
            disrupt=disrupt,
        )
    finally:
        plurals = ",".join(kind.plural for kind in CONTRACT_KINDS)
        cluster.kubectl("delete", plurals, "--all", "--wait=true")


BACKENDS: dict[
    str, Callable[[pytest.FixtureRequest, bool], AbstractAsyncContextManager[Backend]]
] = {
    "sqlite": sqlite_backend,
    "etcd": etcd_backend,
    "kubernetes": kubernetes_backend,
}


# Marks per backend (pyproject declares them), so `-m "not etcd"` deselects.
BACKEND_MARKS: dict[str, list[pytest.MarkDecorator]] = {
    "etcd": [pytest.mark.etcd],
    "kubernetes": [pytest.mark.kubernetes],
}
BACKEND_PARAMS = [
    pytest.param(name, marks=BACKEND_MARKS.get(name, [])) for name in sorted(BACKENDS)
]


@pytest.fixture(params=BACKEND_PARAMS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with BACKENDS[request.param](request, False) as made:
        try:
            yield made
        finally:
            await made.close_all()


@pytest.fixture(params=BACKEND_PARAMS)
async def restartable_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with BACKENDS[request.param](request, True) as made:
        try:
            yield made
        finally:
            await made.close_all()


@pytest.fixture
def store(backend: Backend) -> Datastore:
    return backend.open()


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "integration/datastore/" in report.nodeid:
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Measured, not asserted: speed targets live in bench/.
    if _durations:
        terminalreporter.write_line(
            f"datastore suite: {sum(_durations.values()):.1f}s over {len(_durations)} tests"
        )
