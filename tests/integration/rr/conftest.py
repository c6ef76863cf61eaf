"""A real `gingham-rr` process on a unix socket in a temporary run dir."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from gingham.v1 import reflector_pb2 as pb
from gingham.v1 import reflector_pb2_grpc as pb_grpc
from tests.support.poll import async_wait_for

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class RunningReflector:
    """The fixture's reflector; `restart` replaces `process`, and teardown stops
    whichever process is current (stopping the first one only leaked a restart)."""

    process: subprocess.Popen[bytes]
    socket: Path
    http_port: int

    def restart(self, log_path: Path) -> None:
        stop_reflector(self.process)
        self.process = start_reflector(self.socket.parent, self.http_port, log_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_reflector(run_dir: Path, http_port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`gingham-rr` as a child process (stopped by `stop_reflector`)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "route_reflector",
                "--node",
                "rr1",
                "--run-dir",
                str(run_dir),
                "--http",
                f"127.0.0.1:{http_port}",
                "--log-level",
                "DEBUG",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_reflector(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def reflector_process(tmp_path: Path) -> Iterator[RunningReflector]:
    port = free_port()
    running = RunningReflector(
        start_reflector(tmp_path / "run", port, tmp_path / "rr.log"),
        tmp_path / "run" / "rr.sock",
        port,
    )
    try:
        yield running
    finally:
        stop_reflector(running.process)


@pytest.fixture
async def reflector(reflector_process: RunningReflector) -> AsyncIterator[pb_grpc.ReflectorStub]:
    channel = grpc.aio.insecure_channel(f"unix:{reflector_process.socket}")
    stub = pb_grpc.ReflectorStub(channel)  # type: ignore[no-untyped-call]

    async def serving() -> bool:
        if reflector_process.process.poll() is not None:
            raise AssertionError("gingham-rr exited early")
        try:
            await stub.Status(pb.ReflectorStatusRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
        return True

    try:
        await async_wait_for(serving, timeout=20, what="gingham-rr serving")
        yield stub
    finally:
        await channel.close()


class Stream:
    """One Reflect stream: send an input, collect its complete answer."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        self.sent = 0

    async def send(self, message: pb.ReflectorInput) -> list[pb.ReflectorOutput]:
        await self.call.write(message)
        self.sent += 1
        answer: list[pb.ReflectorOutput] = []
        while not answer or answer[-1].received < self.sent:
            output = await asyncio.wait_for(self.call.read(), 10)
            assert output is not grpc.aio.EOF, "stream ended"
            answer.append(output)
        return answer
