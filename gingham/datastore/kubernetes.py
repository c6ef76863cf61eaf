"""The Kubernetes backend: our kinds as cluster-scoped ``gingham.io/v1`` custom
resources, spoken to through the official `kubernetes` client.

Why threads: the official client is synchronous. Every call runs in a worker
thread (`asyncio.to_thread`) with a bounded `_request_timeout`; each watch has
one daemon thread of its own that reads the stream and hands events to the
event loop, so a blocked read never holds up `asyncio.run`'s shutdown and
`close()` can cut the stream (`HTTPResponse.shutdown`). The client is imported
lazily (it costs ~200 ms), on the first call.

Mapping and invariants:
- Kind → plural: the kind's ``plural`` ClassVar, lower-case; group/version
  ``gingham.io``/``v1``. An object's revision is ``metadata.resourceVersion``,
  passed through as the opaque string it is; a list's revision is the list's
  ``metadata.resourceVersion`` (later pages of a paged list are served from the
  first page's snapshot by the API server).
- The API server owns metadata it adds (generation, managedFields, ...): on
  read we keep only the fields our `Metadata` has; on write we send name,
  labels, annotations and, for CAS, resourceVersion.
- update with a revision = PUT with ``metadata.resourceVersion`` (409 →
  `Conflict`). Custom resources refuse a PUT without one, so an update without
  a revision reads the current revision and retries on `Conflict`.
- delete reads the object first (that is what delete returns, and it gives the
  revision), then DELETEs with ``preconditions.resourceVersion``; without a
  caller revision a lost race is retried, with one it is `Conflict`.
- Errors: 404 → `NotFound`; 409 on create → `AlreadyExists`, else `Conflict`;
  410 → `RevisionCompacted`; 422 → `Rejected` (the CRD schema refused it);
  connection failures, timeouts, 5xx, 429 → `Unavailable`; 401/403 →
  `Forbidden`, an `Unavailable` carrying the API server's words (user, verb,
  resource; the ClusterRole in manifests/rbac.yaml lists what we need).
- watch from `from_revision` (None: a list's revision, so "from now on"
  without the synthetic ADDED events k8s sends a watch with no revision).
  Bookmarks advance the resume point. A stream that ends or fails is reopened
  from the last revision read; failing for `reconnect_timeout` is
  `Unavailable`. HTTP 410 or an ERROR event with code 410 is
  `RevisionCompacted` (the caller re-lists). `prefix` is filtered here.

Client set-up, the object conversion and the error mapping live in
`gingham.datastore.kubernetes_wire`. `OPERATION_VERBS` declares the verbs
each operation requests; tests check it against the requests a fake API
server saw, and the ClusterRole in
manifests/rbac.yaml against it (via gingham.k8s.rbac).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gingham.datastore.base import (
    Conflict,
    DatastoreError,
    EventType,
    Listing,
    RevisionCompacted,
    Unavailable,
    WatchEvent,
)
from gingham.datastore.codec import canonical_kind
from gingham.datastore.kubernetes_wire import from_k8s, make_api_client, to_k8s, translate
from gingham.model.base import KINDS, Resource

T = TypeVar("T")

GROUP = "gingham.io"
VERSION = "v1"

# The Kubernetes verbs each datastore operation requests on its kind's resource
# (group gingham.io): watch lists first when it has no revision to start from,
# update without a revision and delete read the object first. `core_nodes`
# lists core Nodes. tests/integration/k8s checks this table against the
# requests a fake API server saw; gingham.k8s.rbac builds the ClusterRole's
# rules from it.
OPERATION_VERBS: dict[str, frozenset[str]] = {
    "get": frozenset({"get"}),
    "list": frozenset({"list"}),
    "watch": frozenset({"list", "watch"}),
    "create": frozenset({"create"}),
    "update": frozenset({"get", "update"}),
    "delete": frozenset({"get", "delete"}),
}
CORE_NODE_VERBS: frozenset[str] = frozenset({"list"})


def plural_of(kind: str) -> str:
    return KINDS[kind].plural.lower()


@dataclass(frozen=True)
class CoreNode:
    """What Gingham reads of a core Kubernetes Node (``podCIDR`` is ignored:
    Gingham's IPAM is authoritative)."""

    name: str
    labels: dict[str, str]
    internal_ips: list[str]
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (type, address)
    # Cordoned (spec.unschedulable) and being deleted (metadata.deletionTimestamp):
    # a node on its way out (gingham.node.stop.should_drain).
    unschedulable: bool = False
    deleting: bool = False


class KubernetesDatastore:
    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        timeout: float = 5.0,
        reconnect_timeout: float = 60.0,
        watch_seconds: int = 300,
        page_size: int = 500,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._timeout = timeout
        self._reconnect_timeout = reconnect_timeout
        self._watch_seconds = watch_seconds
        self._page_size = page_size
        self._lock = threading.Lock()
        self._api_client: Any = None
        self._custom: Any = None
        self._core: Any = None
        self._closed = False
        self._pumps: set[_WatchPump] = set()

    # --- plumbing ------------------------------------------------------------

    def _apis(self) -> Any:
        """The CustomObjectsApi, made on first use (in a worker thread)."""
        with self._lock:
            if self._closed:  # a watch thread reconnecting after close()
                raise Unavailable("kubernetes datastore is closed")
            if self._custom is None:
                self._api_client = make_api_client(self._kubeconfig, self._context)
                from kubernetes import client

                self._custom = client.CustomObjectsApi(self._api_client)
                self._core = client.CoreV1Api(self._api_client)
            return self._custom

    async def _run(self, what: str, call: Callable[[], T], *, create: bool = False) -> T:
        if self._closed:
            raise Unavailable("kubernetes datastore is closed")

        def guarded() -> T:
            try:
                return call()
            except DatastoreError:
                raise
            except Exception as exc:
                raise translate(what, exc, create=create) from exc

        return await asyncio.to_thread(guarded)

    async def close(self) -> None:
        self._closed = True
        for pump in list(self._pumps):
            pump.stop(Unavailable("kubernetes datastore was closed"))
        with self._lock:
            client, self._api_client = self._api_client, None
            self._custom = self._core = None
        if client is not None:
            await asyncio.to_thread(client.close)

    # --- reads ---------------------------------------------------------------

    async def get(self, kind: str, name: str) -> Resource:
        kind = canonical_kind(kind)
        plural = plural_of(kind)
        body = await self._run(
            f'{kind} "{name}"',
            lambda: self._apis().get_cluster_custom_object(
                GROUP, VERSION, plural, name, _request_timeout=self._timeout
            ),
        )
        return from_k8s(kind, body)

    async def list(self, kind: str, prefix: str = "") -> Listing:
        kind = canonical_kind(kind)
        plural = plural_of(kind)
        items: list[Resource] = []
        revision = ""
        token: str | None = None
        while True:
            try:
                page = await self._run(kind, lambda t=token: self._list_page(plural, t))  # type: ignore[misc]
            except RevisionCompacted:
                if token is None:
                    raise
                # The paged snapshot expired (410 on a continue token): start over.
                items, revision, token = [], "", None
                continue
            meta = page.get("metadata") or {}
            revision = revision or str(meta.get("resourceVersion", ""))
            for body in page.get("items") or []:
                if str(body["metadata"]["name"]).startswith(prefix):
                    items.append(from_k8s(kind, body))
            token = meta.get("continue") or None
            if not token:
                break
        items.sort(key=lambda o: o.name)
        return Listing(items=items, revision=revision)

    def _list_page(self, plural: str, token: str | None) -> Any:
        extra = {"_continue": token} if token else {}
        return self._apis().list_cluster_custom_object(
            GROUP, VERSION, plural, limit=self._page_size, _request_timeout=self._timeout, **extra
        )

    async def core_nodes(self) -> builtins.list[CoreNode]:
        """The cluster's core Nodes: name, labels, addresses (for auto-detection
        and for matching our Node resources by name)."""

        def call() -> Any:
            self._apis()
            return self._core.list_node(_request_timeout=self._timeout, _preload_content=False)

        response = await self._run("nodes", call)
        document = json.loads(response.data)
        nodes = []
        for item in document.get("items") or []:
            addresses = [
                (str(a.get("type", "")), str(a.get("address", "")))
                for a in (item.get("status") or {}).get("addresses") or []
            ]
            nodes.append(
                CoreNode(
                    name=item["metadata"]["name"],
                    labels=dict(item["metadata"].get("labels") or {}),
                    internal_ips=[a for t, a in addresses if t == "InternalIP"],
                    addresses=addresses,
                    unschedulable=bool((item.get("spec") or {}).get("unschedulable")),
                    deleting=bool(item["metadata"].get("deletionTimestamp")),
                )
            )
        return sorted(nodes, key=lambda n: n.name)

    # --- writes --------------------------------------------------------------

    async def create(self, obj: Resource) -> Resource:
        plural = plural_of(obj.kind)
        body = await self._run(
            f'{obj.kind} "{obj.name}"',
            lambda: self._apis().create_cluster_custom_object(
                GROUP, VERSION, plural, to_k8s(obj, None), _request_timeout=self._timeout
            ),
            create=True,
        )
        return from_k8s(obj.kind, body)

    async def update(self, obj: Resource) -> Resource:
        if obj.resource_version is not None:
            return await self._replace(obj, obj.resource_version)
        while True:  # CRs need a revision on PUT: read it, retry if we lose a race
            current = await self.get(obj.kind, obj.name)
            with contextlib.suppress(Conflict):
                return await self._replace(obj, current.resource_version)

    async def _replace(self, obj: Resource, revision: str | None) -> Resource:
        plural = plural_of(obj.kind)
        body = await self._run(
            f'{obj.kind} "{obj.name}"',
            lambda: self._apis().replace_cluster_custom_object(
                GROUP,
                VERSION,
                plural,
                obj.name,
                to_k8s(obj, revision),
                _request_timeout=self._timeout,
            ),
        )
        return from_k8s(obj.kind, body)

    async def delete(self, kind: str, name: str, revision: str | None = None) -> Resource:
        kind = canonical_kind(kind)
        plural = plural_of(kind)
        while True:
            current = await self.get(kind, name)
            if revision is not None and current.resource_version != revision:
                raise Conflict(
                    f'{kind} "{name}" changed: written at revision {revision},'
                    f" now at {current.resource_version}"
                )
            options = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": current.resource_version},
            }
            try:
                await self._run(
                    f'{kind} "{name}"',
                    lambda o=options: self._apis().delete_cluster_custom_object(  # type: ignore[misc]
                        GROUP, VERSION, plural, name, body=o, _request_timeout=self._timeout
                    ),
                )
            except Conflict:
                if revision is not None:
                    raise
                continue  # changed between our read and delete: read again
            return current

    # --- watch ---------------------------------------------------------------

    async def watch(
        self, kind: str, from_revision: str | None = None, prefix: str = ""
    ) -> AsyncIterator[WatchEvent]:
        kind = canonical_kind(kind)
        plural = plural_of(kind)
        if from_revision is None:
            page = await self._run(kind, lambda: self._list_page(plural, None))
            from_revision = str((page.get("metadata") or {}).get("resourceVersion", ""))
        if self._closed:
            raise Unavailable("kubernetes datastore is closed")
        queue: asyncio.Queue[Any] = asyncio.Queue()
        pump = _WatchPump(
            self,
            kind=kind,
            plural=plural,
            revision=from_revision,
            loop=asyncio.get_running_loop(),
            queue=queue,
        )
        self._pumps.add(pump)
        pump.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if item.obj.name.startswith(prefix):
                    yield item
        finally:
            pump.stop(None)
            self._pumps.discard(pump)

    def _open_watch(self, plural: str, revision: str) -> Any:
        return self._apis().list_cluster_custom_object(
            GROUP,
            VERSION,
            plural,
            watch=True,
            resource_version=revision,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_seconds,
            _preload_content=False,
            # A silent server (partition) must not hold the read forever.
            _request_timeout=(self._timeout, self._watch_seconds + 30),
        )


class _WatchPump:
    """One watch's reader thread: opens the stream, reconnects from the last
    revision read, and posts `WatchEvent`s or a final exception to the loop."""

    def __init__(
        self,
        store: KubernetesDatastore,
        *,
        kind: str,
        plural: str,
        revision: str,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
    ) -> None:
        self._store = store
        self._kind = kind
        self._plural = plural
        self._last = revision
        self._loop = loop
        self._queue = queue
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(
            target=self._main, name=f"gingham-k8s-watch-{plural}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, final: BaseException | None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if final is not None:
            self._post(final)
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()  # unblocks the reader thread's read

    def _post(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _main(self) -> None:
        failing_since: float | None = None
        backoff = 0.05
        while not self._stopped.is_set():
            try:
                self._response = self._store._open_watch(self._plural, self._last)
                if self._stopped.is_set():
                    break
                for line in _lines(self._response):
                    failing_since, backoff = None, 0.05
                    self._handle(json.loads(line))
                # The server ended the stream (timeout_seconds): reopen at once.
                continue
            except RevisionCompacted as exc:
                self._finish(exc)
                return
            except DatastoreError as exc:  # a stored value that does not decode
                self._finish(exc)
                return
            except Exception as exc:
                if self._stopped.is_set():
                    return
                status = getattr(exc, "status", None)
                if status == 410:
                    self._finish(self._compacted())
                    return
                if status in (401, 403):  # retrying will not change the API server's mind
                    self._finish(translate(f"watch on {self._kind}", exc, create=False))
                    return
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > self._store._reconnect_timeout:
                    self._finish(Unavailable(f"kubernetes watch on {self._kind} failed: {exc}"))
                    return
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                response, self._response = self._response, None
                if response is not None:
                    with contextlib.suppress(Exception):
                        response.release_conn()

    def _finish(self, exc: BaseException) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._post(exc)

    def _compacted(self) -> RevisionCompacted:
        return RevisionCompacted(
            f"{self._kind}: history after revision {self._last} is gone (410 Gone); re-list"
        )

    def _handle(self, event: dict[str, Any]) -> None:
        type_ = event.get("type")
        body = event.get("object") or {}
        if type_ == "ERROR":
            if body.get("code") == 410:
                raise self._compacted()
            raise _StreamFailed(f"watch error: {body.get('message', body)}")
        revision = str((body.get("metadata") or {}).get("resourceVersion", ""))
        if type_ == "BOOKMARK":
            self._last = revision or self._last
            return
        obj = from_k8s(self._kind, body)
        self._last = revision
        self._post(WatchEvent(type=EventType(type_), obj=obj, revision=revision))


class _StreamFailed(Exception):
    pass


def _lines(response: Any) -> Iterator[bytes]:
    """JSON lines of a watch stream; one chunk may hold part of a line or many."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
