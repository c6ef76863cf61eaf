"""Localhost HTTP for probes and Prometheus: /liveness, /readiness, /metrics.

The same few lines of asyncio felix uses (felix/http.py), kept separate so
the reflector does not import felix. Ready means the speaker's input
snapshot has arrived (`ReflectorServicer.in_sync`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest


async def serve_http(
    host: str, port: int, ready: Callable[[], bool], registry: CollectorRegistry
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").split()
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # headers: ignored
            path = line[1] if len(line) > 1 else ""
            ctype = "text/plain; charset=utf-8"
            if path == "/liveness":
                status, body = 200, b"ok\n"
            elif path == "/readiness":
                status, body = (200, b"ready\n") if ready() else (503, b"not ready\n")
            elif path == "/metrics":
                status, body = 200, generate_latest(registry)
                ctype = "text/plain; version=0.0.4; charset=utf-8"
            else:
                status, body = 404, b"not found\n"
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
