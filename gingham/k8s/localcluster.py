"""A whole Kubernetes cluster on this machine with Gingham as its network.

`LocalCluster.up` does, in order: builds (or takes from the cache) the
images (`gingham.k8s.images`); makes the cluster's bridge in the host's
network namespace with the first address of a free /24 of `SUBNETS`; starts
the control plane (`gingham.k8s.cluster.ControlPlane`) listening on that
address only; starts N nodes (`gingham.k8s.nodes`), each importing the images
into its containerd; applies ``manifests/crds.yaml``, ``rbac.yaml`` and
``gingham-node.yaml`` with kubectl, exactly as shipped, and
``default-pool.yaml`` with ``gingham apply``; then waits until every node is
Ready and every DaemonSet pod is ready.

Everything it makes is written down as it goes (``cluster.json`` in its
directory, each node's ``node.json``), so `destroy` removes all of it from
any process, after any failure, and is safe to call twice: nodes first (their
containers, containerd, kubelet, namespaces, cgroups), then the control plane's
processes by PID, the bridge, the directory.

Tests, the lab (``gingham lab up --kubernetes``) and bench/k8s_pods.py use it;
it never touches an address outside the bridge's subnet.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from gingham.k8s.nodes import KubeNode, NodeRecord, NodeSpec, destroy_node, remove_cgroups

if TYPE_CHECKING:  # imported when a cluster starts (cryptography is slow to load)
    from gingham.k8s.cluster import ControlPlane

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
# /24s for cluster bridges; one not routed on the host is taken.
SUBNETS = IPv4Network("10.201.0.0/16")
# The cluster's directory is a tmpfs of at most this size (pages are used as written).
TMPFS_SIZE = "12g"

Progress = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster did not come up; the message says which part and why."""


@dataclass
class ClusterRecord:
    name: str
    directory: str
    bridge: str = ""
    subnet: str = ""
    plane_pids: dict[str, int] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)  # node.json paths
    kubeconfig: str = ""
    server: str = ""
    cgroup: str = ""  # the nodes' pods live below it, in every hierarchy

    @property
    def path(self) -> Path:
        return Path(self.directory) / "cluster.json"

    def save(self) -> None:
        self.path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: Path) -> ClusterRecord:
        return cls(**json.loads((directory / "cluster.json").read_text()))


def free_subnet() -> IPv4Network:
    routes = subprocess.run(
        ["ip", "-4", "-o", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = set()
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        if word[0:1].isdigit():
            with contextlib.suppress(ValueError):
                used.add(IPv4Network(word, strict=False))
    for subnet in SUBNETS.subnets(new_prefix=24):
        if not any(subnet.overlaps(u) for u in used if u.prefixlen > 0):
            return subnet
    raise ClusterError(f"no free /24 in {SUBNETS} for the cluster's bridge")


class LocalCluster:
    """Control plane + N kubelet nodes + Gingham's DaemonSet, on this machine."""

    def __init__(self, name: str, directory: Path, nodes: int = 2, tag: str = "gk") -> None:
        if not 1 <= nodes <= 20:
            raise ClusterError(f"nodes: {nodes} is outside 1..20")
        self.name = name
        self.dir = directory
        self.node_count = nodes
        # Interface and namespace names: tag + short id, within IFNAMSIZ.
        self.tag = tag
        self.record = ClusterRecord(
            name=name, directory=str(directory), cgroup=f"/gingham-k8s-{tag}"
        )
        self.plane: ControlPlane | None = None
        self.nodes: list[KubeNode] = []

    @property
    def kubeconfig(self) -> Path:
        return Path(self.record.kubeconfig)

    def node_names(self) -> list[str]:
        return [f"{self.name}-node{i}" for i in range(1, self.node_count + 1)]

    def up(self, progress: Progress = lambda _: None, timeout: float = 600) -> None:
        from gingham.k8s.cluster import ControlPlane, kubernetes_bin_dir
        from gingham.k8s.images import build_all

        bin_dir = kubernetes_bin_dir()
        missing = [
            p
            for p in ("kube-apiserver", "kubelet", "kube-proxy", "kubectl")
            if not (bin_dir / p).exists()
        ]
        if missing:
            raise ClusterError(
                f"Kubernetes programs missing in {bin_dir}: {', '.join(missing)}"
                " (scripts/build-kubernetes builds them; make install runs it)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        # Memory, not disk: each node unpacks the images (~1 GB) into its
        # containerd, and deleting that from this disk takes minutes.
        _run(
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={TMPFS_SIZE},mode=0755",
            "gingham-k8s",
            str(self.dir),
        )
        self.record.save()
        deadline = time.monotonic() + timeout
        try:
            started = time.monotonic()
            images = build_all(REPO, progress)
            progress(f"images ready in {time.monotonic() - started:.1f} s")
            subnet = self._bridge()
            gateway = next(iter(subnet.hosts()))
            started = time.monotonic()
            progress(f"control plane on {gateway}: etcd, kube-apiserver, controllers, scheduler")
            plane = self.plane = ControlPlane(self.dir / "control-plane", address=str(gateway))
            try:
                plane.start()
            finally:
                self.record.plane_pids = plane.pids()
                self.record.save()
            self.record.kubeconfig = str(plane.admin_kubeconfig)
            self.record.server = plane.server
            self.record.save()
            progress(f"control plane ready in {time.monotonic() - started:.1f} s")
            self._nodes(plane, subnet, bin_dir, images.all(), progress)
            self._apply(progress)
            self.wait_ready(progress, max(30.0, deadline - time.monotonic()))
        except BaseException:
            progress("failed: removing what was made")
            self.destroy()
            raise

    def _bridge(self) -> IPv4Network:
        subnet = free_subnet()
        self.record.bridge = f"{self.tag}br"
        self.record.subnet = str(subnet)
        self.record.save()
        gateway = IPv4Interface(f"{next(iter(subnet.hosts()))}/{subnet.prefixlen}")
        _run("ip", "link", "add", self.record.bridge, "type", "bridge")
        _run("ip", "addr", "add", str(gateway), "dev", self.record.bridge)
        _run("ip", "link", "set", self.record.bridge, "up")
        return subnet

    def _nodes(
        self,
        plane: ControlPlane,
        subnet: IPv4Network,
        bin_dir: Path,
        images: tuple[Path, ...],
        progress: Progress,
    ) -> None:
        cgroup_parent = self.record.cgroup
        hosts = list(subnet.hosts())
        gateway = hosts[0]
        for i, name in enumerate(self.node_names(), start=1):
            spec = NodeSpec(
                name=name,
                netns=f"{self.tag}n{i}",
                host_link=f"{self.tag}v{i}",
                address=IPv4Interface(f"{hosts[i]}/{subnet.prefixlen}"),
                gateway=str(gateway),
                bridge=self.record.bridge,
            )
            node = KubeNode(spec, self.dir / "nodes" / name, bin_dir, cgroup_parent)
            self.record.nodes.append(str(node.record.path))
            self.record.save()
            started = time.monotonic()
            progress(f"{name}: netns {spec.netns}, {spec.address}: containerd, kubelet, kube-proxy")
            node.start(plane, list(images), progress)
            self.nodes.append(node)
            progress(f"{name}: started in {time.monotonic() - started:.1f} s")

    def _apply(self, progress: Progress) -> None:
        progress("applying manifests/crds.yaml, rbac.yaml, gingham-node.yaml")
        for manifest in ("crds.yaml", "rbac.yaml"):
            self.kubectl("apply", "-f", str(MANIFESTS / manifest))
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        self.kubectl("apply", "-f", str(MANIFESTS / "gingham-node.yaml"))
        progress("gingham apply -f manifests/default-pool.yaml")
        _run(
            str(Path(sys.executable).parent / "gingham"),
            "--datastore",
            f"kubernetes://?kubeconfig={self.kubeconfig}",
            "apply",
            "-f",
            str(MANIFESTS / "default-pool.yaml"),
        )

    def wait_ready(self, progress: Progress, timeout: float) -> None:
        """Until every node is Ready and the DaemonSet's pods are all ready."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            ready, total = self._ready_nodes()
            ds = self._daemonset()
            line = f"nodes Ready {ready}/{total}; gingham-node pods ready {ds[0]}/{ds[1]}"
            if line != last:
                progress(line)
                last = line
            if total == self.node_count and ready == total and ds[0] == ds[1] == total:
                return
            for node in self.nodes:
                for part in ("containerd", "kubelet", "kube-proxy"):
                    if not node.alive(part):
                        raise ClusterError(
                            f"{node.spec.name}: {part} exited; log {node.dir}/logs/{part}.log:\n"
                            f"{node._log_tail(part)()}"
                        )
            if time.monotonic() > deadline:
                raise ClusterError(f"not ready after {timeout:.0f} s: {line}")
            time.sleep(1)

    def _ready_nodes(self) -> tuple[int, int]:
        out = self.kubectl("get", "nodes", "-o", "json", check=False)
        if out.returncode != 0:
            return 0, 0
        items = json.loads(out.stdout)["items"]
        ready = sum(
            1
            for n in items
            for c in n["status"].get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        )
        return ready, len(items)

    def _daemonset(self) -> tuple[int, int]:
        out = self.kubectl(
            "-n", "kube-system", "get", "ds", "gingham-node", "-o", "json", check=False
        )
        if out.returncode != 0:
            return 0, -1
        status = json.loads(out.stdout).get("status", {})
        return int(status.get("numberReady", 0)), int(status.get("desiredNumberScheduled", -1))

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, *args, check=check, stdin=stdin, timeout=timeout)

    def destroy(self) -> None:
        if self.plane is not None:
            with contextlib.suppress(Exception):
                self.plane.stop()
        destroy(self.dir)


def kubectl(
    kubeconfig: Path, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    from gingham.k8s.cluster import kubernetes_bin_dir

    result = subprocess.run(
        [str(kubernetes_bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result


def destroy(directory: Path) -> None:
    """Remove a cluster from its record; safe twice, and after any failure."""
    try:
        record = ClusterRecord.load(directory)
    except (OSError, ValueError):
        record = ClusterRecord(name="", directory=str(directory))
    for path in record.nodes:
        with contextlib.suppress(OSError, ValueError):
            destroy_node(NodeRecord.load(Path(path)))
    for pid in record.plane_pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in record.plane_pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in record.plane_pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if record.cgroup:
        remove_cgroups(record.cgroup)
    if record.bridge:
        subprocess.run(["ip", "link", "del", record.bridge], capture_output=True, check=False)
    if _is_mountpoint(directory):
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)
    shutil.rmtree(directory, ignore_errors=True)


def _is_mountpoint(path: Path) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return any(line.split()[1] == str(path) for line in f)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
