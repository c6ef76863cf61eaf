"""A tiny in-memory IPAM standing in for gingham.ipam where a test needs one.

It follows felix.pod_addresses.Ipam: assign by handle (idempotent per handle),
release by handle, and an exception whose name says "exhausted".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address


class AddressesExhausted(Exception):
    pass


class ListIpam:
    """Hands out addresses from a fixed list; handle → addresses."""

    def __init__(self, addresses: list[str], pools: dict[str, list[str]] | None = None) -> None:
        self.free = [IPv4Address(a) for a in addresses]
        # Named pools (by IPPool name, as felix passes them) with their own lists.
        self.pools = {n: [IPv4Address(a) for a in addrs] for n, addrs in (pools or {}).items()}
        self.by_handle: dict[str, list[IPv4Address]] = {}
        self.home: dict[str, str | None] = {}
        # When set, assign() waits for it: a test holds an add "in progress".
        self.gate: asyncio.Event | None = None
        self.waiting = 0

    async def assign(
        self,
        handle: str,
        node: str,
        attributes: Mapping[str, str],
        *,
        pool: str | None = None,
        count: int = 1,
        ip: IPv4Address | None = None,
    ) -> Sequence[IPv4Address]:
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        if handle in self.by_handle:
            return self.by_handle[handle]
        free = self.free if pool is None else self.pools[pool]
        if len(free) < count:
            raise AddressesExhausted(f"no free address in pool {pool or 'default'}")
        got, free[:] = free[:count], free[count:]
        self.by_handle[handle], self.home[handle] = got, pool
        return got

    async def release(self, handle: str) -> None:
        pool = self.home.pop(handle, None)
        (self.free if pool is None else self.pools[pool]).extend(self.by_handle.pop(handle, []))
