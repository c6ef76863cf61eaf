"""A `Fabric` (tests/support/node_fabric.py) per test: nodes, pods and peers, all removed after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node_fabric import Fabric


@pytest.fixture
def fabric(tmp_path: Path) -> Iterator[Fabric]:
    made = Fabric(tmp_path)
    try:
        yield made
    finally:
        made.close()
