"""The libcni driver (libcni_driver/main.go): built offline at test time, run per operation.

libcni is the only runtime-side code here that sends CHECK (containerd and
podman never do), and it replays the cached ADD result as prevResult for CHECK
and DEL exactly as kubelet-era runtimes do. Built with Debian's golang-go and
golang-github-appc-cni-dev in GOPATH mode (no network), into a cache dir keyed
by the source's hash, so a session builds it once (~1 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("libcni_driver")
GOCODE = "/usr/share/gocode"


def build_driver(cache_dir: Path) -> Path:
    digest = hashlib.sha256((SOURCE / "main.go").read_bytes()).hexdigest()[:12]
    binary = cache_dir / f"libcni-driver-{digest}"
    if binary.exists():
        return binary
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/lib/go/bin:/usr/bin:/bin",
        "HOME": str(cache_dir),
        "GO111MODULE": "off",
        "GOPATH": f"{cache_dir / 'gopath'}:{GOCODE}",
        "GOCACHE": str(cache_dir / "gocache"),
        "GOFLAGS": "",
    }
    tmp = binary.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(
        ["go", "build", "-o", str(tmp), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building the libcni driver failed: {proc.stderr[-2000:]}")
    os.replace(tmp, binary)
    return binary


@dataclass
class DriverRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        return json.loads(self.stdout)


class LibcniDriver:
    """Runs the driver inside a node netns with a given plugin dir and result cache."""

    def __init__(
        self, binary: Path, node_netns: str, plugin_dirs: list[Path], cache_dir: Path
    ) -> None:
        self.binary, self.node_netns = binary, node_netns
        # portmap 1.1.1's CHECK also looks for an IPv6 DNAT chain it never made for an
        # IPv4-only pod whenever ip6tables exists (fixed upstream later): give the
        # chain a PATH holding iptables but not ip6tables.
        tools = cache_dir / "path"
        tools.mkdir(parents=True, exist_ok=True)
        for tool in ("iptables", "iptables-save", "iptables-restore"):
            if not (tools / tool).exists():
                (tools / tool).symlink_to(f"/usr/sbin/{tool}")
        self.env = {
            "PATH": str(tools),
            "CNI_PATH": ":".join(str(d) for d in plugin_dirs),
            "CNI_CACHE_DIR": str(cache_dir),
        }

    def run(  # noqa: PLR0917 - mirrors the driver's command line
        self,
        op: str,
        conflist: Path,
        container_id: str,
        netns: str,
        ifname: str = "eth0",
        caps: dict[str, Any] | None = None,
    ) -> DriverRun:
        argv = [
            "/usr/bin/nsenter",
            f"--net={self.node_netns}",
            str(self.binary),
            op,
            str(conflist),
            container_id,
            netns,
            ifname,
        ]
        if caps:
            argv.append(json.dumps(caps))
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, check=False, timeout=120
        )
        return DriverRun(proc.returncode, proc.stdout, proc.stderr)
