"""FAKE felix for CNI contract-shape tests only: answers `Dataplane` from memory.

This is not felix and does no kernel work: it assigns addresses from a counter
and remembers attachments in a dict, so the CNI plugin's request parsing, result
rendering, error mapping and idempotence rules can be tested over the real gRPC
contract before (and independently of) the felix daemon. Anything about pods
being reachable is tested against the real `gingham-felix` instead.

Knobs a test sets on `FakeFelix`: `fail_next` (an ErrorDetail code, gRPC status
and field for the next call), `delay` (seconds to stall AddWorkload),
`synced` (Status), `kernel_problems` (CheckWorkload), `omit_ips` (a reply
that breaks the contract).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc


@dataclass
class Failure:
    code: int  # pb.ErrorCode
    status: grpc.StatusCode
    message: str
    field: str = ""


@dataclass
class FakeFelix(pb_grpc.DataplaneServicer):  # type: ignore[misc]
    node: str = "fake-node"
    subnet_prefix: str = "10.99.0."
    synced: bool = True
    delay: float = 0.0
    fail_next: Failure | None = None
    kernel_problems: list[str] = field(default_factory=list)
    # Answer AddWorkload without addresses (a reply breaking the contract).
    omit_ips: bool = False
    workloads: dict[tuple[str, str], Any] = field(default_factory=dict)
    requests: list[Any] = field(default_factory=list)
    _next_host: int = 2
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _maybe_fail(self, context: grpc.ServicerContext) -> None:
        failure, self.fail_next = self.fail_next, None
        if failure is None:
            return
        detail = pb.ErrorDetail(code=failure.code, message=failure.message, field=failure.field)
        context.set_trailing_metadata((("gingham-error-bin", detail.SerializeToString()),))
        context.abort(failure.status, failure.message)

    def AddWorkload(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        self._maybe_fail(context)
        key = (request.container_id, request.interface_name)
        with self._lock:
            if key in self.workloads:
                return self.workloads[key]["reply"]
            ip = next(iter(request.requested_ips)) if request.requested_ips else None
            if ip is None:
                ip = f"{self.subnet_prefix}{self._next_host}"
                self._next_host += 1
            host_if = "gh" + format(abs(hash(key)) % 16**11, "011x")
            mac = request.mac.lower() or f"ee:ee:ee:00:00:{len(self.workloads) % 256:02x}"
            reply = pb.AddWorkloadReply(
                interfaces=[
                    pb.Interface(name=host_if, mac="ee:ee:ee:ee:ee:ee"),
                    pb.Interface(name=request.interface_name, mac=mac, sandbox=request.netns),
                ],
                ips=[pb.IPConfig(address=f"{ip}/32", gateway="169.254.1.1", interface=1)],
                routes=[pb.RouteConfig(dst="0.0.0.0/0", gw="169.254.1.1")],
                mac=mac,
                host_interface=host_if,
                mtu=request.mtu or 1500,
            )
            self.workloads[key] = {"reply": reply, "request": request, "ip": ip}
            if self.omit_ips:
                broken = pb.AddWorkloadReply()
                broken.CopyFrom(reply)
                del broken.ips[:]
                return broken
            return reply

    def DeleteWorkload(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        self._maybe_fail(context)
        with self._lock:
            existed = self.workloads.pop((request.container_id, request.interface_name), None)
        return pb.DeleteWorkloadReply(existed=existed is not None)

    def CheckWorkload(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        self._maybe_fail(context)
        key = (request.container_id, request.interface_name)
        if key not in self.workloads:
            return pb.CheckWorkloadReply(ok=False, problems=["no such workload"])
        return pb.CheckWorkloadReply(
            ok=not self.kernel_problems,
            problems=self.kernel_problems,
            workload=self._record(key, self.workloads[key]),
        )

    def ListWorkloads(self, request: Any, context: grpc.ServicerContext) -> Any:
        out = [self._record(key, wl) for key, wl in list(self.workloads.items())]
        return pb.ListWorkloadsReply(workloads=out)

    @staticmethod
    def _record(key: tuple[str, str], wl: Any) -> Any:
        reply = wl["reply"]
        return pb.Workload(
            id=pb.WorkloadId(container_id=key[0], interface_name=key[1]),
            netns=wl["request"].netns,
            host_interface=reply.host_interface,
            ips=[ip.address for ip in reply.ips],
            mac=reply.mac,
        )

    def GarbageCollect(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        valid = {(w.container_id, w.interface_name) for w in request.valid}
        removed = []
        with self._lock:
            for key in list(self.workloads):
                if key not in valid:
                    del self.workloads[key]
                    removed.append(pb.WorkloadId(container_id=key[0], interface_name=key[1]))
        return pb.GarbageCollectReply(removed=removed)

    def Status(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.StatusReply(
            node=self.node, datastore_synced=self.synced, workloads=len(self.workloads)
        )


@contextmanager
def serve_fake_felix(socket_path: str) -> Iterator[FakeFelix]:
    """Run a FakeFelix on `socket_path` for the duration of the block."""
    fake = FakeFelix()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_DataplaneServicer_to_server(fake, server)
    server.add_insecure_port("unix:" + socket_path)
    server.start()
    try:
        yield fake
    finally:
        server.stop(grace=None).wait()
