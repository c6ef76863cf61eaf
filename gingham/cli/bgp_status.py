"""`gingham node status [--run-dir DIR] [-o json]`: the BGP speaker's peer table.

Asks the speaker's `Speaker.Status` (proto/gingham/v1/speaker.proto) on its
unix socket and prints Calico's table:

    PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO

The socket is `<run-dir>/speaker.sock` (as `gingham node run` lays it
out) or `<run-dir>/bgp/speaker.sock`; both are tried. `--socket` names it
exactly.

On a route reflector node gingham-rr's socket (`rr.sock`) sits beside the
speaker's; when it is there, its `Reflector.Status` is shown as a second
table (clients, non-clients, prefixes, and with --routes the best paths),
and as `route_reflector` in the JSON (null elsewhere). A reflector that does
not answer is a warning line, not a failure: the speaker's table still is
the node's state.

`add_status_command(node_commands)` registers the command under `gingham
node`'s subparsers (gingham/cli/node.py calls it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gingham.cli.common import CLIError

DEFAULT_RUN_DIR = "/run/gingham"
TIMEOUT = 5.0
MAX_REPLY = 256 * 1024 * 1024


def add_status_command(commands: Any) -> None:
    p = commands.add_parser("status", help="BGP sessions of this node's speaker")
    p.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help=f"default {DEFAULT_RUN_DIR}")
    p.add_argument("--socket", default=None, help="the speaker's socket (overrides --run-dir)")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--routes", action="store_true", help="also list announced/learned prefixes")
    p.set_defaults(func=node_status)


def speaker_socket(run_dir: Path) -> Path:
    for candidate in (run_dir / "speaker.sock", run_dir / "bgp" / "speaker.sock"):
        if candidate.exists():
            return candidate
    raise CLIError(
        f"no speaker socket in {run_dir} (looked for speaker.sock and bgp/speaker.sock):"
        " is gingham-bgp running with this --run-dir?"
    )


async def node_status(args: argparse.Namespace) -> int:
    import grpc

    from gingham.v1 import speaker_pb2 as pb
    from gingham.v1 import speaker_pb2_grpc as pb_grpc

    socket = Path(args.socket) if args.socket else speaker_socket(Path(args.run_dir))
    request = pb.SpeakerStatusRequest(include_routes=args.routes or args.output == "json")
    try:
        # 100,000 learned routes make a reply larger than gRPC's 4 MB default.
        options = [("grpc.max_receive_message_length", MAX_REPLY)]
        async with grpc.aio.insecure_channel(f"unix:{socket}", options=options) as channel:
            stub = pb_grpc.SpeakerStub(channel)  # type: ignore[no-untyped-call]
            reply = await stub.Status(request, timeout=TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        raise CLIError(
            f"speaker at {socket} did not answer: {exc.code().name} ({exc.details()})"
        ) from None
    reflector, problem = await reflector_status(socket.parent / "rr.sock", args.routes)
    if args.output == "json":
        document = as_json(reply)
        document["route_reflector"] = reflector_json(reflector) if reflector else None
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    print(render(reply, time.time(), routes=args.routes))
    if reflector is not None:
        print()
        print(render_reflector(reflector, routes=args.routes))
    elif problem:
        print()
        print(problem)
    return 0


async def reflector_status(socket: Path, best_paths: bool) -> tuple[Any, str]:
    """gingham-rr's status reply when it runs beside the speaker; else (None, why)."""
    if not socket.exists():
        return None, ""
    import grpc

    from gingham.v1 import reflector_pb2 as rpb
    from gingham.v1 import reflector_pb2_grpc as rpb_grpc

    try:
        options = [("grpc.max_receive_message_length", MAX_REPLY)]
        async with grpc.aio.insecure_channel(f"unix:{socket}", options=options) as channel:
            stub = rpb_grpc.ReflectorStub(channel)  # type: ignore[no-untyped-call]
            request = rpb.ReflectorStatusRequest(best_paths=best_paths)
            return await stub.Status(request, timeout=TIMEOUT), ""
    except grpc.aio.AioRpcError as exc:
        return None, (
            f"Warning: the route reflector at {socket} did not answer:"
            f" {exc.code().name} ({exc.details()})"
        )


def reflector_json(reply: Any) -> dict[str, Any]:
    def attributes(a: Any) -> dict[str, Any]:
        return {
            "next_hop": a.next_hop,
            "originator_id": a.originator_id or None,
            "cluster_list": list(a.cluster_list),
            "local_pref": a.local_pref if a.HasField("local_pref") else 100,
            "as_path": list(a.as_path),
        }

    return {
        "node": reply.node,
        "cluster_id": reply.cluster_id,
        "router_id": reply.router_id,
        "in_sync": reply.in_sync,
        "clients": reply.clients,
        "non_clients": reply.non_clients,
        "prefixes": reply.prefixes,
        "loops_dropped": reply.loops_dropped,
        "reflected_updates": reply.reflected_updates,
        "peers": [
            {
                "address": p.address,
                "router_id": p.router_id,
                "client": p.client,
                "peer_type": p.peer_type,
                "received": p.received,
                "advertised": p.advertised,
            }
            for p in reply.peers
        ],
        "best_paths": [
            {
                "prefix": b.prefix,
                "peer": b.peer,
                "candidates": b.candidates,
                "advertised_to": list(b.advertised_to),
                **attributes(b.attributes),
            }
            for b in reply.best_paths
        ],
    }


def render_reflector(reply: Any, routes: bool = False) -> str:
    """The route reflector's table (gingham-rr's `Reflector.Status`)."""
    if not reply.cluster_id:
        return "Route reflector: waiting for the speaker's first snapshot."
    sync = "in sync" if reply.in_sync else "not in sync yet"
    lines = [
        f"Route reflector, cluster ID {reply.cluster_id}, router ID {reply.router_id} ({sync}):"
        f" {reply.clients} clients, {reply.non_clients} non-clients, {reply.prefixes} prefixes,"
        f" {reply.reflected_updates} updates reflected, {reply.loops_dropped} loops dropped.",
    ]
    header = ("PEER ADDRESS", "ROLE", "ROUTER ID", "RECEIVED", "ADVERTISED")
    rows: list[tuple[str, ...]] = [
        (p.address, p.peer_type, p.router_id, str(p.received), str(p.advertised))
        for p in reply.peers
    ]
    lines += table(header, rows) if rows else ["No reflector sessions."]
    if routes:
        lines.append("Best paths:")
        for b in reply.best_paths:
            a = b.attributes
            clusters = " ".join(a.cluster_list) or "-"
            lines.append(
                f"  {b.prefix} via {a.next_hop} from {b.peer} (originator"
                f" {a.originator_id or b.peer}, cluster list {clusters}, {b.candidates}"
                f" candidates) to {', '.join(b.advertised_to) or 'nobody'}"
            )
    return "\n".join(lines)


def as_json(reply: Any) -> dict[str, Any]:
    """A stable JSON document (field names as in the proto)."""

    def route(r: Any) -> dict[str, str]:
        return {"prefix": r.prefix, "next_hop": r.next_hop, "peer": r.peer, "node": r.node}

    return {
        "node": reply.node,
        "address": reply.address,
        "ready": reply.ready,
        "felix_in_sync": reply.felix_in_sync,
        "peers": [
            {
                "address": p.address,
                "peer_type": p.peer_type,
                "state": p.state,
                "since": p.since or None,
                "info": p.info,
                "received": p.received,
                "accepted": p.accepted,
                "advertised": p.advertised,
                "node": p.node or None,
                "as_number": p.as_number,
            }
            for p in reply.peers
        ],
        "announced": [route(r) for r in reply.announced],
        "learned": [route(r) for r in reply.learned],
        "rejected_by_reason": dict(reply.rejected_by_reason),
        "rejected_by_peer": dict(reply.rejected_by_peer),
        "rejected_example": dict(reply.rejected_example),
    }


def render(reply: Any, now: float, routes: bool = False) -> str:
    """Calico's `node status` text for one `SpeakerStatusReply`."""
    state = "running" if reply.ready else "starting"
    lines = [f"Gingham BGP speaker on {reply.node} ({reply.address or '?'}) is {state}."]
    if not reply.felix_in_sync:
        lines.append("Warning: felix has not taken the speaker's routes (yet).")
    lines += ["", "IPv4 BGP status"]
    header = ("PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO")
    rows: list[tuple[str, ...]] = [
        (
            p.address,
            p.peer_type,
            "up" if p.state == "established" else p.state,
            since(p.since, now),
            p.info or ("Established" if p.state == "established" else ""),
        )
        for p in reply.peers
    ]
    lines += table(header, rows) if rows else ["No IPv4 peers found."]
    lines.append("")
    lines.append(
        f"Announced {reply.announced_count} prefixes, learned {reply.learned_count}"
        + rejected_summary(reply)
    )
    if routes:
        lines += ["", "Announced:"] + [f"  {r.prefix} via {r.next_hop}" for r in reply.announced]
        lines += ["Learned:"] + [
            f"  {r.prefix} via {r.next_hop} from {r.peer}" + (f" ({r.node})" if r.node else "")
            for r in reply.learned
        ]
    return "\n".join(lines)


def rejected_summary(reply: Any) -> str:
    if not reply.rejected_by_reason:
        return "."
    parts = ", ".join(
        f"{k} {v}" + (f", e.g. {reply.rejected_example[k]}" if k in reply.rejected_example else "")
        for k, v in sorted(reply.rejected_by_reason.items())
    )
    return f"; rejected {sum(reply.rejected_by_reason.values())} ({parts})."


def since(stamp: float, now: float) -> str:
    """Calico prints the time of day of the last change; older than a day: the date."""
    if not stamp:
        return "-"
    if now - stamp < 86400:
        return time.strftime("%H:%M:%S", time.localtime(stamp))
    return time.strftime("%Y-%m-%d", time.localtime(stamp))


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: tuple[str, ...]) -> str:
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(cells, widths, strict=True)) + "|"

    return [rule, line(header), rule, *(line(r) for r in rows), rule]
