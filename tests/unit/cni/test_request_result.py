"""Pure parsing, result rendering and CHECK diffing of the CNI plugin."""

from __future__ import annotations

import pytest

from cni.errors import CniError
from cni.request import (
    MAX_CONTAINER_ID_LENGTH,
    config_version,
    decode_config,
    parse_cni_args,
    parse_netconf,
    read_invocation,
)
from cni.result import (
    Attachment,
    ExpectedAttachment,
    Interface,
    IpConfig,
    RecordedWorkload,
    Route,
    check_problems,
    expected_from_prev_result,
    render_result,
)

ATTACHMENT = Attachment(
    interfaces=(
        Interface("gh0123456789a", "ee:ee:ee:ee:ee:ee", ""),
        Interface("eth0", "0a:00:00:00:00:01", "/var/run/netns/p"),
    ),
    ips=(IpConfig("10.65.0.7/32", "169.254.1.1", 1), IpConfig("fd00::7/128", "", 1)),
    routes=(Route("0.0.0.0/0", "169.254.1.1"),),
    mtu=1450,
)


def test_cni_args_parse_known_keys_and_ignore_unknown() -> None:
    args = parse_cni_args("IgnoreUnknown=true;K8S_POD_NAME=a;X=1;IP=10.0.0.1,fd00::1")
    assert args.name == "a" and args.requested_ips == ("10.0.0.1", "fd00::1")
    with pytest.raises(CniError) as exc:
        parse_cni_args("K8S_POD_NAME=a;X=1")
    assert exc.value.code == 4 and "X" in exc.value.msg


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_nesting_past_the_decoders_depth_is_a_decode_failure(opener: bytes) -> None:
    with pytest.raises(CniError) as exc:
        decode_config(opener * 100_000)
    assert exc.value.code == 6 and "nested too deeply" in exc.value.msg


def env(**overrides: str) -> dict[str, str]:
    base = {"CNI_CONTAINERID": "c1", "CNI_NETNS": "/n", "CNI_IFNAME": "eth0", "CNI_PATH": "/b"}
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CNI_CONTAINERID", "caf\u00e9", "invalid characters"),
        ("CNI_CONTAINERID", "a" * (MAX_CONTAINER_ID_LENGTH + 1), "at most"),
        ("CNI_IFNAME", "\u00e9" * 8, "1-15 bytes"),  # 8 characters, 16 bytes
    ],
)
def test_environment_limits_are_invalid_env(variable: str, value: str, words: str) -> None:
    with pytest.raises(CniError) as exc:
        read_invocation(env(**{variable: value}), "ADD")
    assert exc.value.code == 4 and variable in exc.value.msg and words in exc.value.msg


def test_longest_container_id_and_ifname_are_accepted() -> None:
    inv = read_invocation(
        env(CNI_CONTAINERID="a" * MAX_CONTAINER_ID_LENGTH, CNI_IFNAME="e" * 15), "ADD"
    )
    assert len(inv.container_id) == MAX_CONTAINER_ID_LENGTH


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 86401, 10**400])
def test_timeout_must_be_a_sane_number_of_seconds(timeout: float) -> None:
    with pytest.raises(CniError) as exc:
        parse_netconf({"name": "n", "timeout_seconds": timeout}, "1.1.0")
    assert exc.value.code == 7 and "timeout_seconds" in exc.value.msg


def test_port_mappings_accept_either_key_case() -> None:
    conf = parse_netconf(
        {
            "name": "n",
            "runtimeConfig": {
                "portMappings": [
                    {
                        "HostPort": 80,
                        "ContainerPort": 8080,
                        "Protocol": "TCP",
                        "HostIP": "127.0.0.1",
                    },
                    {"hostPort": 53, "containerPort": 53, "protocol": "udp"},
                ]
            },
        },
        "1.1.0",
    )
    assert [(p.host_port, p.container_port, p.protocol) for p in conf.port_mappings] == [
        (80, 8080, "tcp"),
        (53, 53, "udp"),
    ]


def test_check_requires_0_4_0() -> None:
    with pytest.raises(CniError) as exc:
        config_version({"cniVersion": "0.3.1"}, "CHECK")
    assert exc.value.code == 1


def test_render_per_version() -> None:
    new = render_result(ATTACHMENT, "1.1.0")
    old = render_result(ATTACHMENT, "0.3.1")
    assert new["interfaces"][1]["mtu"] == 1450  # type: ignore[index]
    assert "sandbox" not in new["interfaces"][0]  # type: ignore[index]
    old_ips, new_ips = old["ips"], new["ips"]
    assert isinstance(old_ips, list) and isinstance(new_ips, list)
    assert [ip.get("version") for ip in old_ips] == ["4", "6"]
    assert all("version" not in ip for ip in new_ips)
    assert "gateway" not in new["ips"][1]  # type: ignore[index]


def test_prev_result_round_trip_and_diff() -> None:
    prev = render_result(ATTACHMENT, "1.0.0")
    expected = expected_from_prev_result(prev, "eth0", "/var/run/netns/p")
    assert expected == ExpectedAttachment(
        frozenset({"10.65.0.7", "fd00::7"}), "0a:00:00:00:00:01", "gh0123456789a"
    )
    same = RecordedWorkload(frozenset({"10.65.0.7", "fd00::7"}), "0A:00:00:00:00:01", "gh0")
    assert check_problems(expected, same, []) == []
    other = RecordedWorkload(frozenset({"10.65.0.9"}), "0a:00:00:00:00:02", "gh0")
    problems = check_problems(expected, other, [])
    assert any("10.65.0.7" in p for p in problems) and any("10.65.0.9" in p for p in problems)
    assert any("MAC" in p for p in problems)


def test_prev_result_in_another_netns_is_a_mismatch() -> None:
    prev = render_result(ATTACHMENT, "1.0.0")
    with pytest.raises(CniError) as exc:
        expected_from_prev_result(prev, "eth0", "/var/run/netns/other")
    assert exc.value.code == 102
