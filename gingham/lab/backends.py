"""The two kinds of lab, and the one place that chooses between them.

- `NetnsBackend`: nodes, ToRs and pods are network namespaces on this
  machine (`gingham.lab.build` makes them, `gingham.lab.observe` looks).
- `VmBackend`: nodes are QEMU guests with a kernel that has ipip
  (`gingham.lab.vm.lab`), for ``lab up --vm``.

`backend_for(options)` decides, from `LabOptions.vm` or a lab's recorded
options; callers keep the `LabBackend` it returns and never ask again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gingham.lab import build, observe
from gingham.lab.backend import LabBackend, LabError, Matrix, Progress
from gingham.lab.kubernetes import KubernetesBackend
from gingham.lab.state import LabState
from gingham.lab.topology import LabOptions
from gingham.lab.vm import lab as vm_lab


class NetnsBackend:
    name = "netns"
    default_nodes = 4
    default_encap = "none"
    default_wait = 120.0
    datastore: str | None = None

    def up(self, options: LabOptions, progress: Progress, wait: float) -> LabState:
        return build.up(options, progress, wait=wait)

    def wait_converged(self, state: LabState, progress: Progress, wait: float) -> bool:
        return build.wait_converged(state, progress, wait)

    def status(self, state: LabState) -> dict[str, Any]:
        return observe.lab_status(state)

    def ping_matrix(self, state: LabState, timeout: float) -> Matrix:
        return observe.ping_matrix(state, timeout)

    def exec(self, state: LabState, target: str, command: list[str]) -> int:
        """`ip netns exec` into the target's namespace: this process becomes the command."""
        tors = {t.name: t.netns for t in observe.lab_plan(state).tors}
        where = {**state.nodes, **tors, **{p.name: p.netns for p in state.pods}}
        if target not in where:
            raise LabError(f'lab "{state.name}" has no node, ToR or pod "{target}" '
                           f"(nodes: {', '.join([*state.nodes, *tors])})")  # fmt: skip
        if not command:
            raise LabError("lab exec: give a command after --, e.g. lab exec node1 -- ip route")
        os.execvp("ip", ["ip", "netns", "exec", where[target], *command])


class VmBackend:
    name = "vm"
    default_nodes = 3
    default_encap = "ipip"  # the reason to boot guests: this kernel has no ipip
    default_wait = 300.0  # TCG guests boot in about a minute each
    datastore: str | None = "etcd"  # on the guests' segment, as on three real VMs

    def up(self, options: LabOptions, progress: Progress, wait: float) -> LabState:
        return vm_lab.up(options, progress, wait=wait)

    def wait_converged(self, state: LabState, progress: Progress, wait: float) -> bool:
        return vm_lab.wait_converged(state, progress, wait)

    def status(self, state: LabState) -> dict[str, Any]:
        return vm_lab.vm_status(state)

    def ping_matrix(self, state: LabState, timeout: float) -> Matrix:
        return vm_lab.vm_ping_matrix(state, timeout)

    def exec(self, state: LabState, target: str, command: list[str]) -> int:
        return vm_lab.vm_exec(state, target, command)


NETNS: LabBackend = NetnsBackend()
VM: LabBackend = VmBackend()
KUBERNETES: LabBackend = KubernetesBackend()


def backend_for(options: LabOptions | Mapping[str, Any]) -> LabBackend:
    """The backend of a lab with these options (a `LabOptions`, or a `LabState`'s record)."""
    if isinstance(options, LabOptions):
        vm, kubernetes = options.vm, options.kubernetes
    else:
        vm, kubernetes = bool(options.get("vm")), bool(options.get("kubernetes"))
    if kubernetes:
        return KUBERNETES
    return VM if vm else NETNS


def backend_of(state: LabState) -> LabBackend:
    """The backend that built `state`'s lab."""
    return backend_for(state.options)
