"""`gingham-bgp --node NAME --datastore URL --run-dir DIR`: the speaker process.

    gingham-bgp --node NAME --datastore URL --run-dir DIR
                [--felix-socket PATH] [--http 127.0.0.1:9098]

Reads this node's Node resource for its BGP address (ExaBGP listens there),
then runs `Speaker` until a signal, and exits 0:

- SIGTERM/SIGINT: a restart. ExaBGP stops and its sessions close without a
  NOTIFICATION; graceful-restart peers keep this node's routes (stale) until
  it is back or their restart time runs out. Rolling updates, `systemctl
  restart`, a crash-looping child restarted by `gingham node run`.
- SIGUSR2: a planned stop (`gingham node stop --drain`). Every Established
  session first gets a Cease NOTIFICATION, Administrative Shutdown, so peers
  drop this node's routes at once (`ExaBGPAdapter.cease`); then as above.

Convention: felix and the speaker share one run dir, so felix's socket is
`<run-dir>/felix.sock` (felix/main.py) and ours `<run-dir>/speaker.sock`,
side by side; `--felix-socket` overrides. On a route reflector node
gingham-rr serves `<run-dir>/rr.sock` (`--rr-socket` overrides); the speaker
dials it only while its Node has a routeReflectorClusterID. Learned routes stream to felix
(`FelixSink`, reconnecting when felix restarts); `Speaker` and gRPC health
are served on speaker.sock (mode 0600); /liveness, /readiness and /metrics
on `--http` (localhost).
User errors (unknown node, bad datastore URL, datastore down) print one line
naming the object and what to do, and exit 2; an unexpected failure of a
speaker task exits 1 with its traceback in the log, for the supervisor to
restart us.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.felix_sink import FelixSink, speaker_converged
from bird_agent.model_view import config_view, node_view
from bird_agent.reflection import Reflection
from bird_agent.speaker import Speaker
from bird_agent.status import mark_serving, registry_for, serve_grpc
from gingham.collector import return_large_blocks, tune_gc
from gingham.datastore import DEFAULT_URL, NotFound, open_datastore, when_available
from gingham.datastore.base import Datastore
from gingham.model.base import Resource
from gingham.model.bgp import BGPConfiguration, Node
from gingham.probes import serve_probes

log = logging.getLogger("gingham-bgp")

# Stop for good (routes withdrawn at peers) rather than restart; see the docstring.
DRAIN_SIGNAL = signal.SIGUSR2


class UserError(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gingham-bgp", description="Gingham's BGP speaker for one node (runs ExaBGP)."
    )
    parser.add_argument("--node", required=True, help="this node's Node resource name")
    parser.add_argument("--datastore", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="sockets and ExaBGP config (default /run/gingham/NODE)",
    )
    parser.add_argument(
        "--felix-socket", type=Path, default=None, help="default <run-dir>/felix.sock"
    )
    parser.add_argument(
        "--rr-socket",
        type=Path,
        default=None,
        help="gingham-rr's socket, used when this node is a route reflector"
        " (default <run-dir>/rr.sock, where gingham node run puts it)",
    )
    parser.add_argument(
        "--http", default="127.0.0.1:9098", help="HOST:PORT for probes/metrics ('' disables)"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def read_start_state(
    store: Datastore, args: argparse.Namespace
) -> tuple[Resource, list[Resource]]:
    """This node's Node and the BGPConfigurations, waiting out an unavailable datastore.

    A speaker restarted by `gingham node run` (or starting on a slow host,
    where the first connection can miss its deadline) keeps trying with
    backoff, saying why each time, rather than exiting into a restart loop;
    a missing Node is still an error at once.
    """

    async def read() -> tuple[Resource, list[Resource]]:
        node = await store.get("Node", args.node)
        return node, list((await store.list("BGPConfiguration")).items)

    try:
        return await when_available(read, args.datastore, log)
    except NotFound:
        raise UserError(
            f'Node "{args.node}" does not exist in {args.datastore}: create it first'
            " (gingham apply -f node.yaml)"
        ) from None


async def run(args: argparse.Namespace) -> int:
    try:
        store = open_datastore(args.datastore)
    except ValueError as exc:
        raise UserError(f"--datastore: {exc}") from None
    try:
        node, configs = await read_start_state(store, args)
        assert isinstance(node, Node)
        view = node_view(node)
        if view.ipv4_address is None:
            raise UserError(f'Node "{args.node}": spec.bgp.ipv4Address is not set: nothing to run')
        config = config_view([c for c in configs if isinstance(c, BGPConfiguration)], args.node)
        run_dir = args.run_dir or Path("/run/gingham") / args.node
        adapter = ExaBGPAdapter(
            ExaBGPOptions(
                run_dir=run_dir,
                listen_addresses=(view.ipv4_address,),
                listen_port=config.listen_port,
            )
        )
        http = parse_host_port(args.http) if args.http else None
        sink = FelixSink(args.felix_socket or run_dir / "felix.sock")
        reflection = Reflection(args.rr_socket or run_dir / "rr.sock", adapter)
        speaker = Speaker(args.node, store, adapter, sink, reflection)
        sink.node_of = speaker.node_of
        sink.first_snapshot_when = lambda: speaker_converged(speaker)
        stop = asyncio.Event()
        drain = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        def stop_for_good() -> None:
            drain.set()
            stop.set()

        loop.add_signal_handler(DRAIN_SIGNAL, stop_for_good)
        run_dir.mkdir(parents=True, exist_ok=True)
        server, health = await serve_grpc(run_dir / "speaker.sock", speaker, sink)
        web = None
        if http is not None:
            try:
                web = await serve_probes(
                    http[0],
                    http[1],
                    ready=lambda: speaker.plan is not None,
                    registry=registry_for(speaker, sink),
                )
            except OSError as exc:
                await server.stop(None)
                raise UserError(f"--http {args.http}: {exc.strerror}") from None
        await speaker.start()
        speaker.tasks.append(asyncio.create_task(sink.run(), name="felix-feed"))
        serving = asyncio.create_task(_serving_when_planned(speaker, health))
        log.info("speaker for %s running, ExaBGP listening on %s", args.node, view.ipv4_address)
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *speaker.tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stopped]
        serving.cancel()
        if drain.is_set():
            told = await adapter.cease()
            log.info("drained: Cease sent to %d peers (%s)", len(told), ", ".join(map(str, told)))
        await speaker.stop()
        if web is not None:
            web.close()
        await server.stop(None)
        with contextlib.suppress(FileNotFoundError):
            (run_dir / "speaker.sock").unlink()
        for task in failed:
            if not task.cancelled() and task.exception() is not None:
                log.error("speaker task %s failed", task.get_name(), exc_info=task.exception())
                return 1
        return 0
    finally:
        await store.close()


def parse_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--http {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9098")
    return host, int(port)


async def _serving_when_planned(speaker: Speaker, health: Any) -> None:
    """grpc health turns SERVING once the speaker planned from a full view."""
    while speaker.plan is None:
        await asyncio.sleep(0.1)
    await mark_serving(health)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune_gc()
    return_large_blocks()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(run(args))
    except UserError as exc:
        print(f"gingham-bgp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
