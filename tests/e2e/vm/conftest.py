"""Fixtures for tests in QEMU guests: skip with the reason when guests cannot run here."""

from __future__ import annotations

import os

import pytest

from gingham.lab.vm import Kernel, KernelUnavailable, prepare_kernel, qemu_available
from gingham.lab.vm.initramfs import BUSYBOX

# Load per core above which TCG guests get a few % of a core each: boots and the
# guests' Python starts then take tens of minutes (seen at load 50-200 on 2 cores).
MAX_LOAD_PER_CORE = 12.0


@pytest.fixture(scope="session")
def guest_kernel() -> Kernel:
    problem = qemu_available()
    if problem is not None:
        pytest.skip(f"no QEMU guests here: {problem}")
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    if load > MAX_LOAD_PER_CORE and not os.environ.get("GINGHAM_VM_FORCE"):
        pytest.skip(f"host too loaded for TCG guests: load {load:.0f} per core "
                    f"(> {MAX_LOAD_PER_CORE:.0f}; GINGHAM_VM_FORCE=1 runs anyway)")  # fmt: skip
    if not BUSYBOX.exists():
        pytest.skip(f"no guest initramfs: {BUSYBOX} missing (Debian package busybox-static)")
    try:
        return prepare_kernel()
    except KernelUnavailable as exc:
        pytest.skip(f"no guest kernel: {exc}")
