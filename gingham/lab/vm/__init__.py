"""QEMU guests for labs that need a kernel this host lacks (ipip).

- `kernel`     fetches and caches Debian's 6.1 kernel and the guest modules (apt only).
- `initramfs`  builds the busybox initramfs whose `/init` shares the host root
               read-only over 9p and runs the guest agent.
- `agent`      runs inside the guest: executes requests from the writable share.
- `machine`    host side: network namespace + bridge + taps, qemu processes,
               `Vm.run` / `Vm.spawn`, guaranteed cleanup (`VmLab`, `destroy_lab`).
- `lab`        `gingham lab up --vm`: the namespace lab's plan with QEMU guests as
               nodes, built by README "A BGP lab on three VMs"'s steps.
- `units`      the systemd units of manifests/systemd as commands (guests have no systemd).
- `cnitool`    the CNI project's cnitool command line (a conflist run as libcni does).
- `probe`      runs in a guest: felix, speaker, routes and tunl0 as JSON for `lab status`.
"""

from __future__ import annotations

from gingham.lab.vm.kernel import Kernel, KernelUnavailable, prepare_kernel
from gingham.lab.vm.machine import (
    GuestError,
    GuestProcess,
    GuestResult,
    Vm,
    VmLab,
    destroy_lab,
    qemu_available,
)

__all__ = [
    "GuestError", "GuestProcess", "GuestResult", "Kernel", "KernelUnavailable", "Vm", "VmLab",
    "destroy_lab", "prepare_kernel", "qemu_available",
]  # fmt: skip
