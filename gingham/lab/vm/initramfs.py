"""The guest initramfs: busybox-static, the kernel modules, and `/init`.

`/init` (busybox sh, PID 1) loads the modules in `GUEST_MODULES` order, mounts
the host's root (9p tag `hostroot`, read-only) under an overlay with a tmpfs
upper layer, gives it fresh /proc /sys /dev /run (not /tmp: a checkout under
the host's /tmp, as CI clones are, must stay visible), mounts the writable
per-VM share (9p tag `share`) at `GUEST_SHARE`, configures `eth0` from the
kernel command line (`gingham.ip=A/N gingham.gw=G gingham.name=H`), then
chroots and runs `GUEST_SHARE/boot.sh` (written by the host). When that
returns the guest syncs and powers off, which ends qemu (`-no-reboot`).

The archive is written here in the cpio `newc` format (no `cpio` binary is
needed) and cached beside the kernel, keyed by a hash of everything in it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
from pathlib import Path

from gingham.lab.vm.kernel import GUEST_MODULES, Kernel

BUSYBOX = Path("/bin/busybox")
GUEST_SHARE = "/gingham-vm"  # where the writable share appears inside the chroot

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "gingham-vm: $*" > /dev/console; }
for m in @MODULES@; do
    insmod /lib/modules/$m.ko || say "insmod $m failed"
done
IP= GW= NAME=guest
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        gingham.ip=*) IP="${arg#gingham.ip=}" ;;
        gingham.gw=*) GW="${arg#gingham.gw=}" ;;
        gingham.name=*) NAME="${arg#gingham.name=}" ;;
    esac
done
hostname "$NAME"
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /host \\
    || say "hostroot mount failed"
mount -t tmpfs -o size=128m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot \\
    || say "overlay mount failed"
for d in proc sys dev run tmp @SHARE@; do mkdir -p /newroot/$d; done
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/run/netns /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /newroot@SHARE@ \\
    || say "share mount failed"
ip link set lo up
if [ -n "$IP" ]; then
    ip link set eth0 up
    ip addr add "$IP" dev eth0
    [ -n "$GW" ] && ip route add default via "$GW"
fi
say "up $(cut -d' ' -f1 /proc/uptime)"
chroot /newroot /bin/sh @SHARE@/boot.sh > /newroot@SHARE@/boot.log 2>&1
say "boot.sh exited $?"
sync
umount /newroot@SHARE@
poweroff -f
"""


def init_script() -> str:
    return INIT.replace("@MODULES@", " ".join(GUEST_MODULES)).replace("@SHARE@", GUEST_SHARE)


def _cpio_entry(out: io.BytesIO, ino: int, name: str, mode: int, data: bytes = b"") -> None:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    out.write(b"070701" + b"".join(f"{f:08x}".encode() for f in fields) + encoded)
    out.write(b"\0" * (-(110 + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def build_archive(kernel: Kernel, busybox: Path = BUSYBOX) -> bytes:
    """The gzip'd newc archive (uncached)."""
    raw = io.BytesIO()
    dirs = ["bin", "dev", "proc", "sys", "lib", "lib/modules", "host", "rw", "newroot"]
    ino = 1
    for d in dirs:
        _cpio_entry(raw, ino, d, 0o040755)
        ino += 1
    files = [("bin/busybox", busybox.read_bytes(), 0o100755)]
    files.append(("init", init_script().encode(), 0o100755))
    files += [(f"lib/modules/{n}.ko", p.read_bytes(), 0o100644) for n, p in kernel.modules.items()]
    for name, data, mode in files:
        _cpio_entry(raw, ino, name, mode, data)
        ino += 1
    _cpio_entry(raw, 0, "TRAILER!!!", 0)
    return gzip.compress(raw.getvalue(), compresslevel=1)


def prepare_initramfs(kernel: Kernel, busybox: Path = BUSYBOX) -> Path:
    """The cached initramfs for `kernel`, built when missing or out of date."""
    if not busybox.exists():
        raise FileNotFoundError(f"{busybox} missing (Debian package busybox-static)")
    digest = hashlib.sha256(init_script().encode())
    digest.update(busybox.read_bytes())
    for name, path in kernel.modules.items():
        digest.update(name.encode() + path.read_bytes())
    target = kernel.vmlinuz.parent / f"initrd-{digest.hexdigest()[:16]}.gz"
    if not target.exists():
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(build_archive(kernel, busybox))
        tmp.replace(target)
        for old in target.parent.glob("initrd-*.gz"):  # builds of an older /init
            if old != target:
                old.unlink(missing_ok=True)
    return target


def is_static(busybox: Path = BUSYBOX) -> bool:
    """busybox must be static: the initramfs has no libc."""
    return shutil.which("busybox") is not None and b"ld-linux" not in busybox.read_bytes()[:8192]
