"""The suite's own leak check (tests/support/leaks.py), run on a small inner pytest.

The inner run's tests leave a daemon, a namespace and a host link behind, and
start one process that is still exiting when the run ends. The run must fail,
name each leftover and the test that started it, remove them, and leave the
exiting process alone.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.inner_pytest import run_pytest
from tests.support.poll import wait_for

pytestmark = pytest.mark.root

CONFTEST = (
    "from tests.support.leaks import pytest_configure, pytest_runtest_setup, pytest_sessionfinish\n"
)

LEAKY = """
import os, subprocess, sys
from pathlib import Path
from tests.support.names import unique_prefix

OUT = Path({out!r})


def test_leaves_a_daemon():
    daemon = subprocess.Popen(["sleep", "600"], start_new_session=True)
    (OUT / "daemon.pid").write_text(str(daemon.pid))


def test_leaves_a_namespace_and_a_link():
    prefix = unique_prefix("lk")
    subprocess.run(["ip", "netns", "add", prefix + "n"], check=True)
    veth = ["type", "veth", "peer", "name", prefix + "b"]
    subprocess.run(["ip", "link", "add", prefix + "a", *veth], check=True)
    (OUT / "prefix").write_text(prefix)


def test_stops_what_it_starts_but_it_takes_a_moment():
    # Exits about a second after its stdin closes, i.e. after the run has ended.
    slow = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.read(); time.sleep(1)"],
        stdin=subprocess.PIPE,
    )
    (OUT / "slow.pid").write_text(str(slow.pid))
    slow.stdin.close()
"""

CLEAN = """
import subprocess

def test_stops_what_it_starts():
    proc = subprocess.Popen(["sleep", "600"])
    proc.kill()
    proc.wait()
"""


def inner_run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(source.format(out=str(tmp_path))))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return run_pytest(tmp_path)


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_run_that_leaks_fails_names_the_leftovers_and_removes_them(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    done = inner_run(tmp_path, LEAKY)
    daemon = int((tmp_path / "daemon.pid").read_text())
    slow = int((tmp_path / "slow.pid").read_text())
    prefix = (tmp_path / "prefix").read_text()
    try:
        out = done.stdout
        assert done.returncode == 1, out  # every test passed: only the leak check fails
        assert "3 passed" in out, out
        assert "LEFT BEHIND BY THIS RUN" in out, out
        assert (
            f"process {daemon}: sleep 600  (started under test_inner.py::test_leaves_a_daemon)"
            in out
        )
        assert f"netns {prefix}n" in out and f"link {prefix}a" in out, out
        assert f"process {slow}:" not in out, out  # still exiting when the run ended: not a leak
        assert not alive(daemon)
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
        assert f"{prefix}n" not in names.stdout
        assert not Path(f"/sys/class/net/{prefix}a").exists()
        wait_for(lambda: not alive(slow), 10, 0.05, "the slow process to finish exiting")
    finally:
        for pid in (daemon, slow):
            if alive(pid):
                os.kill(pid, 9)
        subprocess.run(["ip", "netns", "del", f"{prefix}n"], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"{prefix}a"], capture_output=True, check=False)


def test_a_run_that_cleans_up_passes_quietly(tmp_path: Path) -> None:
    done = inner_run(tmp_path, CLEAN)
    assert done.returncode == 0, done.stdout
    assert "LEFT BEHIND" not in done.stdout
