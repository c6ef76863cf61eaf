"""Each test sees ExaBGP as installed: what a test patches is undone after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bird_agent import exabgp_main


@pytest.fixture(autouse=True)
def exabgp_as_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(exabgp_main.STOCK_VARIABLE, raising=False)
    yield
    exabgp_main.restore()
