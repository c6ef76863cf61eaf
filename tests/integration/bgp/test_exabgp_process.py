"""Starting ExaBGP from a process that has gRPC threads (what gingham-bgp is).

- Every start works while gRPC is busy in the same process. A `preexec_fn`
  (the old way to set PR_SET_PDEATHSIG) ran Python in the forked child and
  crashed it with SIGSEGV/SIGABRT in ~1 of 5 starts here: the intermittent
  "ExaBGP exited (code -11)" at generation 1.
- The child still never outlives its parent: SIGKILL the parent, the child
  is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bird_agent.exabgp_process import ExaBGPOptions, spawn_exabgp, terminate
from tests.support.bgpd import pid_alive
from tests.support.poll import wait_for

STARTS = 40


@pytest.fixture
async def busy_grpc(tmp_path: Path) -> AsyncIterator[None]:
    """A gRPC server and client in this process, calling each other non-stop."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    address = f"unix:{tmp_path}/health.sock"
    server.add_insecure_port(address)
    await server.start()
    channel = grpc.aio.insecure_channel(address)
    stub = health_pb2_grpc.HealthStub(channel)

    async def hammer() -> None:
        while True:
            await stub.Check(health_pb2.HealthCheckRequest())

    tasks = [asyncio.create_task(hammer()) for _ in range(4)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await channel.close()
        await server.stop(None)


@pytest.mark.usefixtures("busy_grpc")
async def test_starts_never_crash_beside_grpc_threads(tmp_path: Path) -> None:
    options = ExaBGPOptions(run_dir=tmp_path, exabgp_command=("/bin/true",))
    codes = []
    for _ in range(STARTS):
        proc = await spawn_exabgp(options, tmp_path / "exabgp.conf")
        codes.append(await proc.wait())
    assert codes == [0] * STARTS


def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent_code = textwrap.dedent(
        f"""
        import asyncio, pathlib, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from bird_agent.exabgp_process import ExaBGPOptions, spawn_exabgp

        async def main():
            options = ExaBGPOptions(
                run_dir=pathlib.Path({str(tmp_path)!r}),
                exabgp_command=("sh", "-c", "exec sleep 600"),
            )
            proc = await spawn_exabgp(options, pathlib.Path("/dev/null"))
            pathlib.Path({str(pid_file)!r}).write_text(str(proc.pid))
            await proc.wait()

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    child = 0
    try:
        wait_for(pid_file.exists, 20, 0.05, "the child started")
        child = int(pid_file.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not _running(child), 10, 0.05, "the child gone with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child and _running(child):
            os.kill(child, signal.SIGKILL)


def _running(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


async def test_terminate_stops_what_was_spawned(tmp_path: Path) -> None:
    options = ExaBGPOptions(run_dir=tmp_path, exabgp_command=("sh", "-c", "exec sleep 600"))
    proc = await spawn_exabgp(options, tmp_path / "exabgp.conf")
    await terminate(proc)
    assert proc.returncode == -signal.SIGTERM
