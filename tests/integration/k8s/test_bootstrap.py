"""`gingham node run --datastore kubernetes` registers its own node, as the
DaemonSet runs it: name from the downward API, BGP address auto-detected in
the (host) network namespace, labels from the core Node.

The "host" is a namespace we build (the default route on one of two
interfaces); the fake API server listens on that namespace's loopback, so
the node agent reaches it exactly as a DaemonSet pod reaches its API server.
Nothing leaves the namespaces.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.k8s.autodetect import parse_method
from gingham.k8s.bootstrap import BootstrapError, bootstrap_node
from gingham.k8s.rbac import required_rules
from gingham.model.bgp import Node
from tests.support.fake_apiserver import FakeApiServer
from tests.support.netns import Netns, Topology
from tests.support.poll import wait_for

pytestmark = pytest.mark.root

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


@pytest.fixture
def api(host: Netns, tmp_path: Path) -> Iterator[FakeApiServer]:
    """The fake API server on the host namespace's 127.0.0.1."""
    server = FakeApiServer(tmp_path)
    host.run(server.start)  # the listening socket is made inside `host`
    try:
        server.seed_node(
            "kind-worker",
            {"rack": "rack1", "kubernetes.io/hostname": "kind-worker"},
            [("InternalIP", "10.42.0.7")],
        )
        yield server
    finally:
        server.stop()


def stored_node(api: FakeApiServer, name: str) -> dict[str, object] | None:
    with api.cond:
        return api.state.objects.get(("nodes", name))


def register_in(host: Netns, api: FakeApiServer, name: str, method: str | None) -> Node | None:
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


def test_registers_the_detected_address_and_the_core_labels(
    host: Netns, api: FakeApiServer
) -> None:
    api.requests.clear()
    node = register_in(host, api, "kind-worker", None)
    # Everything registration asked the API server for, the ClusterRole grants.
    assert set(api.requests) <= required_rules()
    assert ("", "nodes", "list") in api.requests

    assert node is not None and node.spec.bgp is not None
    assert node.spec.bgp.ipv4_address == DETECTED
    assert node.metadata.labels == {"rack": "rack1", "kubernetes.io/hostname": "kind-worker"}
    again = register_in(host, api, "kind-worker", "interface=rack.*")
    assert again is not None and again.spec.bgp is not None
    assert again.spec.bgp.ipv4_address == ipaddress.IPv4Interface("10.41.0.5/24")


def test_a_name_that_is_no_core_node_says_how_the_name_is_wired(
    host: Netns, api: FakeApiServer
) -> None:
    with pytest.raises(BootstrapError, match=r'"kind-wrker".*kind-worker.*spec\.nodeName'):
        register_in(host, api, "kind-wrker", None)
    assert stored_node(api, "kind-wrker") is None


def test_no_address_by_the_method_names_the_setting(host: Netns, api: FakeApiServer) -> None:
    with pytest.raises(BootstrapError, match="GINGHAM_IP_AUTODETECTION_METHOD=interface=eth9"):
        register_in(host, api, "kind-worker", "interface=eth9")
    assert stored_node(api, "kind-worker") is None


def node_run(host: Netns, api: FakeApiServer, run_dir: Path, method: str) -> subprocess.Popen[str]:
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
    host: Netns, api: FakeApiServer, tmp_path: Path
) -> None:
    proc = node_run(host, api, tmp_path / "run", "first-found")
    try:
        stored = wait_for(lambda: stored_node(api, "kind-worker"), timeout=60)
        spec = stored["spec"]
        assert isinstance(spec, dict)
        assert spec["bgp"]["ipv4Address"] == str(DETECTED)
        # Registered, so it went on to supervise its agents instead of failing.
        wait_for((tmp_path / "run" / "logs" / "felix.log").exists, timeout=60)
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "does not exist" not in output


def test_node_run_with_a_bad_method_is_one_clear_line(
    host: Netns, api: FakeApiServer, tmp_path: Path
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
