"""What every kind of lab offers, whatever its nodes run in: `LabBackend`.

A lab's nodes are network namespaces on this machine (`gingham.lab.build`
and `gingham.lab.observe`) or QEMU guests (`gingham.lab.vm.lab`). Which one
is decided once, by `gingham.lab.backends.backend_for` from the lab's
options (or, for a lab that exists, from its recorded options); everything
after that talks to the `LabBackend` it got and never asks again.

Every backend records what it makes in the lab's `LabState` (processes by
PID and start time, namespaces), so one `gingham.lab.teardown.down`
removes any lab.

This module declares; it imports no backend (they import it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gingham.lab.state import LabState
from gingham.lab.topology import LabOptions

Progress = Callable[[str], None]


class LabError(Exception):
    """Something a person can act on (the message says what)."""


@dataclass
class Matrix:
    """Which pod reached which: `results[source][target]`."""

    pods: list[str]
    results: dict[str, dict[str, bool]] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return sum(len(row) for row in self.results.values())

    @property
    def ok(self) -> int:
        return sum(v for row in self.results.values() for v in row.values())

    def failures(self) -> list[tuple[str, str]]:
        return [(a, b) for a, row in self.results.items() for b, v in row.items() if not v]


class LabBackend(Protocol):
    """Build, watch and enter a lab whose nodes run in one kind of place."""

    name: str
    # What `lab up` uses when the person did not say.
    default_nodes: int
    default_encap: str
    default_wait: float
    # The one datastore this backend runs ("etcd"), or None: the person chooses.
    datastore: str | None

    def up(self, options: LabOptions, progress: Progress, wait: float) -> LabState:
        """Make the lab (raises `LabError`, having removed what it made)."""
        ...

    def wait_converged(self, state: LabState, progress: Progress, wait: float) -> bool:
        """Report progress until every pod pings every other pod (True) or `wait` passes."""
        ...

    def status(self, state: LabState) -> dict[str, Any]:
        """What ``lab status -o json`` prints: nodes, ToRs, pods (see `observe.lab_status`)."""
        ...

    def ping_matrix(self, state: LabState, timeout: float) -> Matrix:
        """Every pod pinged from every other pod."""
        ...

    def exec(self, state: LabState, target: str, command: list[str]) -> int:
        """Run `command` in a node, ToR or pod; its exit code (raises `LabError`)."""
        ...
