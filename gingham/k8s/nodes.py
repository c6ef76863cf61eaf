"""Kubernetes nodes on this machine: a kubelet, its own containerd and a
kube-proxy in a network namespace and a mount namespace of the node's own.

A node is what a kind node container would be, made of namespaces instead of a
container:

- **Network**: namespace ``<prefix><name>`` with ``eth0`` (a veth whose peer
  sits on the cluster's bridge in the host's namespace), its address on the
  bridge's subnet, a default route via the bridge's address (where the API
  server listens) and IPv4 forwarding on.
- **Mounts**: a persistent mount namespace (`unshare --mount=FILE
  --propagation slave`) in which the directories a node owns are per-node
  binds: /opt (the DaemonSet's /opt/gingham and /opt/cni/bin), /etc/cni,
  /var/lib/cni, /var/log, /run/gingham, /run/netns, /run/containerd. So the
  DaemonSet's hostPath volumes, the CNI plugin containerd runs and the pod
  network namespaces are each node's own, as on separate machines. The
  kubelet's kernel tunables (vm.overcommit_memory, kernel.panic, ...) are
  files of the node's own too, bound over /proc/sys inside the namespace: a
  kubelet here would otherwise set them for the whole machine.
- **Processes**: containerd (CRI; the local pause image as sandbox image,
  runc with cgroupfs, CNI from /opt/cni/bin and /etc/cni/net.d, which hold
  Debian's reference plugins until the DaemonSet installs Gingham's), the
  kubelet (client certificate ``system:node:<name>`` / ``system:nodes`` signed
  by the cluster CA, cgroup v1 with ``failCgroupV1: false``, pods under a
  cgroup root of this node's own) and kube-proxy (iptables mode; it makes the
  ``kubernetes`` Service reachable from the node's pods and host-network pods).

Everything a node makes is recorded in `NodeRecord` (a JSON file in its
directory) so `destroy_node` can remove it from another process (``gingham lab
down``): processes are stopped by PID, then anything still inside the node's
mount or network namespace (containers, shims) is killed by PID, the mount
namespace is released (every mount made in it goes with it), the cgroups are
removed, and the network namespace and the directory deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Protocol

import yaml

# The node-owned directories bound per node inside its mount namespace.
NODE_BINDS = (
    "/opt",
    "/etc/cni",
    "/var/lib/cni",
    "/var/log",
    "/run/gingham",
    "/run/netns",
    "/run/containerd",
)
# The kubelet's kernel tunables (it sets these when they differ): node-local files.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REFERENCE_PLUGINS = Path("/usr/lib/cni")

Progress = Callable[[str], None]


class NodeError(RuntimeError):
    """A node's part did not start; the message names it and its log."""


class Credentials(Protocol):
    """What a node needs from the control plane (`gingham.k8s.cluster.ControlPlane`)."""

    @property
    def server(self) -> str: ...

    @property
    def ca_cert_path(self) -> Path: ...

    def client_kubeconfig(self, path: Path, user: str, groups: Iterable[str] = ()) -> Path: ...


@dataclass
class NodeRecord:
    """What one node made, enough to remove it from any process."""

    name: str
    directory: str
    netns: str
    mount_ns: str
    cgroup: str  # relative to each hierarchy's root
    pids: dict[str, int] = field(default_factory=dict)
    host_link: str = ""  # the veth's end on the bridge, in the host's namespace

    @property
    def path(self) -> Path:
        return Path(self.directory) / "node.json"

    def save(self) -> None:
        self.path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> NodeRecord:
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class NodeSpec:
    name: str
    netns: str
    host_link: str  # the veth's end on the bridge
    address: IPv4Interface
    gateway: str
    bridge: str


class KubeNode:
    """One node; `start` brings it up (or removes what it made and raises)."""

    def __init__(
        self,
        spec: NodeSpec,
        directory: Path,
        bin_dir: Path,
        cgroup_parent: str,
    ) -> None:
        self.spec = spec
        self.dir = directory
        self.bin_dir = bin_dir
        self.record = NodeRecord(
            name=spec.name,
            directory=str(directory),
            netns=spec.netns,
            mount_ns=str(directory / "ns" / "mnt"),
            cgroup=f"{cgroup_parent.rstrip('/')}/{spec.name}",
            host_link=spec.host_link,
        )

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd.sock"  # short: a unix socket path has 108 bytes

    def start(
        self, plane: Credentials, images: list[Path], progress: Progress = lambda _: None
    ) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record.save()
        try:
            self._network()
            self._mount_namespace()
            self._cgroups()
            self._containerd(images, progress)
            self._kubelet(plane)
            self._kube_proxy(plane)
        except BaseException:
            destroy_node(self.record)
            raise

    # --- network ------------------------------------------------------------------

    def _network(self) -> None:
        s = self.spec
        _run("ip", "netns", "add", s.netns)
        _run(
            "ip",
            "link",
            "add",
            s.host_link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            s.netns,
        )
        _run("ip", "link", "set", s.host_link, "master", s.bridge, "up")
        inside = ("ip", "netns", "exec", s.netns)
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "addr", "add", str(s.address), "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")
        _run(*inside, "ip", "route", "add", "default", "via", s.gateway)
        _run(*inside, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    # --- mounts -------------------------------------------------------------------

    def _mount_namespace(self) -> None:
        ns_dir = self.dir / "ns"
        ns_dir.mkdir(exist_ok=True)
        # unshare --mount=FILE needs FILE on a mount that is not shared.
        _run("mount", "--bind", str(ns_dir), str(ns_dir))
        _run("mount", "--make-private", str(ns_dir))
        Path(self.record.mount_ns).touch()
        _run("unshare", f"--mount={self.record.mount_ns}", "--propagation", "slave", "true")
        host = self.dir / "host"
        # containerd wants a hostPath volume with mount propagation (the
        # DaemonSet's /var/run/netns) on a shared or slave mount, and looks the
        # path up without following /var/run -> /run: "/" here must be shared.
        # The host's mounts are private, so nothing made here reaches the host.
        script = ["set -e", "mount --make-rshared /"]
        for target in NODE_BINDS:
            source = host / target.strip("/").replace("/", "-")
            source.mkdir(parents=True, exist_ok=True)
            Path(target).mkdir(parents=True, exist_ok=True)
            script.append(f"mount --bind {source} {target}")
            script.append(f"mount --make-rshared {target}")
        # The reference plugins a node's runtime has before any network add-on.
        cni_bin = host / "opt" / "cni" / "bin"
        cni_bin.mkdir(parents=True, exist_ok=True)
        for plugin in REFERENCE_PLUGINS.iterdir():
            shutil.copy2(plugin, cni_bin / plugin.name)
        (host / "etc-cni" / "net.d").mkdir(parents=True, exist_ok=True)
        sysctls = self.dir / "sysctl"
        sysctls.mkdir(exist_ok=True)
        for name in KUBELET_SYSCTLS:
            copy = sysctls / name.replace("/", ".")
            copy.write_text(Path("/proc/sys", name).read_text())
            script.append(f"mount --bind {copy} /proc/sys/{name}")
        self._in_node("sh", "-c", "\n".join(script), net=False)

    # --- cgroups ------------------------------------------------------------------

    def _cgroups(self) -> None:
        for hierarchy in _hierarchies():
            path = hierarchy / self.record.cgroup.lstrip("/")
            path.mkdir(parents=True, exist_ok=True)
            if (hierarchy / "cpuset.cpus").exists():
                _fill_cpuset(hierarchy, path)

    # --- containerd ---------------------------------------------------------------

    def _containerd(self, images: list[Path], progress: Progress) -> None:
        from gingham.k8s.images import PAUSE_IMAGE

        root = self.dir / "containerd"
        root.mkdir(exist_ok=True)
        config = root / "config.toml"
        config.write_text(_containerd_config(root, PAUSE_IMAGE))
        self._spawn("containerd", ["containerd", "--config", str(config)])
        _wait(
            self.containerd_socket.exists,
            60,
            f"{self.spec.name}: containerd socket",
            self._log_tail("containerd"),
        )
        for archive in images:
            progress(f"{self.spec.name}: importing {archive.name}")
            self.ctr("images", "import", "--no-unpack", str(archive))

    def ctr(self, *args: str) -> str:
        proc = subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise NodeError(f"{self.spec.name}: ctr {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    # --- kubelet ------------------------------------------------------------------

    def _kubelet(self, plane: Credentials) -> None:
        root = self.dir / "kubelet"
        root.mkdir(exist_ok=True)
        name = self.spec.name
        kubeconfig = plane.client_kubeconfig(
            root / "kubeconfig", f"system:node:{name}", ["system:nodes"]
        )
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": str(self.spec.address.ip),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(plane.ca_cert_path)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.record.cgroup,
            "failCgroupV1": False,
            "failSwapOn": False,
            "resolvConf": "/etc/resolv.conf",
            "serializeImagePulls": False,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
        }
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        self._spawn(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                f"--config={root / 'config.yaml'}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={root / 'root'}",
                f"--hostname-override={name}",
                f"--node-ip={self.spec.address.ip}",
                "--v=1",
            ],
        )

    def _kube_proxy(self, plane: Credentials) -> None:
        binary = self.bin_dir / "kube-proxy"
        root = self.dir / "kube-proxy"
        root.mkdir(exist_ok=True)
        kubeconfig = plane.client_kubeconfig(root / "kubeconfig", "system:kube-proxy", [])
        self._spawn(
            "kube-proxy",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.spec.name}",
                "--proxy-mode=iptables",
                "--cluster-cidr=10.244.0.0/16",
                # 0: leave the machine-wide conntrack settings alone.
                "--conntrack-max-per-core=0",
                "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0",
                "--metrics-bind-address=127.0.0.1:10249",
                "--healthz-bind-address=127.0.0.1:10256",
                "--v=1",
            ],
        )

    # --- processes ----------------------------------------------------------------

    def _in_node(self, *argv: str, net: bool = True) -> None:
        prefix = ["nsenter", f"--mount={self.record.mount_ns}"]
        if net:
            prefix.append(f"--net=/run/netns/{self.spec.netns}")
        _run(*prefix, *argv)

    def _spawn(self, name: str, argv: list[str]) -> None:
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    "nsenter",
                    f"--mount={self.record.mount_ns}",
                    f"--net=/run/netns/{self.spec.netns}",
                    "--",
                    *argv,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={
                    **os.environ,
                    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                },
            )
        self.record.pids[name] = proc.pid
        self.record.save()

    def alive(self, name: str) -> bool:
        pid = self.record.pids.get(name)
        return pid is not None and _pid_alive(pid)

    def _log_tail(self, name: str) -> Callable[[], str]:
        def tail() -> str:
            try:
                return (self.dir / "logs" / f"{name}.log").read_text(errors="replace")[-2000:]
            except OSError:
                return ""

        return tail


def _containerd_config(root: Path, sandbox_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{root.parent}/containerd.sock"
[ttrpc]
  address = "{root.parent}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[{cri}]
  restrict_oom_score_adj = true
  sandbox_image = "{sandbox_image}"
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{root}/runc"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
"""


# --- removal (works from any process, from the record alone) ----------------------


def destroy_node(record: NodeRecord) -> None:
    """Remove everything `record` says a node made; safe to call twice."""
    for name in ("kube-proxy", "kubelet"):
        pid = record.pids.get(name)
        if pid is not None:
            _terminate(pid, grace=10)
    # Containers and their shims: everything in the node's cgroups and namespaces.
    for _ in range(50):
        members = _cgroup_pids(record.cgroup) | _namespace_pids(record)
        containerd = record.pids.get("containerd")
        members.discard(os.getpid())
        if containerd is not None:
            members.discard(containerd)
        if not members:
            break
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    pid = record.pids.get("containerd")
    if pid is not None:
        _terminate(pid, grace=10)
    for pid in _namespace_pids(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    ns_dir = Path(record.mount_ns).parent
    for target in (record.mount_ns, str(ns_dir)):
        if _is_mountpoint(target):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    remove_cgroups(record.cgroup)
    # Deleting the namespace removes the veth pair too, but later, from a kernel
    # worker: remove the host's end here so nothing of the node is left on return.
    if record.host_link:
        subprocess.run(["ip", "link", "del", record.host_link], check=False, capture_output=True)
    subprocess.run(["ip", "netns", "del", record.netns], check=False, capture_output=True)
    directory = Path(record.directory)
    for mount in reversed(_mounts_under(directory)):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)


def _terminate(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_alive(pid: int) -> bool:
    _reap(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _hierarchies(unified: bool = False) -> list[Path]:
    """Every cgroup v1 hierarchy mounted under /sys/fs/cgroup; with `unified`,
    the v2 mount too (runc makes a pod's cgroup there as well on a hybrid host)."""
    kinds = {"cgroup", "cgroup2"} if unified else {"cgroup"}
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            _dev, target, fstype, *_ = line.split()
            if fstype in kinds and target.startswith(str(CGROUP_ROOT)):
                found.append(Path(target))
    return found


def _fill_cpuset(hierarchy: Path, path: Path) -> None:
    """A new v1 cpuset is empty: give it (and its new parents) their parent's CPUs and memory."""
    chain = []
    current = path
    while current != hierarchy:
        chain.append(current)
        current = current.parent
    for cgroup in reversed(chain):
        for name in ("cpuset.cpus", "cpuset.mems"):
            mine = cgroup / name
            if not mine.read_text().strip():
                mine.write_text((cgroup.parent / name).read_text().strip())


def _cgroup_pids(relative: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in _hierarchies(unified=True):
        base = hierarchy / relative.lstrip("/")
        if not base.exists():
            continue
        for procs in base.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def remove_cgroups(relative: str) -> None:
    """Remove cgroup `relative` and everything below it, in every hierarchy."""
    for hierarchy in _hierarchies(unified=True):
        base = hierarchy / relative.lstrip("/")
        if not base.exists():
            continue
        for path in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()


def _ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _namespace_pids(record: NodeRecord) -> set[int]:
    """Processes inside the node's mount or network namespace."""
    wanted = {
        ns
        for ns in (_ns_id(record.mount_ns), _ns_id(f"/run/netns/{record.netns}"))
        if ns is not None
    }
    if not wanted:
        return set()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        for kind in ("mnt", "net"):
            if _ns_id(f"/proc/{entry.name}/ns/{kind}") in wanted:
                found.add(int(entry.name))
                break
    return found


def _is_mountpoint(path: str) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return any(line.split()[1] == path for line in f)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(prefix)]


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")


def _wait(check: Callable[[], bool], timeout: float, what: str, tail: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise NodeError(f"{what}: not ready in {timeout:.0f} s\n{tail()}")
        time.sleep(0.1)
