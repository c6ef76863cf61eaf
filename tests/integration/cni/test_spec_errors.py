"""CNI spec behaviour that needs no felix: VERSION, input errors, felix down.

Every test execs the installed plugin with env + stdin as a runtime does and
checks the spec's error JSON, the exit status, and that no traceback leaks.
"""

from __future__ import annotations

import pytest

from cni.request import SUPPORTED_VERSIONS
from tests.integration.cni.conftest import Installed
from tests.support.cni_exec import PluginRun
from tests.support.fake_felix import FakeFelix


def assert_error(run: PluginRun, code: int, *words: str) -> None:
    assert run.returncode != 0, run
    assert "Traceback" not in run.stdout + run.stderr, run
    data = run.json
    assert set(data) <= {"cniVersion", "code", "msg", "details"}, data
    assert data["code"] == code, data
    for word in words:
        assert word in data["msg"], data


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_version_echoes_requested_version(installed: Installed, version: str) -> None:
    run = installed.run("VERSION", {"cniVersion": version})
    assert run.returncode == 0
    assert run.json == {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


def test_version_with_empty_stdin(installed: Installed) -> None:
    run = installed.run("VERSION", b"")
    assert run.returncode == 0
    assert run.json["cniVersion"] == "1.1.0"


def test_malformed_json_is_decode_failure(installed: Installed) -> None:
    assert_error(installed.run("ADD", b'{"cniVersion": "1.1.0", '), 6, "not valid JSON")
    assert_error(installed.run("DEL", b"[1, 2]"), 6, "JSON object")


def test_deeply_nested_json_is_decode_failure(installed: Installed) -> None:
    assert_error(installed.run("ADD", b"[" * 100_000), 6, "nested too deeply")
    assert_error(installed.run("VERSION", b'{"a":' * 100_000), 6, "nested too deeply")


def test_missing_command_is_invalid_env(installed: Installed) -> None:
    assert_error(installed.run(None, installed.config()), 4, "CNI_COMMAND")


def test_unknown_command_is_invalid_env(installed: Installed) -> None:
    assert_error(installed.run("FROB", installed.config()), 4, "FROB")


def test_missing_env_is_invalid_env(installed: Installed, netns: str) -> None:
    assert_error(
        installed.run("ADD", installed.config(), container_id=None, netns=netns),
        4,
        "CNI_CONTAINERID",
    )
    assert_error(installed.run("ADD", installed.config(), netns=None), 4, "CNI_NETNS")
    assert_error(installed.run("DEL", installed.config(), ifname=None), 4, "CNI_IFNAME")


def test_bad_container_id_and_ifname(installed: Installed, netns: str) -> None:
    assert_error(
        installed.run("ADD", installed.config(), netns=netns, container_id="-x/y"),
        4,
        "CNI_CONTAINERID",
    )
    assert_error(
        installed.run("ADD", installed.config(), netns=netns, ifname="a" * 16), 4, "CNI_IFNAME"
    )


@pytest.mark.parametrize("version", ["0.2.0", "2.0.0", "banana", ""])
def test_unsupported_version(installed: Installed, netns: str, version: str) -> None:
    assert_error(installed.run("ADD", installed.config(version), netns=netns), 1)


@pytest.mark.parametrize(
    ("command", "version"), [("CHECK", "0.3.1"), ("GC", "1.0.0"), ("STATUS", "1.0.0")]
)
def test_command_too_new_for_config_version(
    installed: Installed, netns: str, command: str, version: str
) -> None:
    assert_error(installed.run(command, installed.config(version), netns=netns), 1, command)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"mtu": 20}, "mtu"),
        ({"mtu": "1500"}, "mtu"),
        ({"ipam": {"ipv4_pools": "default"}}, "ipam.ipv4_pools"),
        ({"felix_socket": "relative.sock"}, "felix_socket"),
        ({"log_level": "chatty"}, "log_level"),
        ({"runtimeConfig": {"ips": ["10.0.0.300/24"]}}, "runtimeConfig.ips"),
        ({"runtimeConfig": {"mac": "zz:00"}}, "runtimeConfig.mac"),
        (
            {"runtimeConfig": {"portMappings": [{"HostPort": 0, "ContainerPort": 80}]}},
            "portMappings[0].hostPort",
        ),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_config(
    installed: Installed, netns: str, extra: dict[str, object], field: str
) -> None:
    assert_error(installed.run("ADD", installed.config(**extra), netns=netns), 7, field)


def test_unknown_cni_args_rejected_without_ignore_unknown(installed: Installed, netns: str) -> None:
    assert_error(installed.run("ADD", installed.config(), netns=netns, cni_args="FOO=1"), 4, "FOO")
    assert_error(installed.run("ADD", installed.config(), netns=netns, cni_args="IP=nope"), 4, "IP")


def test_unknown_netns(installed: Installed) -> None:
    assert_error(
        installed.run("ADD", installed.config(), netns="/var/run/netns/gt-nonexistent"),
        4,
        "CNI_NETNS",
    )


@pytest.mark.parametrize("path", ["/", "/dev/null", "/etc/hostname", "/proc/self/ns/mnt"])
def test_a_path_that_is_not_a_network_namespace_is_invalid_env(
    installed: Installed, fake_felix: FakeFelix, path: str
) -> None:
    # Refused before felix is asked (felix would fail in setns: code 100).
    assert_error(installed.run("ADD", installed.config(), netns=path), 4, "not a network namespace")
    assert fake_felix.requests == []


def test_felix_down_is_try_again_later(installed: Installed, netns: str) -> None:
    assert_error(installed.run("ADD", installed.config(), netns=netns), 11, "try again later")
    assert_error(installed.run("DEL", installed.config(), netns=netns), 11)


def test_felix_socket_not_listening_is_try_again_later(installed: Installed, netns: str) -> None:
    import socket

    # A socket file nobody accepts on: connection refused, not a missing file.
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(installed.socket)
    sock.close()
    assert_error(installed.run("ADD", installed.config(), netns=netns), 11, "not answering")


def test_status_without_felix_is_plugin_not_available(installed: Installed) -> None:
    assert_error(installed.run("STATUS", installed.config()), 50)


def test_gc_requires_valid_attachments(installed: Installed) -> None:
    assert_error(installed.run("GC", installed.config()), 7, "valid-attachments")
