"""Fixtures for felix's real-kernel tests: namespaces that always get removed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.netns import Topology

pytestmark = pytest.mark.root


@pytest.fixture
def topo() -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Topology() as t:
        yield t
