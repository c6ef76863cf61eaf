"""`gingham cni install`: executable + conflist, atomic and idempotent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cni.install import install


def test_install_writes_runnable_plugin_and_conflist(tmp_path: Path) -> None:
    report = install(tmp_path / "bin", tmp_path / "conf", run_dir="/run/x", mtu=1400)
    plugin = tmp_path / "bin" / "gingham"
    assert os.access(plugin, os.X_OK)
    assert plugin.read_text().startswith("#!/")  # absolute interpreter: runtimes set PATH
    conf = json.loads((tmp_path / "conf" / "10-gingham.conflist").read_text())
    assert conf["cniVersion"] == "1.1.0"
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


def test_install_warns_when_chained_plugins_cannot_run_the_version(tmp_path: Path) -> None:
    report = install(tmp_path / "bin", tmp_path / "conf", cni_version="1.1.0")
    # Debian's reference plugins 1.1.1 stop at 1.0.0.
    assert any("portmap" in w and "1.0.0" in w for w in report.warnings), report.warnings
    ok = install(tmp_path / "bin", tmp_path / "conf", cni_version="1.0.0")
    assert ok.warnings == []
    conf = json.loads((tmp_path / "conf" / "10-gingham.conflist").read_text())
    assert conf["cniVersion"] == "1.0.0"


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
