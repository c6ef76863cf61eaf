"""The node's BGP address, auto-detected (Calico's ``IP_AUTODETECTION_METHOD``).

Methods (the text of ``GINGHAM_IP_AUTODETECTION_METHOD``):
- ``first-found`` (also the empty string): the first global IPv4 address on the
  interface that holds the default route;
- ``interface=REGEX``: the first global IPv4 address on the first interface
  (in kernel order) whose name matches REGEX in full;
- ``can-reach=ADDRESS``: the local address the kernel would use to reach
  ADDRESS, found by connecting a UDP socket — a route lookup, nothing is sent.

Results are interfaces (address/prefix), as our Node's ``bgp.ipv4Address``
holds them. `parse_method` is pure; `detect` reads the current network
namespace with ``ip -j`` (iproute2's JSON output, so no netlink library is
needed in this path). Failures are `DetectionError` saying what was looked for.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

METHODS = "first-found, interface=REGEX or can-reach=ADDRESS"


class DetectionError(Exception):
    """No address could be detected by the chosen method."""


@dataclass(frozen=True)
class Method:
    name: str  # "first-found", "interface" or "can-reach"
    argument: str = ""


def parse_method(text: str) -> Method:
    text = text.strip()
    if text in ("", "first-found"):
        return Method("first-found")
    name, sep, argument = text.partition("=")
    if not sep or not argument:
        raise ValueError(f'IP autodetection method "{text}" is not one of {METHODS}')
    if name == "interface":
        try:
            re.compile(argument)
        except re.error as exc:
            raise ValueError(f'interface="{argument}": not a regular expression: {exc}') from None
        return Method("interface", argument)
    if name == "can-reach":
        try:
            ipaddress.IPv4Address(argument)
        except ValueError:
            raise ValueError(f'can-reach="{argument}": not an IPv4 address') from None
        return Method("can-reach", argument)
    raise ValueError(f'IP autodetection method "{name}" is unknown (known: {METHODS})')


def _ip_json(*args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["ip", "-j", *args], capture_output=True, text=True, check=False, timeout=10
    )
    if result.returncode != 0:
        raise DetectionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    parsed: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return parsed


def _addresses() -> list[tuple[str, ipaddress.IPv4Interface]]:
    """(interface, address) of every global IPv4 address, kernel order."""
    found = []
    for link in _ip_json("-4", "addr", "show"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and info.get("scope") == "global":
                address = ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")
                found.append((str(link["ifname"]), address))
    return found


def detect(method: Method) -> ipaddress.IPv4Interface:
    addresses = _addresses()
    if method.name == "first-found":
        routes = [r for r in _ip_json("-4", "route", "show", "default") if r.get("dev")]
        if not routes:
            raise DetectionError("no IPv4 default route: set interface= or can-reach=")
        device = routes[0]["dev"]
        for name, address in addresses:
            if name == device:
                return address
        raise DetectionError(f"{device} holds the default route but has no global IPv4 address")
    if method.name == "interface":
        pattern = re.compile(method.argument)
        for name, address in addresses:
            if pattern.fullmatch(name):
                return address
        raise DetectionError(f'no interface matching "{method.argument}" has an IPv4 address')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((method.argument, 9))  # UDP connect: a route lookup only
        except OSError as exc:
            raise DetectionError(f"{method.argument} is not reachable: {exc.strerror}") from None
        local = ipaddress.IPv4Address(probe.getsockname()[0])
    for _, address in addresses:
        if address.ip == local:
            return address
    raise DetectionError(f"{local} (the source for {method.argument}) is on no interface")
