"""`python -m bird_agent` (gingham-bgp) as a process: user errors and a clean run.

A global BGPPeer in a sqlite datastore is enough for the speaker to bring up
a session with a real BIRD; SIGTERM stops it (and its ExaBGP) with exit 0.
"""

from __future__ import annotations

import asyncio
import signal
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
