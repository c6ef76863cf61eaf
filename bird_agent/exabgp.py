"""The ExaBGP adapter: runs ExaBGP as a child and speaks its API.

`ExaBGPAdapter` owns one ExaBGP process (one BGP identity per node). Callers
say *what they want* — `set_peers(PeerSpec…)`, `set_exports({prefix: next
hop})` — and read typed `BgpEvent`s from `events()`. The adapter makes ExaBGP
match:

- configuration: rendered by `exabgp_wire.render_config`, written atomically,
  applied with SIGUSR1 (ExaBGP re-reads the file; neighbors whose rendering
  did not change keep their sessions, measured with BIRD). Completion is read
  from ExaBGP's own log ("loaded new configuration successfully").
- announcements: per configured neighbor we remember what this ExaBGP process
  was told (`_sent`) and send only the difference, batched, as
  `neighbor A , neighbor B announce attributes next-hop X nlri …`. A neighbor
  new in the configuration starts from nothing, so it gets everything.
- reflected routes (route reflector nodes): `set_reflected(table, changes)`
  says what neighbors should hear on top of our exports, with full
  attributes (`exabgp_reflect`): one table, per prefix the route and the
  group of neighbors that hears it. The table is kept by reference, not
  copied (it holds every route of the cluster); the caller names the
  prefixes that changed since it last called, with the neighbors concerned,
  and only those are sent: announced with their attributes, or withdrawn,
  one command per group of neighbors that needs the same line. With
  Gingham's ExaBGP changes those commands go to the sessions as shared
  UPDATEs (`exabgp_main.share_changes`): nothing is told to a neighbor
  without a session, and a session gets its whole table when it comes up.
  On stock ExaBGP they go into each neighbor's outgoing RIB, the record of
  what it was sent (it drops an announcement equal to what it holds, and
  indexes a withdrawal by prefix alone), so no second copy is kept here.
- the API: ExaBGP runs `exabgp_bridge.py`, which connects to our unix socket
  and relays bytes. Commands are pipelined; ExaBGP acknowledges each line in
  order (`done`/`error`), so a FIFO of futures pairs acks with commands.

Invariants:
- ExaBGP sends no withdrawals for a dead session, so every Established (or
  connected) session that ends yields exactly one `PeerDown` — from ExaBGP's
  state message, from the peer being removed, or synthesised when ExaBGP
  itself exits.
- When ExaBGP or the bridge dies, the whole process is restarted (with
  backoff); `exabgp_api_terminate=true` makes ExaBGP exit when the bridge
  does, so the two always restart together and acks never go astray. After a
  restart `_sent` is empty and everything desired is announced again.
- ExaBGP gets PR_SET_PDEATHSIG: it never outlives the adapter's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from bird_agent import exabgp_reflect
from bird_agent import exabgp_wire as wire
from bird_agent.events import (
    BgpEvent,
    NotificationReceived,
    PeerConnected,
    PeerDown,
    PeerOpen,
    PeerUp,
    SessionState,
    SpeakerRestarted,
)
from bird_agent.exabgp_main import REFLECTED, patches_apply
from bird_agent.exabgp_process import ExaBGPOptions, spawn_exabgp, terminate
from bird_agent.peers import PeerSpec
from route_reflector.api.client import Reflected
from route_reflector.api.messages import Peers as PeerGroup
from route_reflector.api.messages import PeerSets

__all__ = ["ExaBGPAdapter", "ExaBGPOptions", "SessionInfo"]

log = logging.getLogger(__name__)
_SUN_PATH_MAX = 107

BRIDGE = Path(__file__).with_name("exabgp_bridge.py")
# A BGP UPDATE of 64 KiB (extended messages) renders to a few hundred KiB of JSON.
_LINE_LIMIT = 16 * 1024 * 1024
# Batches of reflected routes sent to ExaBGP and not yet answered, at most.
IN_FLIGHT = 2
# How often a slow ExaBGP start is reported while it is waited for.
_START_PATIENCE = 30.0


@dataclass(frozen=True)
class SessionInfo:
    state: SessionState
    # Wall-clock time of the last state change; None if never seen.
    since: float | None
    # Why it last went down ("" when up).
    info: str


class _ProcessGone(Exception):
    pass


_MD5_COUNTERS = ("TCPMD5Failure", "TCPMD5NotFound", "TCPMD5Unexpected")


def tcp_md5_refusals(netstat: Path = Path("/proc/net/netstat")) -> int:
    """Segments this network namespace's kernel dropped for a wrong, missing or
    unexpected TCP MD5 signature (0 when the counters cannot be read)."""
    try:
        lines = netstat.read_text().splitlines()
    except OSError:
        return 0
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            table = dict(zip(header.split()[1:], values.split()[1:], strict=False))
            return sum(int(table.get(name, 0)) for name in _MD5_COUNTERS)
    return 0


class ExaBGPAdapter:
    def __init__(self, options: ExaBGPOptions) -> None:
        self.options = options
        self.config_path = options.run_dir / "exabgp.conf"
        self.socket_path = options.run_dir / "exabgp-api.sock"
        self.generation = 0
        self._desired_peers: dict[IPv4Address, PeerSpec] = {}
        self._exports: dict[IPv4Network, wire.NextHop] = {}
        # What the running ExaBGP holds: its configured neighbors and, per
        # neighbor, what we announced to it.
        self._config_peers: dict[IPv4Address, PeerSpec] = {}
        self._sent: dict[IPv4Address, dict[IPv4Network, wire.NextHop]] = {}
        # Reflected routes (the caller's table, by reference), and per prefix
        # the neighbors it changed for since ExaBGP was last told (`_owed`
        # holds every neighbor named there): what ExaBGP holds for a neighbor
        # is its part of the table but for those.
        self._reflected: Reflected = {}
        self._changed: dict[IPv4Network, PeerGroup] = {}
        self._owed: set[IPv4Address] = set()
        self._sets = PeerSets()
        # With Gingham's ExaBGP changes, reflected routes go to sessions as
        # shared UPDATEs and no outgoing RIB keeps them: a neighbor without a
        # session is told nothing, and a session gets its whole table when it
        # comes up. Stock ExaBGP keeps them in each neighbor's RIB.
        self._sessions_only = patches_apply()
        # Batches of reflected-route commands ExaBGP has not answered yet,
        # with the prefixes they carry (touched again if one is refused).
        self._in_flight: deque[tuple[asyncio.Future[list[bool]], dict[IPv4Network, PeerGroup]]] = (
            deque()
        )
        # Whether a new session's reflected routes are settled, so End-of-RIB
        # may follow them (bird_agent.reflection sets it; call `kick` when it
        # may have turned true).
        self.end_of_rib_ready: Callable[[IPv4Address], bool] = lambda peer: True
        self._state: dict[IPv4Address, SessionState] = {}
        self._restart_time: dict[IPv4Address, int | None] = {}
        self._removing: set[IPv4Address] = set()
        # Established sessions still owed our End-of-RIB (manual-eor).
        self._owe_eor: set[IPv4Address] = set()
        self._since: dict[IPv4Address, tuple[float, str]] = {}
        # TCP MD5 refusals counted when each peer's password was last set.
        self._md5_baseline: dict[IPv4Address, int] = {}
        self._events: asyncio.Queue[BgpEvent] = asyncio.Queue()
        self._state_changed = asyncio.Event()
        # Set by `cease`: ExaBGP is told nothing more (the node is leaving).
        self._held = False
        self._dirty = asyncio.Event()
        self._synced = asyncio.Event()
        self._stopping = False
        self._proc: asyncio.subprocess.Process | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._writer: asyncio.StreamWriter | None = None
        self._acks: deque[asyncio.Future[bool]] = deque()
        self._reload_waiter: asyncio.Future[bool] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # -- public API ---------------------------------------------------------

    async def start(self, peers: Iterable[PeerSpec] = ()) -> None:
        if len(str(self.socket_path).encode()) > _SUN_PATH_MAX:
            raise ValueError(
                f"--run-dir {self.options.run_dir} is too long for a unix socket path"
                f" ({self.socket_path} must be at most {_SUN_PATH_MAX} bytes)"
            )
        self.options.run_dir.mkdir(parents=True, exist_ok=True)
        self.set_peers(peers)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(
            self._on_connection, path=str(self.socket_path), limit=_LINE_LIMIT
        )
        os.chmod(self.socket_path, 0o600)
        self._supervisor = asyncio.create_task(self._supervise(), name="exabgp-supervisor")

    async def stop(self) -> None:
        self._stopping = True
        await self._terminate()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        # The supervisor may have been cancelled between spawning a process and
        # forgetting it: make sure nothing outlives stop() and no stale PID shows.
        await self._terminate()
        self._proc = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def cease(self, timeout: float = 3.0) -> list[IPv4Address]:
        """End every Established session for good: a Cease NOTIFICATION, Administrative Shutdown.

        For a node that stops rather than restarts: graceful-restart peers drop
        our routes at once instead of keeping them for their restart time
        (`bird_agent.exabgp_cease`). From here on ExaBGP is told nothing more
        (no reload, no announcement: the adapter is about to stop). Waits up to
        `timeout` for ExaBGP to report each session down; returns the peers told.
        """
        self._held = True
        peers = sorted(p for p, s in self._state.items() if s is SessionState.ESTABLISHED)
        if not peers:
            return []
        self._removing.update(peers)  # their end is deliberate: no restart window here either
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            sent = self._send([wire.teardown_command(peer) for peer in peers])
            if not all(await asyncio.wait_for(sent, timeout)):
                log.error("ExaBGP refused a teardown: some peers keep our routes as stale")
            while any(self._state.get(p) is SessionState.ESTABLISHED for p in peers):
                self._state_changed.clear()
                await asyncio.wait_for(self._state_changed.wait(), deadline - loop.time())
        except (ConnectionError, TimeoutError) as exc:
            up = [str(p) for p in peers if self._state.get(p) is SessionState.ESTABLISHED]
            log.warning("Cease not confirmed for %s: %r", ", ".join(up) or "no peer", exc)
        return peers

    def set_peers(self, peers: Iterable[PeerSpec]) -> None:
        """The sessions to run; raises `ConfigError` (and changes nothing) if unrenderable."""
        desired = {p.address: p for p in peers}
        wire.render_config(list(desired.values()), self._api_command())
        changed = [
            address
            for address, spec in desired.items()
            if spec.password and self._desired_peers.get(address, None) != spec
        ]
        if changed:
            baseline = tcp_md5_refusals()
            self._md5_baseline.update(dict.fromkeys(changed, baseline))
        self._desired_peers = desired
        self._mark_dirty()

    def set_exports(self, exports: Mapping[IPv4Network, wire.NextHop]) -> None:
        """Everything every peer should hear from us: prefix → next hop (or "self")."""
        self._exports = dict(exports)
        self._mark_dirty()

    def set_reflected(self, table: Reflected, changes: Mapping[IPv4Network, PeerGroup]) -> None:
        """What neighbors should hear besides our exports (reflected routes, as is).

        `table` is kept by reference: the caller may change it in place, and
        then calls again naming the prefixes that changed, each with the
        neighbors it changed for (groups of neighbors as shared objects)."""
        self._reflected = table
        self._note(changes)
        self._mark_dirty()

    def _note(self, changes: Mapping[IPv4Network, PeerGroup]) -> None:
        pending, sets = self._changed, self._sets
        groups: dict[int, PeerGroup] = {}
        for prefix, peers in changes.items():
            before = pending.get(prefix)
            pending[prefix] = peers if before is None else sets.union(before, peers)
            groups[id(peers)] = peers
        for peers in groups.values():
            self._owed.update(peers)

    def _afresh(self, *peers: IPv4Address) -> None:
        """ExaBGP holds nothing for `peers` (a new session, process or neighbor):
        send them all they hear."""
        wanted = self._sets.intern(frozenset(peers))
        sets = self._sets
        self._note(
            {
                prefix: found
                for prefix, (_, holders) in self._reflected.items()
                if (found := sets.both(holders, wanted))
            }
        )

    def kick(self) -> None:
        """Re-check what is owed (e.g. an End-of-RIB whose gate just opened)."""
        self._mark_dirty()

    async def events(self) -> AsyncIterator[BgpEvent]:
        while True:
            yield await self._events.get()

    async def next_event(self) -> BgpEvent:
        return await self._events.get()

    def session_state(self, peer: IPv4Address) -> SessionState:
        return self._state.get(peer, SessionState.IDLE)

    def session_info(self, peer: IPv4Address) -> SessionInfo:
        """State, when it last changed (wall clock) and why (for status tables).

        A session with an MD5 password that is not up says so, with how many
        segments this network namespace's kernel refused for a bad or missing
        signature since the password was set: ExaBGP never sees those (the
        kernel drops them), so a mismatch is otherwise just silence.
        """
        since, info = self._since.get(peer, (None, ""))
        state = self.session_state(peer)
        spec = self._desired_peers.get(peer)
        if state is not SessionState.ESTABLISHED and spec is not None and spec.password:
            refused = tcp_md5_refusals() - self._md5_baseline.get(peer, 0)
            hint = "MD5 password set, no session"
            if refused > 0:
                hint += (
                    f"; the kernel refused {refused} TCP segments for a bad or missing MD5"
                    " signature since (TCPMD5Failure/NotFound/Unexpected):"
                    " check the password matches the peer's"
                )
            info = f"{info}; {hint}" if info else hint
        return SessionInfo(state, since, info)

    def _change_state(self, peer: IPv4Address, state: SessionState, info: str) -> None:
        if self._state.get(peer) is not state:
            self._since[peer] = (time.time(), info)
            self._state_changed.set()
        self._state[peer] = state

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Until ExaBGP's configuration and announcements match what was asked."""
        await asyncio.wait_for(self._synced.wait(), timeout)

    # -- supervision -----------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._synced.clear()
        self._dirty.set()

    async def _supervise(self) -> None:
        backoff = self.options.backoff_initial
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._run_once()
            except Exception:
                log.exception("ExaBGP run failed")
            self._forget_process("exabgp exited")
            if self._stopping:
                return
            if time.monotonic() - started > self.options.stable_after:
                backoff = self.options.backoff_initial
            log.warning("restarting ExaBGP in %.1fs", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.options.backoff_max)

    def _forget_process(self, reason: str) -> None:
        for peer in list(self._state):
            self._set_down(peer, reason)
        self._config_peers.clear()
        self._sent.clear()
        self._afresh(*{p for _, peers in self._reflected.values() for p in peers})
        for ack in self._acks:
            if not ack.done():
                ack.set_exception(ConnectionError(reason))
        self._acks.clear()
        # Their answers failed above with the rest (and are retrieved: `_submit`).
        self._in_flight.clear()
        self._writer = None
        self._proc = None
        self._synced.clear()

    async def _run_once(self) -> None:
        self.generation += 1
        peers = dict(self._desired_peers)
        self._write_config(peers.values())
        while not self._connections.empty():
            _, stale = self._connections.get_nowait()
            stale.close()
        self._proc = proc = await spawn_exabgp(self.options, self.config_path)
        log.info("ExaBGP started, pid %d, generation %d", proc.pid, self.generation)
        exited = asyncio.create_task(proc.wait())
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._read_log(proc)), exited]
        try:
            connected = asyncio.create_task(self._connections.get())
            tasks.append(connected)
            # A live ExaBGP that is merely slow (a loaded machine: 57 s at load
            # 120 on 2 cores) is waited for, not killed: a restart starts over.
            waited = 0.0
            while not connected.done() and not exited.done():
                if waited >= self.options.start_timeout:
                    raise _ProcessGone(
                        f"ExaBGP pid {proc.pid} never connected its API in {waited:.0f}s"
                    )
                step = min(_START_PATIENCE, self.options.start_timeout - waited)
                await asyncio.wait(
                    {exited, connected}, timeout=step, return_when=asyncio.FIRST_COMPLETED
                )
                waited += step
                if not connected.done() and not exited.done():
                    log.warning("ExaBGP pid %d: API not connected after %.0fs", proc.pid, waited)
            if not connected.done():
                raise _ProcessGone(
                    f"ExaBGP exited (code {proc.returncode}) before its API connected"
                )
            reader, self._writer = connected.result()
            self._config_peers = peers
            self._sent = {address: {} for address in peers}
            await self._events.put(SpeakerRestarted(self.generation))
            self._dirty.set()
            api = asyncio.create_task(self._read_api(reader))
            reconcile = asyncio.create_task(self._reconcile_loop())
            tasks += [api, reconcile]
            done, _ = await asyncio.wait(
                {exited, api, reconcile}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done - {exited}:
                # A bug in our own loops: surface it (the supervisor logs and restarts).
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if not exited.done():
                await self._terminate()
            code = await exited
            (log.info if self._stopping else log.warning)(
                "ExaBGP pid %d exited with %s", proc.pid, code
            )
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if proc.returncode is None:
                await self._terminate()

    async def _terminate(self) -> None:
        if self._proc is not None:
            await terminate(self._proc)

    def _api_command(self) -> list[str]:
        return [sys.executable, "-I", str(BRIDGE), str(self.socket_path)]

    def _write_config(self, peers: Iterable[PeerSpec]) -> None:
        text = wire.render_config(list(peers), self._api_command())
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._connections.put((reader, writer))

    # -- ExaBGP output -----------------------------------------------------------

    async def _read_log(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            log.debug("exabgp: %s", line)
            waiter = self._reload_waiter
            if waiter is not None and not waiter.done():
                if wire.RELOAD_DONE in line:
                    waiter.set_result(True)
                elif wire.RELOAD_FAILED in line:
                    waiter.set_result(False)
            lowered = line.lower()
            if "error" in lowered or "syntax" in lowered or lowered.startswith("gingham:"):
                log.warning("exabgp: %s", line)

    async def _read_api(self, reader: asyncio.StreamReader) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                # The bridge is gone; ExaBGP exits too (api terminate), or we make it.
                if not self._stopping:
                    log.warning("ExaBGP API connection closed")
                await self._terminate()
                return
            parsed = wire.parse_line(raw.decode(errors="replace"))
            if isinstance(parsed, wire.Ack):
                if self._acks:
                    ack = self._acks.popleft()
                    if not ack.done():
                        ack.set_result(parsed.ok)
                continue
            for event in parsed or ():
                await self._observe(event)

    async def _observe(self, event: BgpEvent) -> None:
        if isinstance(event, PeerDown):
            graceful = wire.ends_gracefully(event.reason) and event.peer not in self._removing
            self._set_down(event.peer, event.reason, graceful=graceful)
            return
        if isinstance(event, NotificationReceived):
            self._restart_time.pop(event.peer, None)
        if isinstance(event, PeerConnected):
            self._change_state(event.peer, SessionState.CONNECTED, "")
        elif isinstance(event, PeerUp):
            self._change_state(event.peer, SessionState.ESTABLISHED, "")
            self._owe_eor.add(event.peer)
            # A new session holds nothing yet; through a graceful restart the
            # reflector keeps the peer's table, so nobody else would resend it.
            self._afresh(event.peer)
            self._mark_dirty()
        elif isinstance(event, PeerOpen):
            self._restart_time[event.peer] = event.graceful_restart_time
        await self._events.put(event)

    def _set_down(self, peer: IPv4Address, reason: str, *, graceful: bool = True) -> None:
        """One PeerDown per session that was at least connected.

        The restart time is passed on only when the peer advertised graceful
        restart and the session did not end deliberately.
        """
        previous = self._state.get(peer, SessionState.IDLE)
        self._owe_eor.discard(peer)
        self._change_state(peer, SessionState.DOWN, reason)
        restart = self._restart_time.pop(peer, None)
        if previous in (SessionState.CONNECTED, SessionState.ESTABLISHED):
            self._events.put_nowait(PeerDown(peer, reason, restart if graceful else None))

    # -- commands ---------------------------------------------------------------

    async def _send(self, lines: Sequence[str]) -> list[bool]:
        """Pipeline `lines`; each result says whether ExaBGP answered `done`."""
        return list(await (await self._submit(lines)))

    async def _submit(self, lines: Sequence[str]) -> asyncio.Future[list[bool]]:
        """Write `lines` (waiting only for the pipe); their answers, when they come."""
        writer = self._writer
        if writer is None:
            raise ConnectionError("no ExaBGP API connection")
        loop = asyncio.get_running_loop()
        futures = []
        for line in lines:
            future: asyncio.Future[bool] = loop.create_future()
            self._acks.append(future)
            futures.append(future)
            writer.write(line.encode() + b"\n")
        await writer.drain()
        answers = asyncio.gather(*futures)
        # A batch dropped unawaited (ExaBGP gone) must not log "never retrieved".
        answers.add_done_callback(lambda done: done.cancelled() or done.exception())
        return answers

    async def _reconcile_loop(self) -> None:
        retry = 0.2
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._held:
                continue
            try:
                ok = await self._reconcile()
            except ConnectionError:
                return
            if ok and not self._dirty.is_set():
                # Nothing else to do: wait for what is still being answered.
                try:
                    ok = await self._settle(0)
                except ConnectionError:
                    return
            if ok:
                retry = 0.2
                if not self._dirty.is_set():
                    self._synced.set()
            else:
                # Something was refused: try again later, not in a hot loop.
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
                self._dirty.set()

    async def _reconcile(self) -> bool:
        return (
            await self._reconcile_peers()
            and await self._reconcile_exports()
            and await self._reconcile_peer_routes()
            and await self._send_end_of_rib()
        )

    async def _send_end_of_rib(self) -> bool:
        """End-of-RIB to each new session, once everything we announce is queued for it."""
        due = sorted(
            peer
            for peer in self._owe_eor
            if self._state.get(peer) is SessionState.ESTABLISHED
            and self._sent.get(peer) == self._exports
            and peer not in self._owed
            and self.end_of_rib_ready(peer)
        )
        if not due:
            return True
        results = await self._send([wire.end_of_rib_command(peer) for peer in due])
        for peer, ok in zip(due, results, strict=True):
            if ok:
                self._owe_eor.discard(peer)
        return all(results)

    async def _reconcile_peers(self) -> bool:
        desired = dict(self._desired_peers)
        if desired == self._config_peers:
            return True
        proc = self._proc
        if proc is None or proc.returncode is not None:
            raise ConnectionError("ExaBGP is not running")
        self._write_config(desired.values())
        # Sessions we end on purpose lose their routes at once (no restart window).
        self._removing = set(self._config_peers) - set(desired)
        self._reload_waiter = asyncio.get_running_loop().create_future()
        proc.send_signal(signal.SIGUSR1)
        try:
            loaded = await asyncio.wait_for(self._reload_waiter, self.options.reload_timeout)
        except TimeoutError:
            loaded = False
        finally:
            self._reload_waiter = None
        if not loaded:
            log.error("ExaBGP did not load the new configuration %s", self.config_path)
            return False
        for address, old in self._config_peers.items():
            new = desired.get(address)
            if new is None:
                self._sent.pop(address, None)
                self._afresh(address)
                self._set_down(address, "peer removed from configuration", graceful=False)
                self._state.pop(address, None)
                self._since.pop(address, None)
            elif new != old:
                # ExaBGP re-establishes a changed neighbor with a fresh RIB.
                self._sent[address] = {}
                self._afresh(address)
        for address in desired:
            if address not in self._config_peers:
                self._afresh(address)
            self._sent.setdefault(address, {})
        self._config_peers = desired
        self._removing = set()
        return True

    async def _reconcile_exports(self) -> bool:
        desired = dict(self._exports)
        held = {address: self._sent.get(address, {}) for address in self._config_peers}
        all_ok = True
        for batch in wire.export_batches(held, desired):
            results = await self._send(batch.lines)
            if all(results):
                for address in batch.neighbors:
                    self._sent[address] = dict(desired)
            else:
                log.error(
                    "ExaBGP refused %d of %d commands", results.count(False), len(batch.lines)
                )
                all_ok = False
        return all_ok

    async def _reconcile_peer_routes(self) -> bool:
        """Send what changed, while ExaBGP may still be working on the batch
        before: the next batch is made meanwhile (at most `IN_FLIGHT` are
        unanswered; commands are answered in order, so order is kept)."""
        ok = await self._settle(IN_FLIGHT - 1)
        if not self._changed:
            return ok
        sets = self._sets
        if self._sessions_only:
            # No session, nothing to tell: it gets all it hears when it is up.
            up = SessionState.ESTABLISHED
            reachable = frozenset(p for p in self._config_peers if self._state.get(p) is up)
        else:
            # Neighbors ExaBGP does not have yet stay owed until it does.
            reachable = frozenset(self._config_peers)
        reachable = sets.intern(reachable)
        work: dict[IPv4Network, PeerGroup] = {}
        later: dict[IPv4Network, PeerGroup] = {}
        for prefix, peers in self._changed.items():
            now = sets.both(peers, reachable)
            if now:
                work[prefix] = now
            if not self._sessions_only and now is not peers:
                rest = sets.minus(peers, reachable)
                if rest:
                    later[prefix] = rest
        self._changed = later
        self._owed = {p for peers in {id(g): g for g in later.values()}.values() for p in peers}
        kind = REFLECTED if self._sessions_only else "attributes"
        lines = exabgp_reflect.reflected_changes(self._reflected, work, kind, sets)
        if lines:
            self._in_flight.append((await self._submit(lines), work))
        return ok

    async def _settle(self, keep: int) -> bool:
        """Wait for answers until at most `keep` batches are unanswered; False
        if ExaBGP refused any (their prefixes are touched again)."""
        ok = True
        while len(self._in_flight) > keep:
            answers, work = self._in_flight[0]
            results = await answers
            self._in_flight.popleft()
            if not all(results):
                log.error(
                    "ExaBGP refused %d of %d reflected-route commands",
                    results.count(False),
                    len(results),
                )
                self._note(work)
                ok = False
        return ok
