"""cni.jsonio reads and writes exactly what the standard library's json does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cni import jsonio
from cni.install import import_roots

DOCUMENTS = [
    '{"cniVersion": "1.1.0", "name": "k8s-pod-network", "plugins": []}',
    '  \n{"a": [1, 2.5, -3e-2, true, false, null, {"b": "\\u00e9\\n\\"x\\""}]}\t\n',
    '{"runtimeConfig": {"portMappings": [{"HostPort": 80, "containerPort": 8080}]}}',
    '{"big": 123456789012345678901234567890, "neg": -0, "nan": NaN, "inf": -Infinity}',
    '"just a string"',
    "[]",
    '{"dup": 1, "dup": 2}',
    '{"utf8": "pod-\u00e9\u4e2d"}',
]

MALFORMED = [
    b"",
    b"   ",
    b"{",
    b'{"a": 1,}',
    b'{"a": 1} trailing',
    b"{'single': 1}",
    b'{"a": "\x01 control char"}',
    b"\xff\xfe not utf-8",
    b'\xef\xbb\xbf{"bom": 1}',
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_loads_matches_json_for_valid_documents(text: str) -> None:
    expected = json.loads(text)
    for data in (text, text.encode()):
        got = jsonio.loads(data)
        # NaN != NaN: compare the re-encoded forms, which are exact.
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("data", MALFORMED)
def test_loads_fails_or_succeeds_exactly_as_json_does(data: bytes) -> None:
    try:
        expected: object = json.loads(data)
    except ValueError as exc:
        with pytest.raises(ValueError) as got:
            jsonio.loads(data)
        assert str(got.value) == str(exc)  # the same message, naming the position
    else:
        assert jsonio.loads(data) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}]},
        {"code": 7, "msg": "network config field mtu: must be an integer, got 'x\u00e9'"},
        {"ips": [{"address": "10.0.0.1/32", "interface": 1}], "dns": {}, "ok": True},
        ["a", 1, 2.5, None, False, float("nan")],
    ],
)
def test_dumps_is_byte_identical_to_json(value: object) -> None:
    assert jsonio.dumps(value) == json.dumps(value)


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonio.dumps({"x": object()})


def test_malformed_input_in_a_fresh_interpreter_gets_json_s_error(tmp_path: Path) -> None:
    """As in a CNI exec, where nothing has imported `json` before the plugin parses stdin."""
    code = (
        f"import sys; sys.path[:0] = {import_roots()!r}\n"
        "from cni import jsonio\n"
        "assert 'json' not in sys.modules\n"
        "for data in (b'{\"cniVersion\": \"1.1.0\", ', b'[1, 2', b'{\"a\": tru}'):\n"
        "    try:\n"
        "        jsonio.loads(data)\n"
        "    except ValueError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "JSONDecodeError Expecting property name enclosed in double quotes:"
        " line 1 column 25 (char 24)",
        "JSONDecodeError Expecting ',' delimiter: line 1 column 6 (char 5)",
        "JSONDecodeError Expecting value: line 1 column 7 (char 6)",
    ]
