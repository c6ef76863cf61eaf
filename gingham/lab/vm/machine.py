"""QEMU guests on a private L2 segment, and running commands in them.

`VmLab(name, count)` is a context manager that builds, on entry:

- a network namespace `ghvm-<name>` holding a bridge (`ghvb-<name>`, address
  `.254` of the lab subnet) and one tap per guest (`ghvt-<name><i>`); every
  guest NIC is on that bridge and nowhere else, so guest traffic never leaves
  namespaces the lab made;
- one `qemu-system-x86_64` per guest (TCG, `-m 256`, one vCPU) running the
  cached Debian kernel and initramfs (`kernel.py`, `initramfs.py`), with the
  host root read-only over 9p and a writable per-guest share in the lab's
  work directory, where the guest agent (`agent.py`) takes requests.

`Vm.run(argv)` runs a command in the guest and returns its rc/stdout/stderr;
`Vm.spawn(argv)` starts a background one (its log is readable from the host).

Invariants: everything is torn down on exit even after a failure — qemu
killed by PID, the namespace deleted (which removes taps and bridge), the work
directory removed. A state file `/run/gingham/vm/<name>.json` records PIDs,
names and the owning process, so `destroy_lab(name)` cleans up after a
process that died without running its exit path (every `VmLab.start` first
reaps labs whose owner is gone: `reap_orphaned_labs`); it only kills PIDs
whose command line still carries this lab's qemu `-name`, never a reused PID.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from types import TracebackType

from gingham.lab.vm.initramfs import GUEST_SHARE, prepare_initramfs
from gingham.lab.vm.kernel import Kernel, prepare_kernel

STATE_DIR = Path("/run/gingham/vm")
QEMU = "qemu-system-x86_64"
# Optional scheduling niceness for qemu (e.g. -5): under TCG a guest needs a whole
# core, and on a host at load 50+ its boot and Python starts take many minutes.
# Off (0) unless asked for: it takes CPU from everything else on the machine.
NICE = int(os.environ.get("GINGHAM_VM_NICE", "0"))
DEFAULT_SUBNET = IPv4Network("198.18.0.0/24")


class GuestError(RuntimeError):
    """A guest command failed, timed out, or the guest died."""


@dataclass(frozen=True)
class GuestResult:
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class GuestProcess:
    pid: int  # inside the guest
    log: Path  # on the host


def qemu_available() -> str | None:
    """None when qemu can run here, else why not."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (Debian package qemu-system-x86)"
    if os.geteuid() != 0:
        return "VMs need root (tap devices, network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing: no tap devices"
    return None


GUEST_PACKAGES = ("gingham", "felix", "cni", "bird_agent", "route_reflector")


def precompile(packages: tuple[str, ...] = GUEST_PACKAGES) -> None:
    """Write bytecode for these packages on the host, where it is cheap.

    Guests see the host root read-only; a module without a current .pyc is
    compiled again in every guest, under TCG, at every boot (tens of seconds
    for felix). compileall skips files whose .pyc is already current.
    """
    paths: list[str] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths += list(spec.submodule_search_locations)
    if paths:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", *paths],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip


def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass
class Vm:
    name: str
    address: IPv4Interface
    share: Path  # host side of the writable share
    serial: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    boot_seconds: float | None = None
    doorbell: Path | None = None  # qemu's unix socket for the guest's ttyS1
    pid: int | None = None  # qemu's PID when this handle did not start it (`attach`)
    _seq: int = field(default=0, repr=False)
    _bell: socket.socket | None = field(default=None, repr=False)

    def ring(self) -> None:
        """Wake the agent; best effort (it rescans every second anyway)."""
        if self.doorbell is None:
            return
        try:
            if self._bell is None:
                self._bell = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._bell.settimeout(1.0)
                self._bell.connect(str(self.doorbell))
            self._bell.sendall(b"!")
        except OSError:
            if self._bell is not None:
                self._bell.close()
            self._bell = None

    def guest_path(self, host_path: Path) -> str:
        return f"{GUEST_SHARE}/{host_path.relative_to(self.share)}"

    def host_path(self, guest_path: str) -> Path:
        return self.share / Path(guest_path).relative_to(GUEST_SHARE)

    @classmethod
    def attach(cls, name: str, address: IPv4Interface, workdir: Path, pid: int) -> Vm:
        """A handle on a guest another process started (a lab's `up`), by its files."""
        share, serial = workdir / name, workdir / f"{name}.serial"
        return cls(name, address, share, serial, doorbell=workdir / f"{name}.bell", pid=pid)

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.pid is None:
            return False
        try:
            return b"qemu" in Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False

    def rss_bytes(self) -> int:
        """qemu's resident memory (the guest's whole cost on the host)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def console(self, tail: int = 3000) -> str:
        try:
            text = self.serial.read_text(errors="replace")
        except OSError:
            return ""
        boot = self.share / "boot.log"
        if boot.exists():
            text += "\n--- boot.log ---\n" + boot.read_text(errors="replace")
        return text[-tail:]

    def report(self, tail: int = 4000) -> str:
        """Console and background-command logs, for a failure message."""
        parts = [f"=== {self.name} console ===\n{self.console(tail)}"]
        for log in sorted((self.share / "logs").glob("*.log")):
            text = log.read_text(errors="replace")[-tail:]
            parts.append(f"=== {self.name} {log.name} ===\n{text}")
        return "\n".join(parts)

    def _request(self, body: dict[str, object], timeout: float) -> dict[str, object]:
        self._seq += 1
        # Unique across processes: `lab status` and `lab ping` talk to guests that
        # `lab up` started, and the agent answers each request id once.
        rid = f"{time.time_ns():x}-{os.getpid()}-{self._seq}"
        req = self.share / "req" / f"{rid}.json"
        tmp = req.with_name(f".{rid}.tmp")
        tmp.write_text(json.dumps(body))
        tmp.rename(req)
        self.ring()
        res = self.share / "res" / f"{rid}.json"
        deadline = time.monotonic() + timeout
        while not res.exists():
            if not self.alive():
                raise GuestError(f"{self.name}: guest died\n{self.console()}")
            if time.monotonic() > deadline:
                raise GuestError(f"{self.name}: no answer to {body} within {timeout}s")
            time.sleep(0.02)
        reply: dict[str, object] = json.loads(res.read_text())
        return reply

    def run(
        self,
        argv: list[str],
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> GuestResult:
        body = {"argv": argv, "timeout": timeout, "env": env or {}}
        reply = self._request(body, timeout + 10.0)
        result = GuestResult(int(reply["rc"]), str(reply["stdout"]), str(reply["stderr"]))  # type: ignore[call-overload]
        if check and result.rc != 0:
            raise GuestError(
                f"{self.name}: {' '.join(argv)} exited {result.rc}: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def spawn(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300.0
    ) -> GuestProcess:
        reply = self._request({"argv": argv, "env": env or {}, "background": True}, timeout)
        if reply["rc"] != 0:
            raise GuestError(f"{self.name}: could not start {argv}: {reply.get('stderr')}")
        return GuestProcess(int(reply["pid"]), self.host_path(str(reply["log"])))  # type: ignore[call-overload]

    def shutdown(self, timeout: float = 20.0) -> None:
        """Ask the agent to stop (the guest powers off); kill qemu if it lingers."""
        if self.alive():
            with contextlib.suppress(GuestError, OSError):
                self._request({"op": "shutdown"}, timeout)
        self.kill(grace=timeout)

    def kill(self, grace: float = 0.0) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        if self.proc is None:
            if self.pid is not None and self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            return
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def boot_script(python: str) -> str:
    """The guest's `boot.sh` (run chrooted by `/init`): start the agent."""
    return (
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"export HOME=/root\ncd /\n"
        # The agent by path with -S -E: stdlib only, no package __init__ and no site
        # (.pth finders) to import under TCG, where every import costs.
        f"exec {python} -S -E {Path(__file__).with_name('agent.py')} {GUEST_SHARE} /dev/ttyS1\n"
    )


def qemu_argv(lab: VmLab, vm: Vm, index: int, kernel: Kernel, initrd: Path) -> list[str]:
    """qemu for one guest, run inside the lab namespace (where its tap is).

    tb-size=32 caps TCG's translation cache: without it each guest takes
    ~875 MB instead of ~250 MB.
    """
    # no_timer_check: on a starved host the IO-APIC timer test misses its ticks and
    # the guest panics ("IO-APIC + timer doesn't work!"); seen at load 100+.
    append = (
        f"console=ttyS0 panic=-1 quiet no_timer_check gingham.ip={vm.address} "
        f"gingham.gw={lab.gateway.ip} gingham.name={vm.name}"
    )
    hostroot = "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    mac = f"52:54:00:{os.getpid() % 256:02x}:{index // 256:02x}:{index % 256:02x}"
    nice = ["nice", "-n", str(NICE)] if NICE else []
    return ["ip", "netns", "exec", lab.netns, *nice, QEMU,
        "-name", f"gingham-{lab.name}-{vm.name}", "-nodefaults", "-no-user-config",
        "-accel", f"tcg,tb-size={lab.tb_size_mb}", "-m", str(lab.memory_mb), "-smp", "1",
        "-display", "none", "-serial", f"file:{vm.serial}", "-no-reboot",
        "-chardev", f"socket,id=bell,path={vm.doorbell},server=on,wait=off",
        "-serial", "chardev:bell",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd), "-append", append,
        "-virtfs", hostroot,
        "-virtfs", f"local,path={vm.share},mount_tag=share,security_model=none",
        "-netdev", f"tap,id=n0,ifname={lab.tap(index)},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
    ]  # fmt: skip


class VmLab:
    """N guests on one bridge; use as a context manager (see the module docstring)."""

    def __init__(
        self,
        name: str,
        count: int,
        *,
        subnet: IPv4Network = DEFAULT_SUBNET,
        memory_mb: int = 256,
        tb_size_mb: int = 32,
        packages: tuple[str, ...] = GUEST_PACKAGES,
        kernel: Kernel | None = None,
        python: str = sys.executable,
        boot_timeout: float = 120.0,
        names: list[str] | None = None,
        netns: str | None = None,
        workdir: Path | None = None,
        record: bool = True,
    ) -> None:
        """`names` name the guests (default vm1..vmN; also their hostnames); `netns`
        and `workdir` place the lab (defaults: ``ghvm-<name>``, a fresh temporary
        directory). `record=False` is for an owner that records and removes the lab
        itself (`gingham lab up --vm`): no state file, so never reaped as an orphan.
        """
        if not name.isalnum() or len(name) > 8:
            raise ValueError(f"lab name {name!r}: must be 1-8 letters/digits (link names)")
        if not 1 <= count < subnet.num_addresses - 2:
            raise ValueError(f"count {count}: does not fit subnet {subnet}")
        names = names or [f"vm{i}" for i in range(1, count + 1)]
        if len(names) != count:
            raise ValueError(f"names {names}: need {count}")
        self.name, self.subnet, self.memory_mb = name, subnet, memory_mb
        self.tb_size_mb, self.packages, self.record = tb_size_mb, packages, record
        self.netns = netns or f"ghvm-{name}"
        self.bridge = f"ghvb-{name}"
        self.gateway = IPv4Interface(f"{subnet[-2]}/{subnet.prefixlen}")
        self.kernel, self.python, self.boot_timeout = kernel, python, boot_timeout
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix=f"gingham-vm-{name}-"))
        else:
            workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.vms: list[Vm] = []
        for i, vm_name in enumerate(names, start=1):
            address = IPv4Interface(f"{subnet[i]}/{subnet.prefixlen}")
            share, serial = self.workdir / vm_name, self.workdir / f"{vm_name}.serial"
            vm = Vm(vm_name, address, share, serial)
            vm.doorbell = self.workdir / f"{vm_name}.bell"
            self.vms.append(vm)

    def tap(self, index: int) -> str:
        return f"ghvt-{self.name}{index}"

    def __enter__(self) -> VmLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _save_state(self) -> None:
        if not self.record:
            return
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = {
            "owner": _process_identity(os.getpid()),
            "netns": self.netns,
            "workdir": str(self.workdir),
            "pids": [vm.proc.pid for vm in self.vms if vm.proc is not None],
        }
        (STATE_DIR / f"{self.name}.json").write_text(json.dumps(state))

    def start(self) -> None:
        self.launch()
        self.wait_booted()

    def launch(self) -> None:
        """Namespace, bridge, taps and one qemu per guest; returns before they boot."""
        reap_orphaned_labs()
        kernel = self.kernel or prepare_kernel()
        initrd = prepare_initramfs(kernel)
        precompile(self.packages)
        _sh("ip", "netns", "add", self.netns)
        self._save_state()
        ns = ("ip", "-n", self.netns)
        _sh(*ns, "link", "set", "lo", "up")
        _sh(*ns, "link", "add", self.bridge, "type", "bridge")
        _sh(*ns, "addr", "add", str(self.gateway), "dev", self.bridge)
        _sh(*ns, "link", "set", self.bridge, "up")
        for i, vm in enumerate(self.vms, start=1):
            tap = self.tap(i)
            _sh(*ns, "tuntap", "add", "mode", "tap", "name", tap)
            _sh(*ns, "link", "set", tap, "master", self.bridge, "up")
            vm.share.mkdir()
            (vm.share / "boot.sh").write_text(boot_script(self.python))
            argv = qemu_argv(self, vm, i, kernel, initrd)
            vm.started = time.monotonic()
            with (self.workdir / f"{vm.name}.qemu.log").open("wb") as qlog:
                vm.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=qlog,
                    start_new_session=True,
                )  # fmt: skip
            self._save_state()

    def wait_booted(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        pending = list(self.vms)
        while pending:
            for vm in list(pending):
                if (vm.share / "ready").exists():
                    vm.boot_seconds = time.monotonic() - vm.started
                    pending.remove(vm)
                elif not vm.alive():
                    qlog = (self.workdir / f"{vm.name}.qemu.log").read_text(errors="replace")
                    raise GuestError(f"{vm.name}: qemu exited during boot\n{qlog}\n{vm.console()}")
            if pending and time.monotonic() > deadline:
                raise GuestError(
                    f"{pending[0].name}: not booted within {self.boot_timeout}s\n"
                    + pending[0].console()
                )
            time.sleep(0.05)

    def ns_exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a host command inside the lab namespace (the segment's `.254`)."""
        return _sh("ip", "netns", "exec", self.netns, *argv, check=check)

    def close(self) -> None:
        for vm in self.vms:
            if vm.alive():
                with contextlib.suppress(GuestError, OSError):
                    vm._request({"op": "shutdown"}, 5.0)
        for vm in self.vms:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                vm.kill(grace=5.0)
        _sh("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.record:
            with contextlib.suppress(FileNotFoundError):
                (STATE_DIR / f"{self.name}.json").unlink()


def _process_identity(pid: int) -> str | None:
    """`pid:starttime`, which a reused PID does not repeat; None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def reap_orphaned_labs() -> list[str]:
    """Destroy labs whose owning process died without cleaning up; their names."""
    reaped = []
    for state_file in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.exists() else []:
        try:
            owner = json.loads(state_file.read_text()).get("owner")
        except (OSError, ValueError):
            continue
        if owner and _process_identity(int(owner.split(":")[0])) != owner:
            destroy_lab(state_file.stem)
            reaped.append(state_file.stem)
    return reaped


def destroy_lab(name: str) -> None:
    """Remove what a lab of this name left behind (safe to call twice)."""
    state_file = STATE_DIR / f"{name}.json"
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        state = {"netns": f"ghvm-{name}", "pids": [], "workdir": None}
    marker = f"gingham-{name}-".encode()
    for pid in state["pids"]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _sh("ip", "netns", "del", state["netns"], check=False)
    if state["workdir"]:
        shutil.rmtree(state["workdir"], ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        state_file.unlink()
