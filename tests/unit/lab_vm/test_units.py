"""The systemd units of manifests/systemd, rendered as `systemctl start` would run them."""

from __future__ import annotations

import pytest

from gingham.lab.vm.units import (
    UNIT_DIR,
    Service,
    UnitError,
    parse_env_file,
    render_unit,
    service_lines,
)

ENV_FILE = "/etc/gingham/gingham.env"


def files(**content: str) -> dict[str, str]:
    return {ENV_FILE: (UNIT_DIR / "gingham.env").read_text(), **content}


def render(unit: str, env_files: dict[str, str], hostname: str = "node2") -> Service:
    return render_unit(unit, (UNIT_DIR / unit).read_text(), env_files.get, hostname)


def test_node_unit_runs_node_run_against_the_env_files_datastore() -> None:
    service = render("gingham-node.service", files())
    assert service.start.argv == (
        "/usr/local/bin/gingham", "--datastore", "etcd://10.0.0.11:2379", "node", "run",
        "--node", "node2", "--run-dir", "/run/gingham",
    )  # fmt: skip
    (modprobe,) = service.pre
    assert modprobe.argv == ("/sbin/modprobe", "ipip") and modprobe.ignore_failure


def test_env_file_overrides_the_host_name_default() -> None:
    env = files()[ENV_FILE] + "GINGHAM_NODE=rack1-a\n"
    service = render("gingham-node.service", {ENV_FILE: env})
    argv = service.start.argv
    assert argv[argv.index("--node") + 1] == "rack1-a"


def test_cni_install_unit_is_a_oneshot_writing_the_runtime_dirs() -> None:
    lines = dict(service_lines((UNIT_DIR / "gingham-cni-install.service").read_text()))
    assert lines["Type"] == "oneshot"
    service = render("gingham-cni-install.service", files())
    assert service.start.argv[1:3] == ("cni", "install")
    assert "/opt/cni/bin" in service.start.argv and "/etc/cni/net.d" in service.start.argv


def test_node_unit_restarts_on_failure_after_the_network() -> None:
    text = (UNIT_DIR / "gingham-node.service").read_text()
    assert ("Restart", "on-failure") in service_lines(text)
    assert "After=network-online.target" in text and "Wants=network-online.target" in text


def test_a_missing_env_file_or_variable_is_named() -> None:
    with pytest.raises(
        UnitError, match=r"EnvironmentFile /etc/gingham/gingham\.env does not exist"
    ):
        render("gingham-node.service", {})
    with pytest.raises(UnitError, match=r"\$\{GINGHAM_DATASTORE\} is not set"):
        render("gingham-node.service", {ENV_FILE: "# nothing\n"})


def test_syntax_subset() -> None:
    unit = (
        "[Unit]\nExecStart=/bin/false\n[Service]\nEnvironment=A=1 'B=two words'\n"
        "EnvironmentFile=-/missing\nExecStartPre=@-/bin/echo %H %%\n"
        "ExecStart=/bin/prog ${B} $B \\\n  --a=${A}\n"
    )
    service = render_unit("x.service", unit, lambda _p: None, "h1")
    assert service.pre[0].argv == ("/bin/echo", "h1", "%") and service.pre[0].ignore_failure
    assert service.start.argv == ("/bin/prog", "two words", "two", "words", "--a=1")
    with pytest.raises(UnitError, match="no ExecStart"):
        render_unit("y.service", "[Service]\nType=simple\n", lambda _p: None, "h")


def test_env_file_parsing() -> None:
    assert parse_env_file("# c\n\nA=1\nB=\"x y\"\n  C = 3\nnot a line\n") == {
        "A": "1", "B": "x y", "C": "3",
    }  # fmt: skip
