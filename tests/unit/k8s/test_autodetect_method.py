"""Parsing GINGHAM_IP_AUTODETECTION_METHOD."""

from __future__ import annotations

import pytest

from gingham.k8s.autodetect import Method, parse_method


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("", Method("first-found")),
        ("first-found", Method("first-found")),
        ("interface=eth.*", Method("interface", "eth.*")),
        ("can-reach=172.18.0.1", Method("can-reach", "172.18.0.1")),
    ],
)
def test_methods(text: str, method: Method) -> None:
    assert parse_method(text) == method


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("skip-interface=eth0", "unknown"),
        ("interface=", "is not one of"),
        ("interface=eth(", "not a regular expression"),
        ("can-reach=example.com", "not an IPv4 address"),
    ],
)
def test_bad_methods_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_method(text)
