"""ExaBGP's vocabulary for route reflection: full path attributes in and out.

Part of the one ExaBGP adapter (with `exabgp_wire`, which owns sessions and
our own announcements): this module reads the attributes of a received
UPDATE from ExaBGP's JSON into a `route_reflector.api.messages.PathAttributes`, and
writes the commands that announce reflected routes to groups of neighbors
with their attributes as the reflector decided them — next hop unchanged,
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
  so reflecting one UPDATE costs its size, not the size of the table. It
  puts withdrawals (by prefix alone) before announcements; neighbors that
  need the very same line share one command (ExaBGP builds its UPDATEs once
  for all of them), and no command carries more than `MAX_NLRI_PER_COMMAND`
  prefixes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bird_agent.exabgp_wire import MAX_NLRI_PER_COMMAND
from gingham.prefix import prefix_order
from route_reflector.api.client import Reflected
from route_reflector.api.messages import DEFAULT_LOCAL_PREF, Origin, PathAttributes, PeerSets
from route_reflector.api.messages import Peers as PeerGroup

_ORIGINS = {"igp": Origin.IGP, "egp": Origin.EGP, "incomplete": Origin.INCOMPLETE}
_ORIGIN_WORDS = {v: k for k, v in _ORIGINS.items()}


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


def reflected_changes(
    table: Reflected,
    changed: Mapping[IPv4Network, PeerGroup],
    kind: str = "attributes",
    sets: PeerSets | None = None,
) -> list[str]:
    """The commands that bring each changed prefix, for the neighbors it
    changed for, to what `table` says: announced with its attributes to those
    that hear it, withdrawn from the others.

    `kind`: the command's second word — `attributes` (ExaBGP's own, into each
    neighbor's outgoing RIB) or `reflected` (`bird_agent.exabgp_main`'s: to
    the sessions only, as shared UPDATEs).

    Only changed prefixes are looked at, so a change costs what it changes,
    not the size of the table; neighbors that need the very same line share
    one command, and the groups of neighbors are combined once per pair of
    groups (`sets`), not per prefix. A withdrawal names no attributes: ExaBGP
    finds a route by its prefix alone."""
    sets = sets if sets is not None else PeerSets()
    # (action, attribute text, neighbors) -> the prefixes.
    lines: dict[tuple[str, str, PeerGroup], list[IPv4Network]] = {}
    # By id(): one UPDATE's prefixes share one attributes object, and hashing
    # a PathAttributes (addresses inside) per prefix dominated (profiled).
    # Every keyed object stays alive in `table` during the call.
    texts: dict[int, str] = {}
    for prefix, peers in changed.items():
        entry = table.get(prefix)
        if entry is None:
            lines.setdefault(("withdraw", "", peers), []).append(prefix)
            continue
        attributes, holders = entry
        told = sets.both(peers, holders)
        if told:
            text = texts.get(id(attributes))
            if text is None:
                text = texts[id(attributes)] = attribute_text(attributes)
            lines.setdefault(("announce", text, told), []).append(prefix)
        gone = sets.minus(peers, holders)
        if gone:
            lines.setdefault(("withdraw", "", gone), []).append(prefix)
    out = []
    # Withdrawals first (a stable order; per neighbor a prefix is never both).
    for (action, text, peers), prefixes in sorted(
        lines.items(), key=lambda kv: kv[0][0] != "withdraw"
    ):
        who = " , ".join(f"neighbor {n}" for n in sorted(peers))
        words = f"{text} nlri" if text else "nlri"
        for chunk in _chunks(sorted(prefixes, key=prefix_order)):
            out.append(f"{who} {action} {kind} {words} {' '.join(map(str, chunk))}")
    return out


def _chunks(items: list[IPv4Network]) -> Iterator[tuple[IPv4Network, ...]]:
    for start in range(0, len(items), MAX_NLRI_PER_COMMAND):
        yield tuple(items[start : start + MAX_NLRI_PER_COMMAND])
