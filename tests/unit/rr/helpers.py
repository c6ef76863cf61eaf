"""Small builders for route reflector tests: addresses, prefixes, paths, peers."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from route_reflector.api.messages import Origin, PathAttributes, Peer
from route_reflector.rib import Path


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def attrs(
    next_hop: str = "192.0.2.1",
    *,
    as_path: tuple[int, ...] = (),
    origin: Origin = Origin.IGP,
    med: int | None = None,
    local_pref: int = 100,
    originator_id: str | None = None,
    cluster_list: tuple[str, ...] = (),
    communities: tuple[str, ...] = (),
) -> PathAttributes:
    return PathAttributes(
        next_hop=ip(next_hop),
        as_path=as_path,
        origin=origin,
        med=med,
        local_pref=local_pref,
        originator_id=ip(originator_id) if originator_id else None,
        cluster_list=tuple(ip(c) for c in cluster_list),
        communities=communities,
    )


def peer(address: str, router_id: str | None = None, *, client: bool = True) -> Peer:
    return Peer(ip(address), ip(router_id or address), client)


def path(
    peer_address: str,
    attributes: PathAttributes | None = None,
    *,
    router_id: str | None = None,
    prefix: str = "10.65.0.0/26",
) -> Path:
    return Path(net(prefix), attributes or attrs(), peer(peer_address, router_id))
