"""Network namespaces, veth pairs and bridges for real-kernel tests, with cleanup.

Everything a test makes here is uniquely named (`tests/support/names.py`) and
removed on exit even when the test fails: `Netns` is a context manager, and
`Topology` (also the `topology` pytest fixture in tests that import it) keeps
an ExitStack that tears down in reverse order. Deleting a namespace removes
every link inside it; processes a test started inside one are killed by PID
(only PIDs that live in that namespace, which the test created).

Typical use::

    with Topology() as topo:
        host = topo.netns("h")
        pod = topo.netns("p")
        topo.veth(host, "gh-x", pod, "eth0")
        host.ip("addr add 192.0.2.1/24 dev gh-x")
        assert pod.ping("192.0.2.1")
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from felix.netns import run_in_netns
from tests.support.names import unique_prefix

T = TypeVar("T")


def sh(cmd: str | list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    args = shlex.split(cmd) if isinstance(cmd, str) else cmd
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class Netns:
    name: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    @classmethod
    def create(cls, tag: str = "ns") -> Netns:
        ns = cls(unique_prefix(tag))
        sh(["ip", "netns", "add", ns.name])
        ns.ip("link set lo up")
        return ns

    def ip(self, args: str, check: bool = True) -> str:
        return sh(["ip", "-n", self.name, *shlex.split(args)], check=check).stdout

    def exec(self, cmd: str | list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        args = shlex.split(cmd) if isinstance(cmd, str) else cmd
        return sh(["ip", "netns", "exec", self.name, *args], check=check)

    def run(self, fn: Callable[[], T]) -> T:
        """Run a Python function inside this namespace (on a setns'd thread)."""
        return run_in_netns(self.path, fn)

    def ping(self, address: str, count: int = 1, timeout: float = 2.0) -> bool:
        proc = self.exec(
            ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address], check=False
        )
        return proc.returncode == 0

    def sysctl(self, key: str) -> str:
        return self.exec(["sysctl", "-n", key]).stdout.strip()

    def routes(self, args: str = "") -> str:
        return self.ip(f"-4 route show {args}")

    def link_stats(self, dev: str) -> dict[str, int]:
        """rx/tx packet counters of `dev` (to prove traffic took a path)."""
        data = json.loads(self.ip(f"-s -j link show dev {dev}"))[0]["stats64"]
        return {
            "rx_packets": int(data["rx"]["packets"]),
            "tx_packets": int(data["tx"]["packets"]),
        }

    def pids(self) -> list[int]:
        out = sh(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]

    def destroy(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        sh(["ip", "netns", "del", self.name], check=False)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@dataclass
class Topology:
    """A set of namespaces and links with guaranteed, reverse-order teardown."""

    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    namespaces: list[Netns] = field(default_factory=list)

    def netns(self, tag: str = "ns") -> Netns:
        ns = Netns.create(tag)
        self.stack.callback(ns.destroy)
        self.namespaces.append(ns)
        return ns

    def veth(self, a: Netns, a_name: str, b: Netns, b_name: str, up: bool = True) -> None:
        """A veth pair with one end in each namespace."""
        a.ip(f"link add {a_name} type veth peer name {b_name} netns {b.name}")
        self.stack.callback(lambda: a.ip(f"link del {a_name}", check=False))
        if up:
            a.ip(f"link set {a_name} up")
            b.ip(f"link set {b_name} up")

    def bridge(self, ns: Netns, name: str = "br0") -> str:
        ns.ip(f"link add {name} type bridge")
        ns.ip(f"link set {name} up")
        return name

    def attach(self, bridge_ns: Netns, bridge: str, other: Netns, other_name: str) -> str:
        """Connect `other` to `bridge` with a veth; returns the bridge-side port name."""
        port = f"p{len(self.namespaces)}{other.name[-6:]}"[:15]
        self.veth(bridge_ns, port, other, other_name)
        bridge_ns.ip(f"link set {port} master {bridge}")
        return port

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def topology() -> Iterator[Topology]:
    with Topology() as topo:
        yield topo
