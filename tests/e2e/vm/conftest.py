"""Fixtures for tests in QEMU guests: skip with the reason when guests cannot run here."""

from __future__ import annotations

import pytest

from gingham.lab.vm import Kernel, KernelUnavailable, prepare_kernel, qemu_available
from gingham.lab.vm.initramfs import BUSYBOX


@pytest.fixture(scope="session")
def guest_kernel() -> Kernel:
    problem = qemu_available()
    if problem is not None:
        pytest.skip(f"no QEMU guests here: {problem}")
    if not BUSYBOX.exists():
        pytest.skip(f"no guest initramfs: {BUSYBOX} missing (Debian package busybox-static)")
    try:
        return prepare_kernel()
    except KernelUnavailable as exc:
        pytest.skip(f"no guest kernel: {exc}")
