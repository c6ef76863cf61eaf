"""The `Reflector` gRPC servicer and the reflector's Prometheus metrics.

The servicer translates, nothing more: each `Reflect` stream gets its own
`ReflectFeed` (the pure stream protocol), protobuf inputs are decoded with
`convert`, outputs encoded back. `Status` reads the feed of the stream
that is currently authoritative (the one opened last).

Invariants:
- One event loop, no threads: the core is synchronous and never shared
  across tasks mid-call, so it needs no locks.
- A stream that ends (the speaker restarted or went away) leaves an empty,
  not-in-sync reflector behind unless a newer stream has taken over: the
  sessions it described are not ours to vouch for any more.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from gingham.v1 import reflector_pb2 as pb
from gingham.v1 import reflector_pb2_grpc as pb_grpc
from route_reflector.api.convert import decode_input, encode_attributes, encode_output
from route_reflector.api.messages import FeedOutput
from route_reflector.feed import ReflectFeed

log = logging.getLogger("route_reflector.server")

PEER_TYPE_CLIENT = "route reflector client"
PEER_TYPE_NON_CLIENT = "route reflector"


class Metrics:
    """The reflector's counters, in a private registry served on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reflected = Counter(
            "gingham_rr_reflected_updates",
            "Per-prefix announcements and withdrawals the reflector told the speaker to send",
            ["kind"],
            registry=self.registry,
        )
        self.inputs = Counter(
            "gingham_rr_inputs", "Inputs received on Reflect streams", registry=self.registry
        )
        self.refused = Counter(
            "gingham_rr_inputs_refused", "Inputs refused as malformed", registry=self.registry
        )
        self.streams = Counter(
            "gingham_rr_streams", "Reflect streams opened", registry=self.registry
        )
        self.peers = Gauge("gingham_rr_peers", "Sessions up", ["role"], registry=self.registry)
        self.prefixes = Gauge(
            "gingham_rr_prefixes", "Prefixes with a best path", registry=self.registry
        )
        self.loops = Gauge(
            "gingham_rr_loops_dropped",
            "Prefixes refused on input as cluster or originator loops (current stream)",
            registry=self.registry,
        )

    def observe(self, feed: ReflectFeed, output: FeedOutput) -> None:
        # Per prefix x peer, as an UPDATE's NLRI would count them.
        withdrawals = sum(len(c.peers) for c in output.changes if c.attributes is None)
        announcements = sum(len(c.peers) for c in output.changes) - withdrawals
        self.reflected.labels("withdraw").inc(withdrawals)
        self.reflected.labels("announce").inc(announcements)
        if output.error:
            self.refused.inc()
        self.set_gauges(feed)

    def set_gauges(self, feed: ReflectFeed) -> None:
        reflector = feed.reflector
        peers = list(reflector.peers.values()) if reflector is not None else []
        self.peers.labels("client").set(sum(1 for p in peers if p.client))
        self.peers.labels("non-client").set(sum(1 for p in peers if not p.client))
        self.prefixes.set(len(reflector.best_paths()) if reflector is not None else 0)
        self.loops.set(reflector.loops_dropped if reflector is not None else 0)


class ReflectorServicer(pb_grpc.ReflectorServicer):
    def __init__(self, node: str, metrics: Metrics) -> None:
        self.node = node
        self.metrics = metrics
        self.current = ReflectFeed()

    @property
    def in_sync(self) -> bool:
        return self.current.in_sync

    async def Reflect(
        self, request_iterator: AsyncIterator[pb.ReflectorInput], context: Any
    ) -> AsyncIterator[pb.ReflectorOutput]:
        feed = ReflectFeed()
        self.current = feed
        self.metrics.streams.inc()
        self.metrics.set_gauges(feed)
        log.info("Reflect stream opened")
        try:
            async for message in request_iterator:
                self.metrics.inputs.inc()
                try:
                    event = decode_input(message)
                except ValueError as exc:
                    outputs = feed.refuse(str(exc))
                else:
                    outputs = feed.handle(event)
                for output in outputs:
                    if output.error:
                        log.warning("input %d refused: %s", output.received, output.error)
                    self.metrics.observe(feed, output)
                    yield encode_output(output)
        finally:
            log.info("Reflect stream closed after %d inputs", feed.received)
            if self.current is feed:
                self.current = ReflectFeed()
                self.metrics.set_gauges(self.current)

    async def Status(
        self, request: pb.ReflectorStatusRequest, context: Any
    ) -> pb.ReflectorStatusReply:
        return status_reply(self.node, self.current, best_paths=request.best_paths)


def status_reply(node: str, feed: ReflectFeed, *, best_paths: bool) -> pb.ReflectorStatusReply:
    reply = pb.ReflectorStatusReply(
        node=node, in_sync=feed.in_sync, reflected_updates=feed.reflected_updates
    )
    reflector = feed.reflector
    if reflector is None:
        return reply
    reply.cluster_id = str(reflector.cluster_id)
    reply.router_id = str(reflector.router_id)
    reply.loops_dropped = reflector.loops_dropped
    best = reflector.best_paths()
    reply.prefixes = len(best)
    advertised = reflector.advertised_counts()
    for address, peer in sorted(reflector.peers.items()):
        reply.peers.append(
            pb.ReflectorPeer(
                address=str(address),
                router_id=str(peer.router_id),
                client=peer.client,
                peer_type=PEER_TYPE_CLIENT if peer.client else PEER_TYPE_NON_CLIENT,
                received=len(reflector.rib.routes_of(address)),
                advertised=advertised.get(address, 0),
            )
        )
    reply.clients = sum(1 for p in reflector.peers.values() if p.client)
    reply.non_clients = len(reflector.peers) - reply.clients
    if best_paths:
        for prefix, path in sorted(best.items()):
            reply.best_paths.append(
                pb.BestPath(
                    prefix=str(prefix),
                    peer=str(path.peer.address),
                    attributes=encode_attributes(path.attributes),
                    candidates=len(reflector.rib.candidates(prefix)),
                    advertised_to=[str(a) for a in reflector.advertised_to(prefix)],
                )
            )
    return reply
