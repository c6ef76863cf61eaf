"""felix's Prometheus metrics, served on /metrics by `gingham.probes.serve_probes`.

They live in a private registry the agent updates after each reconcile
(routes programmed, reconcile duration, workloads, errors).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

    def observe(self, agent: Agent, failed: list[OpResult]) -> None:
        """After a pass: `failed`, the results of the ops the kernel refused."""
        self.routes.set(len(agent.programmed().routes))
        self.workloads.set(len(agent.workloads))
        self.duration.observe(agent.stats.last_duration)
        self.errors.inc(len(failed))
