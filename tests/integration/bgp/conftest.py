"""Fixtures for BGP interop: our ExaBGP adapter in one netns, real daemons in others.

Topology per test (all names unique per test, all removed afterwards)::

    <p>u (ExaBGP, us)  eth<i> 10.77.<i>.1/24 ─veth─ eth0 10.77.<i>.2/24  <p>t<i> (daemon i)

`Lab.peer(i)` adds one daemon namespace; `Lab.adapter()` starts the adapter
in the "us" namespace; an `EventLog` records every event it emits so tests
can wait on "an event like this has arrived" with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bird_agent.events import BgpEvent
from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.exabgp_process import EXABGP_MODULE
from bird_agent.peers import PeerSpec, PeerType
from tests.support import bgpd
from tests.support.names import unique_prefix

pytestmark = pytest.mark.root

OUR_AS = 64512
THEIR_EBGP_AS = 65002
POOL = IPv4Network("10.244.0.0/16")
OUR_BLOCK = IPv4Network("10.244.1.0/26")
THEIR_BLOCK = IPv4Network("10.244.9.0/26")

E = TypeVar("E")


def our_address(index: int) -> IPv4Address:
    return IPv4Address(f"10.77.{index}.1")


def their_address(index: int) -> IPv4Address:
    return IPv4Address(f"10.77.{index}.2")


@dataclass
class EventLog:
    events: list[BgpEvent] = field(default_factory=list)

    def of(self, kind: type[E], peer: IPv4Address | None = None) -> list[E]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (peer is None or getattr(e, "peer", None) == peer)
        ]

    async def wait(
        self, kind: type[E], peer: IPv4Address | None = None, *,
        where: Callable[[E], bool] = lambda _: True, count: int = 1, timeout: float = 15.0,
    ) -> E:  # fmt: skip
        """The `count`-th event of `kind` (for `peer`) satisfying `where`."""

        async def probe() -> E | None:
            found = [e for e in self.of(kind, peer) if where(e)]
            return found[count - 1] if len(found) >= count else None

        found: E = await eventually(probe, timeout, f"{kind.__name__} for {peer}")
        return found


async def eventually(probe: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll an async probe until truthy, with a deadline (never a bare sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def daemon_says(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll a blocking daemon query (birdc, vtysh, gobgp) without stalling the loop."""

    async def probe() -> Any:
        return await asyncio.to_thread(check)

    return await eventually(probe, timeout, what)


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.prefix = unique_prefix("b")
        self.tmp = tmp
        self.us = f"{self.prefix}u"
        self.namespaces: list[str] = []
        self.daemons: list[bgpd.BgpDaemon] = []
        self.adapters: list[ExaBGPAdapter] = []
        self.logs: list[asyncio.Task[None]] = []
        bgpd.create_netns(self.us)
        self.namespaces.append(self.us)

    def link(self, index: int) -> str:
        """A daemon namespace on its own veth to us; returns its name."""
        name = f"{self.prefix}t{index}"
        bgpd.create_netns(name)
        self.namespaces.append(name)
        bgpd.veth_between(
            bgpd.VethEnd(self.us, f"eth{index}", IPv4Interface(f"{our_address(index)}/24")),
            bgpd.VethEnd(name, "eth0", IPv4Interface(f"{their_address(index)}/24")),
        )
        return name

    async def daemon(
        self, kind: str, index: int, *, ibgp: bool, password: str | None = None,
        originate: list[IPv4Network] | None = None,
    ) -> bgpd.BgpDaemon:  # fmt: skip
        netns = self.link(index)
        peering = bgpd.DaemonPeering(
            netns=netns,
            address=their_address(index),
            asn=OUR_AS if ibgp else THEIR_EBGP_AS,
            neighbor=our_address(index),
            neighbor_asn=OUR_AS,
            password=password,
            originate=list(originate or []),
        )
        daemon = bgpd.DAEMONS[kind](peering)
        self.daemons.append(daemon)
        await asyncio.to_thread(daemon.start)
        return daemon

    def spec(
        self, index: int, *, ibgp: bool, password: str | None = None, hold_time: int = 9
    ) -> PeerSpec:
        return PeerSpec(
            address=their_address(index),
            peer_asn=OUR_AS if ibgp else THEIR_EBGP_AS,
            local_asn=OUR_AS,
            local_address=our_address(index),
            router_id=our_address(1),
            peer_type=PeerType.NODE_SPECIFIC if ibgp else PeerType.GLOBAL,
            source=f"peer-{index}",
            password=password,
            hold_time=hold_time,
        )

    async def adapter(
        self, peers: list[PeerSpec], listen: tuple[IPv4Address, ...] = ()
    ) -> tuple[ExaBGPAdapter, EventLog]:
        run_dir = self.tmp / f"run{len(self.adapters)}"
        options = ExaBGPOptions(
            run_dir=run_dir,
            listen_addresses=listen,
            exabgp_command=("ip", "netns", "exec", self.us, sys.executable, *EXABGP_MODULE),
            backoff_initial=0.2,
        )
        adapter = ExaBGPAdapter(options)
        self.adapters.append(adapter)
        log = EventLog()

        async def record() -> None:
            async for event in adapter.events():
                log.events.append(event)

        self.logs.append(asyncio.create_task(record()))
        await adapter.start(peers)
        return adapter, log

    async def close(self) -> None:
        for adapter in self.adapters:
            pid = adapter.pid
            await adapter.stop()
            assert pid is None or not bgpd.pid_alive(pid) or _is_zombie(pid)
        for task in self.logs:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for daemon in self.daemons:
            await asyncio.to_thread(bgpd.stop_quietly, daemon)
        for name in self.namespaces:
            bgpd.delete_netns(name)


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    return True


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    made = Lab(tmp_path)
    try:
        yield made
    finally:
        await made.close()
