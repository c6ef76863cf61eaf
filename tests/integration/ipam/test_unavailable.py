"""A datastore that cannot answer: a typed "try again later", nothing half-done."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gingham.datastore.etcd import EtcdDatastore
from gingham.datastore.sqlite import SqliteDatastore
from gingham.datastore.url import EtcdEndpoint
from gingham.ipam import IPAM, IPAMUnavailable
from tests.integration.ipam.conftest import add_node, add_pool
from tests.support.etcd import free_port


async def test_sqlite_locked_out_is_try_again_later(tmp_path: Path) -> None:
    path = str(tmp_path / "locked.db")
    store = SqliteDatastore(path, busy_timeout=0.2)
    try:
        await add_pool(store, "p", "10.80.0.0/24", 26)
        await add_node(store, "n1", 1)
        ipam = IPAM(store)
        locker = sqlite3.connect(path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(IPAMUnavailable, match="try again later"):
                await ipam.assign("h", "n1")
        finally:
            locker.close()
        (address,) = await ipam.assign("h", "n1")  # back: works, nothing was left behind
        assert await ipam.release("h") == [address]
    finally:
        await store.close()


async def test_etcd_down_is_try_again_later() -> None:
    store = EtcdDatastore([EtcdEndpoint("127.0.0.1", free_port())], timeout=0.5)
    try:
        with pytest.raises(IPAMUnavailable, match="try again later"):
            await IPAM(store).assign("h", "n1")
        with pytest.raises(IPAMUnavailable):
            await IPAM(store).release("h")
    finally:
        await store.close()
