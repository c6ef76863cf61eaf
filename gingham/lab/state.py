"""A lab's state file: everything `lab up` made, so `lab down` removes exactly that.

Where: ``/var/run/gingham/labs/<name>/`` (``$GINGHAM_LAB_ROOT`` overrides the
root). /var/run is a tmpfs: a reboot forgets namespaces and processes and this
record together, so the record never outlives what it describes.

The directory holds ``state.json`` (this module), the sqlite datastore, the
CNI bin/conf dirs, each node's run dir and logs. `LabState` is saved *before*
each thing is made (intent first), so a `lab up` that dies half-way leaves a
record that `lab down` can finish; removing something that does not exist is
not an error, which is also what makes `lab down` safe to run twice.

Processes are recorded with their kernel start time (``/proc/<pid>/stat``
field 22): a PID reused by someone else's process after ours exited is never
signalled.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROOT = "/var/run/gingham/labs"
STATE_FILE = "state.json"


def lab_root() -> Path:
    return Path(os.environ.get("GINGHAM_LAB_ROOT", DEFAULT_ROOT))


def lab_dir(name: str) -> Path:
    return lab_root() / name


@dataclass
class ProcessRecord:
    what: str
    pid: int
    start_time: int


@dataclass
class PodRecord:
    name: str
    node: str
    netns: str
    container_id: str
    address: str | None = None


@dataclass
class LabState:
    name: str
    options: dict[str, Any]
    datastore: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    pods: list[PodRecord] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)
    """Node name → its namespace."""

    @property
    def directory(self) -> Path:
        return lab_dir(self.name)

    def save(self) -> None:
        path = self.directory / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.rename(path)

    @classmethod
    def load(cls, name: str) -> LabState | None:
        try:
            data = json.loads((lab_dir(name) / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        data["processes"] = [ProcessRecord(**p) for p in data.get("processes", [])]
        data["pods"] = [PodRecord(**p) for p in data.get("pods", [])]
        return cls(**data)


def list_labs() -> list[str]:
    root = lab_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / STATE_FILE).is_file())


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_ours(record: ProcessRecord) -> bool:
    """True while the recorded process (not a reuse of its PID) is still there."""
    return process_start_time(record.pid) == record.start_time
