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

Second, the route reflector's cost (bench/rr.py): ExaBGP deep-copies every
route change once per neighbor it is sent to (`Neighbor.remove_self`, ready
to rewrite a `next-hop self`) — 74 % of the reflector's ExaBGP CPU reflecting
20 clients x 250 prefixes. The speaker names its own address as next hop and
the reflector keeps the original one, and nothing in ExaBGP mutates a change
once it is in a neighbor's outgoing RIB (withdrawal copies before it flips
the action; the watchdog, which does mutate, is not used), so a change
without `next-hop self` is shared by the neighbors instead of copied. A
`next-hop self` change still takes ExaBGP's own path (copy, then rewrite).

Both are wrapped methods of the pinned ExaBGP (`Reactor._wait_for_io`,
`Neighbor.remove_self`); `tests/unit/bgp/test_exabgp_main.py` fails if either
changes shape.
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


def patch_remove_self() -> None:
    from exabgp.bgp.neighbor import Neighbor  # type: ignore[import-untyped]

    if getattr(Neighbor.remove_self, "gingham", False):
        return
    remove_self = Neighbor.remove_self

    def _remove_self(self: Any, change: Any) -> Any:
        if not change.nlri.nexthop.SELF:
            return change  # nothing to rewrite: share it, do not deep-copy it
        return remove_self(self, change)

    _remove_self.gingham = True  # type: ignore[attr-defined]
    Neighbor.remove_self = _remove_self


def main() -> None:
    patch_reactor()
    patch_remove_self()
    from exabgp.application.main import main as exabgp_main  # type: ignore[import-untyped]

    exabgp_main()


if __name__ == "__main__":
    main()
