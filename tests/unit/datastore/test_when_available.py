"""`when_available`: the start-up wait that `node run` and gingham-bgp share."""

from __future__ import annotations

import logging

import pytest

from gingham.datastore import NotFound, Unavailable, when_available

log = logging.getLogger("test")


async def test_retries_an_unavailable_datastore_saying_why_then_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    async def call() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise Unavailable("connection refused")
        return "node"

    with caplog.at_level(logging.WARNING, logger="test"):
        assert await when_available(call, "etcd://10.0.0.1:2379", log) == "node"
    assert len(attempts) == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "datastore etcd://10.0.0.1:2379 unavailable (connection refused): retrying in 0.5 s",
        "datastore etcd://10.0.0.1:2379 unavailable (connection refused): retrying in 1.0 s",
    ]


async def test_gives_up_after_the_wait_and_passes_other_errors_at_once() -> None:
    async def down() -> None:
        raise Unavailable("timeout")

    with pytest.raises(Unavailable, match="timeout"):
        await when_available(down, "etcd://x:1", log, wait=0.1)

    calls: list[int] = []

    async def missing() -> None:
        calls.append(1)
        raise NotFound("Node n1")

    with pytest.raises(NotFound):
        await when_available(missing, "etcd://x:1", log)
    assert calls == [1]
