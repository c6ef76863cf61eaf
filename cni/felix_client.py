"""The plugin's only adapter: one gRPC call to the node's felix per CNI command.

Transport: `cni.h2grpc` (HTTP/2 by hand over the unix socket) with messages
encoded by `cni.wire`, so a CNI exec never imports grpcio or protobuf (~150-250
ms on the dev machine). If felix answers in a way that client does not read
(`H2Unsupported`), the same bytes go again through grpcio's generic unary call;
every Dataplane RPC is idempotent by contract, so the retry is safe. The
socket is `felix_socket` from the network config; every call carries the
config's deadline (`timeout_seconds`).

gRPC outcome -> CNI error code (felix attaches an `ErrorDetail` in the
`gingham-error-bin` trailer, see proto/gingham/v1/dataplane.proto):

| felix says | CNI code |
|---|---|
| socket missing, connection refused, UNAVAILABLE | 11 try again later |
| no answer before the deadline, connection broken mid-call | 11 (ADD: deleted again first) |
| ErrorDetail TRY_AGAIN_LATER | 11 |
| ErrorDetail INVALID_ARGUMENT, field from CNI_* env / CNI_ARGS | 4 invalid env |
| ErrorDetail INVALID_ARGUMENT, any other field | 7 invalid network config |
| ErrorDetail ADDRESS_EXHAUSTED, or RESOURCE_EXHAUSTED | 101 |
| ErrorDetail NOT_FOUND, or NOT_FOUND | 3 container unknown (DEL: success) |
| ErrorDetail INTERNAL, UNIMPLEMENTED, anything else | 100 |
| a reply that does not decode, or lacks what the contract promises | 103 (ADD: deleted again) |

The proto's comment on ErrorCode states the same mapping: the spec defines 4
as "invalid environment variables" and 7 as "invalid network config", and we
number our own codes from 100 (cni/errors.py).
"""

from __future__ import annotations

import os

from cni import errors, h2grpc, wire
from cni.errors import CniError
from cni.records import Record
from cni.result import Attachment, Interface, IpConfig, RecordedWorkload, Route

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cni.request import Invocation, NetConf

SERVICE = "/gingham.v1.Dataplane/"
ERROR_TRAILER = "gingham-error-bin"
# gRPC status codes (grpc/status.h) the mapping cares about.
DEADLINE_EXCEEDED, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, INVALID_ARGUMENT = 4, 5, 8, 14, 3
_STATUS_NAMES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
    13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}  # fmt: skip
# ErrorDetail.code values (proto ErrorCode).
TRY_AGAIN, BAD_ARGUMENT, EXHAUSTED, UNKNOWN_WORKLOAD = 1, 2, 3, 4
# Request fields the plugin fills from the CNI_* environment (CNI_ARGS included).
_ENV_FIELDS = ("container_id", "netns", "interface_name", "pod_namespace", "pod_name", "pod_uid")


class FelixStatus(Record):
    __slots__ = ("node", "problems", "ready")
    node: str
    ready: bool
    problems: tuple[str, ...]

    def __init__(self, node: str, ready: bool, problems: tuple[str, ...]) -> None:
        self.node, self.ready, self.problems = node, ready, problems


def translate_status(  # noqa: PLR0917 - the status, then where it came from
    status: int, message: str, trailers: dict[str, bytes], what: str, socket: str, env_ips: bool
) -> CniError:
    """A non-OK gRPC status from felix as the CNI error the runtime should see."""
    detail: dict[str, object] = {"code": 0, "message": "", "field": ""}
    if ERROR_TRAILER in trailers:
        try:  # noqa: SIM105 - contextlib (functools, collections) costs start-up time
            detail = wire.decode("ErrorDetail", trailers[ERROR_TRAILER])
        except wire.WireError:
            pass  # felix's message and status still say enough
    code, field = detail["code"], wire.text(detail, "field")
    text = wire.text(detail, "message") or message
    name = _STATUS_NAMES.get(status, str(status))
    where = f" (field {field})" if field else ""
    if status in (UNAVAILABLE, DEADLINE_EXCEEDED) and code != BAD_ARGUMENT:
        return CniError(
            errors.TRY_AGAIN_LATER,
            f"{what}: felix at {socket} is not answering ({name.lower()}); try again later",
            text,
        )
    if code == TRY_AGAIN:
        return CniError(errors.TRY_AGAIN_LATER, f"{what}: felix asks to try again later: {text}")
    if code == BAD_ARGUMENT or status == INVALID_ARGUMENT:
        from_env = field in _ENV_FIELDS or (field.startswith("requested_ips") and env_ips)
        cni_code = errors.INVALID_ENVIRONMENT if from_env else errors.INVALID_NETWORK_CONFIG
        return CniError(cni_code, f"{what}: felix rejected the request{where}: {text}")
    if code == EXHAUSTED or status == RESOURCE_EXHAUSTED:
        return CniError(errors.ADDRESS_EXHAUSTED, f"{what}: no address available{where}: {text}")
    if code == UNKNOWN_WORKLOAD or status == NOT_FOUND:
        return CniError(errors.UNKNOWN_CONTAINER, f"{what}: felix does not know it: {text}")
    return CniError(
        errors.FELIX_INTERNAL, f"{what}: felix failed ({name}): {text}", "see felix's log"
    )


def _grpcio_call(socket: str, method: str, payload: bytes, timeout: float) -> bytes:
    """The fallback transport: grpcio's generic unary call on raw bytes."""
    import grpc

    with grpc.insecure_channel(
        "unix:" + socket,
        options=[("grpc.enable_retries", 0), ("grpc.service_config_disable_resolution", 1)],
    ) as channel:
        call = channel.unary_unary(SERVICE + method)
        try:
            reply: bytes = call(payload, timeout=timeout)
        except grpc.RpcError as exc:
            status = exc.code().value[0] if hasattr(exc, "code") else 2
            message = exc.details() if hasattr(exc, "details") else str(exc)
            trailers = {k: v for k, v in (exc.trailing_metadata() or ()) if isinstance(v, bytes)}
            if status == UNAVAILABLE:
                raise h2grpc.Unreachable(message) from None
            if status == DEADLINE_EXCEEDED:
                raise h2grpc.DeadlineExceeded(message) from None
            raise h2grpc.GrpcStatus(status, message or "", trailers) from None
        return reply


class FelixClient:
    """Each method is one RPC (CHECK: two) on a fresh connection."""

    def __init__(self, conf: NetConf) -> None:
        self._socket = conf.felix_socket
        self._timeout = conf.timeout
        self.used_fallback = False

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""

    def _call(
        self,
        what: str,
        method: str,
        values: dict[str, object],
        env_ips: bool = False,
        on_unknown_outcome: Callable[[], None] | None = None,
    ) -> dict[str, object]:
        if not os.path.exists(self._socket):
            raise CniError(
                errors.TRY_AGAIN_LATER,
                f"{what}: felix socket {self._socket} does not exist (is felix running?); "
                "try again later",
            )
        payload = wire.encode(f"{method}Request", values)
        try:
            try:
                raw = h2grpc.unary_call(self._socket, SERVICE + method, payload, self._timeout)
            except h2grpc.H2Unsupported:
                self.used_fallback = True
                raw = _grpcio_call(self._socket, method, payload, self._timeout)
        except h2grpc.GrpcStatus as exc:
            raise translate_status(
                exc.code, exc.message, exc.trailers, what, self._socket, env_ips
            ) from None
        except h2grpc.Unreachable as exc:
            raise CniError(
                errors.TRY_AGAIN_LATER,
                f"{what}: felix at {self._socket} is not answering (unavailable); try again later",
                str(exc),
            ) from None
        except (h2grpc.DeadlineExceeded, h2grpc.Interrupted) as exc:
            if on_unknown_outcome is not None:
                # Felix may finish after we gave up: undo so nothing is left behind.
                on_unknown_outcome()
            raise CniError(
                errors.TRY_AGAIN_LATER,
                f"{what}: felix at {self._socket} is not answering ({exc}); try again later",
            ) from None
        try:
            return wire.decode(f"{method}Reply", raw)
        except wire.WireError as exc:
            raise CniError(
                errors.FELIX_PROTOCOL, f"{what}: felix's reply does not decode: {exc}"
            ) from None

    def add(self, inv: Invocation, conf: NetConf) -> Attachment:
        request: dict[str, object] = {
            "container_id": inv.container_id,
            "netns": inv.netns,
            "interface_name": inv.ifname,
            "pod_namespace": inv.args.namespace,
            "pod_name": inv.args.name,
            "pod_uid": inv.args.uid,
            "requested_ips": list(conf.runtime_ips or inv.args.requested_ips),
            "pools": list(conf.pools),
            "mtu": conf.mtu,
            "mac": conf.mac,
        }
        env_ips = not conf.runtime_ips and bool(inv.args.requested_ips)
        try:
            reply = self._call(
                "ADD",
                "AddWorkload",
                request,
                env_ips,
                on_unknown_outcome=lambda: self._undo_add(inv),
            )
            return attachment_from_reply(reply)
        except CniError as exc:
            if exc.code == errors.FELIX_PROTOCOL:
                # Felix wired the pod but we cannot report it: do not leave it half-done.
                self._undo_add(inv)
            raise

    def _undo_add(self, inv: Invocation) -> None:
        # Best effort: the runtime follows a failed ADD with DEL anyway.
        try:  # noqa: SIM105 - no contextlib on the plugin's path
            self.delete(inv)
        except CniError:
            pass

    def delete(self, inv: Invocation) -> bool:
        request: dict[str, object] = {
            "container_id": inv.container_id,
            "netns": inv.netns,
            "interface_name": inv.ifname,
        }
        try:
            reply = self._call("DEL", "DeleteWorkload", request)
        except CniError as exc:
            if exc.code == errors.UNKNOWN_CONTAINER:
                return False  # DEL of something felix never had is a success
            raise
        return bool(reply["existed"])

    def check(self, inv: Invocation) -> tuple[list[str], RecordedWorkload | None]:
        """Kernel problems and felix's record of the attachment, from one CheckWorkload."""
        request: dict[str, object] = {
            "container_id": inv.container_id,
            "netns": inv.netns,
            "interface_name": inv.ifname,
        }
        reply = self._call("CHECK", "CheckWorkload", request)
        problems = [] if reply["ok"] else wire.texts(reply, "problems")
        if not reply["ok"] and not problems:
            problems = ["felix reports a mismatch"]
        wl = wire.submessage(reply, "workload")
        if not wire.text(wl, "host_interface"):
            return problems, None
        recorded = RecordedWorkload(
            ips=frozenset(ip.partition("/")[0] for ip in wire.texts(wl, "ips")),
            mac=wire.text(wl, "mac"),
            host_interface=wire.text(wl, "host_interface"),
        )
        return problems, recorded

    def garbage_collect(self, valid: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        request: dict[str, object] = {
            "valid": [{"container_id": c, "interface_name": i} for c, i in valid]
        }
        reply = self._call("GC", "GarbageCollect", request)
        return [
            (wire.text(w, "container_id"), wire.text(w, "interface_name"))
            for w in wire.messages(reply, "removed")
        ]

    def status(self) -> FelixStatus:
        reply = self._call("STATUS", "Status", {})
        return FelixStatus(
            node=wire.text(reply, "node"),
            ready=bool(reply["datastore_synced"]),
            problems=tuple(wire.texts(reply, "problems")),
        )


def attachment_from_reply(reply: dict[str, object]) -> Attachment:
    t = wire.text
    interfaces = tuple(
        Interface(t(i, "name"), t(i, "mac"), t(i, "sandbox"))
        for i in wire.messages(reply, "interfaces")
    )
    ips = tuple(
        IpConfig(t(ip, "address"), t(ip, "gateway"), wire.number(ip, "interface"))
        for ip in wire.messages(reply, "ips")
    )
    if not interfaces or not ips or any(ip.interface >= len(interfaces) for ip in ips):
        raise CniError(
            errors.FELIX_PROTOCOL,
            "ADD: felix's reply lacks interfaces or addresses, or an address names no interface",
            repr(reply),
        )
    routes = tuple(Route(t(r, "dst"), t(r, "gw")) for r in wire.messages(reply, "routes"))
    return Attachment(
        interfaces=interfaces,
        ips=ips,
        routes=routes,
        mtu=wire.number(reply, "mtu"),
    )
