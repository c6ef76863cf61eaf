"""Run a real etcd v3 server on loopback for tests.

`EtcdServer` starts ``etcd`` on 127.0.0.1 with free client and peer ports and a
temporary data dir, waits until ``/health`` answers, and stops it by PID. It can
stop and start again on the same ports and data dir (for resume tests): the
store's revisions survive the restart.

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
import time
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
    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or require_etcd()
        self.data_parent = tempfile.mkdtemp(prefix="gingham-etcd-")
        self.data_dir = os.path.join(self.data_parent, "data")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.data_parent, "etcd.log")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        """The Gingham datastore URL for this server."""
        return f"etcd://{self.endpoint}"

    def start(self, timeout: float = 20.0) -> None:
        assert self.process is None, "already running"
        client = f"http://{self.endpoint}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--name=gingham-test",
                    f"--data-dir={self.data_dir}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=gingham-test={peer}",
                    "--initial-cluster-state=new",
                    "--log-level=error",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
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


def wait_port_closed(port: int, timeout: float = 5.0) -> None:
    def closed() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) != 0

    wait_for(closed, timeout=timeout, what=f"port {port} to close")


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
