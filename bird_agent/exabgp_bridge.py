"""The API process ExaBGP runs: relays bytes between its pipes and our unix socket.

ExaBGP starts this program (``process … { run …; }``) with stdin carrying
JSON lines and acknowledgements *from* ExaBGP and stdout taking commands *to*
it. The adapter (`bird_agent.exabgp`) listens on a unix socket; this program
connects to it and copies bytes both ways, unchanged.

Invariants (so that restarts are clean):
- It exits as soon as either side closes: ExaBGP gone (stdin EOF) or the
  adapter gone (socket EOF). It never buffers beyond one read, never parses.
- Standard library only and run with ``python -I``: it starts in ~10 ms and
  cannot import anything from a broken environment.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import time

CONNECT_TIMEOUT = 10.0


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


def relay(path: str) -> int:
    sock = _connect(path)
    selector = selectors.DefaultSelector()
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    selector.register(stdin, selectors.EVENT_READ, "exabgp")
    selector.register(sock, selectors.EVENT_READ, "adapter")
    while True:
        for key, _ in selector.select():
            if key.data == "exabgp":
                data = os.read(stdin, 1 << 16)
                if not data:
                    return 0
                sock.sendall(data)
            else:
                data = sock.recv(1 << 16)
                if not data:
                    return 0
                view = memoryview(data)
                while view:
                    written = os.write(stdout, view)
                    view = view[written:]


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
