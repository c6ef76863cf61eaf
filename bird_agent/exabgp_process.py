"""Starting and stopping the ExaBGP process itself (no API, no configuration text).

Invariants:
- ExaBGP runs with the environment `exabgp_wire.environment` describes, plus
  `api.respawn=false` and `api.terminate=true`: when the API bridge dies,
  ExaBGP exits, so the adapter restarts the two as one unit.
- ExaBGP gets PR_SET_PDEATHSIG(SIGTERM): it never outlives the process that
  started it, even when that one is killed with SIGKILL. util-linux's
  `setpriv --pdeathsig` sets it and execs ExaBGP (same PID). Never a
  `preexec_fn`: gingham-bgp has gRPC threads, and Python code run in the
  forked child before exec crashed it (SIGSEGV, exit -11, right after gRPC
  logged "skipping fork() handlers": the intermittent generation-1 failure).
- `terminate` asks (SIGTERM), waits 5 s, then insists (SIGKILL); it only ever
  signals the PID it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from bird_agent import exabgp_wire as wire
from bird_agent.exabgp_main import default_speed

# ExaBGP with a quieter idle loop (bird_agent.exabgp_main) whose `teardown`
# sends a Cease even under graceful restart (bird_agent.exabgp_cease): `python -m …`.
EXABGP_MODULE = ("-m", "bird_agent.exabgp_cease")
SPEED_VARIABLE = "exabgp_reactor_speed"


@dataclass(frozen=True)
class ExaBGPOptions:
    run_dir: Path
    # Addresses ExaBGP listens on for incoming sessions; empty: only connect out.
    listen_addresses: tuple[IPv4Address, ...] = ()
    listen_port: int = 179
    # How to start ExaBGP; the config path is appended. A wrapper (e.g.
    # `ip netns exec NS`) may precede it: it must exec, keeping the PID.
    exabgp_command: tuple[str, ...] = (sys.executable, *EXABGP_MODULE)
    # A live ExaBGP slow to connect its API is given this long (at load 120
    # on 2 cores it took 57 s; killing it only starts over).
    start_timeout: float = 300.0
    reload_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    # A run this long resets the backoff.
    stable_after: float = 30.0
    extra_env: Mapping[str, str] = field(default_factory=dict)


def _die_with_parent() -> tuple[str, ...]:
    """The prefix that gives the command PR_SET_PDEATHSIG(SIGTERM), then execs it."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "TERM", "--") if setpriv else ()


def exabgp_environment(options: ExaBGPOptions) -> dict[str, str]:
    """ExaBGP's environment. The reactor speed is only a default (the one
    `bird_agent.exabgp_main` is tuned for, or ExaBGP's own when it runs
    stock): an operator's or a benchmark's `exabgp_reactor_speed` wins; the
    rest is ours."""
    return {
        SPEED_VARIABLE: default_speed(),
        **os.environ,
        **wire.environment(options.listen_addresses, options.listen_port),
        # One restart unit: ExaBGP exits when the bridge does.
        "exabgp_api_respawn": "false",
        "exabgp_api_terminate": "true",
        **options.extra_env,
    }


async def spawn_exabgp(options: ExaBGPOptions, config_path: Path) -> asyncio.subprocess.Process:
    """ExaBGP on `config_path`, its log (stdout and stderr) on a pipe."""
    env = exabgp_environment(options)
    return await asyncio.create_subprocess_exec(
        *_die_with_parent(),
        *options.exabgp_command,
        str(config_path),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 5.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
