"""`KeyedLocks`: one asyncio.Lock per key, kept only while someone uses it.

For serialising work on one object among many (a pod attachment in felix, an
IPAM block in one process) without a lock table that grows with every object
ever seen: a key's lock exists while anyone holds or waits for it, and is
dropped when the last user leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable


class KeyedLocks:
    """One asyncio.Lock per key while anyone holds or waits for it: a node that
    has seen a million pods keeps no lock of the ones that are gone."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def users(self, key: Hashable) -> int:
        """How many hold or wait for `key`'s lock."""
        entry = self._locks.get(key)
        return entry[1][0] if entry is not None else 0

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]
