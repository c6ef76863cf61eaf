"""What the BGP speaker learns from its sessions, as typed events.

These types are the boundary between the ExaBGP adapter (which produces them)
and the rest of bird_agent (which consumes them); they carry no ExaBGP
vocabulary.

Invariants:
- `PeerDown` means "forget every route learned from this peer" (after the
  graceful-restart window, which the consumer applies). The adapter emits one
  whenever an Established session ends for any reason — a state change from
  ExaBGP, the peer removed by reconfiguration, or ExaBGP itself dying — because
  ExaBGP never sends withdrawals for a dead session.
- Addresses are `IPv4Address`es. The prefixes of an UPDATE travel as one
  `Prefixes` (a sequence of `IPv4Network`): canonical CIDR texts plus integer
  keys, because building and hashing 100,000 `IPv4Network`s cost more than
  ExaBGP spends decoding them. The hot path (policy, `LearnedRoutes`, the
  felix sink) works on `keys`/`texts`; an `IPv4Network` is made only when
  someone iterates or indexes. Events built from `IPv4Network` tuples (tests,
  other producers) are converted on construction.
- A prefix key is ``length << 32 | network_int >> (32 - length)``
  (`prefix_key`): unique per prefix and an int, so hashing is free. The low
  bits are the prefix's significant bits, so consecutive blocks get
  consecutive keys; a key with the length in the *low* bits made every /26
  collide in the low 12 bits of the dict index and inserting 100,000 of them
  took seconds.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import overload

from gingham.prefix import prefix_of

PrefixKey = int


_LOW32 = 0xFFFFFFFF


def prefix_key(network: IPv4Network) -> PrefixKey:
    length = network.prefixlen
    return length << 32 | int(network.network_address) >> (32 - length)


def key_length(key: PrefixKey) -> int:
    return key >> 32


def key_address(key: PrefixKey) -> int:
    """The network address of the prefix with `key`, as an int."""
    return (key & _LOW32) << (32 - (key >> 32))


def key_network(key: PrefixKey) -> IPv4Network:
    return prefix_of(key_address(key), key >> 32)  # (an IPv4Network, made without its parser)


def key_text(key: PrefixKey) -> str:
    return f"{socket.inet_ntoa(key_address(key).to_bytes(4, 'big'))}/{key >> 32}"


_LENGTHS = {str(length): length for length in range(33)}
_HOST_BITS = tuple((1 << (32 - length)) - 1 for length in range(33))


def parse_prefix(text: str) -> PrefixKey:
    """The key of a canonical IPv4 CIDR text ("10.0.0.0/26"); ValueError otherwise."""
    return _parse_prefixes((text,))[0]


def _parse_prefixes(texts: Sequence[str]) -> list[PrefixKey]:
    """Keys of canonical CIDR texts, strict so that each text is exactly
    `key_text(key)`: a dotted quad without leading zeros (inet_pton), a plain
    length 0-32, no host bits. The receive hot loop: locals only."""
    pton, family, from_bytes, lengths, host = (
        socket.inet_pton,
        socket.AF_INET,
        int.from_bytes,
        _LENGTHS,
        _HOST_BITS,
    )
    keys: list[PrefixKey] = []
    append = keys.append
    for text in texts:
        address, _, length_text = text.partition("/")
        length = lengths.get(length_text)
        try:
            network = from_bytes(pton(family, address), "big")
        except OSError:
            raise ValueError(f"{text!r} is not an IPv4 prefix") from None
        if length is None:
            raise ValueError(f"{text!r}: bad prefix length")
        if network & host[length]:
            raise ValueError(f"{text!r} has host bits set")
        append(length << 32 | network >> (32 - length))
    return keys


class Prefixes(Sequence[IPv4Network]):
    """The prefixes of one UPDATE: parallel tuples of keys and canonical texts."""

    __slots__ = ("keys", "texts")

    def __init__(self, keys: tuple[PrefixKey, ...], texts: tuple[str, ...]) -> None:
        if len(keys) != len(texts):
            raise ValueError("Prefixes: keys and texts differ in length")
        self.keys = keys
        self.texts = texts

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Prefixes:
        """From canonical CIDR texts (ValueError on the first bad one)."""
        texts = tuple(texts)
        return cls(tuple(_parse_prefixes(texts)), texts)

    @classmethod
    def of(cls, prefixes: Iterable[IPv4Network]) -> Prefixes:
        if isinstance(prefixes, Prefixes):
            return prefixes
        networks = tuple(prefixes)
        return cls(tuple(map(prefix_key, networks)), tuple(map(str, networks)))

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> IPv4Network: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[IPv4Network]: ...
    def __getitem__(self, index: int | slice) -> IPv4Network | Sequence[IPv4Network]:
        if isinstance(index, slice):
            return Prefixes(self.keys[index], self.texts[index])
        return key_network(self.keys[index])

    def __iter__(self) -> Iterator[IPv4Network]:
        return map(key_network, self.keys)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, IPv4Network) and prefix_key(item) in self.keys

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Prefixes):
            return self.keys == other.keys
        if isinstance(other, tuple | list):
            return list(self) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.keys)

    def __repr__(self) -> str:
        return f"Prefixes({', '.join(self.texts)})"


class SessionState(enum.Enum):
    IDLE = "idle"
    CONNECTED = "connected"
    ESTABLISHED = "established"
    DOWN = "down"


@dataclass(frozen=True)
class PeerConnected:
    peer: IPv4Address


@dataclass(frozen=True)
class PeerUp:
    peer: IPv4Address


@dataclass(frozen=True)
class PeerDown:
    """The session ended: drop (after any graceful-restart window) its routes."""

    peer: IPv4Address
    reason: str
    # The restart time the peer advertised in its OPEN; None when it did not.
    graceful_restart_time: int | None = None


@dataclass(frozen=True)
class PeerOpen:
    """The peer's OPEN message (the only place its router ID appears)."""

    peer: IPv4Address
    router_id: IPv4Address
    asn: int
    hold_time: int
    capabilities: tuple[str, ...] = ()
    # Restart time from the graceful-restart capability, None when absent.
    graceful_restart_time: int | None = None


@dataclass(frozen=True)
class RoutesAnnounced:
    peer: IPv4Address
    next_hop: IPv4Address
    # Always a `Prefixes` once constructed (`batch` has the precise type).
    prefixes: Sequence[IPv4Network]
    as_path: tuple[int, ...] = ()
    attributes: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefixes", Prefixes.of(self.prefixes))

    @property
    def batch(self) -> Prefixes:
        assert isinstance(self.prefixes, Prefixes)
        return self.prefixes


@dataclass(frozen=True)
class RoutesWithdrawn:
    peer: IPv4Address
    prefixes: Sequence[IPv4Network]

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefixes", Prefixes.of(self.prefixes))

    @property
    def batch(self) -> Prefixes:
        assert isinstance(self.prefixes, Prefixes)
        return self.prefixes


@dataclass(frozen=True)
class EndOfRib:
    peer: IPv4Address


@dataclass(frozen=True)
class NotificationReceived:
    peer: IPv4Address
    code: int
    subcode: int


@dataclass(frozen=True)
class SpeakerRestarted:
    """ExaBGP was (re)started; `generation` counts starts from 1."""

    generation: int


BgpEvent = (
    PeerConnected
    | PeerUp
    | PeerDown
    | PeerOpen
    | RoutesAnnounced
    | RoutesWithdrawn
    | EndOfRib
    | NotificationReceived
    | SpeakerRestarted
)
