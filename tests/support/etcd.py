"""Run a real etcd v3 server on loopback for tests.

`EtcdServer` starts ``etcd`` on 127.0.0.1 with free client and peer ports and a
temporary data dir, waits until ``/health`` answers, and stops it by PID. It can
stop and start again on the same ports and data dir (for resume tests): the
store's revisions survive the restart. `EtcdCluster` starts several members
together (for endpoint failover with a quorum left).

Also two helpers that talk etcd's JSON gateway (``/v3/kv/...``) with urllib, so
fixtures can wipe keys and compact history without the code under test.

`require_etcd()` skips the calling test with a clear reason when the ``etcd``
binary is missing (Debian package ``etcd-server``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.poll import wait_for


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def require_etcd() -> str:
    binary = etcd_binary()
    if binary is None:
        pytest.skip("etcd is not installed (Debian package etcd-server; `make system-deps`)")
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EtcdServer:
    """One etcd member; alone it is a one-member cluster (see `EtcdCluster`)."""

    def __init__(self, binary: str | None = None, name: str = "gingham-test") -> None:
        self.binary = binary or require_etcd()
        self.name = name
        self.data_parent = tempfile.mkdtemp(prefix="gingham-etcd-")
        self.data_dir = os.path.join(self.data_parent, "data")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.data_parent, "etcd.log")
        # name=peer URL of every member; set by EtcdCluster before the first launch.
        self.initial_cluster = f"{name}={self.peer_url}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def url(self) -> str:
        """The Gingham datastore URL for this server."""
        return f"etcd://{self.endpoint}"

    def start(self, timeout: float = 20.0) -> None:
        self.launch()
        self.wait_healthy(timeout)

    def launch(self) -> None:
        """Start the process without waiting (cluster members must start together)."""
        assert self.process is None, "already running"
        client = f"http://{self.endpoint}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--name={self.name}",
                    f"--data-dir={self.data_dir}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={self.peer_url}",
                    f"--initial-advertise-peer-urls={self.peer_url}",
                    f"--initial-cluster={self.initial_cluster}",
                    "--initial-cluster-state=new",
                    "--log-level=error",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Poll /health (true once the member sees a leader)."""
        try:
            wait_for(self._healthy, timeout=timeout, interval=0.05, what=f"etcd on {self.endpoint}")
        except AssertionError:
            self.stop()
            with open(self.log_path, errors="replace") as log:
                tail = log.read()[-2000:]
            raise AssertionError(f"etcd did not become healthy; log tail:\n{tail}") from None

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"etcd exited with {self.process.returncode}; see {self.log_path}")
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as reply:
                return bool(json.load(reply).get("health") == "true")
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it lingers; the data dir is kept."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_parent, ignore_errors=True)

    # --- JSON gateway helpers (fixtures only) -----------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://{self.endpoint}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            result: dict[str, Any] = json.load(reply)
            return result

    def wipe(self, prefix: str = "/") -> None:
        """Delete every key under `prefix`."""
        key = prefix.encode()
        end = bytearray(key)
        end[-1] += 1
        self._post(
            "/v3/kv/deleterange",
            {"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(end).decode()},
        )

    def revision(self) -> int:
        reply = self._post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})
        return int(reply["header"]["revision"])

    def compact(self) -> int:
        """Drop all history up to the current revision; returns that revision."""
        revision = self.revision()
        self._post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def __enter__(self) -> EtcdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EtcdCluster:
    """`size` members on loopback, started together; `close` stops and removes all."""

    def __init__(self, size: int = 3) -> None:
        binary = require_etcd()
        self.members = [EtcdServer(binary, name=f"gingham-test-{i}") for i in range(size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def start(self, timeout: float = 30.0) -> None:
        for member in self.members:
            member.launch()
        for member in self.members:
            member.wait_healthy(timeout)

    def close(self) -> None:
        for member in self.members:
            member.close()

    def __enter__(self) -> EtcdCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
