"""Localhost HTTP for probes and Prometheus: /liveness, /readiness, /metrics.

A few lines of asyncio instead of a web framework: three GET routes, no
keep-alive. Metrics live in a private registry the agent updates after each
reconcile (routes programmed, reconcile duration, workloads, errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from felix.agent import Agent
from felix.dataplane import OpResult


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.routes = Gauge(
            "felix_routes_programmed", "Routes felix owns in the kernel", registry=self.registry
        )
        self.workloads = Gauge("felix_workloads", "Local workloads", registry=self.registry)
        self.duration = Histogram(
            "felix_reconcile_seconds", "Duration of one reconcile pass", registry=self.registry
        )
        self.errors = Counter(
            "felix_kernel_errors", "Kernel ops that failed", registry=self.registry
        )

    def observe(self, agent: Agent, results: list[OpResult]) -> None:
        self.routes.set(len(agent.programmed().routes))
        self.workloads.set(len(agent.workloads))
        self.duration.observe(agent.stats.last_duration)
        self.errors.inc(sum(1 for r in results if not r.ok))


async def serve_http(
    host: str, port: int, live: Callable[[], bool], ready: Callable[[], bool], metrics: Metrics
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").split()
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # headers: ignored
            path = line[1] if len(line) > 1 else ""
            ctype = "text/plain; charset=utf-8"
            if path == "/liveness":
                status, body = (200, b"ok\n") if live() else (503, b"not live\n")
            elif path == "/readiness":
                status, body = (200, b"ready\n") if ready() else (503, b"not ready\n")
            elif path == "/metrics":
                status, body = 200, generate_latest(metrics.registry)
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
