"""Localhost HTTP for probes and Prometheus: /liveness, /readiness, /metrics.

Every daemon (felix, the BGP speaker, the route reflector) serves the same
three GET routes with `serve_probes`: the kubelet's probes and Prometheus
need no more, so a few lines of asyncio stand in for a web framework.

Invariants:
- One request per connection (``Connection: close``), headers ignored; a
  client that sends nothing for 5 s is dropped, so a stuck client never
  holds the daemon's event loop.
- `live` and `ready` are called on each request; they must not block.
- Metrics come from the daemon's own registry, rendered at scrape time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

READ_TIMEOUT = 5.0
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _always() -> bool:
    return True


async def serve_probes(
    host: str,
    port: int,
    *,
    ready: Callable[[], bool],
    registry: CollectorRegistry,
    live: Callable[[], bool] = _always,
) -> asyncio.Server:
    """Listen on `host`:`port` (0: any free port); the caller closes the server."""

    def answer(path: str) -> tuple[int, bytes, str]:
        text = "text/plain; charset=utf-8"
        if path == "/liveness":
            return (200, b"ok\n", text) if live() else (503, b"not live\n", text)
        if path == "/readiness":
            return (200, b"ready\n", text) if ready() else (503, b"not ready\n", text)
        if path == "/metrics":
            return 200, generate_latest(registry), METRICS_TYPE
        return 404, b"not found\n", text

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), READ_TIMEOUT)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), READ_TIMEOUT)).strip():
                pass  # headers: ignored
            words = line.split()
            status, body, ctype = answer(words[1] if len(words) > 1 else "")
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
