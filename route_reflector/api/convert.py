"""Protobuf ↔ core types for the Reflector service (gingham/v1/reflector.proto).

Both directions in one place so the servicer only translates calls, and a
client (bird_agent, tests) can build inputs and read outputs with the same
functions.

Invariants:
- Decoding never raises anything but `ValueError`, whose message names the
  message and field at fault ("ReflectorInput.prefixes[2]: …").
- encode(decode(x)) == x for every well-formed message.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

from gingham.prefix import parse_prefix
from gingham.v1 import reflector_pb2 as pb
from route_reflector.api.messages import (
    DEFAULT_LOCAL_PREF,
    Announce,
    FeedInput,
    FeedOutput,
    GroupChange,
    Origin,
    OutputType,
    PathAttributes,
    Peer,
    PeerDown,
    Peers,
    PeerUp,
    SnapshotBegin,
    SnapshotEnd,
    Withdraw,
)

_OUTPUT_TYPES = {
    OutputType.DELTA: pb.DELTA,
    OutputType.SNAPSHOT_BEGIN: pb.OUTPUT_SNAPSHOT_BEGIN,
    OutputType.SNAPSHOT_END: pb.OUTPUT_SNAPSHOT_END,
}
_ORIGINS = {
    pb.ORIGIN_IGP: Origin.IGP,
    pb.ORIGIN_EGP: Origin.EGP,
    pb.ORIGIN_INCOMPLETE: Origin.INCOMPLETE,
}


def _address(value: str, where: str) -> IPv4Address:
    try:
        return IPv4Address(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not an IPv4 address") from None


def _prefix(value: str, where: str) -> IPv4Network:
    try:
        return parse_prefix(value)  # (the reflector's output: every prefix x peer)
    except ValueError as exc:
        raise ValueError(f"{where}: {value!r} is not an IPv4 prefix ({exc})") from None


def _prefixes(values: Iterable[str], where: str) -> tuple[IPv4Network, ...]:
    return tuple(_prefix(v, f"{where}[{i}]") for i, v in enumerate(values))


# -- attributes ----------------------------------------------------------------


def decode_attributes(message: pb.PathAttributes, where: str = "PathAttributes") -> PathAttributes:
    origin = _ORIGINS.get(message.origin)
    if origin is None:
        raise ValueError(f"{where}.origin: unknown value {message.origin}")
    return PathAttributes(
        next_hop=_address(message.next_hop, f"{where}.next_hop"),
        as_path=tuple(message.as_path),
        origin=origin,
        med=message.med if message.HasField("med") else None,
        local_pref=message.local_pref if message.HasField("local_pref") else DEFAULT_LOCAL_PREF,
        originator_id=(
            _address(message.originator_id, f"{where}.originator_id")
            if message.originator_id
            else None
        ),
        cluster_list=tuple(
            _address(c, f"{where}.cluster_list[{i}]") for i, c in enumerate(message.cluster_list)
        ),
        communities=tuple(message.communities),
        large_communities=tuple(message.large_communities),
        extended_communities=tuple(message.extended_communities),
    )


def encode_attributes(attributes: PathAttributes) -> pb.PathAttributes:
    message = pb.PathAttributes(
        next_hop=str(attributes.next_hop),
        as_path=attributes.as_path,
        origin=int(attributes.origin),  # type: ignore[arg-type]
        local_pref=attributes.local_pref,
        originator_id=str(attributes.originator_id) if attributes.originator_id else "",
        cluster_list=[str(c) for c in attributes.cluster_list],
        communities=attributes.communities,
        large_communities=attributes.large_communities,
        extended_communities=attributes.extended_communities,
    )
    if attributes.med is not None:
        message.med = attributes.med
    return message


# -- inputs --------------------------------------------------------------------


def decode_input(message: pb.ReflectorInput) -> FeedInput:
    kind = message.type
    where = "ReflectorInput"
    if kind == pb.INPUT_SNAPSHOT_BEGIN:
        return SnapshotBegin(
            cluster_id=_address(message.cluster_id, f"{where}.cluster_id"),
            router_id=_address(message.router_id, f"{where}.router_id"),
        )
    if kind == pb.INPUT_SNAPSHOT_END:
        return SnapshotEnd()
    peer = _address(message.peer, f"{where}.peer")
    if kind == pb.PEER_UP:
        router_id = _address(message.router_id, f"{where}.router_id")
        return PeerUp(Peer(peer, router_id, message.client))
    if kind == pb.PEER_DOWN:
        return PeerDown(peer)
    prefixes = _prefixes(message.prefixes, f"{where}.prefixes")
    if kind == pb.ANNOUNCE:
        if not message.HasField("attributes"):
            raise ValueError(f"{where}.attributes: required for ANNOUNCE")
        attributes = decode_attributes(message.attributes, f"{where}.attributes")
        return Announce(peer, prefixes, attributes)
    if kind == pb.WITHDRAW:
        return Withdraw(peer, prefixes)
    raise ValueError(f"{where}.type: unknown value {kind}")


def encode_input(event: FeedInput) -> pb.ReflectorInput:
    if isinstance(event, SnapshotBegin):
        return pb.ReflectorInput(
            type=pb.INPUT_SNAPSHOT_BEGIN,
            cluster_id=str(event.cluster_id),
            router_id=str(event.router_id),
        )
    if isinstance(event, SnapshotEnd):
        return pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_END)
    if isinstance(event, PeerUp):
        return pb.ReflectorInput(
            type=pb.PEER_UP,
            peer=str(event.peer.address),
            router_id=str(event.peer.router_id),
            client=event.peer.client,
        )
    if isinstance(event, PeerDown):
        return pb.ReflectorInput(type=pb.PEER_DOWN, peer=str(event.address))
    prefixes = [str(p) for p in event.prefixes]
    if isinstance(event, Announce):
        return pb.ReflectorInput(
            type=pb.ANNOUNCE,
            peer=str(event.address),
            prefixes=prefixes,
            attributes=encode_attributes(event.attributes),
        )
    return pb.ReflectorInput(type=pb.WITHDRAW, peer=str(event.address), prefixes=prefixes)


# -- outputs -------------------------------------------------------------------


def encode_output(output: FeedOutput) -> pb.ReflectorOutput:
    """Changes grouped per group of peers, announcements grouped by attributes.

    Keyed by id(): the engine hands the same peer group, prefix and
    attributes objects to every change that shares them, so this hashes and
    formats each once (IPv4 objects hash and print in Python code). Every
    keyed object stays alive in `output.changes` during the call.
    """
    names: dict[int, str] = {}
    objects: dict[int, PathAttributes] = {}
    per_id: dict[int, tuple[Peers, dict[int, list[str]], list[str]]] = {}
    for change in output.changes:
        entry = per_id.get(id(change.peers))
        if entry is None:
            entry = per_id[id(change.peers)] = (change.peers, {}, [])
        name = names.get(id(change.prefix))
        if name is None:
            name = names[id(change.prefix)] = str(change.prefix)
        attributes = change.attributes
        if attributes is None:
            entry[2].append(name)
            continue
        objects[id(attributes)] = attributes
        entry[1].setdefault(id(attributes), []).append(name)
    # Equal values behind different objects: merged here, once per group.
    per_group: dict[Peers, tuple[dict[PathAttributes, list[str]], list[str]]] = {}
    for peers, groups, withdrawn in per_id.values():
        merged, gone = per_group.setdefault(peers, ({}, []))
        for key, prefixes in groups.items():
            merged.setdefault(objects[key], []).extend(prefixes)
        gone.extend(withdrawn)
    encoded: dict[PathAttributes, pb.PathAttributes] = {}

    def encode_once(attributes: PathAttributes) -> pb.PathAttributes:
        message = encoded.get(attributes)
        if message is None:
            message = encoded[attributes] = encode_attributes(attributes)
        return message

    diffs = [
        pb.PeerDiff(
            peers=names_of,
            announce=[
                pb.RouteGroup(attributes=encode_once(a), prefixes=prefixes)
                for a, prefixes in groups.items()
            ],
            withdraw=withdrawn,
        )
        for names_of, (groups, withdrawn) in sorted(
            ([str(p) for p in sorted(peers)], value) for peers, value in per_group.items()
        )
    ]
    return pb.ReflectorOutput(
        type=_OUTPUT_TYPES[output.type],
        received=output.received,
        error=output.error,
        diffs=diffs,
    )


class PeerChanges(NamedTuple):
    """One group of peers' part of an output, as the reflector grouped it."""

    peers: Peers
    announce: tuple[tuple[PathAttributes, tuple[IPv4Network, ...]], ...]
    withdraw: tuple[IPv4Network, ...]


class GroupedOutput(NamedTuple):
    type: OutputType
    received: int
    error: str
    diffs: tuple[PeerChanges, ...]


_TYPES_BACK = {v: k for k, v in _OUTPUT_TYPES.items()}


class OutputDecoder:
    """`ReflectorOutput`s decoded in the reflector's grouping, for a speaker.

    The decoder parses a prefix text once and keeps the object, decodes
    equal attribute messages to one `PathAttributes` (so the speaker's diffs
    compare them by identity) and equal groups of peer names to one set of
    addresses (so the speaker can key on a group's identity). The memos are
    dropped when they outgrow `limit` entries.
    """

    def __init__(self, limit: int = 1 << 18) -> None:
        self.limit = limit
        self._prefixes: dict[str, IPv4Network] = {}
        self._attributes: dict[bytes, PathAttributes] = {}
        self._groups: dict[tuple[str, ...], Peers] = {}

    def decode(self, message: pb.ReflectorOutput) -> GroupedOutput:
        if len(self._prefixes) > self.limit:
            self._prefixes.clear()
        if len(self._attributes) > self.limit:
            self._attributes.clear()
        diffs = []
        for i, diff in enumerate(message.diffs):
            where = f"ReflectorOutput.diffs[{i}]"
            announce = []
            for j, group in enumerate(diff.announce):
                named = f"{where}.announce[{j}]"
                key = group.attributes.SerializeToString()
                attributes = self._attributes.get(key)
                if attributes is None:
                    attributes = decode_attributes(group.attributes, f"{named}.attributes")
                    self._attributes[key] = attributes
                announce.append((attributes, self._parsed(group.prefixes, f"{named}.prefixes")))
            diffs.append(
                PeerChanges(
                    self._peers(diff, where),
                    tuple(announce),
                    self._parsed(diff.withdraw, f"{where}.withdraw"),
                )
            )
        return GroupedOutput(
            _TYPES_BACK.get(message.type, OutputType.DELTA),
            message.received,
            message.error,
            tuple(diffs),
        )

    def _peers(self, diff: pb.PeerDiff, where: str) -> Peers:
        """The diff's group of peers: one object per distinct group of names."""
        names = tuple(diff.peers) or (diff.peer,)
        found = self._groups.get(names)
        if found is None:
            if len(self._groups) > self.limit:
                self._groups.clear()
            found = self._groups[names] = frozenset(
                _address(name, f"{where}.peers[{i}]" if diff.peers else f"{where}.peer")
                for i, name in enumerate(names)
            )
        return found

    def _parsed(self, texts: Iterable[str], where: str) -> tuple[IPv4Network, ...]:
        found = list(map(self._prefixes.get, texts))
        if not all(found):  # (`None in found` would call IPv4Network.__eq__ per prefix)
            for i, text in enumerate(texts):
                if found[i] is None:
                    found[i] = self._prefixes[text] = _prefix(text, f"{where}[{i}]")
        # No None is left.
        return tuple(found)  # type: ignore[arg-type]


def decode_output(message: pb.ReflectorOutput) -> FeedOutput:
    """The inverse of `encode_output`, one `GroupChange` per prefix and group."""
    grouped = OutputDecoder().decode(message)
    changes: list[GroupChange] = []
    for peers, announce, withdraw in grouped.diffs:
        for attributes, prefixes in announce:
            changes.extend(GroupChange(peers, prefix, attributes) for prefix in prefixes)
        changes.extend(GroupChange(peers, prefix, None) for prefix in withdraw)
    return FeedOutput(
        type=grouped.type, received=grouped.received, changes=tuple(changes), error=grouped.error
    )
