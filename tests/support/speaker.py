"""Run the real gingham-bgp (`python -m bird_agent`) in a test namespace, stop it by PID.

The run dir layout is the one `gingham node run` uses: felix's socket at
`<run>/felix.sock`, the speaker's own files (speaker.sock, ExaBGP's config and
API socket) under `<run>/bgp`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.netns import Netns


class SpeakerProcess:
    """One gingham-bgp in a node namespace, stopped by PID."""

    def __init__(self, ns: Netns, node: str, url: str, run_dir: Path, log: Path) -> None:
        self.ns, self.node, self.url, self.run_dir, self.log = ns, node, url, run_dir, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "bird_agent",
                "--node", self.node, "--datastore", self.url,
                "--run-dir", str(self.run_dir / "bgp"),
                "--felix-socket", str(self.run_dir / "felix.sock")]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
