"""A tiny in-memory IPAM standing in for gingham.ipam where a test needs one.

It follows felix.workloads.Ipam: assign by handle (idempotent per handle),
release by handle, and an exception whose name says "exhausted".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address


class AddressesExhausted(Exception):
    pass


class ListIpam:
    """Hands out addresses from a fixed list; handle → addresses."""

    def __init__(self, addresses: list[str]) -> None:
        self.free = [IPv4Address(a) for a in addresses]
        self.by_handle: dict[str, list[IPv4Address]] = {}

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
        if handle in self.by_handle:
            return self.by_handle[handle]
        if len(self.free) < count:
            raise AddressesExhausted("no free address in the pool")
        got, self.free = self.free[:count], self.free[count:]
        self.by_handle[handle] = got
        return got

    async def release(self, handle: str) -> None:
        self.free += self.by_handle.pop(handle, [])
