"""`gingham lab` commands a person types when something is missing, and the tour after `up`."""

from __future__ import annotations

from pathlib import Path

import pytest

from gingham.cli.lab import tour
from gingham.cli.main import main
from gingham.lab.state import LabState, PodRecord


@pytest.mark.parametrize("command", ["status", "ping", "graph", "exec"])
def test_commands_on_a_missing_lab_name_it(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GINGHAM_LAB_ROOT", str(tmp_path))
    extra = ["node1", "--", "true"] if command == "exec" else []
    assert main(["lab", command, "--name", "nosuch", *extra]) != 0
    err = capsys.readouterr().err
    assert 'no lab named "nosuch"' in err and "Traceback" not in err


def test_down_of_a_missing_lab_is_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GINGHAM_LAB_ROOT", str(tmp_path))
    assert main(["lab", "down", "--name", "nosuch"]) == 0
    assert "nothing to remove" in capsys.readouterr().err


def test_tour_names_every_command_and_a_real_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    state = LabState("blue", {}, "sqlite:///x", nodes={"node1": "blue-node1"})
    state.pods = [
        PodRecord("node1-pod1", "node1", "blue-node1-p1", "c1", "10.244.0.0"),
        PodRecord("node2-pod1", "node2", "blue-node2-p1", "c2", "10.244.0.64"),
    ]
    text = tour("blue", state)
    for command in ("status", "ping", "exec", "graph", "list", "down"):
        assert f"lab {command} --name blue" in text or command == "list"
    assert "node1-pod1 -- ping -c1 10.244.0.64" in text
    # The default lab needs no --name.
    assert "--name" not in tour("lab", state)
