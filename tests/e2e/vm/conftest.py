"""Fixtures for tests in QEMU guests: they run, or the run says loudly that they did not.

Under heavy load TCG guests get a few % of a core each and boots take tens of
minutes (seen at load 50-200 on 2 cores). Such a host is waited for (polled,
up to `QUIET_PATIENCE_SECONDS`) until its load per core falls to
`MAX_LOAD_PER_CORE`; if it never does, the test fails saying so — it is never
skipped for load (a skip among a thousand passes reads as green).
`GINGHAM_VM_FORCE=1` runs at any load.

Missing prerequisites (QEMU, busybox-static, a guest kernel: `make install`
provides all three) still skip with the reason, and the end of the run repeats
each such reason under a banner of its own, so a green run that did not boot a
guest says so in red.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from gingham.lab.vm import Kernel, KernelUnavailable, prepare_kernel, qemu_available
from gingham.lab.vm.initramfs import BUSYBOX
from tests.support.poll import wait_for

MAX_LOAD_PER_CORE = 12.0
QUIET_PATIENCE_SECONDS = 600.0

_not_run: list[tuple[str, str]] = []  # (test, why) for the banner at the end of the run


def load_per_core() -> float:
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def wait_for_quiet_host(
    limit: float, patience: float, interval: float, load: Callable[[], float] = load_per_core
) -> None:
    """Return once `load()` is at most `limit`; fail the test if it is not within `patience` s."""
    seen = [load()]

    def quiet() -> bool:
        seen.append(load())
        return seen[-1] <= limit

    try:
        wait_for(quiet, timeout=patience, interval=interval, what="a quieter host")
    except AssertionError:
        pytest.fail(
            f"VM test NOT RUN: the host's load stayed above {limit:g} per core for "
            f"{patience:g}s (last {seen[-1]:.1f}, highest {max(seen):.1f}); TCG guests "
            "would take tens of minutes. Run it on a quieter machine, or with "
            "GINGHAM_VM_FORCE=1 at any load.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def guest_kernel() -> Kernel:
    problem = qemu_available()
    if problem is not None:
        pytest.skip(f"no QEMU guests here: {problem}")
    if not BUSYBOX.exists():
        pytest.skip(f"no guest initramfs: {BUSYBOX} missing (Debian package busybox-static)")
    if not os.environ.get("GINGHAM_VM_FORCE"):
        wait_for_quiet_host(MAX_LOAD_PER_CORE, QUIET_PATIENCE_SECONDS, interval=5.0)
    try:
        return prepare_kernel()
    except KernelUnavailable as exc:
        pytest.skip(f"no guest kernel: {exc}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "/e2e/vm/" in f"/{report.nodeid}":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _not_run.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _not_run:
        return
    terminalreporter.write_sep("!", "QEMU guest tests did NOT run", red=True, bold=True)
    for test, why in _not_run:
        terminalreporter.write_line(f"{test}: {why}", red=True)
