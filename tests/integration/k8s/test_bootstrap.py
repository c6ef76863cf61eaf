"""`gingham node run --datastore kubernetes` registers its own node, as the
DaemonSet runs it: name from the downward API, BGP address auto-detected in
the (host) network namespace, labels from the core Node.

The "host" is a namespace we build (the default route on one of two
interfaces); the session's real API server is relayed to that namespace's
loopback (tests/support/kube.py), and the node agent authenticates with the
gingham-node ServiceAccount's token, as the DaemonSet's pods do. Nothing
leaves the namespaces and this machine's loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.k8s.autodetect import parse_method
from gingham.k8s.bootstrap import BootstrapError, bootstrap_node
from gingham.model.bgp import Node
from tests.support.kube import KubeCluster, LoopbackRelay
from tests.support.netns import Netns, Topology
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.kubernetes]

ROOT = Path(__file__).resolve().parents[3]
DETECTED = ipaddress.IPv4Interface("10.42.0.7/24")


@pytest.fixture
def host() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Topology() as topo:
        ns = topo.netns("bs")
        peer = topo.netns("bsp")
        topo.veth(ns, "rack0", peer, "p0")
        topo.veth(ns, "uplink0", peer, "p1")
        ns.ip("addr add 10.41.0.5/24 dev rack0")
        ns.ip(f"addr add {DETECTED} dev uplink0")
        ns.ip("route add default via 10.42.0.1 dev uplink0")
        yield ns


@dataclass
class Api:
    cluster: KubeCluster
    # The gingham-node ServiceAccount's kubeconfig, for the API server as seen from `host`.
    kubeconfig: Path


@pytest.fixture
def api(host: Netns, kube_cluster: KubeCluster, tmp_path: Path) -> Iterator[Api]:
    """The session's API server on the host namespace's 127.0.0.1, and the agent's token."""
    relay = LoopbackRelay((kube_cluster.plane.address, kube_cluster.plane.port))
    relay.start(host.run(LoopbackRelay.listen))  # the listening socket is made inside `host`
    token = kube_cluster.service_account_token("kube-system", "gingham-node")
    kubeconfig = kube_cluster.plane.token_kubeconfig(tmp_path / "agent.kubeconfig", token)
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    kubeconfig.write_text(json.dumps(config))
    kube_cluster.add_core_node(
        "kind-worker",
        {"rack": "rack1", "kubernetes.io/hostname": "kind-worker"},
        [("InternalIP", "10.42.0.7")],
    )
    try:
        yield Api(kube_cluster, kubeconfig)
    finally:
        relay.close()
        kube_cluster.kubectl("delete", "nodes.gingham.io", "--all", "--wait=true")
        kube_cluster.kubectl("delete", "node", "kind-worker", "--ignore-not-found", "--wait=true")


def stored_node(api: Api, name: str) -> dict[str, Any] | None:
    shown = api.cluster.kubectl("get", "nodes.gingham.io", name, "-o", "json", check=False)
    if shown.returncode != 0:
        assert "NotFound" in shown.stderr, shown.stderr
        return None
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def register_in(host: Netns, api: Api, name: str, method: str | None) -> Node | None:
    async def register() -> Node | None:
        store = KubernetesDatastore(str(api.kubeconfig), timeout=5.0)
        try:
            return await bootstrap_node(
                store, name, None if method is None else parse_method(method)
            )
        finally:
            await store.close()

    # The loop and its worker threads are born inside `host` (threads inherit it).
    return host.run(lambda: asyncio.run(register()))


def test_registers_the_detected_address_and_the_core_labels(host: Netns, api: Api) -> None:
    # Under the agent's token: everything registration asks for, the ClusterRole grants.
    node = register_in(host, api, "kind-worker", None)

    assert node is not None and node.spec.bgp is not None
    assert node.spec.bgp.ipv4_address == DETECTED
    assert node.metadata.labels == {"rack": "rack1", "kubernetes.io/hostname": "kind-worker"}
    again = register_in(host, api, "kind-worker", "interface=rack.*")
    assert again is not None and again.spec.bgp is not None
    assert again.spec.bgp.ipv4_address == ipaddress.IPv4Interface("10.41.0.5/24")


def test_a_name_that_is_no_core_node_says_how_the_name_is_wired(host: Netns, api: Api) -> None:
    with pytest.raises(BootstrapError, match=r'"kind-wrker".*kind-worker.*spec\.nodeName'):
        register_in(host, api, "kind-wrker", None)
    assert stored_node(api, "kind-wrker") is None


def test_no_address_by_the_method_names_the_setting(host: Netns, api: Api) -> None:
    with pytest.raises(BootstrapError, match="GINGHAM_IP_AUTODETECTION_METHOD=interface=eth9"):
        register_in(host, api, "kind-worker", "interface=eth9")
    assert stored_node(api, "kind-worker") is None


def node_run(host: Netns, api: Api, run_dir: Path, method: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KUBECONFIG": str(api.kubeconfig), "NODE_NAME": "kind-worker"}
    env["GINGHAM_IP_AUTODETECTION_METHOD"] = method
    env.pop("GINGHAM_DATASTORE", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    # The DaemonSet's command, with --node $(NODE_NAME) expanded as the kubelet does.
    argv = [sys.executable, "-m", "gingham.cli.main", "node", "run", "--node", "kind-worker",
            "--datastore", "kubernetes", "--run-dir", str(run_dir), "--grace", "2"]  # fmt: skip
    return subprocess.Popen(
        ["ip", "netns", "exec", host.name, *argv],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_node_run_in_kubernetes_mode_registers_then_runs(
    host: Netns, api: Api, tmp_path: Path
) -> None:
    proc = node_run(host, api, tmp_path / "run", "first-found")
    try:
        stored = wait_for(lambda: stored_node(api, "kind-worker"), timeout=60, interval=0.5)
        assert stored["spec"]["bgp"]["ipv4Address"] == str(DETECTED)
        # Registered, so it went on to run its agents, which followed the
        # datastore under the agent's token until both are ready (the
        # DaemonSet's readiness probe).
        probe = [sys.executable, "-m", "gingham.k8s.probe", "readiness", "--timeout", "2"]
        wait_for(lambda: host.exec(probe, check=False).returncode == 0, timeout=120, interval=0.5)
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "does not exist" not in output
    logs = "".join(p.read_text() for p in (tmp_path / "run" / "logs").glob("*.log"))
    assert "forbidden" not in (output + logs).lower()  # every call the agents made was allowed


def test_node_run_with_a_bad_method_is_one_clear_line(
    host: Netns, api: Api, tmp_path: Path
) -> None:
    proc = node_run(host, api, tmp_path / "run", "can-reach=nowhere")
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # it did not stop: killed by PID, not left running
            proc.kill()
            proc.communicate()

    assert proc.returncode == 1, output
    assert "GINGHAM_IP_AUTODETECTION_METHOD" in output and "nowhere" in output
    assert "Traceback" not in output
    assert stored_node(api, "kind-worker") is None
