"""`gingham lab up|down|status|ping|exec|graph|list`: a whole fabric in network namespaces.

Thin: parsing and printing. The plan is `gingham.lab.topology`, the building
`gingham.lab.build`, the looking `gingham.lab.observe`; labs live under
``/var/run/gingham/labs/<name>/`` (`gingham.lab.state`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from gingham.cli.common import CLIError


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _state(name: str) -> Any:
    from gingham.lab.state import LabState

    state = LabState.load(name)
    if state is None:
        raise CLIError(f'no lab named "{name}" (gingham lab list shows the labs)')
    return state


def run_up(args: argparse.Namespace) -> int:
    from gingham.cli.node import speaker_available
    from gingham.lab.backend import LabError
    from gingham.lab.backends import backend_for
    from gingham.lab.topology import LabOptions, PlanError

    backend = backend_for(LabOptions(vm=args.vm, kubernetes=args.kubernetes))
    args.wait = args.wait if args.wait is not None else backend.default_wait
    options = LabOptions(
        name=args.name,
        nodes=args.nodes or backend.default_nodes,
        topology=args.topology,
        encap=args.encap or backend.default_encap,
        pods_per_node=args.pods_per_node,
        tor=args.tor,
        racks=args.racks,
        datastore=backend.datastore or args.lab_datastore,
        vm=args.vm,
        kubernetes=args.kubernetes,
    )
    if not speaker_available():
        _say("note: the BGP speaker (gingham-bgp) is not available: nodes run felix only,")
        _say("      so pods reach pods on their own node but not across nodes.")
    try:
        state = backend.up(options, _say, wait=args.wait)
    except PlanError as exc:
        raise CLIError(str(exc)) from None
    except LabError as exc:
        raise CLIError(str(exc)) from None
    converged = backend.wait_converged(state, _say, args.wait)
    _print_status(state)
    if not converged:
        _say(f"not every pod reaches every other pod yet (waited {args.wait:.0f}s): "
             f"{_command()} lab ping{_named(args.name)} shows the matrix")  # fmt: skip
    _say(tour(args.name, state))
    return 0


def _command() -> str:
    """How the person typed `gingham` (``.venv/bin/gingham`` from `make lab`), to echo it back."""
    typed = sys.argv[0] if sys.argv and sys.argv[0] else "gingham"
    found = shutil.which("gingham")
    if found and Path(found).resolve() == Path(typed).resolve():
        return "gingham"
    return typed if "/" in typed else "gingham"


def _named(name: str) -> str:
    return "" if name == "lab" else f" --name {name}"


def tour(name: str, state: Any) -> str:
    """What to type next: looking around and tearing down (printed after `lab up`)."""
    g, n = _command(), _named(name)
    pods = [p for p in state.pods if p.address]
    first = next(iter(state.nodes), "node1")
    rows = [
        (f"lab status{n}", "nodes, ToRs, BGP peers, routes, reachability (-o json)"),
        (f"lab ping{n}", "the pod-to-pod matrix (exit 1 if a pair fails)"),
        (f"lab exec{n} {first} -- ip route", "any command in a node, ToR or pod"),
    ]
    if len(pods) > 1:
        rows.append((f"lab exec{n} {pods[0].name} -- ping -c1 {pods[-1].address}", "one pair"))
    rows += [
        (f"lab graph{n} -o {name}", f"a picture: {name}.svg and {name}.png"),
        ("lab list", "every lab on this machine"),
    ]
    width = max(len(command) for command, _ in rows)
    lines = [f'lab "{name}" is up. Look around:']
    lines += [f"  {g} {command:<{width}}  # {what}" for command, what in rows]
    lines += ["Tear it down:", f"  {g} lab down{n}"]
    return "\n".join(lines)


def _print_status(state: Any) -> None:
    from gingham.lab.backends import backend_of
    from gingham.lab.observe import render_matrix

    backend = backend_of(state)
    status = backend.status(state)
    for node in status["nodes"]:
        felix = "serving" if node["felix_serving"] else "NOT serving"
        print(f"{node['name']} ({node['netns']}): felix {felix}")
        speaker = node["speaker"]
        if speaker is None:
            print("  BGP: no speaker answering")
        else:
            for peer in speaker.get("peers", []):
                print(f"  peer {peer.get('address', '?'):<15} {peer.get('peer_type', ''):<22} "
                      f"{peer.get('state', '?'):<12} {peer.get('info', '')}")  # fmt: skip
        for route in node["routes"]:
            print(f"  route {route}")
    for tor in status["tors"]:
        print(
            f"{tor['name']} ({tor['netns']}): {tor['daemon']} AS {tor['asn']}, rack {tor['rack']}"
        )
        if not tor["sessions"]:
            print("  BGP: the ToR daemon does not answer")
        for session in tor["sessions"]:
            print(f"  peer {session['address']:<15} {session['name']:<22} {session['state']}")
    matrix = backend.ping_matrix(state, timeout=1.0)
    print(f"pod-to-pod reachability ({matrix.ok}/{matrix.pairs} pairs):")
    print(render_matrix(matrix))


def run_status(args: argparse.Namespace) -> int:
    from gingham.lab.backends import backend_of

    state = _state(args.name)
    if args.output == "json":
        print(json.dumps(backend_of(state).status(state), indent=2))
    else:
        _print_status(state)
    return 0


def run_ping(args: argparse.Namespace) -> int:
    from gingham.lab.backends import backend_of
    from gingham.lab.observe import render_matrix

    state = _state(args.name)
    matrix = backend_of(state).ping_matrix(state, timeout=args.timeout)
    print(render_matrix(matrix))
    for a, b in matrix.failures():
        print(f"FAIL {a} → {b}")
    print(f"{matrix.ok}/{matrix.pairs} pairs reachable")
    return 0 if matrix.pairs and not matrix.failures() else 1


def run_exec(args: argparse.Namespace) -> int:
    from gingham.lab.backend import LabError
    from gingham.lab.backends import backend_of

    state = _state(args.name)
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    try:
        return backend_of(state).exec(state, args.target, command)
    except LabError as exc:
        raise CLIError(str(exc)) from None


def run_graph(args: argparse.Namespace) -> int:
    from gingham.lab.backends import backend_of
    from gingham.lab.graph import NoPillow, output_paths, session_health, write_graph
    from gingham.lab.observe import lab_plan

    state = _state(args.name)
    svg, png = output_paths(args.output, args.name)
    try:
        scene = write_graph(lab_plan(state), backend_of(state).status(state), svg, png)
    except OSError as exc:
        raise CLIError(f"lab graph: cannot write {exc.filename}: {exc.strerror}") from None
    except NoPillow as exc:
        raise CLIError(f"lab graph: {svg} written; {exc}") from None
    up = sum(session_health(state) == "up" for _a, _b, state in scene.sessions)
    print(f"{svg}\n{png}")
    _say(f"{len(state.nodes)} nodes, {up}/{len(scene.sessions)} BGP sessions Established")
    return 0


def run_down(args: argparse.Namespace) -> int:
    from gingham.lab.teardown import down

    if not down(args.name, _say):
        _say(f'no lab named "{args.name}": nothing to remove')
    return 0


def run_list(args: argparse.Namespace) -> int:
    from gingham.lab.state import LabState, list_labs

    for name in list_labs():
        state = LabState.load(name)
        if state is not None:
            o = state.options
            print(f"{name}\t{o['topology']}\t{o['nodes']} nodes\t{len(state.pods)} pods"
                  f"\t{state.directory}")  # fmt: skip
    return 0


def register(subparsers: Any) -> None:
    lab = subparsers.add_parser("lab", help="a whole fabric on this machine (network namespaces)")
    commands = lab.add_subparsers(dest="lab_command", required=True)

    def with_name(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--name", default="lab", help="the lab's name (default: lab)")
        return p

    p = with_name(commands.add_parser("up", help="build a lab and wait until it converges"))
    p.add_argument("--nodes", type=int, default=None, help="default 4 (3 with --vm)")
    p.add_argument("--topology", choices=("mesh", "rr", "racks"), default="mesh")
    p.add_argument("--encap", choices=("none", "vxlan", "ipip"), default=None,
                   help="default: none (ipip with --vm)")  # fmt: skip
    p.add_argument("--pods-per-node", type=int, default=2)
    p.add_argument("--tor", choices=("frr", "bird"), default="frr", help="racks: ToR daemon")
    p.add_argument("--racks", type=int, default=2, help="racks: how many")
    p.add_argument("--datastore", dest="lab_datastore", choices=("sqlite", "etcd"),
                   default="sqlite", help="the lab's own datastore")  # fmt: skip
    p.add_argument("--wait", type=float, default=None,
                   help="seconds to wait for convergence (default 120, 300 with --vm)")  # fmt: skip
    p.add_argument("--vm", action="store_true",
                   help="nodes as QEMU guests (a kernel with ipip; see README)")  # fmt: skip
    p.add_argument("--kubernetes", action="store_true",
                   help="a real Kubernetes cluster (kubelets in namespaces, the DaemonSet"
                        " as shipped; default 2 nodes; see README)")  # fmt: skip
    p.set_defaults(func=run_up)
    p = with_name(commands.add_parser("status", help="nodes, peers, routes, reachability"))
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=run_status)
    p = with_name(commands.add_parser("ping", help="the full pod-to-pod matrix; 1 if any fails"))
    p.add_argument("--timeout", type=float, default=1.0)
    p.set_defaults(func=run_ping)
    p = with_name(
        commands.add_parser("exec", help="run a command in a node's (ToR's, pod's) netns")
    )
    p.add_argument("target", help="node, ToR or pod name")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    p.set_defaults(func=run_exec)
    p = with_name(commands.add_parser("graph", help="draw the lab (SVG and PNG)"))
    p.add_argument("-o", "--output", metavar="FILE",
                   help="FILE.svg and FILE.png (default: ./<name>-graph.svg and .png)")  # fmt: skip
    p.set_defaults(func=run_graph)
    with_name(commands.add_parser("down", help="remove everything the lab made")).set_defaults(
        func=run_down
    )
    commands.add_parser("list", help="the labs on this machine").set_defaults(func=run_list)
