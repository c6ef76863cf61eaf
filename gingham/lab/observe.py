"""Looking at a running namespace lab: felix health, the speakers' peers, routes, pings.

Read-only. Unix sockets are files, so felix's and the speaker's gRPC sockets
are reached from the host directly; kernel state and pings go through
``ip netns exec`` into the lab's namespaces. Pings run in parallel (a failing
pair costs its whole timeout) and only between the lab's own pods.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from ipaddress import IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from gingham.lab.backend import Matrix
from gingham.lab.state import LabState, PodRecord, is_ours
from gingham.lab.topology import POOL_CIDR, LabOptions, LabPlan, TorPlan, plan_lab


def node_run_dir(state: LabState, node: str) -> Path:
    return state.directory / "nodes" / node


def tor_dir(state: LabState, tor: str) -> Path:
    return state.directory / "tors" / tor


def lab_plan(state: LabState) -> LabPlan:
    """The plan the lab was built from (planning is pure: same options, same plan)."""
    known = {f.name for f in fields(LabOptions)}
    return plan_lab(LabOptions(**{k: v for k, v in state.options.items() if k in known}))


def tor_sessions(state: LabState, tor: TorPlan, plan: LabPlan) -> list[dict[str, str]]:
    """The ToR daemon's BGP sessions: neighbour name, address, state ([] if it does not answer)."""
    directory = tor_dir(state, tor.name)
    names = {str(n.address.ip): n.name for n in plan.nodes if n.rack == tor.rack}
    names |= {str(t.spine_address.ip): t.name for t in plan.tors if t is not tor}
    sessions = []
    if state.options.get("tor") == "bird":
        out = _quiet(["birdc", "-s", str(directory / "bird.ctl"), "show", "protocols"])
        by_name = {name: address for address, name in names.items()}
        for line in out.splitlines():
            words = line.split()
            if len(words) >= 4 and words[1] == "BGP" and words[0] in by_name:
                info = words[-1] if words[3] == "up" else " ".join(words[5:]) or words[3]
                state_ = "Established" if info == "Established" else info
                sessions.append({"name": words[0], "address": by_name[words[0]], "state": state_})
        return sessions
    out = _quiet(["vtysh", "--vty_socket", str(directory), "-d", "bgpd",
                  "-c", "show bgp ipv4 unicast summary json"])  # fmt: skip
    try:
        peers = json.loads(out or "{}").get("peers") or {}
    except ValueError:
        return []
    for address, peer in sorted(peers.items()):
        sessions.append({"name": names.get(address, address), "address": address,
                         "state": str(peer.get("state", "?"))})  # fmt: skip
    return sessions


def _quiet(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def felix_serving(run_dir: Path, timeout: float = 1.0) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    sock = run_dir / "felix.sock"
    if not sock.exists():
        return False
    with grpc.insecure_channel(f"unix:{sock}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def speaker_status(run_dir: Path, timeout: float = 1.0) -> dict[str, Any] | None:
    """The speaker's own view (peers, counts), or None when no speaker answers."""
    sock = run_dir / "speaker.sock"
    if not sock.exists():
        return None
    try:
        import grpc

        from gingham.v1 import speaker_pb2, speaker_pb2_grpc
    except ImportError:
        return None
    with grpc.insecure_channel(f"unix:{sock}") as channel:
        try:
            reply = speaker_pb2_grpc.SpeakerStub(channel).Status(  # type: ignore[no-untyped-call]
                speaker_pb2.SpeakerStatusRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return None
    peer_fields = ("address", "peer_type", "state", "since", "info", "received", "accepted",
                   "advertised", "node", "as_number")  # fmt: skip
    return {
        "node": reply.node,
        "address": reply.address,
        "ready": reply.ready,
        "felix_in_sync": reply.felix_in_sync,
        "announced_count": reply.announced_count,
        "learned_count": reply.learned_count,
        "peers": [{f: getattr(p, f) for f in peer_fields} for p in reply.peers],
    }


def pool_routes(netns: str) -> list[str]:
    """The node's kernel routes into the pod pool (`ip route` lines)."""
    pool = ip_network(POOL_CIDR)
    proc = subprocess.run(
        ["ip", "-n", netns, "-j", "route", "show"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return []
    lines = []
    for route in json.loads(proc.stdout or "[]"):
        dst = route.get("dst", "")
        try:
            net = IPv4Network(dst if "/" in dst else f"{dst}/32")
        except ValueError:
            continue
        if not net.subnet_of(pool):  # type: ignore[arg-type]
            continue
        how = route.get("type", "") if route.get("type") in ("blackhole",) else ""
        via = f" via {route['gateway']}" if "gateway" in route else ""
        dev = f" dev {route['dev']}" if "dev" in route else ""
        lines.append(f"{how + ' ' if how else ''}{dst}{via}{dev}".strip())
    return lines


def ping(source: PodRecord, target: PodRecord, timeout: float = 1.0) -> bool:
    if target.address is None:
        return False
    ip_address(target.address)  # only ever an address the lab's IPAM handed out
    proc = subprocess.run(
        ["ip", "netns", "exec", source.netns, "ping", "-c1", "-n", "-q",
         "-W", str(max(1, round(timeout))), target.address],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return proc.returncode == 0


def ping_matrix(state: LabState, timeout: float = 1.0) -> Matrix:
    pods = [p for p in state.pods if p.address]
    pairs = [(a, b) for a in pods for b in pods if a is not b]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda ab: ping(ab[0], ab[1], timeout), pairs))
    matrix = Matrix([p.name for p in pods])
    for (a, b), ok in zip(pairs, outcomes, strict=True):
        matrix.results.setdefault(a.name, {})[b.name] = ok
    return matrix


def render_matrix(matrix: Matrix) -> str:
    width = max((len(p) for p in matrix.pods), default=4)
    head = " " * (width + 1) + " ".join(f"{i + 1:>2}" for i in range(len(matrix.pods)))
    rows = [head]
    for i, a in enumerate(matrix.pods):
        cells = []
        for b in matrix.pods:
            cells.append(" ·" if a == b else (" ✓" if matrix.results[a][b] else " ✗"))
        rows.append(f"{a:<{width}} " + " ".join(cells) + f"  {i + 1}")
    return "\n".join(rows)


def lab_status(state: LabState) -> dict[str, Any]:
    running = {p.what: is_ours(p) for p in state.processes}

    def node_status(node: str, netns: str) -> dict[str, Any]:
        run_dir = node_run_dir(state, node)
        return {
            "name": node,
            "netns": netns,
            "supervisor_running": running.get(f"node run {node}", False),
            "felix_serving": felix_serving(run_dir),
            "speaker": speaker_status(run_dir),
            "routes": pool_routes(netns),
        }

    # Each node costs a few gRPC calls and an `ip`: ask them side by side.
    with ThreadPoolExecutor(max_workers=8) as pool:
        nodes = list(pool.map(lambda item: node_status(*item), state.nodes.items()))
    plan = lab_plan(state)
    tors = [
        {"name": t.name, "netns": t.netns, "asn": t.asn, "rack": t.rack,
         "daemon": state.options.get("tor"), "sessions": tor_sessions(state, t, plan)}
        for t in plan.tors
    ]  # fmt: skip
    return {
        "name": state.name,
        "options": state.options,
        "datastore": state.datastore,
        "nodes": nodes,
        "tors": tors,
        "pods": [asdict(p) for p in state.pods],
    }
