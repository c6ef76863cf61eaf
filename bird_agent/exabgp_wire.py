"""ExaBGP's text formats, both ways: configuration, environment, commands, JSON.

Pure functions only (no processes, no sockets): `bird_agent.exabgp` runs the
process and uses these to speak to it. Together the two modules are the only
code that knows ExaBGP's vocabulary.

Invariants:
- `render_config` is deterministic: the same peers give byte-identical text,
  so an unchanged neighbor renders identically and survives a SIGUSR1 reload
  with its session intact (measured: ExaBGP 5.0.15 compares the parsed
  neighbor and only re-establishes sessions whose definition changed).
- `parse_line` never raises on well-formed JSON it does not know: unknown
  message types give no events. A line that is not JSON is an acknowledgement
  (`done` / `error`) or ExaBGP chatter, reported as `Ack` or None.
- Commands never exceed `MAX_NLRI_PER_COMMAND` prefixes, so one command line
  stays well under ExaBGP's read buffer and one bad prefix fails a small batch.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final, Literal

from bird_agent.events import (
    BgpEvent,
    EndOfRib,
    NotificationReceived,
    PeerConnected,
    PeerDown,
    PeerOpen,
    PeerUp,
    Prefixes,
    RoutesAnnounced,
    RoutesWithdrawn,
)
from bird_agent.peers import PeerSpec

log = logging.getLogger(__name__)

API_PROCESS = "gingham"
# Next hop "self": ExaBGP puts each session's local address (per neighbor).
NEXT_HOP_SELF: Final = "self"
NextHop = IPv4Address | Literal["self"]
MAX_NLRI_PER_COMMAND = 500
IPV4_UNICAST = "ipv4 unicast"


class ConfigError(ValueError):
    """A PeerSpec that cannot be rendered (e.g. a password ExaBGP cannot quote)."""


def render_config(peers: Sequence[PeerSpec], api_command: Sequence[str]) -> str:
    """The whole ExaBGP configuration file for `peers`, one API process."""
    for word in api_command:
        if any(c.isspace() or c in ";{}" for c in word):
            raise ConfigError(f"API command word {word!r} holds a space or ; {{ }}")
    lines = [
        f"process {API_PROCESS} {{",
        f"    run {' '.join(api_command)};",
        "    encoder json;",
        "}",
        "",
    ]
    for peer in sorted(peers, key=lambda p: p.address):
        lines.extend(_render_neighbor(peer))
    return "\n".join(lines) + "\n"


def _render_neighbor(peer: PeerSpec) -> list[str]:
    out = [
        f"neighbor {peer.address} {{",
        f"    description {_quote(peer.source, 'source')};",
        f"    router-id {peer.router_id};",
        f"    local-address {peer.local_address};",
        f"    local-as {peer.local_asn};",
        f"    peer-as {peer.peer_asn};",
        f"    hold-time {peer.hold_time};",
        # We send End-of-RIB ourselves once our announcements are in: ExaBGP
        # would send it on session up, before the API has announced anything,
        # and a graceful-restart peer would then sweep our routes.
        "    manual-eor true;",
        # LearnedRoutes is our Adj-RIB-In; ExaBGP's own copy cost a quarter of
        # its CPU receiving 100k prefixes (exabgp/rib/cache.py, profiled).
        "    adj-rib-in false;",
    ]
    if peer.passive:
        out.append("    passive true;")
    if peer.port != 179:
        out.append(f"    connect {peer.port};")
    if peer.password:
        out.append(f"    md5-password {_quote(peer.password, 'password')};")
    out += [
        "    capability {",
        f"        graceful-restart {peer.graceful_restart_time};",
        "    }",
        "    family {",
        "        ipv4 unicast;",
        "    }",
        "    api {",
        f"        processes [ {API_PROCESS} ];",
        "        neighbor-changes;",
        "        receive { parsed; update; open; notification; }",
        "    }",
        "}",
        "",
    ]
    return out


def _quote(value: str, what: str) -> str:
    # ExaBGP's tokenizer has no escapes inside quotes.
    if '"' in value or "\n" in value or "\\" in value:
        raise ConfigError(f"{what} may not contain a double quote, backslash or newline")
    return f'"{value}"'


def environment(listen: Iterable[IPv4Address], port: int) -> dict[str, str]:
    """`exabgp_*` variables: run as root, keep our files, listen when asked.

    Why each: ExaBGP drops to `nobody` by default and then cannot use our
    run directory; it does not listen unless `tcp.bind` is set; the CLI pipe
    only produces warnings; per-route process/statistics logs swamp the log.
    (The reactor speed is `exabgp_process`'s: it goes with the entry point.)
    """
    env = {
        "exabgp_daemon_user": "root",
        "exabgp_daemon_drop": "false",
        "exabgp_daemon_daemonize": "false",
        "exabgp_api_cli": "false",
        "exabgp_api_ack": "true",
        "exabgp_api_encoder": "json",
        "exabgp_log_destination": "stdout",
        "exabgp_log_statistics": "false",
        "exabgp_log_processes": "false",
        "exabgp_log_routes": "false",
        "exabgp_log_packets": "false",
        "exabgp_tcp_port": str(port),
        "exabgp_tcp_bind": " ".join(str(a) for a in listen),
    }
    return env


# -- commands ---------------------------------------------------------------


def _selector(neighbors: Iterable[IPv4Address]) -> str:
    return " , ".join(f"neighbor {n}" for n in sorted(neighbors))


def announce_commands(
    neighbors: Iterable[IPv4Address], next_hop: NextHop, prefixes: Iterable[IPv4Network]
) -> Iterator[str]:
    """Batched `announce attributes next-hop X nlri …` lines for `neighbors`."""
    who = _selector(neighbors)
    for chunk in _chunks(sorted(prefixes)):
        nlri = " ".join(str(p) for p in chunk)
        yield f"{who} announce attributes next-hop {next_hop} nlri {nlri}"


def withdraw_commands(
    neighbors: Iterable[IPv4Address], next_hop: NextHop, prefixes: Iterable[IPv4Network]
) -> Iterator[str]:
    who = _selector(neighbors)
    for chunk in _chunks(sorted(prefixes)):
        nlri = " ".join(str(p) for p in chunk)
        yield f"{who} withdraw attributes next-hop {next_hop} nlri {nlri}"


@dataclass(frozen=True)
class ExportBatch:
    neighbors: tuple[IPv4Address, ...]
    lines: tuple[str, ...]


def export_batches(
    held: Mapping[IPv4Address, Mapping[IPv4Network, NextHop]],
    desired: Mapping[IPv4Network, NextHop],
) -> list[ExportBatch]:
    """The commands that take every neighbor from what it `held` to `desired`.

    Neighbors holding the same thing share one batch (the usual case: all of
    them), withdrawals come before announcements, one line per next hop and
    chunk. Neighbors already holding `desired` get nothing.
    """
    groups: dict[frozenset[tuple[IPv4Network, NextHop]], list[IPv4Address]] = {}
    for address, routes in held.items():
        groups.setdefault(frozenset(routes.items()), []).append(address)
    batches: list[ExportBatch] = []
    for holding, neighbors in groups.items():
        now = dict(holding)
        gone: dict[NextHop, list[IPv4Network]] = {}
        for prefix, hop in now.items():
            if desired.get(prefix) != hop:
                gone.setdefault(hop, []).append(prefix)
        new: dict[NextHop, list[IPv4Network]] = {}
        for prefix, hop in desired.items():
            if now.get(prefix) != hop:
                new.setdefault(hop, []).append(prefix)
        lines: list[str] = []
        for hop, prefixes in sorted(gone.items(), key=lambda kv: str(kv[0])):
            lines += withdraw_commands(neighbors, hop, prefixes)
        for hop, prefixes in sorted(new.items(), key=lambda kv: str(kv[0])):
            lines += announce_commands(neighbors, hop, prefixes)
        if lines:
            batches.append(ExportBatch(tuple(sorted(neighbors)), tuple(lines)))
    return batches


def end_of_rib_command(neighbor: IPv4Address) -> str:
    return f"neighbor {neighbor} announce eor ipv4 unicast"


# BGP Cease subcode (RFC 4486) for a session ended because this node stops for good.
ADMINISTRATIVE_SHUTDOWN: Final = 2


def teardown_command(neighbor: IPv4Address, subcode: int = ADMINISTRATIVE_SHUTDOWN) -> str:
    """End an Established session with a Cease of `subcode` (bird_agent.exabgp_cease)."""
    return f"neighbor {neighbor} teardown {subcode}"


def _chunks(items: list[IPv4Network]) -> Iterator[list[IPv4Network]]:
    for start in range(0, len(items), MAX_NLRI_PER_COMMAND):
        yield items[start : start + MAX_NLRI_PER_COMMAND]


# -- what comes back ------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    ok: bool


RELOAD_DONE = "loaded new configuration successfully"
RELOAD_FAILED = "could not load/reload configuration"


def parse_line(line: str) -> list[BgpEvent] | Ack | None:
    """One line from the API process: events, an acknowledgement, or None."""
    text = line.strip()
    if text == "done":
        return Ack(True)
    if text == "error":
        return Ack(False)
    if not text.startswith("{"):
        return None
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    try:
        return list(_events(message))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # One odd message must not take the session down: log it, skip it.
        log.warning("skipping an ExaBGP message we cannot read (%s): %.300s", exc, text)
        return []


def _events(message: dict[str, Any]) -> Iterator[BgpEvent]:
    neighbor = message.get("neighbor") or {}
    try:
        peer = IPv4Address(neighbor["address"]["peer"])
    except (KeyError, TypeError, ValueError):
        return
    kind = message.get("type")
    if kind == "state":
        state = neighbor.get("state")
        if state == "connected":
            yield PeerConnected(peer)
        elif state == "up":
            yield PeerUp(peer)
        elif state == "down":
            yield PeerDown(peer, str(neighbor.get("reason", "")))
    elif kind == "open" and neighbor.get("direction") == "receive":
        yield _open(peer, neighbor.get("open") or {})
    elif kind == "notification":
        note = neighbor.get("notification") or {}
        yield NotificationReceived(peer, int(note.get("code", 0)), int(note.get("subcode", 0)))
    elif kind == "update" and neighbor.get("direction", "receive") == "receive":
        yield from _update(peer, neighbor.get("message") or {})


_NOTIFICATION = re.compile(r"notification (received|sent) \((\d+),(\d+)\)")
HOLD_TIMER_EXPIRED = 4


def ends_gracefully(reason: str) -> bool:
    """Whether a session that ended for `reason` (ExaBGP's words) keeps its routes
    for the peer's graceful-restart window.

    A NOTIFICATION the peer sent is a deliberate end (RFC 4724; no RFC 8538 "N"
    bit is negotiated): routes go at once. So does one we sent for a protocol
    error. A dead TCP session, or the hold timer running out (we send code 4,
    as measured with a SIGSTOPped BIRD), keeps them: the peer may be restarting.
    """
    match = _NOTIFICATION.search(reason.lower())
    if match is None:
        return True
    direction, code = match.group(1), int(match.group(2))
    return direction == "sent" and code == HOLD_TIMER_EXPIRED


def _open(peer: IPv4Address, body: dict[str, Any]) -> PeerOpen:
    names: list[str] = []
    restart: int | None = None
    for capability in (body.get("capabilities") or {}).values():
        name = str(capability.get("name", ""))
        names.append(name)
        if name == "graceful restart":
            restart = int(capability.get("time", 0))
    return PeerOpen(
        peer=peer,
        router_id=IPv4Address(body.get("router_id", "0.0.0.0")),
        asn=int(body.get("asn", 0)),
        hold_time=int(body.get("hold_time", 0)),
        capabilities=tuple(names),
        graceful_restart_time=restart,
    )


def _update(peer: IPv4Address, body: dict[str, Any]) -> Iterator[BgpEvent]:
    if "eor" in body:
        eor = body["eor"]
        if eor.get("afi") == "ipv4" and eor.get("safi") == "unicast":
            yield EndOfRib(peer)
        return
    update = body.get("update") or {}
    attributes = update.get("attribute") or {}
    as_path = _as_path(attributes.get("as-path"))
    withdrawn = (update.get("withdraw") or {}).get(IPV4_UNICAST) or []
    if withdrawn:
        yield RoutesWithdrawn(peer, _nlris(withdrawn))
    announced = (update.get("announce") or {}).get(IPV4_UNICAST) or {}
    for next_hop, entries in announced.items():
        yield RoutesAnnounced(
            peer=peer,
            next_hop=IPv4Address(next_hop),
            prefixes=_nlris(entries),
            as_path=as_path,
            attributes=attributes,
        )


def _nlris(entries: list[Any]) -> Prefixes:
    # ExaBGP writes canonical CIDR texts: keep them (felix wants text) beside
    # integer keys; no IPv4Network per prefix (see events.Prefixes).
    try:
        texts = [entry["nlri"] for entry in entries]
    except TypeError:  # older encoders: bare strings
        texts = [entry.get("nlri") if isinstance(entry, dict) else entry for entry in entries]
    return Prefixes.from_texts(map(str, texts))


def _as_path(raw: Any) -> tuple[int, ...]:
    # ExaBGP 5: {"0": {"element": "as-sequence", "value": [65002]}}; older: [65002].
    if isinstance(raw, list):
        return tuple(int(a) for a in raw)
    if isinstance(raw, dict):
        path: list[int] = []
        for key in sorted(raw, key=int):
            path.extend(int(a) for a in raw[key].get("value", []))
        return tuple(path)
    return ()
