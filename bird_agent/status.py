"""What the speaker shows the world: the `Speaker` gRPC service, metrics, probes.

- `status_reply` turns a running `Speaker` (and its felix sink) into a
  `SpeakerStatusReply` (proto/gingham/v1/speaker.proto); the servicer only
  calls it.
- `serve_grpc` puts `Speaker` and grpc.health.v1 on `<run-dir>/speaker.sock`,
  mode 0600 (the socket is root's: it names peers and prefixes).
- `SpeakerCollector` computes Prometheus metrics at scrape time from the
  speaker's state, so nothing has to remember to update a gauge.
- `registry_for`: that collector in a registry of its own, which
  `gingham.probes.serve_probes` serves on /metrics (beside /liveness and
  /readiness: planned from a complete datastore view).

Invariants: read-only over the speaker; never blocks the event loop for
longer than one pass over the learned table.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bird_agent.felix_sink import FelixSink
from bird_agent.speaker import Speaker
from gingham.v1 import speaker_pb2 as pb
from gingham.v1 import speaker_pb2_grpc as pb_grpc

SERVICE = "gingham.v1.Speaker"


def status_reply(speaker: Speaker, sink: FelixSink | None, include_routes: bool) -> Any:
    plan = speaker.plan
    address = speaker.address()
    specs = plan.peers.by_address() if plan is not None else {}
    reply = pb.SpeakerStatusReply(
        node=speaker.node,
        address=str(address) if address is not None else "",
        ready=plan is not None,
        felix_in_sync=sink.in_sync if sink is not None else False,
        announced_count=len(plan.exports) if plan is not None else 0,
        learned_count=len(speaker.learned.selected),
    )
    for row in speaker.status():
        spec = specs.get(row.address)
        reply.peers.append(
            pb.BgpPeerStatus(
                address=str(row.address),
                peer_type=row.peer_type,
                state=row.state,
                since=row.since or 0.0,
                info=row.info,
                received=row.received,
                accepted=row.accepted,
                advertised=row.advertised,
                node=(spec.peer_node or "") if spec else "",
                as_number=spec.peer_asn if spec else 0,
            )
        )
    counters = speaker.learned.import_filter
    for reason, n in counters.rejected_by_reason.items():
        reply.rejected_by_reason[reason.value] = n
    for reason, rejection in counters.latest.items():
        reply.rejected_example[reason.value] = f"{rejection.prefix} from {rejection.peer}"
    # Routes that looped back to us (ORIGINATOR_ID / CLUSTER_LIST), never installed.
    for why, n in speaker.loops.items():
        reply.rejected_by_reason[why] = n
    for peer, n in counters.rejected_by_peer.items():
        reply.rejected_by_peer[str(peer)] = n
    if include_routes:
        if plan is not None:
            for prefix, hop in sorted(plan.exports.items()):
                reply.announced.append(
                    pb.BgpRoute(prefix=str(prefix), next_hop=str(hop), node=speaker.node)
                )
        for prefix, route in sorted(speaker.learned.selected.items()):
            reply.learned.append(
                pb.BgpRoute(
                    prefix=str(prefix),
                    next_hop=str(route.next_hop),
                    peer=str(route.peer),
                    node=speaker.node_of(route.next_hop) or route.origin_node or "",
                )
            )
    return reply


class SpeakerServicer(pb_grpc.SpeakerServicer):
    def __init__(self, speaker: Speaker, sink: FelixSink | None) -> None:
        self.speaker = speaker
        self.sink = sink

    async def Status(self, request: Any, context: Any) -> Any:
        return status_reply(self.speaker, self.sink, request.include_routes)


async def serve_grpc(
    socket: Path, speaker: Speaker, sink: FelixSink | None
) -> tuple[Any, health.aio.HealthServicer]:
    """Serve on `socket` (replacing a stale one); returns (server, health)."""
    with contextlib.suppress(FileNotFoundError):
        socket.unlink()
    server = grpc.aio.server()
    servicer = SpeakerServicer(speaker, sink)
    pb_grpc.add_SpeakerServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # Created 0600 from the start: no window where others can connect.
    old = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix:{socket}")
        await server.start()
    finally:
        os.umask(old)
    os.chmod(socket, 0o600)
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return server, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer) -> None:
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


class SpeakerCollector(Collector):
    def __init__(self, speaker: Speaker, sink: FelixSink | None) -> None:
        self.speaker = speaker
        self.sink = sink

    def collect(self) -> Iterator[Metric]:
        rows = self.speaker.status()
        states = GaugeMetricFamily(
            "gingham_bgp_sessions", "Desired BGP sessions by state", labels=["state"]
        )
        for state, n in sorted(Counter(r.state for r in rows).items()):
            states.add_metric([state], n)
        yield states
        up = GaugeMetricFamily(
            "gingham_bgp_session_established",
            "1 when the session is Established",
            labels=["peer", "peer_type"],
        )
        received = GaugeMetricFamily(
            "gingham_bgp_routes_received", "Prefixes received (before policy)", labels=["peer"]
        )
        accepted = GaugeMetricFamily(
            "gingham_bgp_routes_accepted", "Prefixes accepted by import policy", labels=["peer"]
        )
        for r in rows:
            up.add_metric([str(r.address), r.peer_type], 1.0 if r.state == "established" else 0.0)
            received.add_metric([str(r.address)], r.received)
            accepted.add_metric([str(r.address)], r.accepted)
        yield from (up, received, accepted)
        plan = self.speaker.plan
        yield GaugeMetricFamily(
            "gingham_bgp_routes_announced",
            "Prefixes this node announces",
            value=len(plan.exports) if plan is not None else 0,
        )
        yield GaugeMetricFamily(
            "gingham_bgp_routes_selected",
            "Learned prefixes selected for the dataplane",
            value=len(self.speaker.learned.selected),
        )
        rejected = CounterMetricFamily(
            "gingham_bgp_routes_rejected", "Prefixes refused by import policy", labels=["reason"]
        )
        for reason, n in self.speaker.learned.import_filter.rejected_by_reason.items():
            rejected.add_metric([reason.value], n)
        for why, n in self.speaker.loops.items():
            rejected.add_metric([why], n)
        yield rejected
        if self.sink is not None:
            yield GaugeMetricFamily(
                "gingham_bgp_felix_in_sync",
                "1 while felix holds our latest route snapshot",
                value=1.0 if self.sink.in_sync else 0.0,
            )


def registry_for(speaker: Speaker, sink: FelixSink | None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SpeakerCollector(speaker, sink))
    return registry
