"""`gingham-rr`: the route reflector daemon of a route-reflector node.

    gingham-rr --node NAME --run-dir DIR [--http 127.0.0.1:9097]

Serves `Reflector` and grpc.health.v1 on `<run-dir>/rr.sock` (mode 0600),
/liveness, /readiness and /metrics on localhost HTTP. It needs no
datastore: its one client, the node's BGP speaker, tells it the cluster ID
and router ID at the start of each stream (see reflector.proto), so there is
one source of truth for the node's BGP identity. `gingham node run` starts
it on nodes whose Node has spec.bgp.routeReflectorClusterID.

Exits 0 on SIGTERM/SIGINT; an unexpected exception ends it non-zero so the
supervisor restarts it (a restart is safe: the speaker re-sends a snapshot
and keeps its reflected routes until the new snapshot's answer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gingham.collector import return_large_blocks, tune_gc
from gingham.probes import serve_probes
from gingham.v1 import reflector_pb2_grpc as pb_grpc
from route_reflector.server import Metrics, ReflectorServicer

log = logging.getLogger("route_reflector")
SOCKET_NAME = "rr.sock"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gingham-rr", description=__doc__.splitlines()[0])
    parser.add_argument("--node", required=True, help="this node's Node resource name")
    parser.add_argument("--run-dir", required=True, type=Path, help=f"where {SOCKET_NAME} lives")
    parser.add_argument(
        "--http", default="127.0.0.1:9097", help="HOST:PORT for probes/metrics ('' to disable)"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    http_host, _, http_port = args.http.rpartition(":")
    if args.http and not http_port.isdigit():
        print(f"gingham-rr: --http: {args.http!r} is not HOST:PORT", file=sys.stderr)
        return 2
    try:
        args.run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"gingham-rr: --run-dir: {exc}", file=sys.stderr)
        return 2
    sock = args.run_dir / SOCKET_NAME
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    metrics = Metrics()
    servicer = ReflectorServicer(args.node, metrics)
    server = grpc.aio.server()
    # The generated registration helpers are untyped (gingham/v1 is protoc output).
    pb_grpc.add_ReflectorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    old_umask = os.umask(0o077)  # the socket is born 0600: no window for others
    try:
        server.add_insecure_port(f"unix:{sock}")
        await server.start()
    finally:
        os.umask(old_umask)
    os.chmod(sock, 0o600)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    http = None
    if args.http:
        try:
            http = await serve_probes(
                http_host, int(http_port), ready=lambda: servicer.in_sync, registry=metrics.registry
            )
        except OSError as exc:
            print(f"gingham-rr: --http {args.http}: {exc.strerror or exc}", file=sys.stderr)
            await server.stop(grace=None)
            sock.unlink(missing_ok=True)
            return 2
    log.info("route reflector for node %s serving on %s, http %s", args.node, sock, args.http)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Not racing server.wait_for_termination(): cancelling it breaks the
    # server's own shutdown (grpc.aio ties both to one future).
    await stop.wait()
    if http is not None:
        http.close()
    await server.stop(grace=1.0)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune_gc()
    return_large_blocks()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
