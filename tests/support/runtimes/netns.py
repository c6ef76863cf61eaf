"""Network namespaces a runtime test makes (the "node" a runtime runs in), removed after."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.names import unique_prefix


def run(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


@contextmanager
def node_netns(tag: str = "nd") -> Iterator[str]:
    """A fresh netns with lo up; yields its path (/var/run/netns/<unique>)."""
    name = unique_prefix(tag)
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        yield f"/var/run/netns/{name}"
    finally:
        run("ip", "netns", "del", name, check=False)


def in_netns(netns: str, *argv: str, check: bool = True) -> str:
    return run("nsenter", f"--net={netns}", *argv, check=check)


def in_pid_netns(pid: int, *argv: str, check: bool = True) -> str:
    return run("nsenter", "-t", str(pid), "-n", *argv, check=check)


def ping(pid_or_netns: int | str, address: str) -> bool:
    """One ping from inside a pod (by PID) or a netns path; True if answered."""
    cmd = ["ping", "-c", "1", "-W", "2", address]
    if isinstance(pid_or_netns, int):
        argv = ["nsenter", "-t", str(pid_or_netns), "-n", *cmd]
    else:
        argv = ["nsenter", f"--net={pid_or_netns}", *cmd]
    return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode == 0


def ipv4_addresses(pid_or_netns: int | str, ifname: str = "eth0") -> list[str]:
    import json

    argv = ["ip", "-j", "-4", "addr", "show", "dev", ifname]
    if isinstance(pid_or_netns, int):
        out = in_pid_netns(pid_or_netns, *argv, check=False)
    else:
        out = in_netns(pid_or_netns, *argv, check=False)
    # No such device (e.g. felix removed the veth): no addresses.
    return [a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])]


def links(netns: str) -> list[str]:
    import json

    return [link["ifname"] for link in json.loads(in_netns(netns, "ip", "-j", "link", "show"))]
