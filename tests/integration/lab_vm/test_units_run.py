"""`python -m gingham.lab.vm.units UNIT` runs a unit as `systemctl start` would, in place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNIT = """[Unit]
Description=test
[Service]
Environment=GREETING=hello
EnvironmentFile={env}
ExecStartPre=-/bin/false
ExecStartPre=/bin/sh -c 'echo pre $GREETING > {out}.pre'
ExecStart=/bin/sh -c 'echo $$$$ $GREETING $WHO > {out}'
"""


def write_unit(tmp: Path, env: str, pre_fails: bool = False) -> Path:
    (tmp / "env").write_text(env)
    text = UNIT.format(env=tmp / "env", out=tmp / "out")
    if pre_fails:
        text = text.replace("ExecStartPre=-/bin/false", "ExecStartPre=/bin/false")
    unit = tmp / "test.service"
    unit.write_text(text)
    return unit


def test_pre_commands_then_exec_in_the_same_process(tmp_path: Path) -> None:
    unit = write_unit(tmp_path, "WHO=world\n")
    proc = subprocess.Popen([sys.executable, "-m", "gingham.lab.vm.units", str(unit)])
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:  # timed out: stopped by PID, not left to outlive the run
            proc.kill()
            proc.wait()
    assert (tmp_path / "out.pre").read_text() == "pre hello\n"
    # ExecStart replaced the runner (exec): the service's PID is the one its caller started.
    assert (tmp_path / "out").read_text() == f"{proc.pid} hello world\n"


def test_a_failing_pre_command_stops_the_unit(tmp_path: Path) -> None:
    unit = write_unit(tmp_path, "WHO=world\n", pre_fails=True)
    done = subprocess.run([sys.executable, "-m", "gingham.lab.vm.units", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1 and "/bin/false exited 1" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_unset_variable_is_reported_not_run(tmp_path: Path) -> None:
    # systemd would run it with $WHO empty; a lab unit with a missing setting is a mistake.
    unit = write_unit(tmp_path, "")
    done = subprocess.run([sys.executable, "-m", "gingham.lab.vm.units", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1 and "${WHO} is not set" in done.stderr
