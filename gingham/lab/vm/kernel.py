"""The guest kernel: Debian's 6.1 `linux-image` package, fetched with apt, never installed.

`prepare_kernel()` finds the newest `linux-image-6.1.0-<n>-amd64` apt knows,
downloads the .deb (`apt-get download`), unpacks it with `dpkg -x` and keeps
only what a guest needs — `vmlinuz` and the modules in `GUEST_MODULES` — in
`<cache>/<package>_<version>/`. The cache is reused across runs, keyed by
package and version, and filled atomically (a half-unpacked tree is never
mistaken for a ready one: the directory appears by rename when complete).

Only apt is reachable from this machine, so apt is the only source.
`KernelUnavailable` says why a kernel cannot be had (no apt candidate,
download failed), so callers can skip or report instead of crashing.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("GINGHAM_VM_CACHE", "/var/cache/gingham/vm"))
PACKAGE_RE = re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64$")

# Order matters: busybox insmod does no dependency resolution.
GUEST_MODULES = (
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net", "tunnel4", "ip_tunnel", "ipip", "veth",
    "overlay", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p",
)  # fmt: skip


class KernelUnavailable(RuntimeError):
    """No guest kernel can be prepared here; the message says why."""


@dataclass(frozen=True)
class Kernel:
    package: str
    version: str  # the Debian package version, e.g. 6.1.192-2
    vmlinuz: Path
    modules: dict[str, Path]  # module name -> uncompressed .ko, in GUEST_MODULES order

    @property
    def key(self) -> str:
        return f"{self.package}_{self.version}"


def _run(args: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise KernelUnavailable(f"{args[0]} is not installed") from exc
    if proc.returncode != 0:
        raise KernelUnavailable(f"{' '.join(args)} failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def newest_kernel_package() -> tuple[str, str]:
    """(package, version) of the newest linux-image-6.1.0-N-amd64 apt can fetch."""
    override = os.environ.get("GINGHAM_VM_KERNEL_PACKAGE")
    if override:
        names = [override]
    else:
        out = _run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"])
        found = [line.split(" ", 1)[0] for line in out.splitlines()]
        names = sorted(
            (n for n in found if PACKAGE_RE.match(n)),
            key=lambda n: int(PACKAGE_RE.match(n).group(1)),  # type: ignore[union-attr]
        )
        if not names:
            raise KernelUnavailable("apt knows no linux-image-6.1.0-<n>-amd64 package")
    package = names[-1]
    show = _run(["apt-cache", "show", "--no-all-versions", package])
    version = re.search(r"^Version: (\S+)$", show, re.M)
    if version is None:
        raise KernelUnavailable(f"apt-cache show {package}: no Version field")
    return package, version.group(1)


def _load(tree: Path, package: str, version: str) -> Kernel:
    modules = {name: tree / "modules" / f"{name}.ko" for name in GUEST_MODULES}
    return Kernel(package, version, tree / "vmlinuz", modules)


def _decompressed(src: Path, dest: Path) -> None:
    if src.suffix == ".xz":
        dest.write_bytes(lzma.decompress(src.read_bytes()))
    elif src.suffix == ".zst":
        with dest.open("wb") as out:
            subprocess.run(["zstd", "-dc", str(src)], stdout=out, check=True)
    else:
        shutil.copyfile(src, dest)


def _unpack(deb: Path, into: Path, package: str) -> None:
    raw = into / "raw"
    _run(["dpkg", "-x", str(deb), str(raw)])
    vmlinuz = sorted((raw / "boot").glob("vmlinuz-*"))
    if not vmlinuz:
        raise KernelUnavailable(f"{package}: no /boot/vmlinuz-* in the package")
    shutil.copyfile(vmlinuz[0], into / "vmlinuz")
    found: dict[str, Path] = {}
    for path in (raw / "lib" / "modules").rglob("*.ko*"):
        name = path.name.split(".ko", 1)[0]
        if name in GUEST_MODULES:
            found[name] = path
    missing = [m for m in GUEST_MODULES if m not in found]
    if missing:
        raise KernelUnavailable(f"{package}: modules not found: {', '.join(missing)}")
    (into / "modules").mkdir()
    for name, path in found.items():
        _decompressed(path, into / "modules" / f"{name}.ko")
    shutil.rmtree(raw)


def cached_kernel(cache: Path = DEFAULT_CACHE) -> Kernel | None:
    """The newest kernel already in the cache (by ABI number), or None."""
    trees = []
    for tree in cache.glob("linux-image-6.1.0-*-amd64_*") if cache.is_dir() else []:
        package, _, version = tree.name.partition("_")
        match = PACKAGE_RE.match(package)
        if match and (tree / "vmlinuz").exists():
            trees.append((int(match.group(1)), tree, package, version))
    if not trees:
        return None
    _abi, tree, package, version = max(trees)
    return _load(tree, package, version)


def prepare_kernel(cache: Path = DEFAULT_CACHE, refresh: bool = False) -> Kernel:
    """The cached kernel for the newest package, fetching and unpacking it if needed.

    A kernel already in the cache is used without asking apt (`apt-cache search`
    takes a minute on a loaded host) unless `refresh` is true or
    ``GINGHAM_VM_KERNEL_PACKAGE`` names a package.
    """
    if not refresh and not os.environ.get("GINGHAM_VM_KERNEL_PACKAGE"):
        cached = cached_kernel(cache)
        if cached is not None:
            return cached
    package, version = newest_kernel_package()
    tree = cache / f"{package}_{version}"
    if (tree / "vmlinuz").exists():
        return _load(tree, package, version)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
    try:
        # apt-get download writes into the current directory; _apt may need to read it.
        os.chmod(work, 0o755)
        _run(["apt-get", "download", "-q", f"{package}={version}"], cwd=work)
        debs = list(work.glob("*.deb"))
        if not debs:
            raise KernelUnavailable(f"apt-get download {package} produced no .deb")
        staged = work / "tree"
        staged.mkdir()
        _unpack(debs[0], staged, package)
        try:
            staged.rename(tree)
        except OSError:  # another run finished first: theirs is as good as ours
            if not (tree / "vmlinuz").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load(tree, package, version)
