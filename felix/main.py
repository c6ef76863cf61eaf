"""`gingham-felix`: the node dataplane daemon.

    gingham-felix --node NAME --datastore URL --run-dir DIR [--http 127.0.0.1:9099]

Serves `Dataplane`, `RouteFeed` and grpc.health.v1 on `<run-dir>/felix.sock`
(mode 0600), /liveness, /readiness and /metrics on localhost HTTP, follows
the datastore and reconciles the kernel of the namespace it runs in.

Root tasks (agent loop, one datastore follower per kind) are supervised: if
any of them ends with an exception the process exits non-zero, so the
supervisor (gingham node run, or the DaemonSet) restarts it; a restart is
safe because nothing is removed before both full snapshots arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from felix import links
from felix.agent import Agent
from felix.host import Host
from felix.http import Metrics
from felix.server import DataplaneServicer, RouteFeedServicer
from felix.sync import follow, followed_kinds
from felix.tunnels import ensure_tunnel_addresses
from felix.workloads import Workloads
from gingham.collector import return_large_blocks, tune_gc
from gingham.datastore.base import Datastore, DatastoreError
from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.ipam import departed
from gingham.probes import serve_probes
from gingham.v1 import dataplane_pb2_grpc as pb_grpc

log = logging.getLogger("felix")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gingham-felix", description=__doc__.splitlines()[0])
    parser.add_argument("--node", required=True, help="this node's Node resource name")
    parser.add_argument("--datastore", required=True, help="sqlite:///path.db or etcd://host:port")
    parser.add_argument("--run-dir", required=True, type=Path, help="where felix.sock lives")
    parser.add_argument("--http", default="127.0.0.1:9099", help="HOST:PORT for probes/metrics")
    parser.add_argument("--resync", type=float, default=30.0, help="seconds between full resyncs")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def load_workloads(agent: Agent, datastore: Datastore) -> Workloads | None:
    """The AddWorkload path, when this build has gingham.ipam's allocator.

    Looked up at run time (gingham.ipam lands separately): without it felix
    serves everything except AddWorkload, which answers UNIMPLEMENTED with
    TRY_AGAIN_LATER.
    """
    try:
        allocator = importlib.import_module("gingham.ipam.allocator")
    except ImportError:
        log.warning("gingham.ipam.allocator not available: AddWorkload disabled")
        return None
    ipam = allocator.IPAM(datastore)
    return Workloads(agent, None, ipam, datastore=datastore)


async def maintain_tunnel_addresses(
    datastore: Datastore, workloads: Workloads, agent: Agent, interval: float
) -> None:
    """Keep this node's tunnel addresses claimed and published (felix.tunnels)."""
    while True:
        if agent.reconciler.datastore_synced:
            try:
                pools = list(agent.pools.values())
                await ensure_tunnel_addresses(datastore, workloads.ipam, agent.node, pools)
            except Exception:  # datastore/IPAM trouble: retried next round, never fatal
                log.warning("publishing tunnel addresses failed", exc_info=True)
        await asyncio.sleep(interval)


async def forget_departed_nodes(datastore: KubernetesDatastore) -> None:
    """On the kubernetes datastore: a deleted core Node's record and IPAM are
    given back (gingham.ipam.departed), by every node's felix, idempotently."""
    from gingham.ipam.allocator import IPAM

    ipam = IPAM(datastore)
    while True:
        try:
            for line in await departed.forget_deleted_nodes(datastore, ipam):
                log.info("node left the cluster: %s", line)
        except Exception:  # datastore/IPAM trouble: retried next round, never fatal
            log.warning("cleaning up after deleted nodes failed", exc_info=True)
        await asyncio.sleep(departed.INTERVAL)


async def serve(args: argparse.Namespace) -> int:
    from gingham.datastore import open_datastore

    try:
        datastore = open_datastore(args.datastore)
    except ValueError as exc:
        print(f"gingham-felix: --datastore: {exc}", file=sys.stderr)
        return 2
    http_host, _, http_port = args.http.rpartition(":")
    host = Host(None)
    await asyncio.to_thread(links.enable_forwarding, None)
    metrics = Metrics()
    agent = Agent(args.node, host, resync_interval=args.resync, on_reconciled=metrics.observe)
    kinds = followed_kinds()
    agent.expect_datastore_kinds(set(kinds))
    await agent.start()

    args.run_dir.mkdir(parents=True, exist_ok=True)
    sock = args.run_dir / "felix.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    server = grpc.aio.server()
    # The generated registration helpers are untyped (gingham/v1 is protoc output).
    workloads = load_workloads(agent, datastore)
    if workloads is not None:
        try:
            await workloads.load()
        except DatastoreError as exc:  # adopted pods keep their routes regardless
            log.warning("could not reload WorkloadEndpoints: %s", exc)
    dataplane = DataplaneServicer(agent, None, workloads)
    pb_grpc.add_DataplaneServicer_to_server(dataplane, server)  # type: ignore[no-untyped-call]
    pb_grpc.add_RouteFeedServicer_to_server(RouteFeedServicer(agent), server)  # type: ignore[no-untyped-call]
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
    http = await serve_probes(
        http_host, int(http_port), ready=lambda: agent.ready, registry=metrics.registry
    )
    log.info("felix for node %s serving on %s, http %s", args.node, sock, args.http)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(agent.run(), name="agent")]
    tasks += [asyncio.create_task(follow(datastore, agent, k), name=f"follow:{k}") for k in kinds]
    if workloads is not None:
        tunnels = maintain_tunnel_addresses(datastore, workloads, agent, min(args.resync, 5.0))
        tasks.append(asyncio.create_task(tunnels, name="tunnel-addresses"))
        if isinstance(datastore, KubernetesDatastore):
            gone = forget_departed_nodes(datastore)
            tasks.append(asyncio.create_task(gone, name="departed-nodes"))
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in done:
        if task is not stopper and not task.cancelled() and task.exception() is not None:
            log.error("root task %s failed", task.get_name(), exc_info=task.exception())
            code = 1
    for task in [*tasks, stopper]:
        task.cancel()
    await asyncio.gather(*tasks, stopper, return_exceptions=True)
    http.close()
    await server.stop(grace=1.0)
    await datastore.close()
    host.close()
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune_gc()
    return_large_blocks()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
