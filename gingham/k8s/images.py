"""The container images a Kubernetes cluster on this machine runs, built locally.

No registry and no docker daemon are needed: podman builds and saves every
image, and each node's containerd imports the saved archives
(`ctr -n k8s.io images import`). Three images:

- ``gingham-node:dev`` (the name `manifests/gingham-node.yaml` uses, stored as
  ``docker.io/library/gingham-node:dev`` — the name containerd gives it — so the
  DaemonSet's ``IfNotPresent`` finds it without a pull): `manifests/Dockerfile`
  built with ``podman build``. Its ``FROM debian:bookworm-slim`` is a Debian
  bookworm minbase root made here with debootstrap from the host's own apt
  mirror and imported under that name; the build's ``RUN`` steps reach the
  Debian mirror and PyPI from the host's network namespace.
- `PAUSE_IMAGE`: the pod sandbox image (containerd's ``sandbox_image``): static
  busybox whose PID 1 sleeps until it is told to stop.
- `TEST_POD_IMAGE`: static busybox with ``ping``, ``sleep``, ``ip`` for test pods.

Every archive lives in `CACHE_DIR` under a name carrying the digest of its
inputs (the Dockerfile and every source file it copies; busybox itself), so an
archive is rebuilt only when an input changes. podman keeps its storage in a
directory of its own under the cache, never the host's.

Invariants: an archive in the cache is complete (written to a temporary name,
then renamed); building never touches the host's podman storage or
/etc/containers; building is serialised by a lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(os.environ.get("GINGHAM_IMAGE_CACHE", "/var/cache/gingham/images"))
NODE_IMAGE = "docker.io/library/gingham-node:dev"
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
PAUSE_IMAGE = "localhost/gingham-pause:1"
TEST_POD_IMAGE = "localhost/gingham-busybox:1"
BUSYBOX = Path("/bin/busybox")
SUITE = "bookworm"


def sleeper_pod(name: str, node: str, labels: dict[str, str]) -> dict[str, object]:
    """A Pod of the test-pod image pinned to `node`: it sleeps, so it can be pinged
    and exec'd into (the lab's pods and bench/k8s_pods.py's)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": TEST_POD_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sleep", "infinity"],
                }
            ],
        },
    }


# The sandbox's PID 1: sleeps until SIGTERM/SIGINT, as registry.k8s.io/pause does.
_PAUSE_SCRIPT = "#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 3600 & wait $!; done\n"
_APPLETS = (
    "sh",
    "sleep",
    "ip",
    "ping",
    "cat",
    "ls",
    "hostname",
    "ifconfig",
    "route",
    "true",
    "wget",
    "nc",
    "date",
    "echo",
)
# What the node image's build copies from the repository (manifests/Dockerfile).
_NODE_INPUTS = (
    "manifests/Dockerfile",
    "pyproject.toml",
    "gingham",
    "felix",
    "bird_agent",
    "route_reflector",
    "cni",
)

Progress = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step and why."""


@dataclass(frozen=True)
class ImageArchives:
    """The saved archives a node's containerd imports."""

    node: Path
    pause: Path
    test_pod: Path

    def all(self) -> tuple[Path, ...]:
        return (self.node, self.pause, self.test_pod)


def build_all(repo: Path, progress: Progress = lambda _: None) -> ImageArchives:
    """Every image, from the cache when its inputs are unchanged."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with _lock(CACHE_DIR / ".build.lock"):
        pause = _busybox_image(PAUSE_IMAGE, ["/pause"], progress)
        test_pod = _busybox_image(TEST_POD_IMAGE, ["/bin/sleep", "infinity"], progress)
        node = _node_image(repo, progress)
    return ImageArchives(node=node, pause=pause, test_pod=test_pod)


def _digest_files(paths: list[Path], root: Path, extra: bytes = b"") -> str:
    h = hashlib.sha256(extra)
    for path in sorted(paths):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def node_image_inputs(repo: Path) -> list[Path]:
    """The files manifests/Dockerfile copies that change what the image does
    (compiled caches aside; README.md is copied only because pip reads it)."""
    files: list[Path] = []
    for name in _NODE_INPUTS:
        path = repo / name
        if path.is_file():
            files.append(path)
            continue
        for found in path.rglob("*"):
            if found.is_file() and "__pycache__" not in found.parts and found.suffix != ".pyc":
                files.append(found)
    return files


def _archive_name(image: str, digest: str) -> str:
    base = image.rsplit("/", 1)[-1].replace(":", "-")
    return f"{base}-{digest}.oci.tar"


# --- busybox images ---------------------------------------------------------------


def _busybox_rootfs(pause: bool) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in _APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        files = {
            "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\n", 0o644),
            "etc/group": ("root:x:0:\n", 0o644),
        }
        if pause:
            files["pause"] = (_PAUSE_SCRIPT, 0o755)
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _busybox_image(image: str, command: list[str], progress: Progress) -> Path:
    rootfs = _busybox_rootfs(pause=image == PAUSE_IMAGE)
    digest = hashlib.sha256(rootfs + repr(command).encode() + image.encode()).hexdigest()[:16]
    dest = CACHE_DIR / _archive_name(image, digest)
    if dest.exists():
        return dest
    progress(f"building {image} (static busybox)")
    with _podman() as podman:
        tar = podman.root / "rootfs.tar"
        tar.write_bytes(rootfs)
        cmd = ", ".join(f'"{part}"' for part in command)
        podman.run("import", "--change", f"CMD [{cmd}]", str(tar), image)
        _save(podman, image, dest)
    return dest


# --- the node image ---------------------------------------------------------------


def _node_image(repo: Path, progress: Progress) -> Path:
    digest = _digest_files(node_image_inputs(repo), repo)
    dest = CACHE_DIR / _archive_name(NODE_IMAGE, digest)
    if dest.exists():
        return dest
    base = _base_rootfs(progress)
    started = time.monotonic()
    progress(f"building {NODE_IMAGE} from manifests/Dockerfile (podman build)")
    with _podman() as podman:
        podman.run("import", str(base), BASE_IMAGE, timeout=600)
        podman.run(
            "build",
            "--pull=never",
            "--network=host",
            "--layers=false",
            # pip in the build trusts what the host's pip trusts (a proxy's CA).
            "--volume",
            f"{_host_ca_bundle()}:/run/host-ca.crt:ro",
            "--build-arg",
            "PIP_CERT=/run/host-ca.crt",
            "-f",
            str(repo / "manifests" / "Dockerfile"),
            "-t",
            NODE_IMAGE,
            str(repo),
            timeout=1800,
        )
        _save(podman, NODE_IMAGE, dest)
    progress(f"built {NODE_IMAGE} in {time.monotonic() - started:.0f} s")
    for old in CACHE_DIR.glob(_archive_name(NODE_IMAGE, "*")):
        if old != dest:
            old.unlink(missing_ok=True)
    return dest


def _host_ca_bundle() -> str:
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return value
    return "/etc/ssl/certs/ca-certificates.crt"


def apt_mirror() -> str:
    """The Debian mirror the host's apt uses (its deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    sources += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "debian" in words[-2:][0]:
                return words[1]
    raise ImageBuildError(
        "no Debian mirror found in /etc/apt/sources.list(.d): debootstrap needs one"
    )


def _base_rootfs(progress: Progress) -> Path:
    """A tar of a Debian minbase root (debootstrap), made once."""
    dest = CACHE_DIR / f"debian-{SUITE}-minbase.tar"
    if dest.exists():
        return dest
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (make install / install-system-deps)")
    work = CACHE_DIR / f".debootstrap.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    mirror = apt_mirror()
    progress(f"debootstrap --variant=minbase {SUITE} from {mirror}")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(work / "root"), mirror],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if proc.returncode != 0:
            raise ImageBuildError(
                f"debootstrap {SUITE} failed ({proc.returncode}): {proc.stdout[-1500:]}"
                f"{proc.stderr[-1500:]}"
            )
        # The image has no apt caches and no host-specific files.
        shutil.rmtree(work / "root" / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        (work / "root" / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)
        tmp = dest.with_suffix(".tmp")
        subprocess.run(
            ["tar", "-C", str(work / "root"), "--numeric-owner", "-cf", str(tmp), "."],
            check=True,
            capture_output=True,
        )
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"debootstrap done in {time.monotonic() - started:.0f} s")
    return dest


# --- podman -----------------------------------------------------------------------


class _Podman:
    """podman with storage and configuration of its own under the cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for d in ("graph", "run", "tmp"):
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
            "[network]\n"
            'network_backend = "cni"\n'
        )
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\nrunroot = "{root}/run"\ngraphroot = "{root}/graph"\n'
        )
        (root / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.env = {
            **os.environ,
            "HOME": str(root),
            "TMPDIR": str(root / "tmp"),
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
        }

    def _base(self) -> list[str]:
        return ["podman", "--root", str(self.root / "graph"), "--runroot", str(self.root / "run")]

    def run(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run(
            [*self._base(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            out = (proc.stdout[-2000:] + proc.stderr[-2000:]).strip()
            raise ImageBuildError(f"podman {args[0]} failed ({proc.returncode}): {out}")
        return proc.stdout.strip()

    def close(self) -> None:
        subprocess.run(
            [*self._base(), "system", "reset", "--force"],
            env=self.env,
            capture_output=True,
            check=False,
            timeout=120,
        )
        prefix = str(self.root) + "/"
        with open("/proc/self/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def _podman() -> Iterator[_Podman]:
    podman = _Podman(CACHE_DIR / f".podman.{os.getpid()}")
    try:
        yield podman
    finally:
        podman.close()


def _save(podman: _Podman, image: str, dest: Path) -> None:
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    podman.run("save", "--format", "oci-archive", "-o", str(tmp), image, timeout=600)
    os.replace(tmp, dest)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
