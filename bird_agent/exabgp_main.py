"""ExaBGP's entry point with its idle loop slowed down: `python -m bird_agent.exabgp_main CONFIG`.

ExaBGP's reactor wakes every `reactor.speed` / 100 seconds (10 ms by default)
even with nothing to do: it runs every peer's state machine, tries `accept()`
on its listener and re-polls its sockets, 100 times a second. Measured idle
(a 4-node mesh lab): ExaBGP 3.3 % of a core per node, more than gingham-bgp
and felix together; a 20-node lab spent ~1.5 of the machine's 2 cores idling,
and every pod ADD and route took seconds.

The wake-up exists to drive timers (keepalives, connect retries) and to pace
queued API work: anything arriving on a socket — a peer's message, an API
command — already wakes the poll at once. So this entry point runs ExaBGP
with a 100 ms idle wait (`IDLE_SPEED`: a `reactor.speed` of 10, what
`exabgp_wire.environment` sets) and never waits while API work is still
queued (ExaBGP would otherwise sleep its idle time between each slice of 50
queued changes, which paces large announcements). Timers fire up to 100 ms
late; keepalives and hold times are seconds.

The change is one wrapped method of the pinned ExaBGP (`Reactor._wait_for_io`);
`tests/unit/bgp/test_exabgp_main.py` fails if that method changes shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

IDLE_SPEED = "10"  # exabgp_reactor_speed: the idle wait is speed / 100 seconds


def patch_reactor() -> None:
    from exabgp.reactor.loop import Reactor  # type: ignore[import-untyped]

    if getattr(Reactor._wait_for_io, "gingham", False):
        return
    wait_for_io = Reactor._wait_for_io

    def _wait_for_io(self: Any, sleeptime: int) -> Iterator[int]:
        if not self.asynchronous.ready():  # API work queued: no idle wait
            sleeptime = 0
        return wait_for_io(self, sleeptime)  # type: ignore[no-any-return]

    _wait_for_io.gingham = True  # type: ignore[attr-defined]
    Reactor._wait_for_io = _wait_for_io


def main() -> None:
    patch_reactor()
    from exabgp.application.main import main as exabgp_main  # type: ignore[import-untyped]

    exabgp_main()


if __name__ == "__main__":
    main()
