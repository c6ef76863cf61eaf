"""`gingham.probes.serve_probes`, the daemons' one HTTP server, over real loopback sockets."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from gingham.probes import serve_probes


async def _get(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".encode()


async def test_probes_follow_the_daemon_and_metrics_come_from_its_registry() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_events", "events", registry=registry).inc(3)
    ready = [False]
    server = await serve_probes("127.0.0.1", 0, ready=lambda: ready[0], registry=registry)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await _get(port, _request("/liveness")))[0] == 200
        assert (await _get(port, _request("/readiness")))[0] == 503
        ready[0] = True
        assert (await _get(port, _request("/readiness")))[0] == 200
        status, headers, body = await _get(port, _request("/metrics"))
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert b"probe_test_events_total 3.0" in body
        assert headers["Content-Length"] == str(len(body))
        assert (await _get(port, _request("/elsewhere")))[0] == 404
    finally:
        server.close()
        await server.wait_closed()


async def test_a_dead_daemon_fails_liveness_and_garbage_gets_not_found() -> None:
    server = await serve_probes(
        "127.0.0.1", 0, ready=lambda: True, registry=CollectorRegistry(), live=lambda: False
    )
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await _get(port, _request("/liveness")))[0] == 503
        assert (await _get(port, b"\r\n\r\n"))[0] == 404  # no request line at all
    finally:
        server.close()
        await server.wait_closed()
