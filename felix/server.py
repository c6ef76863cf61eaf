"""gRPC servicers: `Dataplane` (for the CNI plugin) and `RouteFeed` (for the speaker).

Servicers translate, nothing more: protobuf in → agent / adapter call → reply.
Errors end the call with a gRPC status plus an `ErrorDetail` in the trailing
metadata key `gingham-error-bin` (see proto/gingham/v1/dataplane.proto).

AddWorkload needs an `Ipam` (felix.workloads); while felix runs without one
(gingham.ipam has not landed) it answers UNIMPLEMENTED with a TRY_AGAIN_LATER
detail.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any, NoReturn

import grpc

from felix import links, veth
from felix.agent import Agent
from felix.attachments import Attachment
from felix.dataplane import POD_GATEWAY, host_interface_name
from felix.desired import LocalWorkload
from felix.feed import (
    Encap,
    FeedProtocolError,
    LearnedHop,
    LearnedRoute,
    RouteUpdate,
    UpdateType,
)
from felix.pod_addresses import WorkloadError
from felix.workloads import AddRequest, Workloads
from gingham.prefix import parse_prefix
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc

ERROR_KEY = "gingham-error-bin"
log = logging.getLogger("felix.server")

_UPDATE_TYPES = {
    pb.SNAPSHOT_BEGIN: UpdateType.SNAPSHOT_BEGIN,
    pb.SNAPSHOT_END: UpdateType.SNAPSHOT_END,
    pb.ADD: UpdateType.ADD,
    pb.DEL: UpdateType.DEL,
}
_ENCAPS = {
    pb.ENCAPSULATION_FROM_POOL: Encap.FROM_POOL,
    pb.ENCAPSULATION_NONE: Encap.NONE,
    pb.ENCAPSULATION_IPIP: Encap.IPIP,
    pb.ENCAPSULATION_VXLAN: Encap.VXLAN,
}


async def abort(
    context: Any, status: grpc.StatusCode, code: pb.ErrorCode, message: str, field: str = ""
) -> NoReturn:
    detail = pb.ErrorDetail(code=code, message=message, field=field)
    await context.abort(
        status, message, trailing_metadata=((ERROR_KEY, detail.SerializeToString()),)
    )
    raise AssertionError("unreachable: context.abort raises")


def update_from_pb(msg: Any, prefix_text: str | None = None) -> RouteUpdate:
    """Translate one RouteUpdate message (for `prefix_text` instead of
    `msg.prefix`: one entry of `msg.prefixes`); ValueError names the bad field."""
    return _Translation(msg).update(msg.prefix if prefix_text is None else prefix_text)


class _Translation:
    """What every prefix of one RouteUpdate message shares (type, peer, next
    hops, encapsulation), translated once: a batch carries up to 1,000 prefixes."""

    def __init__(self, msg: Any) -> None:
        self.kind = _UPDATE_TYPES.get(msg.type)
        self.error: ValueError | None = None
        self.peer: str = msg.peer
        self.hops: tuple[LearnedHop, ...] = ()
        self.encap = _ENCAPS.get(msg.encapsulation, Encap.FROM_POOL)
        if self.kind is None:
            self.error = ValueError(f"type: {msg.type} is not a RouteUpdateType")
            return
        hops = []
        for i, hop in enumerate(msg.next_hops):
            try:
                hops.append(_learned_hop(hop.address, hop.node))
            except ValueError:
                self.error = ValueError(f"next_hops[{i}].address: {hop.address!r} is not IPv4")
                return
        self.hops = _shared_hops(tuple(sorted(hops)))

    def update(self, text: str) -> RouteUpdate:
        if self.kind is None:
            assert self.error is not None
            raise self.error
        if self.kind in (UpdateType.SNAPSHOT_BEGIN, UpdateType.SNAPSHOT_END):
            return RouteUpdate(self.kind)
        try:
            prefix = parse_prefix(text)
        except ValueError as exc:
            raise ValueError(_bad_prefix(text, exc)) from None
        if self.error is not None:
            raise self.error
        return RouteUpdate(self.kind, LearnedRoute(prefix, self.peer, self.hops, self.encap))

    def routes(self, texts: Sequence[str]) -> tuple[list[LearnedRoute], list[str]]:
        """The routes of an ADD/DEL batch, and an error per prefix refused."""
        if self.error is not None:
            return [], [str(self.error)] * len(texts)
        peer, hops, encap, parse = self.peer, self.hops, self.encap, parse_prefix
        routes: list[LearnedRoute] = []
        errors: list[str] = []
        for text in texts:
            if not text:
                continue
            try:
                routes.append(LearnedRoute(parse(text), peer, hops, encap))
            except ValueError as exc:
                errors.append(_bad_prefix(text, exc))
        return routes, errors


def _bad_prefix(text: str, exc: ValueError) -> str:
    return f"prefix: {text!r} is not an IPv4 CIDR ({exc})"


@functools.lru_cache(maxsize=4096)
def _shared_hops(hops: tuple[LearnedHop, ...]) -> tuple[LearnedHop, ...]:
    """One tuple object per set of next hops, shared by every message that has it
    (felix.desired memoises the hops of a path by the tuple's identity)."""
    return hops


@functools.lru_cache(maxsize=4096)
def _learned_hop(address: str, node: str) -> LearnedHop:
    # A batch repeats one next hop for up to 1,000 prefixes: parse it once.
    return LearnedHop(IPv4Address(address), node)


class RouteFeedServicer(pb_grpc.RouteFeedServicer):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def SyncRoutes(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        feed = self.agent.feed
        stream = feed.open_stream()
        received = 0
        try:
            async for msg in request_iterator:
                received += 1
                translation = _Translation(msg)
                if msg.prefixes and translation.kind in (UpdateType.ADD, UpdateType.DEL):
                    # A batch (`prefixes`): one update per prefix, `prefix` first when set.
                    texts = [msg.prefix, *msg.prefixes] if msg.prefix else msg.prefixes
                    routes, errors = translation.routes(texts)
                    try:
                        changed = feed.apply_routes(stream, translation.kind, routes)
                    except FeedProtocolError as exc:
                        changed, errors = True, [*errors, str(exc)]
                else:
                    try:
                        changed, errors = feed.apply(stream, translation.update(msg.prefix)), []
                    except (ValueError, FeedProtocolError) as exc:
                        changed, errors = False, [str(exc)]
                for error in errors:
                    yield pb.RouteFeedAck(
                        received=received, in_sync=feed.is_in_sync(stream), error=error
                    )
                if changed:
                    self.agent.mark_dirty()
                if msg.type == pb.SNAPSHOT_END:
                    yield pb.RouteFeedAck(received=received, in_sync=True)
        finally:
            feed.close_stream(stream)


_ERROR_KINDS = {
    "invalid": (grpc.StatusCode.INVALID_ARGUMENT, pb.INVALID_ARGUMENT),
    "exhausted": (grpc.StatusCode.RESOURCE_EXHAUSTED, pb.ADDRESS_EXHAUSTED),
    "transient": (grpc.StatusCode.UNAVAILABLE, pb.TRY_AGAIN_LATER),
    "internal": (grpc.StatusCode.INTERNAL, pb.INTERNAL),
}


def add_reply(a: Attachment) -> Any:
    return pb.AddWorkloadReply(
        interfaces=[
            pb.Interface(name=a.host_interface, mac=a.host_mac),
            pb.Interface(name=a.interface, mac=a.pod_mac, sandbox=a.netns),
        ],
        ips=[
            pb.IPConfig(address=f"{ip}/32", gateway=str(POD_GATEWAY), interface=1) for ip in a.ips
        ],
        routes=[pb.RouteConfig(dst="0.0.0.0/0", gw=str(POD_GATEWAY))],
        mac=a.pod_mac,
        host_interface=a.host_interface,
        mtu=a.mtu,
    )


class DataplaneServicer(pb_grpc.DataplaneServicer):
    def __init__(self, agent: Agent, host_netns: str | None, workloads: Workloads | None) -> None:
        self.agent = agent
        self.host_netns = host_netns
        self.workloads = workloads

    async def AddWorkload(self, request: Any, context: Any) -> Any:
        if self.workloads is None:
            await abort(
                context,
                grpc.StatusCode.UNIMPLEMENTED,
                pb.TRY_AGAIN_LATER,
                "AddWorkload needs IPAM (gingham.ipam), which this felix does not have yet",
            )
        req = AddRequest(
            container_id=request.container_id,
            netns=request.netns,
            interface=request.interface_name or "eth0",
            pod_namespace=request.pod_namespace,
            pod_name=request.pod_name,
            pod_uid=request.pod_uid,
            requested_ips=tuple(request.requested_ips),
            pools=tuple(request.pools),
            mtu=request.mtu,
            mac=request.mac,
        )
        try:
            attachment = await self.workloads.add(req)
        except WorkloadError as exc:
            status, code = _ERROR_KINDS[exc.kind]
            await abort(context, status, code, str(exc), exc.field)
        except Exception as exc:  # a bug: traceback in the log, a clean error on the wire
            log.exception("AddWorkload %s failed", req.container_id)
            await abort(context, grpc.StatusCode.INTERNAL, pb.INTERNAL, f"internal error: {exc}")
        return add_reply(attachment)

    async def DeleteWorkload(self, request: Any, context: Any) -> Any:
        if not request.container_id:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, pb.INVALID_ARGUMENT,
                        "container_id is empty", "container_id")  # fmt: skip
        iface = request.interface_name or "eth0"
        if self.workloads is not None:
            try:
                existed = await self.workloads.delete(request.container_id, iface, request.netns)
            except Exception as exc:  # IPAM down: the runtime must retry DEL
                await abort(context, grpc.StatusCode.UNAVAILABLE, pb.TRY_AGAIN_LATER, str(exc))
            return pb.DeleteWorkloadReply(existed=existed)
        name = host_interface_name(request.container_id, iface)
        existed = await asyncio.to_thread(veth.unplumb, self.host_netns, name)
        if existed:
            self.agent.link_removed(name)
        existed = self.agent.workloads.pop(name, None) is not None or existed
        self.agent.mark_dirty()
        return pb.DeleteWorkloadReply(existed=existed)

    async def CheckWorkload(self, request: Any, context: Any) -> Any:
        iface = request.interface_name or "eth0"
        name = host_interface_name(request.container_id, iface)
        workload = self.agent.workloads.get(name)
        if workload is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, pb.NOT_FOUND,
                        f"no attachment {request.container_id}/{iface} on this node",
                        "container_id")  # fmt: skip
        spec = veth.VethSpec(name, iface, request.netns, workload.ips)
        problems = await asyncio.to_thread(veth.check, self.host_netns, spec)
        programmed = self.agent.programmed().routes
        for ip in workload.ips:
            if IPv4Network(ip) not in programmed:
                problems.append(f"route {ip}/32 dev {name} not programmed")
        record = await self._workload_pb(workload)
        return pb.CheckWorkloadReply(ok=not problems, problems=problems, workload=record)

    async def ListWorkloads(self, request: Any, context: Any) -> Any:
        out = []
        for w in sorted(self.agent.workloads.values(), key=lambda w: w.host_interface):
            out.append(await self._workload_pb(w))
        return pb.ListWorkloadsReply(workloads=out)

    async def _workload_pb(self, w: LocalWorkload) -> Any:
        """One attachment for Check/List: felix's record, completed from the kernel.

        A workload adopted at start without a WorkloadEndpoint (or reloaded from
        one without a MAC) has no container ID or MAC in memory; the host veth's
        ifalias and its permanent pod neighbour entry still say both.
        """
        known = self.workloads.attachments if self.workloads is not None else {}
        a = known.get(w.host_interface)
        item = pb.Workload(host_interface=w.host_interface, ips=[str(ip) for ip in w.ips])
        if a is not None:
            item.id.container_id, item.id.interface_name = a.container_id, a.interface
            item.netns, item.mac = a.netns, a.pod_mac
            item.pod_namespace, item.pod_name, item.pod_uid = (
                a.pod_namespace, a.pod_name, a.pod_uid,
            )  # fmt: skip
        if not (item.id.container_id and item.mac):
            found = await asyncio.to_thread(
                links.describe_workload, self.host_netns, w.host_interface
            )
            if found is not None:
                if not item.id.container_id and found.container_id:
                    item.id.container_id = found.container_id
                    item.id.interface_name = found.pod_interface
                item.mac = item.mac or found.pod_mac
        return item

    async def GarbageCollect(self, request: Any, context: Any) -> Any:
        valid = {
            host_interface_name(v.container_id, v.interface_name or "eth0") for v in request.valid
        }
        removed = []
        known = self.workloads.attachments if self.workloads is not None else {}
        # Attachments too: a pod whose veth vanished is no workload of the agent any
        # more, but still holds its address until a DEL or this.
        for name in sorted((set(self.agent.workloads) | set(known)) - valid):
            a = known.get(name)
            if a is not None and self.workloads is not None:
                await self.workloads.delete(a.container_id, a.interface)
                removed.append(
                    pb.WorkloadId(container_id=a.container_id, interface_name=a.interface)
                )
                continue
            # Adopted at start (no record in memory): the veth's ifalias still names the
            # attachment; read it before the plumbing (and the alias) goes.
            found = await asyncio.to_thread(links.describe_workload, self.host_netns, name)
            if await asyncio.to_thread(veth.unplumb, self.host_netns, name):
                self.agent.link_removed(name)
            self.agent.workloads.pop(name, None)
            if found is not None and found.container_id:
                removed.append(
                    pb.WorkloadId(
                        container_id=found.container_id, interface_name=found.pod_interface
                    )
                )
            else:  # a veth from before ifaliases: only its host name is known
                removed.append(pb.WorkloadId(container_id="", interface_name=name))
        self.agent.mark_dirty()
        return pb.GarbageCollectReply(removed=removed)

    async def Status(self, request: Any, context: Any) -> Any:
        agent = self.agent
        return pb.StatusReply(
            node=agent.node,
            datastore_synced=agent.reconciler.datastore_synced,
            routes_synced=agent.feed.synced,
            routes_programmed=len(agent.programmed().routes),
            workloads=len(agent.workloads),
            problems=agent.problems,
        )
