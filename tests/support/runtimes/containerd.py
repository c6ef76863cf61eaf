"""A private containerd 1.6 with its CRI plugin, driven like a kubelet over CRI gRPC.

`Containerd.start()` writes a config (what Debian's 1.6 needs on these
machines: `restrict_oom_score_adj`,
runc `BinaryName`, `SystemdCgroup = false`, one CNI bin dir holding the plugin
under test and `loopback`, a local sandbox image), starts containerd inside a
test-made network namespace with `nsenter --net` (so the CNI host side lands in
that namespace, while pod netns mounts stay visible in the host's mount
namespace), imports the busybox sandbox image with `ctr`, and talks CRI
through a ~40-line `runtime.v1` subset compiled at test time (cri_subset.proto).

Cleanup (`stop()`, safe after any failure): every sandbox this harness made is
stopped and removed, containerd is stopped by PID, any shim it left behind is
found by our unique socket path in its command line and killed by PID, mounts
under the temp root are lazily unmounted, and the root is deleted.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc

from tests.support.poll import wait_for
from tests.support.runtimes.podman import IMAGE, build_sandbox_oci_archive

PROTO = Path(__file__).with_name("cri_subset.proto")


def compile_cri(out_dir: Path) -> tuple[ModuleType, ModuleType]:
    """Generate cri_subset_pb2(_grpc) into out_dir and import them."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    code = protoc.main(
        [
            "protoc",
            f"-I{PROTO.parent}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(PROTO),
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    if str(out_dir) not in sys.path:
        sys.path.insert(0, str(out_dir))
    return importlib.import_module("cri_subset_pb2"), importlib.import_module("cri_subset_pb2_grpc")


def _config(root: Path, bin_dir: Path, conf_dir: Path) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{root}/containerd.sock"
[ttrpc]
  address = "{root}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[{cri}]
  restrict_oom_score_adj = true
  sandbox_image = "{IMAGE}"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{bin_dir}"
    conf_dir = "{conf_dir}"
    max_conf_num = 1
"""


class Containerd:
    def __init__(
        self, root: Path, bin_dir: Path, conf_dir: Path, netns: str, image_cache: Path
    ) -> None:
        self.root, self.bin_dir, self.conf_dir, self.netns = root, bin_dir, conf_dir, netns
        self.image_cache = image_cache
        self.socket = root / "containerd.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.sandboxes: list[str] = []
        self._channel: grpc.Channel | None = None
        self.pb: Any = None
        self.stub: Any = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "config.toml").write_text(_config(self.root, self.bin_dir, self.conf_dir))
        self.pb, pb_grpc = compile_cri(self.root / "cri-gen")
        log = open(self.root / "containerd.log", "wb")  # noqa: SIM115 - closed by the child
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net={self.netns}",
                "containerd",
                "--config",
                str(self.root / "config.toml"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.stub = pb_grpc.RuntimeServiceStub(self._channel)
        wait_for(
            self._answers, timeout=30, what=f"containerd CRI on {self.socket} ({self.log_tail()})"
        )
        archive = build_sandbox_oci_archive(self.image_cache, self.image_cache / "sandbox.oci.tar")
        self.ctr("images", "import", str(archive))

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"containerd exited: {self.log_tail()}")
        try:
            self.stub.Version(self.pb.VersionRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return True

    def log_tail(self) -> str:
        try:
            return (self.root / "containerd.log").read_text()[-1500:]
        except OSError:
            return ""

    def ctr(self, *args: str) -> str:
        proc = subprocess.run(
            ["ctr", "--address", str(self.socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def run_pod(
        self,
        name: str,
        namespace: str = "default",
        port_mappings: list[Any] | None = None,
        timeout: float = 60,
    ) -> str:
        pb = self.pb
        log_dir = self.root / "pod-logs" / name
        log_dir.mkdir(parents=True, exist_ok=True)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace=namespace),
            hostname=name,
            log_directory=str(log_dir),
            port_mappings=port_mappings or [],
        )
        reply = self.stub.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=timeout)
        self.sandboxes.append(reply.pod_sandbox_id)
        return str(reply.pod_sandbox_id)

    def status(self, sandbox_id: str) -> tuple[Any, dict[str, Any]]:
        reply = self.stub.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True), timeout=30
        )
        info = json.loads(reply.info["info"]) if "info" in reply.info else {}
        return reply.status, info

    def pod_pid(self, sandbox_id: str) -> int:
        return int(self.status(sandbox_id)[1]["pid"])

    def stop_pod(self, sandbox_id: str) -> None:
        self.stub.StopPodSandbox(
            self.pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=60
        )

    def remove_pod(self, sandbox_id: str) -> None:
        self.stub.RemovePodSandbox(
            self.pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=60
        )
        if sandbox_id in self.sandboxes:
            self.sandboxes.remove(sandbox_id)

    def stop(self) -> None:
        for sandbox_id in list(self.sandboxes):
            for step in (self.stop_pod, self.remove_pod):
                # containerd may already be gone; shims are reaped below.
                with contextlib.suppress(grpc.RpcError):
                    step(sandbox_id)
        if self._channel is not None:
            self._channel.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        shims = _pids_mentioning(str(self.root))
        # Pod processes first (they outlive a killed shim), then the shims.
        for pid in [*_children_of(shims), *shims]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _pids_mentioning(str(self.root)), timeout=15, what="shims to exit")
        with open("/proc/self/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(f"{self.root}/")]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        subprocess.run(["rm", "-rf", str(self.root)], check=False)


def _pids_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (our unique temp root): our shims."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def _children_of(parents: list[int]) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in parents:
            out.append(int(entry))
    return out
