"""A FAKE Kubernetes API server for tests — not Kubernetes, and not a partial one.

It implements exactly what the datastore contract suite needs of cluster-scoped
custom objects, with Kubernetes' wire semantics, so the `kubernetes` backend
(and the official client under it) can be tested where no API server runs:

- ``GET/POST /apis/<group>/<version>/<plural>`` (list / create) and
  ``GET/PUT/DELETE .../<plural>/<name>``; ``GET /api/v1/nodes`` (seeded core
  Nodes, read-only).
- One global, strictly increasing resourceVersion (decimal strings); a list's
  ``metadata.resourceVersion`` is the store's revision when it was served.
- create → 409 AlreadyExists; PUT needs ``metadata.resourceVersion`` (422
  without, as for CRDs) and 409 Conflict when stale; DELETE honours
  ``preconditions.resourceVersion`` in the DeleteOptions body (409 Conflict).
- ``?watch=true&resourceVersion=N``: chunked JSON lines (ADDED, MODIFIED,
  DELETED — the last with the deletion's revision) from history after N, then
  live; N older than the kept history → an ERROR event with code 410 (as the
  real server does); ``resourceVersion`` absent or "0" → synthetic ADDED for
  the current state first; ``timeoutSeconds`` ends the stream with a BOOKMARK
  when ``allowWatchBookmarks`` is set.
- `stop()` / `start()` (same port, state kept, every connection cut — an
  outage or restart), `compact()` (drops all history up to now).
- `requests` records (api group, resource, verb) for each request served, so
  tests can compare what the backend used with the RBAC rules.

- ``limit``/``continue`` paging from a snapshot taken at the first page; a
  token that outlived a `compact()` is 410 Expired.

No auth, no field or label selectors, no namespaces.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class _Event:
    revision: int
    resource: str
    type: str
    body: dict[str, Any]


@dataclass
class FakeState:
    revision: int = 1  # never "0": that means "any revision" to a watch
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[_Event] = field(default_factory=list)
    compacted: int = 0  # watches from below this revision get 410
    nodes: list[dict[str, Any]] = field(default_factory=list)
    # Paged lists: continue token → (revision, the remaining items of that snapshot).
    snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeApiServer:
    """The fake; `kubeconfig` is a file the official client can load."""

    def __init__(self, directory: Path) -> None:
        self.state = FakeState()
        self.cond = threading.Condition()
        self.requests: list[tuple[str, str, str]] = []
        self.port = 0
        self.running = False
        self.kubeconfig = directory / "kubeconfig"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            # socketserver's default backlog of 5 drops SYNs when worker
            # processes connect at once (each drop costs a 1 s retransmit).
            request_queue_size = 128

        class Handler(_Handler):
            server_fake = fake

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        with self.cond:
            self.running = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._write_kubeconfig()

    def stop(self) -> None:
        """Stop serving and cut every open connection (keep-alive and watches)."""
        with self.cond:
            self.running = False
            self.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.cond:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def restart(self) -> None:
        self.stop()
        self.start()

    def compact(self) -> None:
        with self.cond:
            self.state.compacted = self.state.revision + 1
            self.state.history.clear()
            self.state.snapshots.clear()  # their continue tokens now get 410

    def seed_node(
        self, name: str, labels: dict[str, str], addresses: list[tuple[str, str]]
    ) -> None:
        self.state.nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels, "resourceVersion": "1"},
                "spec": {"podCIDR": "10.244.9.0/24"},
                "status": {"addresses": [{"type": t, "address": a} for t, a in addresses]},
            }
        )

    def _write_kubeconfig(self) -> None:
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        self.kubeconfig.write_text(json.dumps(document))  # JSON is YAML

    def track(self, conn: socket.socket, add: bool) -> None:
        with self.cond:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # --- store operations (called with the condition held) ----------------------

    def _record(self, resource: str, type_: str, body: dict[str, Any]) -> None:
        self.state.history.append(
            _Event(self.state.revision, resource, type_, json.loads(json.dumps(body)))
        )
        self.cond.notify_all()

    def create(self, resource: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return 422, _status(422, "Invalid", "metadata.name: Required value")
        if meta.get("resourceVersion"):
            return 500, _status(500, "InternalError", "resourceVersion should not be set")
        if (resource, name) in self.state.objects:
            return 409, _status(409, "AlreadyExists", f'{resource} "{name}" already exists')
        self.state.revision += 1
        meta.update(
            resourceVersion=str(self.state.revision),
            uid=str(uuid.uuid4()),
            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            generation=1,
        )
        self.state.objects[(resource, name)] = body
        self._record(resource, "ADDED", body)
        return 201, body

    def replace(self, resource: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        current = self.state.objects.get((resource, name))
        meta = body.setdefault("metadata", {})
        if meta.get("name") != name:
            return 400, _status(400, "BadRequest", "the name in the body does not match the URL")
        if current is None:
            return 404, _status(404, "NotFound", f'{resource} "{name}" not found')
        if not meta.get("resourceVersion"):
            return 422, _status(
                422, "Invalid", "metadata.resourceVersion: must be specified for an update"
            )
        if meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been'
                " modified; please apply your changes to the latest version and try again",
            )
        self.state.revision += 1
        kept = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "generation")}
        meta.update(kept, resourceVersion=str(self.state.revision))
        self.state.objects[(resource, name)] = body
        self._record(resource, "MODIFIED", body)
        return 200, body

    def delete(
        self, resource: str, name: str, options: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        current = self.state.objects.get((resource, name))
        if current is None:
            return 404, _status(404, "NotFound", f'{resource} "{name}" not found')
        wanted = (options.get("preconditions") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f"Precondition failed: ResourceVersion in precondition: {wanted},"
                f" ResourceVersion in object meta: {current['metadata']['resourceVersion']}",
            )
        del self.state.objects[(resource, name)]
        self.state.revision += 1
        gone = json.loads(json.dumps(current))
        gone["metadata"]["resourceVersion"] = str(self.state.revision)
        self._record(resource, "DELETED", gone)
        return 200, gone

    def listing(self, resource: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A list, paged when ``limit`` is given: later pages come from the first
        page's snapshot, and an expired (compacted) continue token is 410."""
        token = query.get("continue")
        if token:
            if token not in self.state.snapshots:
                return 410, _status(410, "Expired", "the continue token has expired")
            revision, items = self.state.snapshots.pop(token)
        else:
            revision = self.state.revision
            items = [
                body for (res, _), body in sorted(self.state.objects.items()) if res == resource
            ]
            items = json.loads(json.dumps(items))
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        limit = int(query.get("limit") or 0)
        if limit and len(items) > limit:
            items, rest = items[:limit], items[limit:]
            next_token = uuid.uuid4().hex
            self.state.snapshots[next_token] = (revision, rest)
            metadata["continue"] = next_token
        return 200, {
            "apiVersion": "gingham.io/v1",
            "kind": "List",
            "metadata": metadata,
            "items": items,
        }


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeApiServer
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watches, like the real thing

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle and
        # delayed ACK hold every keep-alive response back ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server_fake.track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server_fake.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not access logs

    # --- routing ---------------------------------------------------------------

    def _route(self, method: str) -> None:
        fake = self.server_fake
        if not fake.running:
            self.close_connection = True
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        body: dict[str, Any] = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = json.loads(self.rfile.read(length))
        if parts == ["api", "v1", "nodes"] and method == "GET":
            fake.requests.append(("", "nodes", "list"))
            with fake.cond:
                self._send(
                    200,
                    {
                        "kind": "NodeList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(fake.state.revision)},
                        "items": fake.state.nodes,
                    },
                )
            return
        if len(parts) not in (4, 5) or parts[0] != "apis":
            self._send(404, _status(404, "NotFound", f"the fake serves no {url.path}"))
            return
        group, resource = parts[1], parts[3]
        name = parts[4] if len(parts) == 5 else None
        watch = query.get("watch") in ("true", "1")
        verb = {
            ("GET", False): "list",
            ("GET", True): "get",
            ("POST", False): "create",
            ("PUT", True): "update",
            ("DELETE", True): "delete",
        }.get((method, name is not None))
        if verb is None:
            self._send(405, _status(405, "MethodNotAllowed", f"{method} {url.path}"))
            return
        if watch and verb == "list":
            verb = "watch"
        fake.requests.append((group, resource, verb))
        if verb == "watch":
            self._watch(resource, query)
            return
        with fake.cond:
            if verb == "list":
                self._send(*fake.listing(resource, query))
            elif verb == "get":
                found = fake.state.objects.get((resource, str(name)))
                if found is None:
                    self._send(404, _status(404, "NotFound", f'{resource} "{name}" not found'))
                else:
                    self._send(200, found)
            elif verb == "create":
                self._send(*fake.create(resource, body))
            elif verb == "update":
                self._send(*fake.replace(resource, str(name), body))
            else:
                self._send(*fake.delete(resource, str(name), body))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _send(self, code: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # --- watch -------------------------------------------------------------------

    def _chunk(self, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, resource: str, query: dict[str, str]) -> None:
        fake = self.server_fake
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            with fake.cond:
                start = query.get("resourceVersion") or "0"
                initial: list[dict[str, Any]] = []
                if start == "0":
                    last = fake.state.revision
                    initial = [
                        b for (r, _), b in sorted(fake.state.objects.items()) if r == resource
                    ]
                else:
                    last = int(start)
                    if last + 1 < fake.state.compacted:
                        expired = _status(410, "Expired", f"too old resource version: {last}")
                        self._chunk({"type": "ERROR", "object": expired})
                        self.wfile.write(b"0\r\n\r\n")
                        return
            for body in initial:
                self._chunk({"type": "ADDED", "object": body})
            while True:
                with fake.cond:
                    pending = self._after(resource, last)
                    while not pending and fake.running and time.monotonic() < deadline:
                        fake.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                        pending = self._after(resource, last)
                    if not fake.running:
                        self.close_connection = True
                        return  # an outage: cut, not ended cleanly
                    revision_now = fake.state.revision
                for event in pending:
                    self._chunk({"type": event.type, "object": event.body})
                    last = event.revision
                if not pending and time.monotonic() >= deadline:
                    if bookmarks:
                        mark = {
                            "apiVersion": "gingham.io/v1",
                            "kind": "Bookmark",
                            "metadata": {"resourceVersion": str(revision_now)},
                        }
                        self._chunk({"type": "BOOKMARK", "object": mark})
                    self.wfile.write(b"0\r\n\r\n")
                    return
        except OSError:
            self.close_connection = True

    def _after(self, resource: str, last: int) -> list[_Event]:
        history = self.server_fake.state.history
        start = bisect.bisect_right([e.revision for e in history], last)
        return [e for e in history[start:] if e.resource == resource]
