"""The API bridge keeps both directions flowing when both are full at once.

ExaBGP writes its JSON to the bridge with a blocking write while it does not
read commands, and the adapter writes commands while it reads JSON on
another task. Here a stand-in for each side writes far more than a pipe or
socket holds *before* it reads anything: the bridge must carry both
streams through whole, or neither side ever gets to read.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bird_agent.exabgp_bridge import PIPE_BYTES
from bird_agent.exabgp_bridge import __file__ as BRIDGE

# Far more than a pipe (64 KiB) or a unix socket buffer holds.
VOLUME = 8 << 20
DEADLINE = 60.0


def _pattern(tag: bytes) -> bytes:
    line = tag * 63 + b"\n"
    return line * (VOLUME // len(line))


def _write_all(write: object, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[write(view) :]  # type: ignore[operator]


def _read_exactly(read: object, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        data = read(1 << 16)  # type: ignore[operator]
        if not data:
            break
        chunks += data
    return bytes(chunks)


@dataclass
class Relay:
    """The bridge program between a pair of pipes (its ExaBGP side) and a socket."""

    bridge: subprocess.Popen[bytes]
    adapter: socket.socket  # the adapter's end, accepted


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    path = str(tmp_path / "api.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(DEADLINE)
    bridge = subprocess.Popen(
        [sys.executable, "-I", BRIDGE, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        conn, _ = server.accept()
        conn.settimeout(DEADLINE)
        yield Relay(bridge, conn)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
        server.close()


def test_both_directions_flow_while_each_side_writes_before_it_reads(relay: Relay) -> None:
    to_adapter = _pattern(b"j")  # ExaBGP's JSON
    to_exabgp = _pattern(b"c")  # the adapter's commands
    bridge, conn = relay.bridge, relay.adapter
    assert bridge.stdin is not None and bridge.stdout is not None
    stdin, stdout = bridge.stdin.fileno(), bridge.stdout.fileno()
    results: dict[str, bytes] = {}

    def exabgp() -> None:
        _write_all(lambda b: os.write(stdin, b), to_adapter)
        results["exabgp"] = _read_exactly(lambda n: os.read(stdout, n), len(to_exabgp))

    def adapter() -> None:
        _write_all(conn.send, to_exabgp)
        results["adapter"] = _read_exactly(conn.recv, len(to_adapter))

    threads = [threading.Thread(target=f, daemon=True) for f in (exabgp, adapter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    stuck = [t for t in threads if t.is_alive()]
    assert not stuck, "the bridge stopped relaying: both sides wait on a full buffer"
    assert results["exabgp"] == to_exabgp
    assert results["adapter"] == to_adapter
    conn.close()
    assert bridge.wait(DEADLINE) == 0


def test_output_read_before_the_adapter_closes_is_still_delivered(relay: Relay) -> None:
    """Commands the adapter wrote just before it closed reach ExaBGP."""
    relay.adapter.sendall(b"announce route 10.0.0.0/24 next-hop self\n")
    relay.adapter.close()
    assert relay.bridge.stdout is not None
    assert relay.bridge.stdout.read() == b"announce route 10.0.0.0/24 next-hop self\n"
    assert relay.bridge.wait(DEADLINE) == 0


def test_the_pipes_to_and_from_exabgp_hold_a_mebibyte(relay: Relay) -> None:
    """ExaBGP writes its JSON with a blocking write: a 64 KiB pipe made it wait
    for the bridge to be scheduled after every 64 KiB on a busy machine."""
    assert relay.bridge.stdin is not None and relay.bridge.stdout is not None
    pipes = (relay.bridge.stdin.fileno(), relay.bridge.stdout.fileno())

    def sizes() -> list[int]:
        return [fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) for fd in pipes]

    deadline = time.monotonic() + DEADLINE
    while sizes() != [PIPE_BYTES] * 2 and time.monotonic() < deadline:
        relay.adapter.sendall(b"x\n")  # a round trip: the bridge is past its set-up
        _read_exactly(relay.bridge.stdout.read1, 2)
    assert sizes() == [PIPE_BYTES] * 2
