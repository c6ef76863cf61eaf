"""`gingham node ...`: commands about this node.

`node run` supervises the node's agents (`gingham.node.supervisor`). Thin:
argument parsing, reading the Node resource, signal handling. `node stop`
stops them as a restart or for good (`gingham.node.stop`).

`node status` (the Calico-style BGP peer table, plus gingham-rr's table on a
route reflector node) lives in `gingham.cli.bgp_status` and is registered
here, next to `run`.

A node whose Node has spec.bgp.routeReflectorClusterID also runs gingham-rr,
in the same run dir, so the speaker finds `<run-dir>/rr.sock`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gingham.cli.common import CLIError, datastore_url, open_store

if TYPE_CHECKING:
    from gingham.datastore.base import Datastore
    from gingham.model.base import Resource

log = logging.getLogger("gingham.node")


def speaker_available() -> bool:
    """True when this installation has the BGP speaker: its `gingham-bgp` entry point.

    The node starts the speaker as that process; nothing here imports it.
    """
    return bool(importlib.metadata.entry_points(group="console_scripts", name="gingham-bgp"))


async def _read_node(store: Datastore, args: argparse.Namespace, url: str) -> Resource:
    """This node's Node (registered first in Kubernetes mode), waiting for the datastore.

    A node agent starts when its host boots, often before the datastore
    answers (etcd on another VM, the API server behind a slow network):
    like calico-node it waits, saying why every attempt, for
    ``--datastore-wait`` seconds (0: forever) instead of exiting; a missing
    Node or a bad configuration still fails at once.
    """
    from gingham.datastore import NotFound, when_available
    from gingham.k8s.bootstrap import BootstrapError, bootstrap_node

    async def read() -> Resource:
        # Kubernetes mode: the node registers itself (no-op on other backends).
        await bootstrap_node(store, args.node)
        return await store.get("Node", args.node)

    wait = args.datastore_wait if args.datastore_wait > 0 else None
    try:
        return await when_available(read, url, log, wait)
    except BootstrapError as exc:
        raise CLIError(str(exc)) from None
    except NotFound:
        raise CLIError(
            f'Node "{args.node}" does not exist in {url}: create it first'
            " (gingham apply -f node.yaml)"
        ) from None


async def run_node(args: argparse.Namespace) -> int:
    from gingham.model.bgp import Node
    from gingham.node.launch import exec_supervisor, write_plan
    from gingham.node.supervisor import plan_children

    logging.getLogger("gingham").setLevel(args.node_log_level.upper())
    url = datastore_url(args)
    async with open_store(args) as store:
        node = await _read_node(store, args, url)
    assert isinstance(node, Node)
    cluster_id = node.spec.bgp.route_reflector_cluster_id if node.spec.bgp else None
    speaker = speaker_available()
    if not speaker:
        log.warning("the BGP speaker (gingham-bgp) is not available: running without it")
    if cluster_id is not None:
        log.info("node %s is a route reflector (cluster ID %s)", args.node, cluster_id)
    run_dir = Path(args.run_dir).absolute()
    children = plan_children(
        args.node,
        url,
        run_dir,
        speaker=speaker,
        route_reflector=cluster_id is not None,
        log_level=args.node_log_level.upper(),
    )
    # Supervise from a lean process (same PID): the model, the datastore driver
    # and the kubernetes client stay behind (gingham.node.launch).
    exec_supervisor(write_plan(run_dir, args.node, children, args.grace, args.node_log_level))


async def _core_node_leaving(args: argparse.Namespace) -> bool:
    """Kubernetes: whether this pod's Node is cordoned, being deleted or gone."""
    from gingham.node.stop import should_drain

    async with open_store(args) as store:
        core_nodes = getattr(store, "core_nodes", None)
        if core_nodes is None:
            raise CLIError(
                f"--drain-if-cordoned needs the kubernetes datastore, not {datastore_url(args)}"
            )
        cores = {core.name: core for core in await core_nodes()}
    return should_drain(cores.get(args.node))


async def stop_node(args: argparse.Namespace) -> int:
    from gingham.node.stop import Outcome
    from gingham.node.stop import stop_node as stop

    drain = args.drain
    if args.drain_if_cordoned:
        if not args.node:
            raise CLIError("--drain-if-cordoned needs --node NAME (the Kubernetes Node)")
        from gingham.datastore import Unavailable

        try:
            drain = drain or await _core_node_leaving(args)
        except Unavailable as exc:  # the API server unreachable: a restart keeps routes
            log.warning("cannot read Node %s (%s): stopping as a restart", args.node, exc)
    how = "for good (Cease to every BGP peer)" if drain else "as a restart (peers keep routes)"
    result = stop(Path(args.run_dir).absolute(), drain=drain, timeout=args.timeout)
    if result.outcome is Outcome.NOT_RUNNING:
        print(f"gingham node stop: no gingham node run in {args.run_dir}")
        return 1
    if result.outcome is Outcome.STILL_RUNNING:
        print(
            f"gingham node stop: pid {result.pid} still running after {args.timeout:g}s"
            f" (asked to stop {how}); see {Path(args.run_dir) / 'logs'}"
        )
        return 1
    print(f"gingham node stop: pid {result.pid} stopped {how}")
    return 0


def register(subparsers: Any) -> None:
    node = subparsers.add_parser("node", help="run or inspect this node's agents")
    commands = node.add_subparsers(dest="node_command", required=True)
    p = commands.add_parser(
        "run",
        help="supervise felix, the BGP speaker and (on RR nodes) the route reflector",
        description="Runs until a signal. SIGTERM/SIGINT: a restart (BGP sessions close without"
        " a NOTIFICATION; graceful-restart peers keep this node's routes until it is back)."
        " SIGUSR2 (`gingham node stop --drain`): for good (every peer first gets a Cease,"
        " Administrative Shutdown, and drops this node's routes at once).",
    )
    p.add_argument("--node", required=True, help="this node's Node resource name")
    # SUPPRESS: without a value here the global `gingham --datastore` stays in force.
    p.add_argument("--datastore", metavar="URL", default=argparse.SUPPRESS, help="datastore URL")
    p.add_argument("--run-dir", required=True, help="sockets and logs (felix.sock lives here)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL")
    p.add_argument(
        "--datastore-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long to wait for an unavailable datastore at start-up (default 0: forever)",
    )
    p.add_argument(
        "--log-level",
        dest="node_log_level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="for the supervisor and its children",
    )
    p.set_defaults(func=run_node)
    p = commands.add_parser(
        "stop",
        help="stop this node's agents: as a restart (peers keep its routes) or for good (--drain)",
        description="SIGTERM to `gingham node run` is a restart: BGP sessions close without a"
        " NOTIFICATION, so graceful-restart peers keep this node's routes until it is back."
        " --drain stops it for good: every peer first gets a Cease (Administrative Shutdown)"
        " and drops this node's routes at once.",
    )
    p.add_argument("--run-dir", required=True, help="the --run-dir of `gingham node run`")
    p.add_argument(
        "--drain", action="store_true", help="stop for good: peers withdraw this node's routes"
    )
    p.add_argument(
        "--drain-if-cordoned",
        action="store_true",
        help="(DaemonSet preStop) --drain when the Kubernetes Node --node is cordoned,"
        " being deleted or gone; otherwise a restart",
    )
    p.add_argument("--node", help="this node's name (with --drain-if-cordoned)")
    p.add_argument("--datastore", metavar="URL", default=argparse.SUPPRESS, help="datastore URL")
    p.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for every agent to exit"
    )
    p.set_defaults(func=stop_node)
    from gingham.cli.bgp_status import add_status_command

    add_status_command(commands)
