"""Field types shared by the kinds: validated on input, written back as text.

Each type is an `Annotated` pydantic type with a plain validator, so the error a
user sees is ours ("33 is outside 20..32", "10.0.0.1/16 is not a network
address: did you mean 10.0.0.0/16?") rather than pydantic's generic wording.
Validators raise `PydanticCustomError("gingham", ...)`; `gingham.model.errors`
turns those into `FieldError` lines verbatim.

Invariants:
- Integers are strict: ``"26"`` and ``true`` are not integers (as in Calico's
  Go JSON decoding), so a quoted number is reported rather than guessed at.
- Every value serialises (``mode="json"``) to the text a user would write, and
  validating that text gives back an equal value (documents round-trip).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

from gingham.selector import parse_selector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

MAX_AS_NUMBER = 4294967295


def invalid(message: str, path: str | None = None) -> PydanticCustomError:
    """An error whose message is shown to the user as is.

    `path` (camelCase, from the document root, e.g. ``spec.asNumber``) replaces
    the location pydantic would report; model-level checks use it to point at
    the field they are about.
    """
    # Braces would be taken as pydantic template fields: pass the text as context.
    context: dict[str, str] = {"message": message}
    if path is not None:
        context["path"] = path
    return PydanticCustomError("gingham", "{message}", context)


def shown(value: Any) -> str:
    """How a user's value appears in a message: strings quoted, others as YAML-ish."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _expect_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"expected {what}, got {shown(value)}")
    return value.strip()


def int_range(low: int, high: int) -> Callable[[Any], int]:
    """A plain validator for an int limited to low..high (inclusive)."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"expected an integer, got {shown(value)}")
        if not low <= value <= high:
            raise invalid(f"{value} is outside {low}..{high}")
        return value

    return check


ASNumber = Annotated[int, PlainValidator(int_range(1, MAX_AS_NUMBER))]
Port = Annotated[int, PlainValidator(int_range(1, 65535))]


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"expected true or false, got {shown(value)}")
    return value


Bool = Annotated[bool, PlainValidator(_strict_bool)]


def _plain_str(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"expected a string, got {shown(value)}")
    return value


Text = Annotated[str, PlainValidator(_plain_str)]


# Documents (JSON mode) carry addresses as text; Python-mode dumps keep the objects.
AS_TEXT = PlainSerializer(str, return_type=str, when_used="json")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _network(value: Any) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    text = _expect_str(value, "a CIDR such as 10.0.0.0/16")
    if "/" not in text and _is_ip(text):
        raise invalid(f'"{text}" is not a CIDR: give a prefix length, e.g. {text}/16')
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise invalid(f'"{text}" is not a valid CIDR (expected e.g. 10.0.0.0/16)') from None
    raise invalid(f"{text} is not a network address (it has host bits set): did you mean {loose}?")


CIDR = Annotated[IPNetwork, PlainValidator(_network), AS_TEXT]


def _interface(value: Any) -> IPInterface:
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value
    text = _expect_str(value, "an address with prefix length such as 10.0.0.1/24")
    if "/" not in text and _is_ip(text):
        raise invalid(f'"{text}" has no prefix length: write it as e.g. {text}/24')
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise invalid(f'"{text}" is not an address with prefix length (e.g. 10.0.0.1/24)') from None


def _v4_interface(value: Any) -> ipaddress.IPv4Interface:
    result = _interface(value)
    if not isinstance(result, ipaddress.IPv4Interface):
        raise invalid(f"{result} is not an IPv4 address")
    return result


def _v6_interface(value: Any) -> ipaddress.IPv6Interface:
    result = _interface(value)
    if not isinstance(result, ipaddress.IPv6Interface):
        raise invalid(f"{result} is not an IPv6 address")
    return result


IPv4Interface = Annotated[
    ipaddress.IPv4Interface,
    PlainValidator(_v4_interface),
    AS_TEXT,
]
IPv6Interface = Annotated[
    ipaddress.IPv6Interface,
    PlainValidator(_v6_interface),
    AS_TEXT,
]


def _v4_address(value: Any) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    text = _expect_str(value, "an IPv4 address")
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise invalid(f'"{text}" is not an IPv4 address') from None


IPv4Address = Annotated[
    ipaddress.IPv4Address,
    PlainValidator(_v4_address),
    AS_TEXT,
]


def _ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    text = _expect_str(value, "an IP address")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise invalid(f'"{text}" is not an IP address') from None


IPAddress = Annotated[
    ipaddress.IPv4Address | ipaddress.IPv6Address,
    PlainValidator(_ip_address),
    AS_TEXT,
]

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _mac(value: Any) -> str:
    text = _expect_str(value, "a MAC address").lower().replace("-", ":")
    if not _MAC.fullmatch(text):
        raise invalid(f'"{value}" is not a MAC address (expected e.g. 66:1f:0a:00:00:01)')
    return text


MACAddress = Annotated[str, PlainValidator(_mac)]


def _selector_text(value: Any) -> str:
    """A selector kept as the user wrote it (stripped), checked to parse."""
    text = _expect_str(value, "a selector string")
    try:
        parse_selector(text)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return text


SelectorText = Annotated[str, PlainValidator(_selector_text)]

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
DNS_SUBDOMAIN_RULE = (
    "must be a DNS-1123 subdomain: at most 253 characters of lower-case letters, digits,"
    " '-' and '.', starting and ending with a letter or digit"
)


def dns_subdomain_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 subdomain, or None if it is one."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return f'"{name}" {DNS_SUBDOMAIN_RULE}'
    return None


def _dns_name(value: Any) -> str:
    text = _expect_str(value, "a name")
    problem = dns_subdomain_problem(text)
    if problem:
        raise invalid(problem)
    return text


DNSName = Annotated[str, PlainValidator(_dns_name)]

# Go-style durations ("90s", "1m30s", "2h"), whole seconds only: BGP timers are
# carried in seconds on the wire, so a fraction would be silently rounded.
_DURATION_PART = re.compile(r"(\d+)(h|m|s)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def _duration(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise invalid(
                f'"{value}" is not a duration: write whole seconds like "90s", "1m30s"'
                " or a number of seconds"
            )
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise invalid(f'expected a duration such as "90s", got {shown(value)}')
    if not 0 <= seconds <= 65535:
        raise invalid(f"{seconds}s is outside 0s..65535s")
    return seconds


Duration = Annotated[
    int,
    PlainValidator(_duration),
    PlainSerializer(lambda s: f"{s}s", return_type=str, when_used="json"),
]


_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def label_problem(key: str, value: str) -> str | None:
    """Why a label is malformed (Kubernetes rules), or None if it is fine."""
    prefix, slash, name = key.rpartition("/")
    if slash and dns_subdomain_problem(prefix):
        return f'label key "{key}": the prefix before "/" must be a DNS subdomain'
    if not _LABEL_NAME.fullmatch(name):
        return (
            f'label key "{key}": the name must be 1-63 letters, digits, "-", "_" or ".",'
            " starting and ending with a letter or digit"
        )
    if value and not _LABEL_NAME.fullmatch(value):
        return (
            f'label "{key}": value "{value}" must be empty or 1-63 letters, digits,'
            ' "-", "_" or ".", starting and ending with a letter or digit'
        )
    return None
