"""ExaBGP's vocabulary for route reflection: full path attributes in and out.

Part of the one ExaBGP adapter (with `exabgp_wire`, which owns sessions and
our own announcements): this module reads the attributes of a received
UPDATE from ExaBGP's JSON into a `route_reflector.api.messages.PathAttributes`, and
writes the per-neighbor commands that announce reflected routes with their
attributes as the reflector decided them — next hop unchanged,
ORIGINATOR_ID and CLUSTER_LIST set:

    neighbor A , neighbor B announce attributes next-hop N origin igp
        local-preference 100 originator-id O cluster-list [ C ] nlri P1 P2 …
    neighbor A withdraw attributes nlri P3 …

Invariants:
- Pure functions; no process, no socket.
- `attributes_from_json` never raises on a well-formed UPDATE: an attribute
  it cannot read is left at its default (logged by the caller's counters,
  not fatal — one odd attribute must not stop reflection).
- `reflected_changes` looks only at the prefixes it is told have changed,
  so reflecting one UPDATE costs its size, not the size of the tables. It
  puts withdrawals (by prefix alone) before announcements; neighbors that
  need the very same line share one command (ExaBGP handles a command's
  routes for all its neighbors in one pass), and no command carries more
  than `MAX_NLRI_PER_COMMAND` prefixes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bird_agent.exabgp_wire import MAX_NLRI_PER_COMMAND
from gingham.prefix import prefix_order
from route_reflector.api.messages import DEFAULT_LOCAL_PREF, Origin, PathAttributes

_ORIGINS = {"igp": Origin.IGP, "egp": Origin.EGP, "incomplete": Origin.INCOMPLETE}
_ORIGIN_WORDS = {v: k for k, v in _ORIGINS.items()}

PeerRoutes = Mapping[IPv4Address, Mapping[IPv4Network, PathAttributes]]
# Per neighbor, the prefixes that changed.
Touched = Mapping[IPv4Address, Collection[IPv4Network]]


def attributes_from_json(
    next_hop: IPv4Address, as_path: tuple[int, ...], raw: Mapping[str, Any]
) -> PathAttributes:
    """The attributes of one received UPDATE (ExaBGP's `attribute` object)."""
    return PathAttributes(
        next_hop=next_hop,
        as_path=as_path,
        origin=_ORIGINS.get(str(raw.get("origin", "igp")).lower(), Origin.IGP),
        med=_int(raw.get("med")),
        local_pref=_int(raw.get("local-preference")) or DEFAULT_LOCAL_PREF,
        originator_id=_address(raw.get("originator-id")),
        cluster_list=tuple(
            a for a in (_address(c) for c in raw.get("cluster-list") or ()) if a is not None
        ),
        communities=tuple(_joined(c) for c in raw.get("community") or ()),
        large_communities=tuple(_joined(c) for c in raw.get("large-community") or ()),
        extended_communities=tuple(
            str(c.get("string")) if isinstance(c, dict) else str(c)
            for c in raw.get("extended-community") or ()
        ),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _address(value: Any) -> IPv4Address | None:
    try:
        return IPv4Address(str(value)) if value else None
    except ValueError:
        return None


def _joined(value: Any) -> str:
    # [65000, 1] -> "65000:1"; a string is kept as ExaBGP wrote it.
    if isinstance(value, list | tuple):
        return ":".join(str(v) for v in value)
    return str(value)


def attribute_text(attributes: PathAttributes) -> str:
    """The words after `announce attributes` (before `nlri`) for `attributes`."""
    words = [
        f"next-hop {attributes.next_hop}",
        f"origin {_ORIGIN_WORDS[attributes.origin]}",
        f"local-preference {attributes.local_pref}",
    ]
    if attributes.as_path:
        words.append(f"as-path [ {' '.join(map(str, attributes.as_path))} ]")
    if attributes.med is not None:
        words.append(f"med {attributes.med}")
    if attributes.originator_id is not None:
        words.append(f"originator-id {attributes.originator_id}")
    if attributes.cluster_list:
        words.append(f"cluster-list [ {' '.join(map(str, attributes.cluster_list))} ]")
    for keyword, values in (
        ("community", attributes.communities),
        ("large-community", attributes.large_communities),
        ("extended-community", attributes.extended_communities),
    ):
        if values:
            words.append(f"{keyword} [ {' '.join(values)} ]")
    return " ".join(words)


def reflected_changes(desired: PeerRoutes, touched: Touched) -> list[str]:
    """The commands that bring the `touched` prefixes of each neighbor to what
    `desired` says: announced with their attributes, or withdrawn.

    Only touched prefixes are looked at, so a change costs what it changes,
    not the size of the tables. A withdrawal names no attributes: ExaBGP
    finds a route by its prefix alone."""
    # (action, attribute text, prefixes) -> the neighbors needing that line.
    lines: dict[tuple[str, str, tuple[IPv4Network, ...]], list[IPv4Address]] = {}
    # By id(): one UPDATE's prefixes share one attributes object, and hashing
    # a PathAttributes (addresses inside) per prefix dominated (profiled).
    # Every keyed object stays alive in `desired` during the call.
    texts: dict[int, str] = {}
    for neighbor in sorted(touched):
        want = desired.get(neighbor, {})
        gone: list[IPv4Network] = []
        new: dict[str, list[IPv4Network]] = {}
        for prefix in touched[neighbor]:
            attributes = want.get(prefix)
            if attributes is None:
                gone.append(prefix)
                continue
            text = texts.get(id(attributes))
            if text is None:
                text = texts[id(attributes)] = attribute_text(attributes)
            new.setdefault(text, []).append(prefix)
        for action, groups in (("withdraw", {"": gone} if gone else {}), ("announce", new)):
            for text, group in groups.items():
                for chunk in _chunks(sorted(group, key=prefix_order)):
                    lines.setdefault((action, text, chunk), []).append(neighbor)
    out = []
    # Withdrawals first (a stable order; per neighbor a prefix is never both).
    for (action, text, chunk), neighbors in sorted(
        lines.items(), key=lambda kv: kv[0][0] != "withdraw"
    ):
        who = " , ".join(f"neighbor {n}" for n in neighbors)
        words = f"{text} nlri" if text else "nlri"
        out.append(f"{who} {action} attributes {words} {' '.join(map(str, chunk))}")
    return out


def _chunks(items: list[IPv4Network]) -> Iterator[tuple[IPv4Network, ...]]:
    for start in range(0, len(items), MAX_NLRI_PER_COMMAND):
        yield tuple(items[start : start + MAX_NLRI_PER_COMMAND])
