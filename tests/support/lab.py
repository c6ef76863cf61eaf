"""Driving `gingham lab` from tests the way a person does: the CLI, in a private lab root.

`LabRun` names a lab uniquely (``e<6 hex>``, so its namespaces never collide
with another test's), points ``$GINGHAM_LAB_ROOT`` at a temporary directory,
and offers the few things every lab test does: `up`, `status`, `ping`,
`wait_full_matrix` (polls ``lab ping`` with a deadline: a lab that has just
come up on a loaded machine may still be programming routes), `route` (one
kernel route of a node, as ``ip -j route get`` sees it) and
`down_leaves_nothing` (``lab down``, then no namespace, process, host link or
file of the lab remains, and a second ``lab down`` is harmless).

`lab_run()` is a context manager that removes the lab even when the test
failed — by ``lab down`` first, then (only if that failed) by killing what
runs in the namespaces with the lab's own prefix and deleting them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.names import record_prefix
from tests.support.poll import wait_for

GINGHAM = str(Path(sys.executable).parent / "gingham")


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    return {link["ifname"] for link in json.loads(out.stdout or "[]")}


def pids_in(namespaces: set[str]) -> set[int]:
    pids: set[int] = set()
    for ns in namespaces:
        out = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
        )
        pids |= {int(p) for p in out.stdout.split()}
    return pids


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@dataclass
class LabRun:
    root: Path
    name: str = field(default_factory=lambda: f"e{secrets.token_hex(3)}")

    def __post_init__(self) -> None:
        record_prefix(f"{self.name}-")  # the lab's namespaces: checked at the end of the run

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GINGHAM_LAB_ROOT": str(self.root)}

    @property
    def directory(self) -> Path:
        return self.root / self.name

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([GINGHAM, "lab", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip

    def namespaces(self) -> set[str]:
        return {ns for ns in netns_names() if ns.startswith(f"{self.name}-")}

    def up(self, *args: str, wait: float = 240) -> subprocess.CompletedProcess[str]:
        links_before = host_links()
        # Building before the wait (namespaces, node start, pods) took 4 minutes at load 200.
        done = self.cli("up", "--name", self.name, "--wait", str(wait), *args, timeout=wait + 480)
        assert done.returncode == 0, done.stderr[-4000:]
        # The lab puts every link inside its own namespaces, none in the host's. (Other
        # engineers' tests add host links meanwhile: only names the lab uses count.)
        made = {n for n in host_links() - links_before if _lab_like(n)}
        assert not made, f"lab up left links in the host namespace: {made}"
        return done

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--name", self.name, "-o", "json")
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def ping(self) -> tuple[int, set[tuple[str, str]], str]:
        # 5 s per ping: at load 150 (seen here) a reply can take over a second; a pair
        # with no route never answers however long we wait, so this hides no failure.
        done = self.cli("ping", "--name", self.name, "--timeout", "5")
        failed = {tuple(line[5:].split(" → ")) for line in done.stdout.splitlines()
                  if line.startswith("FAIL ")}  # fmt: skip
        return done.returncode, failed, done.stdout  # type: ignore[return-value]

    def wait_full_matrix(self, timeout: float = 90) -> str:
        """Poll `lab ping` until every pod reaches every other; the last matrix."""
        last: list[str] = [""]

        def full() -> bool:
            code, failed, out = self.ping()
            last[0] = out
            return code == 0 and not failed

        try:
            wait_for(full, timeout=timeout, interval=1.0, what="the full ping matrix")
        except AssertionError:
            raise AssertionError(f"not every pair answers:\n{last[0]}") from None
        return last[0]

    def route(self, node_netns: str, address: str) -> dict[str, Any]:
        out = subprocess.run(["ip", "-n", node_netns, "-j", "route", "get", address],
                             capture_output=True, text=True, check=True)  # fmt: skip
        routes: list[dict[str, Any]] = json.loads(out.stdout)
        return routes[0]

    def wait_route(
        self, node_netns: str, address: str, dev: str, gateway: str | None = None,
        timeout: float = 90,
    ) -> dict[str, Any]:  # fmt: skip
        """Poll until the kernel's route to `address` in `node_netns` leaves by `dev`
        (and `gateway`). A full ping matrix does not mean every block route is in:
        a rack's nodes reach the other rack over their default route via the ToR
        until BGP brings the block's own route."""
        last: list[dict[str, Any]] = [{}]

        def right() -> bool:
            last[0] = self.route(node_netns, address)
            return last[0].get("dev") == dev and (
                gateway is None or last[0].get("gateway") == gateway
            )

        try:
            wait_for(right, timeout=timeout, interval=0.5, what=f"{address} via {dev}")
        except AssertionError:
            table = subprocess.run(["ip", "-n", node_netns, "route"],
                                   capture_output=True, text=True, check=False).stdout  # fmt: skip
            raise AssertionError(
                f"{node_netns}: route to {address} is {last[0]}, wanted dev {dev}"
                f"{f' via {gateway}' if gateway else ''}; table:\n{table}"
            ) from None
        return last[0]

    def down_leaves_nothing(self) -> None:
        ours = self.namespaces()
        processes = pids_in(ours)
        state = json.loads((self.directory / "state.json").read_text())
        processes |= {p["pid"] for p in state["processes"]}
        done = self.cli("down", "--name", self.name)
        assert done.returncode == 0, done.stderr
        assert not self.namespaces()
        assert not [pid for pid in processes if alive(pid)]
        assert not self.directory.exists()
        again = self.cli("down", "--name", self.name)
        assert again.returncode == 0 and "nothing to remove" in again.stderr

    def force_remove(self) -> None:
        self.cli("down", "--name", self.name)
        for ns in self.namespaces():  # only if `lab down` itself failed: our own prefix
            for pid in pids_in({ns}):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _lab_like(name: str) -> bool:
    return name in ("br0", "eth0", "up0") or (
        len(name) > 1 and name[0] in "nt" and name[1:].isdigit()
    )


@contextlib.contextmanager
def lab_run(root: Path) -> Iterator[LabRun]:
    run = LabRun(root)
    try:
        yield run
    finally:
        run.force_remove()
