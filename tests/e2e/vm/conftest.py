"""Fixtures for tests in QEMU guests: skip with the reason when guests cannot run here."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from gingham.lab.vm import Kernel, KernelUnavailable, VmLab, prepare_kernel, qemu_available
from gingham.lab.vm.initramfs import BUSYBOX
from gingham.lab.vm.machine import GUEST_PACKAGES


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


@pytest.fixture
def two_vms(guest_kernel: Kernel) -> Iterator[VmLab]:
    """Two booted guests on one bridge (198.18.0.1, .2; the lab namespace is .254)."""
    with VmLab(
        f"v{secrets.token_hex(3)}", 2, kernel=guest_kernel, packages=(*GUEST_PACKAGES, "tests")
    ) as lab:
        yield lab
