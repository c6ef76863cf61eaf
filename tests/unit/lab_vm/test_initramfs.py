"""The guest initramfs: a newc archive busybox can read, with /init and the modules."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from gingham.lab.vm.initramfs import BUSYBOX, GUEST_SHARE, build_archive, init_script
from gingham.lab.vm.kernel import GUEST_MODULES, Kernel

pytestmark = pytest.mark.skipif(not BUSYBOX.exists(), reason="busybox-static not installed")


def fake_kernel(tmp_path: Path) -> Kernel:
    modules = {}
    for name in GUEST_MODULES:
        path = tmp_path / f"{name}.ko"
        path.write_bytes(f"module {name}".encode())
        modules[name] = path
    return Kernel("linux-image-test", "0", tmp_path / "vmlinuz", modules)


def test_archive_unpacks_with_busybox_cpio(tmp_path: Path) -> None:
    archive = gzip.decompress(build_archive(fake_kernel(tmp_path)))
    out = tmp_path / "root"
    out.mkdir()
    subprocess.run([str(BUSYBOX), "cpio", "-i", "-d"], input=archive, cwd=out, check=True,
                   capture_output=True)  # fmt: skip
    init = out / "init"
    assert init.read_text() == init_script()
    assert os.access(init, os.X_OK)
    assert (out / "bin" / "busybox").read_bytes() == BUSYBOX.read_bytes()
    for name in GUEST_MODULES:
        assert (out / "lib" / "modules" / f"{name}.ko").read_text() == f"module {name}"


def test_init_loads_modules_in_dependency_order_and_runs_the_share_boot_script() -> None:
    script = init_script()
    insmod_line = next(line for line in script.splitlines() if line.startswith("for m in"))
    assert insmod_line.removesuffix("; do").split()[3:] == list(GUEST_MODULES)
    # ipip needs tunnel4 and ip_tunnel first; 9p needs its transport first.
    order = list(GUEST_MODULES)
    assert order.index("tunnel4") < order.index("ip_tunnel") < order.index("ipip")
    assert order.index("9pnet") < order.index("9pnet_virtio") < order.index("9p")
    assert f"chroot /newroot /bin/sh {GUEST_SHARE}/boot.sh" in script
