"""Which addresses an ADD gets: the IPAM felix needs, and CNI pool choices.

`resolve_pools` turns the CNI config's `ipv4_pools` entries (an IPPool's name
or its CIDR) into pool names against the pools felix knows; `assign_addresses`
asks IPAM for an address from the first of them that has one, in preference
order as Calico does; IPAM's errors become `WorkloadError` kinds the servicer
maps to gRPC and CNI codes.

Invariants:
- An unknown or disabled pool is an `invalid` error on field `pools[i]`
  (`transient` before the datastore snapshot, when felix cannot know yet).
- Only exhaustion moves on to the next pool; a requested address is asked
  of exactly one pool.
- The IPAM handle is `<container ID>.<interface>` (`handle_for`), so IPAM's
  leak check can map handles back to WorkloadEndpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Protocol

from felix.desired import PoolInfo


class Ipam(Protocol):
    """What felix needs from gingham.ipam (see issue 3)."""

    async def assign(
        self,
        handle: str,
        node: str,
        attributes: Mapping[str, str],
        *,
        pool: str | None = None,
        count: int = 1,
        ip: IPv4Address | None = None,
    ) -> Sequence[IPv4Address | IPv6Address]: ...

    async def release(self, handle: str) -> object: ...


class WorkloadError(Exception):
    """An add/delete failure with a kind the servicer maps to a gRPC/CNI code."""

    def __init__(self, kind: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind, self.field = kind, field  # kind: invalid | exhausted | transient | internal


def handle_for(container_id: str, interface: str) -> str:
    return f"{container_id}.{interface}"


def classify_ipam_error(exc: Exception) -> str:
    """Map an IPAM exception to a WorkloadError kind by its type's name.

    gingham.ipam's error classes are not known here (it lands separately); its
    issue promises a typed "try again later" error and clear exhaustion errors.
    """
    name = type(exc).__name__.lower()
    if any(word in name for word in ("unavailable", "conflict", "tryagain", "timeout")):
        return "transient"
    if any(word in name for word in ("exhaust", "nofree", "full", "taken", "inuse")):
        return "exhausted"
    if isinstance(exc, ValueError) or "invalid" in name:
        return "invalid"
    return "internal"


def resolve_pools(entries: Sequence[str], pools: Mapping[str, PoolInfo], synced: bool) -> list[str]:
    """Each CNI `ipv4_pools` entry — an IPPool name or its CIDR — as the pool's name.

    `synced`: felix has read the whole datastore (else an unknown pool may
    just not have arrived yet)."""
    names = []
    for i, entry in enumerate(entries):
        name = _pool_name(entry.strip(), pools)
        where = f"pools[{i}]"
        if name is None:
            if not synced:
                raise WorkloadError(
                    "transient",
                    f"{where}: IPPool {entry!r} is not known yet "
                    "(felix has not finished reading the datastore)",
                    where,
                )
            known = ", ".join(f"{n} ({p.cidr})" for n, p in sorted(pools.items()))
            raise WorkloadError(
                "invalid",
                f"{where}: no IPPool is named {entry!r} or has that CIDR "
                f"(known: {known or 'none'})",
                where,
            )
        if pools[name].disabled:
            raise WorkloadError("invalid", f"{where}: IPPool {name!r} is disabled", where)
        names.append(name)
    return names


def _pool_name(entry: str, pools: Mapping[str, PoolInfo]) -> str | None:
    if entry in pools:
        return entry
    try:
        cidr = IPv4Network(entry)
    except ValueError:
        return None
    return next((n for n, p in pools.items() if p.cidr == cidr), None)


async def assign_addresses(
    ipam: Ipam,
    handle: str,
    node: str,
    *,
    attributes: Mapping[str, str],
    pools: Sequence[str],
    requested: IPv4Address | None,
) -> Sequence[IPv4Address | IPv6Address]:
    """Addresses from the first of `pools` that has one (any pool if none given)."""
    choices: list[str | None] = list(pools) or [None]
    field = "requested_ips[0]" if requested is not None else "pools"
    for i, pool in enumerate(choices):
        try:
            return await ipam.assign(handle, node, attributes, pool=pool, count=1, ip=requested)
        except Exception as exc:
            kind = classify_ipam_error(exc)
            if kind == "exhausted" and requested is None and i + 1 < len(choices):
                continue  # the next pool in preference order, as Calico does
            raise WorkloadError(kind, f"IPAM: {exc}", field) from exc
    raise AssertionError("unreachable: the loop returns or raises")
