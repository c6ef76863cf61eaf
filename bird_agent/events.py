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
- Prefixes are `IPv4Network`s, addresses `IPv4Address`es; never strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


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
    prefixes: tuple[IPv4Network, ...]
    as_path: tuple[int, ...] = ()
    attributes: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RoutesWithdrawn:
    peer: IPv4Address
    prefixes: tuple[IPv4Network, ...]


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
