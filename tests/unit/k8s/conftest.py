"""A FAKE API server per test (tests/support/fake_apiserver.py) and a client of it,
for the tests that need what only a fake gives: the requests it served, an
expired paging snapshot on demand. Everything else runs against the session's
real API server (tests/integration/k8s, tests/support/kube.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gingham.datastore.kubernetes import KubernetesDatastore
from tests.support.fake_apiserver import FakeApiServer


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeApiServer]:
    server = FakeApiServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def store(fake: FakeApiServer) -> AsyncIterator[KubernetesDatastore]:
    made = KubernetesDatastore(str(fake.kubeconfig), timeout=2.0)
    try:
        yield made
    finally:
        await made.close()
