"""`gingham cni install`: executable + conflist, atomic and idempotent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cni.install import (
    CHAINED_PLUGINS,
    REFERENCE_PLUGINS_DIR,
    NoCommonVersion,
    install,
    plugin_versions,
)
from cni.request import SUPPORTED_VERSIONS
from tests.support.cni_exec import exec_plugin


def test_install_writes_runnable_plugin_and_conflist(tmp_path: Path) -> None:
    report = install(tmp_path / "bin", tmp_path / "conf", run_dir="/run/x", mtu=1400)
    plugin = tmp_path / "bin" / "gingham"
    assert os.access(plugin, os.X_OK)
    assert plugin.read_text().startswith("#!/")  # absolute interpreter: runtimes set PATH
    conf = json.loads((tmp_path / "conf" / "10-gingham.conflist").read_text())
    assert conf["cniVersion"] in SUPPORTED_VERSIONS  # which one: the tests below
    assert [p["type"] for p in conf["plugins"]] == ["gingham", "portmap", "bandwidth"]
    assert conf["plugins"][0]["felix_socket"] == "/run/x/felix.sock"
    assert conf["plugins"][0]["mtu"] == 1400
    assert conf["plugins"][1]["capabilities"] == {"portMappings": True}
    assert conf["plugins"][2]["capabilities"] == {"bandwidth": True}
    assert str(plugin) in report.written
    proc = subprocess.run(
        [str(plugin)],
        env={"CNI_COMMAND": "VERSION", "PATH": "/nonexistent"},
        input=b"",
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0 and b"supportedVersions" in proc.stdout


def test_install_is_idempotent_and_leaves_no_temp_files(tmp_path: Path) -> None:
    install(tmp_path / "bin", tmp_path / "conf")
    conflist = tmp_path / "conf" / "10-gingham.conflist"
    before = conflist.stat().st_mtime_ns
    report = install(tmp_path / "bin", tmp_path / "conf")
    assert report.written == [] and conflist.stat().st_mtime_ns == before
    assert not [p for p in (tmp_path / "conf").iterdir() if p.name.startswith(".")]
    assert not [p for p in (tmp_path / "bin").iterdir() if p.name.startswith(".")]


def test_cli_rejects_bad_mtu(tmp_path: Path) -> None:
    from gingham.cli.main import main

    try:
        main(["cni", "install", "--bin-dir", str(tmp_path), "--mtu", "9"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("--mtu 9 accepted")


def reference_plugin_versions() -> dict[str, list[str]]:
    """What the installed reference plugins (/usr/lib/cni) answer to VERSION."""
    found = {p: plugin_versions(Path(REFERENCE_PLUGINS_DIR) / p) for p in CHAINED_PLUGINS}
    if any(v is None for v in found.values()):
        pytest.skip(f"reference CNI plugins missing in {REFERENCE_PLUGINS_DIR}: {found}")
    return {p: v for p, v in found.items() if v is not None}


def fake_plugin(path: Path, versions: list[str]) -> None:
    """A chained plugin that answers VERSION with `versions`."""
    reply = json.dumps({"cniVersion": "0.4.0", "supportedVersions": versions})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{reply}'\n")
    path.chmod(0o755)


def written_version(tmp_path: Path) -> str:
    conf = json.loads((tmp_path / "conf" / "10-gingham.conflist").read_text())
    version: str = conf["cniVersion"]
    return version


def test_default_version_is_the_newest_every_real_chained_plugin_runs(tmp_path: Path) -> None:
    answers = reference_plugin_versions()
    report = install(tmp_path / "bin", tmp_path / "conf")  # copies them from /usr/lib/cni
    assert report.copied[:2] == ["portmap", "bandwidth"]
    common = set(SUPPORTED_VERSIONS).intersection(*answers.values())
    newest = max(common, key=lambda v: tuple(int(x) for x in v.split(".")))
    assert written_version(tmp_path) == newest  # 1.0.0 with Debian's plugins 1.1.1
    assert report.warnings == []
    assert report.version_choice == (
        f"cniVersion {newest}: the newest that gingham, portmap and bandwidth "
        f"(in {tmp_path / 'bin'}) all support"
    )
    # Every plugin of the list, asked as a runtime would, accepts the list's version.
    for plugin in CHAINED_PLUGINS:
        run = exec_plugin(
            tmp_path / "bin" / plugin, "VERSION", {"cniVersion": newest}, cni_path=None
        )
        assert run.returncode == 0 and run.json["cniVersion"] == newest, run


def test_default_version_follows_what_the_chained_plugins_say(tmp_path: Path) -> None:
    fake_plugin(tmp_path / "bin" / "portmap", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    fake_plugin(tmp_path / "bin" / "bandwidth", ["0.3.0", "0.3.1", "0.4.0"])
    report = install(tmp_path / "bin", tmp_path / "conf", reference_dir=tmp_path / "none")
    assert written_version(tmp_path) == "0.4.0"
    assert "cniVersion 0.4.0" in report.version_choice and report.warnings == []


def test_a_chained_plugin_that_cannot_be_asked_is_left_out_with_a_warning(
    tmp_path: Path,
) -> None:
    fake_plugin(tmp_path / "bin" / "bandwidth", ["1.0.0"])
    report = install(tmp_path / "bin", tmp_path / "conf", reference_dir=tmp_path / "none")
    assert written_version(tmp_path) == "1.0.0"
    assert report.version_choice.startswith("cniVersion 1.0.0: the newest that gingham and ")
    assert [w for w in report.warnings if "portmap" in w and "cannot be asked" in w]


def test_no_common_version_writes_no_conflist(tmp_path: Path) -> None:
    fake_plugin(tmp_path / "bin" / "portmap", ["0.1.0", "0.2.0"])
    with pytest.raises(NoCommonVersion, match=r"portmap supports CNI versions \['0.1.0'"):
        install(tmp_path / "bin", tmp_path / "conf", reference_dir=tmp_path / "none")
    assert not (tmp_path / "conf" / "10-gingham.conflist").exists()


def test_an_explicit_version_is_written_with_a_warning_if_a_plugin_cannot_run_it(
    tmp_path: Path,
) -> None:
    reference_plugin_versions()
    report = install(tmp_path / "bin", tmp_path / "conf", cni_version="1.1.0")
    # Debian's reference plugins 1.1.1 stop at 1.0.0.
    assert any("portmap" in w and "1.0.0" in w for w in report.warnings), report.warnings
    assert written_version(tmp_path) == "1.1.0"
    ok = install(tmp_path / "bin", tmp_path / "conf", cni_version="1.0.0")
    assert ok.warnings == [] and ok.version_choice == "cniVersion 1.0.0: as asked"
    assert written_version(tmp_path) == "1.0.0"


def test_cli_says_which_version_it_wrote_and_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gingham.cli.main import main

    fake_plugin(tmp_path / "b" / "portmap", ["0.4.0", "1.0.0"])
    fake_plugin(tmp_path / "b" / "bandwidth", ["0.4.0", "1.0.0"])
    args = ["cni", "install", "--bin-dir", str(tmp_path / "b"), "--conf-dir", str(tmp_path / "c")]
    assert main(args) == 0
    out = capsys.readouterr()
    said = [line for line in out.out.splitlines() if "cniVersion" in line]
    assert said == [
        f"cniVersion 1.0.0: the newest that gingham, portmap and bandwidth "
        f"(in {tmp_path / 'b'}) all support"
    ]
    assert out.err == ""


def test_cli_install_through_gingham_main(tmp_path: Path) -> None:
    from gingham.cli.main import main

    args = [
        "cni",
        "install",
        "--bin-dir",
        str(tmp_path / "b"),
        "--conf-dir",
        str(tmp_path / "c"),
        "--run-dir",
        "/run/g",
        "--cni-version",
        "1.0.0",
    ]
    assert main(args) == 0
    conf = json.loads((tmp_path / "c" / "10-gingham.conflist").read_text())
    assert conf["cniVersion"] == "1.0.0"
    assert conf["plugins"][0]["felix_socket"] == "/run/g/felix.sock"
