"""The DaemonSet's probe command against two health endpoints on loopback:
healthy only when felix and the speaker both answer 200; a failure names the agent."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


class Endpoint:
    """An agent's /liveness and /readiness, answering `status`."""

    def __init__(self) -> None:
        self.status = 200
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = endpoint.status if self.path in ("/liveness", "/readiness") else 404
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok\n" if code == 200 else b"not live\n")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def agents() -> Iterator[tuple[Endpoint, Endpoint]]:
    felix, speaker = Endpoint(), Endpoint()
    try:
        yield felix, speaker
    finally:
        felix.close()
        speaker.close()


def probe(kind: str, felix: str, speaker: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gingham.k8s.probe", kind, "--felix", felix,
         "--speaker", speaker, "--timeout", "2"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_healthy_only_when_both_agents_answer(agents: tuple[Endpoint, Endpoint]) -> None:
    felix, speaker = agents
    for kind in ("liveness", "readiness"):
        ok = probe(kind, felix.address, speaker.address)
        assert (ok.returncode, ok.stderr) == (0, "")

    speaker.status = 503
    bad = probe("readiness", felix.address, speaker.address)

    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [f"speaker readiness at {speaker.address}: 503 not live"]


def test_an_agent_not_listening_is_named(agents: tuple[Endpoint, Endpoint]) -> None:
    felix, speaker = agents
    address = speaker.address
    speaker.close()  # nothing listens there any more

    result = probe("liveness", felix.address, address)

    assert result.returncode == 1
    assert result.stderr.startswith(f"speaker liveness at {address}: no answer")
