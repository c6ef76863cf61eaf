"""The plugin's only adapter: one gRPC call to the node's felix per CNI command.

Imported only by commands that talk to felix (ADD, DEL, CHECK, GC, STATUS), so
VERSION and input errors never pay for `grpc` and protobuf. The channel is a
unix socket (`felix_socket` in the network config); every call carries the
config's deadline (`timeout_seconds`).

gRPC outcome -> CNI error code (the felix side is `proto/gingham/v1/dataplane.proto`;
felix attaches an `ErrorDetail` in the `gingham-error-bin` trailer):

| felix says | CNI code |
|---|---|
| socket missing, connection refused, UNAVAILABLE | 11 try again later |
| DEADLINE_EXCEEDED | 11 (after ADD: the attachment is deleted again first) |
| ErrorDetail TRY_AGAIN_LATER | 11 |
| ErrorDetail INVALID_ARGUMENT, field from CNI_* env / CNI_ARGS | 4 invalid env |
| ErrorDetail INVALID_ARGUMENT, any other field | 7 invalid network config |
| ErrorDetail ADDRESS_EXHAUSTED / RESOURCE_EXHAUSTED | 101 |
| ErrorDetail NOT_FOUND / NOT_FOUND | 3 container unknown |
| ErrorDetail INTERNAL, UNIMPLEMENTED, anything else | 100 |
| a reply missing what the contract promises | 103 |

The mapping deliberately differs from the proto's comment on ErrorCode where
that comment swaps codes 4 and 7 and uses 999: the spec defines 4 as "invalid
environment variables" and 7 as "invalid network config", and we number our own
codes from 100 (see cni/errors.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc

from cni import errors
from cni.errors import CniError
from cni.records import Record
from cni.request import Invocation, NetConf
from cni.result import Attachment, Interface, IpConfig, RecordedWorkload, Route
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc

ERROR_TRAILER = "gingham-error-bin"
# Request fields the plugin fills from the CNI_* environment (CNI_ARGS included).
_ENV_FIELDS = ("container_id", "netns", "interface_name", "pod_namespace", "pod_name", "pod_uid")

R = TypeVar("R")


class FelixStatus(Record):
    __slots__ = ("node", "problems", "ready")
    node: str
    ready: bool
    problems: tuple[str, ...]

    def __init__(self, node: str, ready: bool, problems: tuple[str, ...]) -> None:
        self.node, self.ready, self.problems = node, ready, problems


def _detail(exc: grpc.RpcError) -> Any:
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == ERROR_TRAILER:
            try:
                return pb.ErrorDetail.FromString(value)
            except Exception:  # a malformed trailer must not hide the gRPC status
                return None
    return None


def translate_error(exc: grpc.RpcError, what: str, socket: str, env_ips: bool) -> CniError:
    """A failed call as the CNI error the runtime should see."""
    status = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    text = exc.details() if hasattr(exc, "details") else str(exc)
    detail = _detail(exc)
    if detail is not None and detail.message:
        text = detail.message
    if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CniError(
            errors.TRY_AGAIN_LATER,
            f"{what}: felix at {socket} is not answering ({status.name.lower()}); try again later",
            text or "",
        )
    code = detail.code if detail is not None else pb.ERROR_CODE_UNSPECIFIED
    field = detail.field if detail is not None else ""
    where = f" (field {field})" if field else ""
    if code == pb.TRY_AGAIN_LATER:
        return CniError(errors.TRY_AGAIN_LATER, f"{what}: felix asks to try again later: {text}")
    if code == pb.INVALID_ARGUMENT or status == grpc.StatusCode.INVALID_ARGUMENT:
        from_env = field in _ENV_FIELDS or (field.startswith("requested_ips") and env_ips)
        cni_code = errors.INVALID_ENVIRONMENT if from_env else errors.INVALID_NETWORK_CONFIG
        return CniError(cni_code, f"{what}: felix rejected the request{where}: {text}")
    if code == pb.ADDRESS_EXHAUSTED or status == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return CniError(errors.ADDRESS_EXHAUSTED, f"{what}: no address available{where}: {text}")
    if code == pb.NOT_FOUND or status == grpc.StatusCode.NOT_FOUND:
        return CniError(errors.UNKNOWN_CONTAINER, f"{what}: felix does not know it: {text}")
    return CniError(
        errors.FELIX_INTERNAL, f"{what}: felix failed ({status.name}): {text}", "see felix's log"
    )


class FelixClient:
    """One short-lived channel per plugin run; each method is one RPC."""

    def __init__(self, conf: NetConf) -> None:
        self._socket = conf.felix_socket
        self._timeout = conf.timeout
        self._channel = grpc.insecure_channel(
            "unix:" + self._socket,
            # No DNS, no service config lookup, no retries: the runtime retries on 11.
            options=[("grpc.enable_retries", 0), ("grpc.service_config_disable_resolution", 1)],
        )
        self._stub = pb_grpc.DataplaneStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._channel.close()

    def _call(
        self,
        what: str,
        rpc: Callable[..., R],
        request: object,
        env_ips: bool = False,
        on_timeout: Callable[[], None] | None = None,
    ) -> R:
        if not os.path.exists(self._socket):
            raise CniError(
                errors.TRY_AGAIN_LATER,
                f"{what}: felix socket {self._socket} does not exist (is felix running?); "
                "try again later",
            )
        try:
            return rpc(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            if on_timeout is not None and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                # Felix may finish after we gave up: undo so nothing is left behind.
                on_timeout()
            raise translate_error(exc, what, self._socket, env_ips) from None

    def add(self, inv: Invocation, conf: NetConf) -> Attachment:
        requested = conf.runtime_ips or inv.args.requested_ips
        request = pb.AddWorkloadRequest(
            container_id=inv.container_id,
            netns=inv.netns,
            interface_name=inv.ifname,
            pod_namespace=inv.args.namespace,
            pod_name=inv.args.name,
            pod_uid=inv.args.uid,
            requested_ips=list(requested),
            pools=list(conf.pools),
            mtu=conf.mtu,
        )
        if conf.mac:
            if "mac" not in pb.AddWorkloadRequest.DESCRIPTOR.fields_by_name:
                raise CniError(
                    errors.UNSUPPORTED_FIELD,
                    "runtimeConfig.mac: felix's AddWorkload has no way to set a MAC yet; "
                    "remove the mac capability or the requested MAC",
                )
            setattr(request, "mac", conf.mac)  # noqa: B010 - field only in newer contracts
        env_ips = not conf.runtime_ips and bool(inv.args.requested_ips)
        reply = self._call(
            "ADD", self._stub.AddWorkload, request, env_ips, on_timeout=lambda: self._undo_add(inv)
        )
        return attachment_from_reply(reply)

    def _undo_add(self, inv: Invocation) -> None:
        # Best effort: the runtime follows a failed ADD with DEL anyway.
        with contextlib.suppress(CniError):
            self.delete(inv)

    def delete(self, inv: Invocation) -> bool:
        request = pb.DeleteWorkloadRequest(
            container_id=inv.container_id, netns=inv.netns, interface_name=inv.ifname
        )
        try:
            reply = self._call("DEL", self._stub.DeleteWorkload, request)
        except CniError as exc:
            if exc.code == errors.UNKNOWN_CONTAINER:
                return False  # DEL of something felix never had is a success
            raise
        return bool(reply.existed)

    def check(self, inv: Invocation) -> tuple[list[str], RecordedWorkload | None]:
        """Kernel problems from CheckWorkload, and felix's record from ListWorkloads."""
        request = pb.CheckWorkloadRequest(
            container_id=inv.container_id, netns=inv.netns, interface_name=inv.ifname
        )
        reply = self._call("CHECK", self._stub.CheckWorkload, request)
        problems = [] if reply.ok else list(reply.problems) or ["felix reports a mismatch"]
        listing = self._call("CHECK", self._stub.ListWorkloads, pb.ListWorkloadsRequest())
        for wl in listing.workloads:
            if wl.id.container_id == inv.container_id and wl.id.interface_name == inv.ifname:
                recorded = RecordedWorkload(
                    ips=frozenset(ip.partition("/")[0] for ip in wl.ips),
                    mac=wl.mac,
                    host_interface=wl.host_interface,
                )
                return problems, recorded
        return problems, None

    def garbage_collect(self, valid: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        request = pb.GarbageCollectRequest(
            valid=[pb.WorkloadId(container_id=c, interface_name=i) for c, i in valid]
        )
        reply = self._call("GC", self._stub.GarbageCollect, request)
        return [(w.container_id, w.interface_name) for w in reply.removed]

    def status(self) -> FelixStatus:
        reply = self._call("STATUS", self._stub.Status, pb.StatusRequest())
        return FelixStatus(
            node=reply.node, ready=bool(reply.datastore_synced), problems=tuple(reply.problems)
        )


def attachment_from_reply(reply: Any) -> Attachment:
    interfaces = tuple(Interface(i.name, i.mac, i.sandbox) for i in reply.interfaces)
    ips = tuple(IpConfig(ip.address, ip.gateway, ip.interface) for ip in reply.ips)
    if not interfaces or not ips or any(ip.interface >= len(interfaces) for ip in ips):
        raise CniError(
            errors.FELIX_PROTOCOL,
            "ADD: felix's reply lacks interfaces or addresses, or an address names no interface",
            str(reply),
        )
    routes = tuple(Route(r.dst, r.gw) for r in reply.routes)
    return Attachment(interfaces=interfaces, ips=ips, routes=routes, mtu=int(reply.mtu))
