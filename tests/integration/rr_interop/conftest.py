"""Fixtures for route-reflector interop: whole gingham nodes beside real BGP daemons.

`fabric` is a `tests.support.node_fabric.Fabric` (a bridge namespace, an
sqlite datastore, `gingham node run` per node) seeded with the pool and a
BGPConfiguration with the node-to-node mesh off — every test here peers
through a route reflector. Everything it made is removed afterwards, even
when the test fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from tests.support.node_fabric import AS, Fabric, resource
from tests.support.poll import async_wait_for

POOL = "10.66.0.0/16"
CLUSTER_ID = IPv4Address("1.1.1.1")


@pytest.fixture
async def fabric(tmp_path: Path) -> AsyncIterator[Fabric]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    made = Fabric(tmp_path)
    try:
        await made.apply(
            resource("IPPool", "default", {"cidr": POOL}),
            resource(
                "BGPConfiguration",
                "default",
                {"asNumber": AS, "nodeToNodeMeshEnabled": False, "holdTime": "9s"},
            ),
        )
        yield made
    finally:
        made.close()


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a blocking check (birdc, vtysh, ip) off the event loop, with a deadline."""
    import asyncio

    async def probe() -> Any:
        return await asyncio.to_thread(check)

    return await async_wait_for(probe, timeout=timeout, interval=0.2, what=what)
