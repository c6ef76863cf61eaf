"""A private podman 4.3 (CNI backend) for tests, and the busybox images built with it.

Everything podman keeps lives under one temp directory: `CONTAINERS_CONF` and
`CONTAINERS_STORAGE_CONF` point at files written here (the settings podman
4.3 needs on these machines: runc — crun fails on their hybrid cgroup layout —
cgroupfs, file events, raised ulimits, CNI backend with our plugin and conf
dirs). The host's /etc/containers is never read for
storage or networks, and `close()` removes every container and the storage.

podman runs inside a test-made network namespace via `nsenter --net` (the mount
namespace stays the host's, so the pod netns bind mounts podman makes under
its tmp dir are visible to felix and to the test).

Also builds the one image both runtimes use: a busybox rootfs (busybox-static)
imported with `podman import` and, for containerd, exported with
`podman save --format oci-archive`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.support.leaks import run_marks

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/gingham-test-busybox:1"
_APPLETS = ("sh", "sleep", "ip", "ping", "cat", "ls", "hostname", "ifconfig", "route", "true")


def busybox_rootfs_tar(dest: Path) -> Path:
    """A tar of a minimal rootfs: static busybox plus a few applet links."""
    with tarfile.open(dest, "w") as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in _APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            import io

            tar.addfile(info, io.BytesIO(data))
    return dest


class Podman:
    """podman with private config/storage; optionally inside a network namespace."""

    def __init__(
        self, root: Path, cni_bin_dir: Path, cni_conf_dir: Path, netns: str | None = None
    ) -> None:
        self.root = root
        self.netns = netns
        for d in ("graph", "run", "tmp", "volumes"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{root}/events.log"\n'
            f'tmp_dir = "{root}/tmp"\n'
            f'volume_path = "{root}/volumes"\n'
            "[network]\n"
            'network_backend = "cni"\n'
            f'cni_plugin_dirs = ["{cni_bin_dir}"]\n'
            f'network_config_dir = "{cni_conf_dir}"\n'
        )
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\nrunroot = "{root}/run"\ngraphroot = "{root}/graph"\n'
        )
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(root),
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
            **run_marks(),  # conmon daemonises: the suite's leak check must still know it
        }
        (root / "registries.conf").write_text("unqualified-search-registries = []\n")

    def argv(self, *args: str) -> list[str]:
        base = ["podman", "--root", str(self.root / "graph"), "--runroot", str(self.root / "run")]
        if self.netns:
            return ["nsenter", f"--net={self.netns}", *base, *args]
        return [*base, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        proc = subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
            )
        return proc.stdout.strip()

    def import_busybox(self) -> str:
        tar = busybox_rootfs_tar(self.root / "rootfs.tar")
        self.run("import", "--change", 'CMD ["/bin/sleep", "100000"]', str(tar), IMAGE)
        return IMAGE

    def pid(self, container: str) -> int:
        return int(self.run("inspect", "--format", "{{.State.Pid}}", container))

    def inspect(self, container: str) -> dict[str, object]:
        data: list[dict[str, object]] = json.loads(self.run("inspect", container))
        return data[0]

    def close(self) -> None:
        """Remove every container and the storage (unmounting overlay layers first)."""
        self.run("rm", "--all", "--force", "--time", "0", check=False)
        for mount in reversed(_mounts_under(self.root)):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(prefix)]


def build_sandbox_oci_archive(work: Path, dest: Path) -> Path:
    """busybox rootfs -> podman import -> podman save --format oci-archive (cached at dest)."""
    if dest.exists():
        return dest
    podman = Podman(work / "pb", Path("/usr/lib/cni"), work / "net.d")
    try:
        podman.import_busybox()
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        podman.run("save", "--format", "oci-archive", "-o", str(tmp), IMAGE)
        os.replace(tmp, dest)
    finally:
        podman.close()
    return dest
