"""A real Kubernetes control plane for the tests, started once per session.

`kube_cluster` (session-scoped, registered in tests/conftest.py) starts
`gingham.k8s.cluster.ControlPlane` on loopback the first time a test asks for
it, applies manifests/crds.yaml and manifests/rbac.yaml, and stops every
process at the end of the session. Tests share it: each one uses names of its
own or removes what it created. A test skips with a clear reason when the
Kubernetes programs are not built (scripts/build-kubernetes, run by
`make install`) or etcd is missing.

`KubeCluster` adds what tests need beyond the product's `ControlPlane`:
kubectl against the admin kubeconfig, a ServiceAccount token from the
TokenRequest API, core Nodes with no kubelet, and an etcd compaction through
etcd's JSON gateway. `LoopbackRelay` brings the API server to a network
namespace's loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a test asks for the cluster (cryptography is slow to load)
    from gingham.k8s.cluster import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"


def require_kubernetes() -> Path:
    """The bin dir, or skip: the programs come from scripts/build-kubernetes."""
    from gingham.k8s.cluster import COMPONENTS, kubernetes_bin_dir

    bin_dir = kubernetes_bin_dir()
    missing = [p for p in (*COMPONENTS[1:], "kubectl") if not (bin_dir / p).exists()]
    if missing:
        pytest.skip(
            f"Kubernetes programs not built ({', '.join(missing)} missing in {bin_dir}):"
            " run scripts/build-kubernetes (make install does)"
        )
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (Debian package etcd-server; `make system-deps`)")
    return bin_dir


@dataclass
class KubeCluster:
    plane: ControlPlane
    state_dir: Path

    @property
    def admin_kubeconfig(self) -> Path:
        return self.plane.admin_kubeconfig

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        from gingham.k8s import localcluster

        result = localcluster.kubectl(
            kubeconfig or self.admin_kubeconfig, *args, check=False, stdin=stdin, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def apply(self, document: str) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=document)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token for the ServiceAccount from the TokenRequest API."""
        result = self.kubectl("create", "token", name, "-n", namespace, f"--duration={seconds}s")
        return result.stdout.strip()

    def add_core_node(
        self, name: str, labels: dict[str, str], addresses: list[tuple[str, str]]
    ) -> None:
        """A core Node with no kubelet behind it: labels, and addresses in its status."""
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}
        self.kubectl("create", "-f", "-", stdin=json.dumps(node))
        status = {"status": {"addresses": [{"type": t, "address": a} for t, a in addresses]}}
        self.kubectl(
            "patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(status)
        )

    def compact_etcd(self) -> int:
        """Drop etcd's history up to its current revision; returns that revision."""
        header = _etcd_post(self.plane.etcd_url, "/v3/kv/range", {"key": _b64(b"/")})
        revision = int(header["header"]["revision"])
        _etcd_post(
            self.plane.etcd_url,
            "/v3/kv/compaction",
            {"revision": str(revision), "physical": True},
        )
        return revision


class LoopbackRelay:
    """A TCP relay from 127.0.0.1 inside a network namespace to an address in
    the host's, byte for byte (TLS passes through untouched): how a test puts
    the session's API server where a DaemonSet pod in that namespace finds it.

    `start(make_listener)` takes a function that returns the listening socket;
    call it inside the namespace (`Netns.run`) so the socket belongs there.
    The relay's own threads run in the host namespace, so the connections it
    opens go to the host's `target`.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @staticmethod
    def listen() -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        return listener

    def start(self, listener: socket.socket) -> None:
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                inside, _ = self._listener.accept()
                outside = socket.create_connection(self.target, timeout=5)
            except OSError:
                return  # closed
            outside.settimeout(None)
            with self._lock:
                self._sockets |= {inside, outside}
            for source, sink in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _etcd_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        result: dict[str, Any] = json.load(reply)
        return result


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """etcd + kube-apiserver + controller manager + scheduler on loopback, with
    Gingham's CRDs and RBAC applied; one per test session."""
    from gingham.k8s.cluster import ControlPlane

    require_kubernetes()
    state_dir = Path(tempfile.mkdtemp(prefix="gingham-k8s-"))
    plane = ControlPlane(state_dir)
    try:
        plane.start()
        cluster = KubeCluster(plane, state_dir)
        cluster.kubectl("apply", "-f", str(MANIFESTS / "crds.yaml"))
        cluster.kubectl("apply", "-f", str(MANIFESTS / "rbac.yaml"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        yield cluster
    finally:
        plane.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
