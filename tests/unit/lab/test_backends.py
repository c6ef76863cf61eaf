"""The lab's backend is chosen in one place, and a lab keeps the one that built it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from gingham.cli.main import main
from gingham.lab.backend import LabError
from gingham.lab.backends import NETNS, VM, backend_for, backend_of
from gingham.lab.state import LabState
from gingham.lab.topology import LabOptions


def test_options_choose_the_backend() -> None:
    assert backend_for(LabOptions()) is NETNS
    assert backend_for(LabOptions(vm=True)) is VM


def test_a_recorded_lab_keeps_its_backend() -> None:
    vm_lab = LabState("v", asdict(LabOptions(name="v", vm=True)), "etcd://10.200.0.254:2379")
    ns_lab = LabState("n", asdict(LabOptions(name="n")), "sqlite:///x")
    assert backend_of(vm_lab) is VM
    assert backend_of(ns_lab) is NETNS
    # A state file written before `vm` existed is a namespace lab.
    assert backend_of(LabState("old", {"topology": "mesh"}, "sqlite:///x")) is NETNS


def test_vm_defaults_differ_where_guests_need_them() -> None:
    assert (VM.default_encap, VM.datastore) == ("ipip", "etcd")
    assert (NETNS.default_encap, NETNS.datastore) == ("none", None)


def test_netns_exec_names_an_unknown_target() -> None:
    state = LabState("blue", asdict(LabOptions(name="blue")), "sqlite:///x",
                     nodes={"node1": "blue-node1"})  # fmt: skip
    with pytest.raises(LabError, match=r'no node, ToR or pod "node9" \(nodes: node1\)'):
        NETNS.exec(state, "node9", ["true"])
    with pytest.raises(LabError, match="give a command after --"):
        NETNS.exec(state, "node1", [])


def test_exec_errors_reach_the_person_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GINGHAM_LAB_ROOT", str(tmp_path))
    (tmp_path / "blue").mkdir()
    LabState("blue", asdict(LabOptions(name="blue")), "sqlite:///x",
             nodes={"node1": "blue-node1"}).save()  # fmt: skip
    assert main(["lab", "exec", "--name", "blue", "node9", "--", "true"]) != 0
    err = capsys.readouterr().err
    assert 'no node, ToR or pod "node9"' in err and "Traceback" not in err
