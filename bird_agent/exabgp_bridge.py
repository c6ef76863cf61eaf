"""The API process ExaBGP runs: relays bytes between its pipes and our unix socket.

ExaBGP starts this program (``process … { run …; }``) with stdin carrying
JSON lines and acknowledgements *from* ExaBGP and stdout taking commands *to*
it. The adapter (`bird_agent.exabgp`) listens on a unix socket; this program
connects to it and copies bytes both ways, unchanged.

Invariants:
- The two directions flow independently. Every descriptor is non-blocking
  and each direction has its own buffer: a full pipe or socket on one side
  stops only the reading of that direction's source, never the other
  direction. (ExaBGP writes its JSON with a *blocking* write while it is not
  reading commands; a relay that blocked writing commands would stop
  draining that JSON, and both would wait for each other forever.)
- ExaBGP's output is never held back for long: its buffer here is large
  (`FROM_EXABGP_LIMIT`), because ExaBGP blocked in a write runs no timers
  and its sessions would expire. Commands are held to `TO_EXABGP_LIMIT`,
  so a busy ExaBGP pushes back on the adapter's socket, where the adapter
  waits in `drain()` while still reading ExaBGP's output.
- It exits as soon as either side closes: ExaBGP gone (stdin EOF) or the
  adapter gone (socket EOF), after passing on what it already read. It
  never parses.
- Standard library only and run with ``python -I``: it starts in ~10 ms and
  cannot import anything from a broken environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import socket
import sys
import time

CONNECT_TIMEOUT = 10.0
CHUNK = 1 << 16
# Bytes held per direction before its source stops being read.
FROM_EXABGP_LIMIT = 256 << 20
TO_EXABGP_LIMIT = 1 << 20
# The kernel's buffer of each pipe to and from ExaBGP (the default is 64 KiB).
PIPE_BYTES = 1 << 20


def _connect(path: str) -> socket.socket:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _Direction:
    """Bytes read from `source` and not yet written to `sink`."""

    def __init__(self, source: int, sink: int, limit: int) -> None:
        self.source = source
        self.sink = sink
        self.limit = limit
        self.pending = bytearray()
        self.closed = False  # the source reached EOF

    def wants_read(self) -> bool:
        return not self.closed and len(self.pending) < self.limit

    def wants_write(self) -> bool:
        return bool(self.pending)

    def read(self) -> None:
        try:
            data = os.read(self.source, CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        if data:
            self.pending += data
        else:
            self.closed = True

    def write(self) -> None:
        try:
            written = os.write(self.sink, self.pending)
        except (BlockingIOError, InterruptedError):
            return
        del self.pending[:written]


def _widen(fd: int) -> None:
    """A pipe holds `PIPE_BYTES` instead of 64 KiB: ExaBGP writes its JSON with a
    blocking write and flush per line, so on a busy machine it otherwise waits
    for this process to be scheduled after every 64 KiB. Not a pipe, or not
    allowed: left as it is."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def relay(path: str, stdin: int | None = None, stdout: int | None = None) -> int:
    """Copies between ExaBGP's pipes and the adapter's socket until one side closes."""
    sock = _connect(path)
    stdin = sys.stdin.fileno() if stdin is None else stdin
    stdout = sys.stdout.fileno() if stdout is None else stdout
    adapter = sock.fileno()
    for fd in {stdin, stdout, adapter}:
        os.set_blocking(fd, False)
    for fd in (stdin, stdout):
        _widen(fd)
    directions = (
        _Direction(stdin, adapter, FROM_EXABGP_LIMIT),
        _Direction(adapter, stdout, TO_EXABGP_LIMIT),
    )
    selector = selectors.DefaultSelector()
    registered: dict[int, int] = {}
    try:
        while True:
            if any(d.closed and not d.pending for d in directions):
                return 0
            wanted: dict[int, int] = {}
            for d in directions:
                if d.wants_read():
                    wanted[d.source] = wanted.get(d.source, 0) | selectors.EVENT_READ
                if d.wants_write():
                    wanted[d.sink] = wanted.get(d.sink, 0) | selectors.EVENT_WRITE
            for fd in set(registered) - set(wanted):
                selector.unregister(fd)
                del registered[fd]
            for fd, events in wanted.items():
                if fd not in registered:
                    selector.register(fd, events)
                elif registered[fd] != events:
                    selector.modify(fd, events)
                registered[fd] = events
            ready = {key.fd: mask for key, mask in selector.select()}
            for d in directions:
                if ready.get(d.sink, 0) & selectors.EVENT_WRITE:
                    d.write()
                if ready.get(d.source, 0) & selectors.EVENT_READ:
                    d.read()
    finally:
        selector.close()
        sock.close()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: exabgp_bridge.py SOCKET", file=sys.stderr)
        return 2
    try:
        return relay(sys.argv[1])
    except (BrokenPipeError, ConnectionError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
