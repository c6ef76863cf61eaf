"""A real Kubernetes control plane on this machine: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler as processes we start and stop.

Used by ``gingham lab up --kubernetes`` and by the tests (tests/support/kube.py)::

    plane = ControlPlane(Path("/run/gingham/k8s"), address="127.0.0.1")
    plane.start()                      # waits for /readyz and the controllers
    plane.server                       # "https://127.0.0.1:PORT"
    plane.admin_kubeconfig             # Path: system:masters client certificate
    plane.ca                           # CertificateAuthority: sign node certs
    plane.ca_cert_path, plane.ca_key_path
    plane.client_kubeconfig(path, user="system:node:n1", groups=["system:nodes"])
    plane.token_kubeconfig(path, token)  # e.g. a ServiceAccount's TokenRequest
    plane.etcd_url                     # "http://127.0.0.1:PORT" (v3 JSON gateway)
    plane.restart("kube-apiserver")    # stop and start one component, same ports
    plane.stop()                       # every process by PID; state_dir is kept

What it sets up: TLS everywhere on the API server (a CA of its own, made with
`gingham.k8s.pki`), client-certificate users for the admin and the
controllers, a service-account key pair and issuer (the controller manager
mints tokens, the API server serves TokenRequest), ``Node,RBAC``
authorization with NodeRestriction, the serviceaccount, token and
node-lifecycle controllers (all of the defaults). The API server listens on
`address` only (loopback by default; a host-side veth address when kubelets in
network namespaces must reach it); etcd, the controller manager's and the
scheduler's health ports on 127.0.0.1, each on a free port.

Invariants: `start` either returns with every component healthy or stops
whatever it started and raises `ControlPlaneError` with the failing
component's log tail; nothing is ever killed except by the PIDs we hold; the
programs come from `kubernetes_bin_dir()` (scripts/build-kubernetes builds
them there).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from gingham.k8s.pki import CertificateAuthority, KeyPair, service_account_keys

# scripts/build-kubernetes reads this line: the one place the release is chosen.
KUBERNETES_VERSION = "v1.34.4"
CACHE_ROOT = Path("/var/cache/gingham/kubernetes")
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_ISSUER = "https://kubernetes.default.svc.cluster.local"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class ControlPlaneError(RuntimeError):
    """A component did not start or become healthy."""


def kubernetes_bin_dir() -> Path:
    """Where scripts/build-kubernetes puts the programs ($GINGHAM_K8S_BIN_DIR overrides)."""
    override = os.environ.get("GINGHAM_K8S_BIN_DIR")
    return Path(override) if override else CACHE_ROOT / KUBERNETES_VERSION / "bin"


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=10)

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""


class ControlPlane:
    def __init__(
        self,
        state_dir: Path,
        *,
        address: str = "127.0.0.1",
        bin_dir: Path | None = None,
        etcd_binary: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.address = address
        self.bin_dir = bin_dir or kubernetes_bin_dir()
        self._etcd_binary = etcd_binary or shutil.which("etcd") or "etcd"
        self.ca = CertificateAuthority.create()
        self._etcd_port = free_port("127.0.0.1")
        self._etcd_peer_port = free_port("127.0.0.1")
        self.port = free_port(address)
        self._health_ports = {
            "kube-controller-manager": free_port("127.0.0.1"),
            "kube-scheduler": free_port("127.0.0.1"),
        }
        self._processes: dict[str, _Process] = {}

    # --- what callers use ---------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self._etcd_port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def ca_cert_path(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.state_dir / "pki" / "ca.key"

    def pids(self) -> dict[str, int]:
        return {n: p.popen.pid for n, p in self._processes.items() if p.popen is not None}

    def client_kubeconfig(self, path: Path, user: str, groups: Iterable[str] = ()) -> Path:
        """A kubeconfig for `user` (in `groups`) with a client certificate from our CA."""
        return self._certificate_kubeconfig(path, user, self.ca.issue(user, groups))

    def token_kubeconfig(self, path: Path, token: str, user: str = "token") -> Path:
        """A kubeconfig that authenticates with a bearer token."""
        return self._write_kubeconfig(path, user, {"token": token})

    # --- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        missing = [p for p in COMPONENTS[1:] if not (self.bin_dir / p).exists()]
        if missing:
            raise ControlPlaneError(
                f"{', '.join(missing)} not found in {self.bin_dir}:"
                " run scripts/build-kubernetes (make install does)"
            )
        if shutil.which(self._etcd_binary) is None:
            raise ControlPlaneError("etcd not found (Debian package etcd-server)")
        deadline = time.monotonic() + timeout
        try:
            self._write_credentials()
            for name in COMPONENTS:
                self._processes[name] = _Process(name, self._argv(name), self._log(name))
                self._processes[name].start()
                self._wait_healthy(name, deadline)
            self._wait("kube-controller-manager", self._default_service_account_exists, deadline)
        except BaseException:
            self.stop()
            raise

    def restart(self, name: str, timeout: float = 120.0) -> None:
        """Stop one component and start it again on the same ports and data."""
        process = self._processes[name]
        process.stop()
        process.start()
        self._wait_healthy(name, time.monotonic() + timeout)

    def stop_component(self, name: str) -> None:
        self._processes[name].stop()

    def start_component(self, name: str, timeout: float = 120.0) -> None:
        self._processes[name].start()
        self._wait_healthy(name, time.monotonic() + timeout)

    def stop(self) -> None:
        for name in reversed(COMPONENTS):
            if name in self._processes:
                self._processes[name].stop()

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- set-up -------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def _write_credentials(self) -> None:
        pki = self.state_dir / "pki"
        for sub in ("pki", "logs", "etcd", *COMPONENTS[1:]):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        _write_pair(pki, "ca", self.ca.pair)
        serving = self.ca.issue(
            "kube-apiserver",
            client=False,
            server=True,
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=sorted({self.address, "127.0.0.1", "10.96.0.1"}),
        )
        _write_pair(pki, "apiserver", serving)
        _write_pair(
            pki, "apiserver-kubelet-client", self.ca.issue("kube-apiserver", ["system:masters"])
        )
        _write_pair(pki, "sa", service_account_keys())
        admin = self.ca.issue("kubernetes-admin", ["system:masters"])
        _write_pair(pki, "admin", admin)
        self._certificate_kubeconfig(self.admin_kubeconfig, "kubernetes-admin", admin)
        for name, user in (
            ("kube-controller-manager", "system:kube-controller-manager"),
            ("kube-scheduler", "system:kube-scheduler"),
        ):
            self.client_kubeconfig(self.state_dir / name / "kubeconfig", user)

    def _certificate_kubeconfig(self, path: Path, user: str, pair: KeyPair) -> Path:
        credentials = {
            "client-certificate-data": _b64(pair.cert_pem),
            "client-key-data": _b64(pair.key_pem),
        }
        return self._write_kubeconfig(path, user, credentials)

    def _write_kubeconfig(self, path: Path, user: str, credentials: dict[str, str]) -> Path:
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "gingham",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _b64(self.ca.pair.cert_pem),
                    },
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "gingham", "context": {"cluster": "gingham", "user": user}}],
            "current-context": "gingham",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        path.chmod(0o600)
        return path

    def _argv(self, name: str) -> list[str]:
        pki = self.state_dir / "pki"
        if name == "etcd":
            client = self.etcd_url
            peer = f"http://127.0.0.1:{self._etcd_peer_port}"
            return [
                self._etcd_binary,
                "--name=gingham-k8s",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=gingham-k8s={peer}",
                "--log-level=error",
            ]
        binary = str(self.bin_dir / name)
        if name == "kube-apiserver":
            return [
                binary,
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.port}",
                f"--cert-dir={self.state_dir / name}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                # Kubelets by their node address: a node's name resolves nowhere here.
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-issuer={SERVICE_ISSUER}",
                f"--service-account-key-file={pki / 'sa.crt'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                # A loopback address cannot be the kubernetes Service's endpoint.
                *(["--endpoint-reconciler-type=none"] if _loopback(self.address) else []),
                "--profiling=false",
                "--v=1",
            ]
        kubeconfig = self.state_dir / name / "kubeconfig"
        common = [
            binary,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._health_ports[name]}",
            f"--cert-dir={self.state_dir / name}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]
        if name == "kube-controller-manager":
            return [
                *common,
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ]
        return common

    # --- health -------------------------------------------------------------------

    def _wait_healthy(self, name: str, deadline: float) -> None:
        checks: dict[str, Callable[[], bool]] = {
            "etcd": lambda: self._get(f"{self.etcd_url}/health", json_key="health") == "true",
            "kube-apiserver": lambda: self._get(f"{self.server}/readyz") == "ok",
            "kube-controller-manager": lambda: self._local_healthz(name),
            "kube-scheduler": lambda: self._local_healthz(name),
        }
        self._wait(name, checks[name], deadline)

    def _wait(self, name: str, check: Callable[[], bool], deadline: float) -> None:
        process = self._processes[name]
        while True:
            if not process.alive():
                raise ControlPlaneError(f"{name} exited; log {process.log}:\n{process.tail()}")
            if check():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{name} not healthy in time; log {process.log}:\n{process.tail()}"
                )
            time.sleep(0.2)

    def _local_healthz(self, name: str) -> bool:
        # Their serving certificates are self-signed: health only, nothing secret.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{self._health_ports[name]}/healthz"
        return self._get(url, context=insecure) == "ok"

    def _default_service_account_exists(self) -> bool:
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        return self._get(url, json_key="kind") == "ServiceAccount"

    def _admin_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_cert_path))
        pki = self.state_dir / "pki"
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return context

    def _get(self, url: str, json_key: str = "", context: ssl.SSLContext | None = None) -> str:
        if url.startswith("https://") and context is None:
            context = self._admin_context()
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as reply:
                body = str(reply.read().decode(errors="replace"))
        except (OSError, urllib.error.URLError):
            return ""
        if not json_key:
            return body.strip()
        try:
            return str(json.loads(body).get(json_key, ""))
        except (ValueError, AttributeError):
            return ""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_pair(directory: Path, name: str, pair: KeyPair) -> None:
    (directory / f"{name}.crt").write_bytes(pair.cert_pem)
    key = directory / f"{name}.key"
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)


def _loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"
