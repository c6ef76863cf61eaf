"""The QEMU guest tests run or say loudly that they did not (tests/e2e/vm/conftest.py).

No guest is booted here: the load gate is driven by a fake load, and the banner
by a small inner pytest run whose VM-like test skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.vm.conftest import wait_for_quiet_host
from tests.support.inner_pytest import run_pytest


def test_a_busy_host_is_waited_for_then_the_test_runs() -> None:
    loads = iter([40.0, 30.0, 13.0, 11.5])
    wait_for_quiet_host(12, patience=10, interval=0.01, load=lambda: next(loads))


def test_a_host_that_stays_busy_fails_the_test_saying_why() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        wait_for_quiet_host(12, patience=0.2, interval=0.01, load=lambda: 30.0)
    message = str(failed.value)
    assert "VM test NOT RUN" in message and "above 12 per core" in message
    assert "GINGHAM_VM_FORCE=1" in message


def test_a_skipped_guest_test_gets_a_banner_at_the_end_of_the_run(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.e2e.vm.conftest import pytest_runtest_logreport, pytest_terminal_summary\n"
    )
    (tmp_path / "e2e" / "vm").mkdir(parents=True)
    (tmp_path / "e2e" / "vm" / "test_guest.py").write_text(
        "import pytest\n\ndef test_guest():\n    pytest.skip('no QEMU guests here: qemu missing')\n"
    )
    (tmp_path / "test_other.py").write_text(
        "import pytest\n\ndef test_other():\n    pytest.skip('unrelated')\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = run_pytest(tmp_path)
    banner = done.stdout.split("QEMU guest tests did NOT run", 1)
    assert len(banner) == 2, done.stdout
    assert "e2e/vm/test_guest.py::test_guest: no QEMU guests here: qemu missing" in banner[1]
    assert "test_other" not in banner[1]
