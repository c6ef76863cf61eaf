"""`python -m bird_agent` (gingham-bgp) as a process: user errors and a clean run.

A global BGPPeer in a sqlite datastore is enough for the speaker to bring up
a session with a real BIRD; SIGTERM stops it (and its ExaBGP) with exit 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gingham.datastore import open_datastore
from gingham.model.documents import parse_resource
from tests.integration.bgp.conftest import Lab, daemon_says, eventually, our_address, their_address

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_unknown_node_is_a_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bird_agent", "--node", "ghost",
         "--datastore", f"sqlite:///{tmp_path}/empty.db", "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert 'Node "ghost" does not exist' in done.stderr
    assert "Traceback" not in done.stderr


async def test_speaker_process_peers_with_a_global_bgp_peer_and_stops_cleanly(
    lab: Lab, tmp_path: Path
) -> None:
    bird = await lab.daemon("bird", 1, ibgp=False)
    url = f"sqlite:///{tmp_path}/gingham.db"
    store = open_datastore(url)
    try:
        for doc in (
            {"kind": "Node", "metadata": {"name": "n1"},
             "spec": {"bgp": {"ipv4Address": f"{our_address(1)}/24"}}},
            {"kind": "BGPConfiguration", "metadata": {"name": "default"},
             "spec": {"holdTime": "9s"}},
            {"kind": "BGPPeer", "metadata": {"name": "tor"},
             "spec": {"peerIP": str(their_address(1)), "asNumber": 65002}},
        ):  # fmt: skip
            await store.create(parse_resource({"apiVersion": "gingham.io/v1", **doc}))
    finally:
        await store.close()

    log = (tmp_path / "speaker.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lab.us, sys.executable, "-m", "bird_agent",
        "--node", "n1", "--datastore", url, "--run-dir", str(tmp_path / "run"),
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        await daemon_says(bird.established, what="BIRD Established with the speaker")
        await check_status_surfaces(lab, tmp_path / "run")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        await daemon_says(lambda: not bird.established(), what="session gone after SIGTERM")

        async def socket_removed() -> bool:
            return not (tmp_path / "run" / "exabgp-api.sock").exists()

        await eventually(socket_removed, 5, "API socket removed")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


def gingham(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gingham.cli.main", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


async def check_status_surfaces(lab: Lab, run: Path) -> None:
    """speaker.sock (0600) answers `gingham node status`; metrics on localhost HTTP."""
    sock = run / "speaker.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600

    async def says_up() -> subprocess.CompletedProcess[str] | None:
        done = gingham("node", "status", "--run-dir", str(run))
        return done if done.returncode == 0 and " up " in done.stdout else None

    table = await eventually(says_up, 10, "node status shows the session up")
    row = next(line for line in table.stdout.splitlines() if str(their_address(1)) in line)
    assert "| global " in row, table.stdout
    as_json = json.loads(gingham("node", "status", "--run-dir", str(run), "-o", "json").stdout)
    (peer,) = as_json["peers"]
    assert peer["address"] == str(their_address(1))
    assert peer["state"] == "established" and peer["as_number"] == 65002
    assert as_json["ready"] is True and as_json["node"] == "n1"

    fetch = (
        "import urllib.request as u, sys; r = u.urlopen('http://127.0.0.1:9098' + sys.argv[1]);"
        " print(r.read().decode())"
    )

    def get(path: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", lab.us, sys.executable, "-c", fetch, path],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip

    assert get("/readiness").strip() == "ready"
    metrics = get("/metrics")
    assert 'gingham_bgp_sessions{state="established"} 1.0' in metrics
    assert (
        f'gingham_bgp_session_established{{peer="{their_address(1)}",peer_type="global"}} 1.0'
        in metrics
    )
