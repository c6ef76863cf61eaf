"""The etcd v3 backend, speaking etcd's gRPC API through `grpc.aio`.

Why grpc.aio over etcd's own protobuf stubs rather than the `pyetcd` client
(etcd-sdk-python): our daemons are asyncio, and pyetcd is synchronous with a
thread per watch; wrapping it would put every call on a thread and turn watch
resume into cross-thread plumbing. The gRPC API gives what the contract needs
directly: `Txn` with compare on create/mod revision for CAS, `Watch` from a
start revision with ``prev_kv`` and an explicit ``compact_revision``, headers
carrying the store revision. We reuse the compiled stubs pyetcd ships
(`pyetcd.etcdrpc`: rpc_pb2, rpc_pb2_grpc, kv_pb2) so no generated etcd code
lives in this repository; nothing else of pyetcd is used.

Layout and invariants:
- Key ``/gingham/v1/<Kind>/<name>``; the value is the codec's JSON; an object's
  revision is its key's ``mod_revision`` as a decimal string; `list` reports
  the response header's revision (consistent pages are read at that revision).
- create = txn(create_revision == 0); update/delete with a revision =
  txn(mod_revision == rev), without one = txn(create_revision > 0). The failure
  branch reads the key, so one round trip tells NotFound from Conflict.
- Endpoints are tried in the order given; a call that cannot reach one moves
  on to the next. Writes move on only for connection failures (not for errors
  etcd itself returned), because a proposal etcd accepted may still apply.
- Every call has a deadline (`timeout`), so a dead or partitioned etcd gives
  `Unavailable` in bounded time; gRPC's own reconnect backoff is capped at 2 s
  so a restarted etcd is noticed quickly.
- `watch` starts at ``from_revision + 1``, and when the stream fails it
  reconnects (capped exponential backoff, rotating endpoints) and resumes after
  the last revision it yielded, dropping anything at or below it; it gives up
  with `Unavailable` after `reconnect_timeout` of continuous failure. A
  compacted start revision is `RevisionCompacted`. Streams are opened with
  ``hasleader``, so a member cut off from the cluster ends them rather than
  going quiet, and the watch moves to another member.
- `close()` ends in-flight calls and watches with `Unavailable`.
- gRPC channels belong to the event loop that made them: the store makes its
  channels lazily on the running loop and remakes them if the loop changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from pyetcd.etcdrpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

from gingham.datastore.base import (
    AlreadyExists,
    Conflict,
    EventType,
    Listing,
    NotFound,
    RevisionCompacted,
    Unavailable,
    WatchEvent,
)
from gingham.datastore.codec import canonical_kind, decode, encode
from gingham.datastore.url import EtcdEndpoint
from gingham.model.base import Resource

T = TypeVar("T")

KEY_PREFIX = "/gingham/v1/"
_PAGE = 500

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),  # etcd refuses pings more often than every 5 s
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


@dataclass
class _Stubs:
    endpoint: EtcdEndpoint
    channel: Any
    kv: Any
    watch: Any


def prefix_range_end(prefix: bytes) -> bytes:
    """The etcd range end covering every key that starts with `prefix`."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key


def _revision_number(kind: str, name: str, revision: str) -> int:
    try:
        return int(revision)
    except ValueError:
        raise Conflict(f'{kind} "{name}": revision "{revision}" is not an etcd revision') from None


class EtcdDatastore:
    def __init__(
        self,
        endpoints: Sequence[EtcdEndpoint],
        *,
        key_prefix: str = KEY_PREFIX,
        timeout: float = 5.0,
        reconnect_timeout: float = 60.0,
    ) -> None:
        if not endpoints:
            raise ValueError("an etcd datastore needs at least one endpoint")
        self._endpoints = list(endpoints)
        self._key_prefix = key_prefix
        self._timeout = timeout
        self._reconnect_timeout = reconnect_timeout
        self._preferred = 0
        self._stubs: dict[int, _Stubs] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # --- plumbing ------------------------------------------------------------

    def _kind_prefix(self, kind: str) -> bytes:
        return f"{self._key_prefix}{kind}/".encode()

    def _key(self, kind: str, name: str) -> bytes:
        return self._kind_prefix(kind) + name.encode()

    def _stubs_for(self, index: int) -> _Stubs:
        if self._closed:
            raise Unavailable("etcd datastore is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Channels of another (likely closed) loop cannot be used or closed here.
            self._stubs = {}
            self._loop = loop
        stubs = self._stubs.get(index)
        if stubs is None:
            endpoint = self._endpoints[index]
            channel = grpc.aio.insecure_channel(str(endpoint), options=_CHANNEL_OPTIONS)
            stubs = _Stubs(
                endpoint=endpoint,
                channel=channel,
                kv=rpc_pb2_grpc.KVStub(channel),
                watch=rpc_pb2_grpc.WatchStub(channel),
            )
            self._stubs[index] = stubs
        return stubs

    def _order(self) -> list[int]:
        count = len(self._endpoints)
        return [(self._preferred + i) % count for i in range(count)]

    async def _call(self, call: Callable[[_Stubs], Awaitable[T]], *, write: bool) -> T:
        failures: list[str] = []
        for index in self._order():
            stubs = self._stubs_for(index)
            try:
                result = await call(stubs)
            except asyncio.CancelledError:
                self._raise_if_closed_under_us()
                raise
            except grpc.aio.AioRpcError as exc:
                failures.append(f"{stubs.endpoint}: {exc.code().name} {exc.details()}")
                if _should_try_next(exc, write=write):
                    continue
                raise _translate(exc, failures) from exc
            self._preferred = index
            return result
        raise Unavailable("etcd unreachable (" + "; ".join(failures) + ")")

    def _raise_if_closed_under_us(self) -> None:
        """`close()` cancels in-flight calls; their callers get `Unavailable`,
        while a cancellation of the caller's own task stays a cancellation."""
        task = asyncio.current_task()
        if self._closed and (task is None or task.cancelling() == 0):
            raise Unavailable("etcd datastore was closed during the call") from None

    async def close(self) -> None:
        self._closed = True
        stubs, self._stubs = list(self._stubs.values()), {}
        if self._loop is asyncio.get_running_loop():
            for s in stubs:
                await s.channel.close()

    async def current_revision(self) -> str:
        """The store's revision now (also useful for operators and tests)."""
        request = rpc_pb2.RangeRequest(key=self._key_prefix.encode(), count_only=True)
        response = await self._call(
            lambda s: s.kv.Range(request, timeout=self._timeout), write=False
        )
        return str(response.header.revision)

    # --- reads ---------------------------------------------------------------

    async def get(self, kind: str, name: str) -> Resource:
        kind = canonical_kind(kind)
        request = rpc_pb2.RangeRequest(key=self._key(kind, name))
        response = await self._call(
            lambda s: s.kv.Range(request, timeout=self._timeout), write=False
        )
        if not response.kvs:
            raise NotFound(f'{kind} "{name}" not found')
        kv = response.kvs[0]
        return decode(kind, name, kv.value, str(kv.mod_revision))

    async def list(self, kind: str, prefix: str = "") -> Listing:
        kind = canonical_kind(kind)
        kind_prefix = self._kind_prefix(kind)
        start = kind_prefix + prefix.encode()
        end = prefix_range_end(start)
        items: list[Resource] = []
        revision = 0  # first page: latest; later pages: the first page's revision
        while True:
            request = rpc_pb2.RangeRequest(key=start, range_end=end, limit=_PAGE, revision=revision)
            try:
                response = await self._call(self._range(request), write=False)
            except RevisionCompacted:
                # Compacted between two pages: the snapshot is gone, start over.
                items, revision, start = [], 0, kind_prefix + prefix.encode()
                continue
            revision = revision or response.header.revision
            for kv in response.kvs:
                name = kv.key[len(kind_prefix) :].decode()
                items.append(decode(kind, name, kv.value, str(kv.mod_revision)))
            if not response.more or not response.kvs:
                return Listing(items=items, revision=str(revision))
            start = response.kvs[-1].key + b"\0"

    def _range(self, request: Any) -> Callable[[_Stubs], Awaitable[Any]]:
        return lambda s: s.kv.Range(request, timeout=self._timeout)

    # --- writes --------------------------------------------------------------

    async def _txn(self, request: Any) -> Any:
        return await self._call(lambda s: s.kv.Txn(request, timeout=self._timeout), write=True)

    async def create(self, obj: Resource) -> Resource:
        key = self._key(obj.kind, obj.name)
        request = rpc_pb2.TxnRequest(
            compare=[_compare_create(key, rpc_pb2.Compare.EQUAL)],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=encode(obj)))],
        )
        response = await self._txn(request)
        if not response.succeeded:
            raise AlreadyExists(f'{obj.kind} "{obj.name}" already exists')
        return obj.with_revision(str(response.header.revision))

    async def update(self, obj: Resource) -> Resource:
        key = self._key(obj.kind, obj.name)
        put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=encode(obj)))
        response = await self._txn(
            self._cas(obj.kind, obj.name, key, obj.resource_version, success=put)
        )
        if not response.succeeded:
            raise _cas_failure(obj.kind, obj.name, obj.resource_version, response)
        return obj.with_revision(str(response.header.revision))

    async def delete(self, kind: str, name: str, revision: str | None = None) -> Resource:
        kind = canonical_kind(kind)
        key = self._key(kind, name)
        remove = rpc_pb2.RequestOp(
            request_delete_range=rpc_pb2.DeleteRangeRequest(key=key, prev_kv=True)
        )
        response = await self._txn(self._cas(kind, name, key, revision, success=remove))
        if not response.succeeded:
            raise _cas_failure(kind, name, revision, response)
        previous = response.responses[0].response_delete_range.prev_kvs
        if not previous:  # deleted between compare and delete: impossible in one txn
            raise NotFound(f'{kind} "{name}" not found')
        kv = previous[0]
        return decode(kind, name, kv.value, str(kv.mod_revision))

    def _cas(self, kind: str, name: str, key: bytes, revision: str | None, success: Any) -> Any:
        if revision is None:
            compare = _compare_create(key, rpc_pb2.Compare.GREATER)
        else:
            compare = rpc_pb2.Compare(
                result=rpc_pb2.Compare.EQUAL,
                target=rpc_pb2.Compare.MOD,
                key=key,
                mod_revision=_revision_number(kind, name, revision),
            )
        read = rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))
        return rpc_pb2.TxnRequest(compare=[compare], success=[success], failure=[read])

    # --- watch ---------------------------------------------------------------

    async def watch(
        self, kind: str, from_revision: str | None = None, prefix: str = ""
    ) -> AsyncIterator[WatchEvent]:
        kind = canonical_kind(kind)
        kind_prefix = self._kind_prefix(kind)
        start = kind_prefix + prefix.encode()
        end = prefix_range_end(start)
        if from_revision is None:
            last = int(await self.current_revision())
        else:
            last = _revision_number(kind, "*", from_revision)
        failing_since: float | None = None
        backoff = 0.05
        while True:
            index = self._order()[0]
            stubs = self._stubs_for(index)
            # "hasleader": the member ends the stream when it loses the cluster
            # leader, instead of silently serving nothing (clientv3's WithRequireLeader).
            call = stubs.watch.Watch(metadata=(("hasleader", "true"),))
            try:
                create = rpc_pb2.WatchCreateRequest(
                    key=start, range_end=end, start_revision=last + 1, prev_kv=True
                )
                await call.write(rpc_pb2.WatchRequest(create_request=create))
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        raise _StreamEnded(f"{stubs.endpoint}: watch stream ended")
                    if response.compact_revision:
                        raise RevisionCompacted(
                            f"{kind}: history after revision {last} was compacted"
                            f" (etcd compacted up to {response.compact_revision}); re-list"
                        )
                    if response.canceled:
                        raise _StreamEnded(
                            f"{stubs.endpoint}: watch canceled: {response.cancel_reason}"
                        )
                    if response.created:
                        failing_since, backoff = None, 0.05
                    for event in response.events:
                        if event.kv.mod_revision <= last:
                            continue  # already yielded before a reconnect
                        yield _to_event(kind, kind_prefix, event)
                        last = event.kv.mod_revision
            except asyncio.CancelledError:
                self._raise_if_closed_under_us()
                raise
            except (grpc.aio.AioRpcError, _StreamEnded) as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if self._closed or now - failing_since > self._reconnect_timeout:
                    raise Unavailable(f"etcd watch on {kind} failed: {_describe(exc)}") from exc
                self._preferred = (index + 1) % len(self._endpoints)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                call.cancel()


class _StreamEnded(Exception):
    pass


def _compare_create(key: bytes, result: Any) -> Any:
    return rpc_pb2.Compare(result=result, target=rpc_pb2.Compare.CREATE, key=key, create_revision=0)


def _cas_failure(kind: str, name: str, expected: str | None, response: Any) -> Exception:
    current = response.responses[0].response_range.kvs
    if not current:
        return NotFound(f'{kind} "{name}" not found')
    return Conflict(
        f'{kind} "{name}" changed: written at revision {expected}, now at {current[0].mod_revision}'
    )


def _to_event(kind: str, kind_prefix: bytes, event: Any) -> WatchEvent:
    kv = event.kv
    name = kv.key[len(kind_prefix) :].decode()
    revision = str(kv.mod_revision)
    if event.type == kv_pb2.Event.DELETE:
        if not event.HasField("prev_kv"):
            raise RevisionCompacted(f'{kind} "{name}": deleted value no longer in history; re-list')
        obj = decode(kind, name, event.prev_kv.value, revision)
        return WatchEvent(type=EventType.DELETED, obj=obj, revision=revision)
    type_ = EventType.ADDED if kv.create_revision == kv.mod_revision else EventType.MODIFIED
    return WatchEvent(type=type_, obj=decode(kind, name, kv.value, revision), revision=revision)


def _should_try_next(exc: Any, *, write: bool) -> bool:
    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return False
    if not write:
        return True
    # Only a connection that never carried the request is safe to retry
    # elsewhere; "etcdserver: ..." errors come from a server that received it.
    details = exc.details() or ""
    return exc.code() == grpc.StatusCode.UNAVAILABLE and not details.startswith("etcdserver")


def _translate(exc: Any, failures: list[str]) -> Exception:
    details = exc.details() or ""
    if exc.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
        return RevisionCompacted(details)
    return Unavailable("etcd call failed (" + "; ".join(failures) + ")")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details()}"
    return str(exc)
