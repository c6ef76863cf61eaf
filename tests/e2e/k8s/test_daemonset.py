"""The DaemonSet as shipped, on a real Kubernetes: ``gingham lab up --kubernetes``.

One cluster for the module (brought up once through the lab CLI, as a person
would): the control plane, two kubelets in network namespaces of their own,
each with its own containerd and kube-proxy, manifests/ applied as shipped,
one busybox pod per node made with kubectl. Then, in order: ``lab status``
names the kubeconfig; the install-cni init container's files; each node's
Gingham Node and block; ``lab ping`` (pods on different nodes, pool
addresses); ``kubectl exec`` into the DaemonSet pod runs ``gingham node
status``; a rolling update keeps a pod-to-pod ping going without loss; ``lab
down`` leaves no process, namespace, link, mount or cgroup behind.

Needs the Kubernetes programs (scripts/build-kubernetes) and podman,
debootstrap, containerd; the first run builds the images (minutes).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from tests.support.lab import LabRun, alive, host_links, netns_names
from tests.support.names import record_prefix
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.kubernetes,
              pytest.mark.timeout(1800)]  # fmt: skip

POOL = IPv4Network("10.244.0.0/16")
GINGHAM = str(Path(sys.executable).parent / "gingham")


def _require_programs() -> None:
    from gingham.k8s.cluster import kubernetes_bin_dir

    bin_dir = kubernetes_bin_dir()
    programs = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                "kube-proxy", "kubectl")  # fmt: skip
    missing = [p for p in programs if not (bin_dir / p).exists()]
    if missing:
        pytest.skip(f"Kubernetes programs not built ({', '.join(missing)} missing in {bin_dir}):"
                    " run scripts/build-kubernetes (make install does)")  # fmt: skip
    for tool in ("etcd", "containerd", "runc", "podman", "debootstrap", "ctr", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/install-system-deps)")


class Cluster:
    """The lab, and kubectl against its admin kubeconfig."""

    def __init__(self, lab: LabRun) -> None:
        from gingham.lab.kubernetes import cluster_tag

        self.lab = lab
        self.tag = cluster_tag(lab.name)
        self.kubeconfig = Path(lab.status()["kubeconfig"])
        self.nodes = sorted(lab.status()["nodes"], key=lambda n: n["name"])
        self.cluster_dir = lab.directory / "cluster"

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        from gingham.k8s.cluster import kubernetes_bin_dir

        result = subprocess.run(
            [str(kubernetes_bin_dir() / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def gingham_get(self, kind: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            [GINGHAM, "--datastore", f"kubernetes://?kubeconfig={self.kubeconfig}",
             "get", kind, "-o", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        found = json.loads(out)
        return found if isinstance(found, list) else found.get("items", [found])

    def pods(self) -> list[dict[str, Any]]:
        status: list[dict[str, Any]] = self.lab.status()["pods"]
        return status

    def ds_pod(self, node: str) -> str:
        out = self.kubectl(
            "-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=gingham-node",
            "--field-selector", f"spec.nodeName={node}", "-o",
            "jsonpath={.items[*].metadata.name}",
        )  # fmt: skip
        names = out.split()
        assert len(names) == 1, f"DaemonSet pods on {node}: {names}"
        return names[0]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    from gingham.lab.kubernetes import cluster_tag

    _require_programs()
    # A short root: containerd's and the kubelet's unix sockets live below it.
    root = Path(tempfile.mkdtemp(prefix="gtk", dir="/tmp"))
    lab = LabRun(root)
    record_prefix(cluster_tag(lab.name))  # its namespaces and host links
    try:
        done = lab.cli(
            "up", "--kubernetes", "--name", lab.name, "--nodes", "2", "--pods-per-node", "1",
            "--wait", "1200", timeout=1500,
        )  # fmt: skip
        print(done.stderr[-3000:])
        assert done.returncode == 0, done.stderr[-4000:]
        yield Cluster(lab)
    finally:
        lab.cli("down", "--name", lab.name, timeout=300)
        shutil.rmtree(root, ignore_errors=True)


def test_lab_status_names_the_kubeconfig_and_every_node(cluster: Cluster) -> None:
    status = cluster.lab.status()
    assert Path(status["kubeconfig"]).is_file()
    assert [n["name"] for n in cluster.nodes] == [f"{cluster.lab.name}-node1",
                                                  f"{cluster.lab.name}-node2"]  # fmt: skip

    def healthy() -> bool:
        # Each status asks felix and the speaker over gRPC with a 1 s deadline:
        # a loaded machine can miss one; poll.
        nodes = cluster.lab.status()["nodes"]
        return all(
            n["felix_serving"]
            and n["speaker"] is not None
            and [p["state"] for p in n["speaker"]["peers"]] == ["established"]
            for n in nodes
        )

    wait_for(healthy, timeout=120, interval=1.0, what="felix serving, one Established peer each")
    out = cluster.kubectl("get", "nodes", "-o", "json")
    ready = [
        n["metadata"]["name"]
        for n in json.loads(out)["items"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    assert sorted(ready) == [n["name"] for n in cluster.nodes]


def test_install_cni_wrote_the_plugin_and_the_conflist_on_every_node(cluster: Cluster) -> None:
    for node in cluster.nodes:
        host = cluster.cluster_dir / "nodes" / node["name"] / "host"
        plugin = host / "opt" / "cni" / "bin" / "gingham"
        assert "/opt/gingham/bin/python3" in plugin.read_text(), plugin
        [conflist] = list((host / "etc-cni" / "net.d").glob("*.conflist"))
        plugins = [p["type"] for p in json.loads(conflist.read_text())["plugins"]]
        assert plugins[0] == "gingham", plugins
        assert (host / "opt" / "gingham" / "bin" / "python3").exists()


def test_every_node_registered_itself_and_holds_a_block(cluster: Cluster) -> None:
    names = {n["name"] for n in cluster.nodes}
    registered = {n["metadata"]["name"] for n in cluster.gingham_get("nodes")}
    assert names <= registered, registered
    owners = {b["spec"]["node"] for b in cluster.gingham_get("blockaffinities")}
    assert names <= owners, owners


def test_lab_ping_pods_on_different_nodes_with_pool_addresses(cluster: Cluster) -> None:
    pods = cluster.pods()
    assert {p["node"] for p in pods} == {n["name"] for n in cluster.nodes}
    for pod in pods:
        assert IPv4Address(pod["address"]) in POOL, pod
    cluster.lab.wait_full_matrix(timeout=120)


def test_kubectl_exec_into_the_daemonset_pod_runs_node_status(cluster: Cluster) -> None:
    node = cluster.nodes[0]["name"]
    out = cluster.kubectl(
        "-n", "kube-system", "exec", cluster.ds_pod(node), "-c", "node", "--",
        "gingham", "node", "status", "--run-dir", "/var/run/gingham",
    )  # fmt: skip
    assert node in out, out
    assert "Established" in out, out


def test_a_rolling_update_keeps_a_pod_to_pod_ping_going(cluster: Cluster) -> None:
    source, target = cluster.pods()[0], cluster.pods()[1]
    start = f"ping -i 0.2 {target['address']} > /tmp/roll.log 2>&1 & echo $! > /tmp/roll.pid"
    cluster.kubectl("exec", source["name"], "--", "sh", "-c", start)
    cluster.kubectl("-n", "kube-system", "rollout", "restart", "ds/gingham-node")
    cluster.kubectl("-n", "kube-system", "rollout", "status", "ds/gingham-node",
                    "--timeout=600s", timeout=620)  # fmt: skip

    def replies() -> int:
        log = cluster.kubectl("exec", source["name"], "--", "cat", "/tmp/roll.log", check=False)
        return log.count("bytes from")

    # The new agents hold the routes: 10 more replies after the last pod is back.
    after = replies()
    wait_for(lambda: replies() >= after + 10, timeout=60, interval=0.5, what="replies after")
    summary = cluster.kubectl(
        "exec", source["name"], "--", "sh", "-c",
        # The pod's PID 1 (sleep) reaps nothing: wait for ping's summary, not its exit.
        "kill -INT $(cat /tmp/roll.pid); while ! grep -q 'packets transmitted' /tmp/roll.log;"
        " do sleep 0.1; done; cat /tmp/roll.log",
    )  # fmt: skip
    match = re.search(r"(\d+) packets transmitted, (\d+) packets received", summary)
    assert match, summary
    sent, received = int(match.group(1)), int(match.group(2))
    print(f"rolling update of the DaemonSet: {sent} pings, {sent - received} lost")
    assert received == sent, f"{sent - received} of {sent} pings lost during the rolling update"


def test_lab_down_leaves_nothing(cluster: Cluster) -> None:
    from gingham.k8s.localcluster import ClusterRecord
    from gingham.k8s.nodes import NodeRecord

    record = ClusterRecord.load(cluster.cluster_dir)
    pids = set(record.plane_pids.values())
    for path in record.nodes:
        pids |= set(NodeRecord.load(Path(path)).pids.values())
    assert pids and all(alive(pid) for pid in pids)
    done = cluster.lab.cli("down", "--name", cluster.lab.name, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not [pid for pid in pids if alive(pid)]
    assert not [ns for ns in netns_names() if ns.startswith(cluster.tag)]
    assert not [link for link in host_links() if link.startswith(cluster.tag)]
    mounts = Path("/proc/self/mounts").read_text()
    assert str(cluster.lab.directory) not in mounts
    assert not list(Path("/sys/fs/cgroup").glob(f"*/gingham-k8s-{cluster.tag}"))
    assert not cluster.lab.directory.exists()
