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

Third, per route change ExaBGP asks for its family about ten times as
`nlri.family().afi_safi()`: each call builds a new `Family`, whose AFI and SAFI
lookups (`AFI.create`, `SAFI.create`) construct a fresh default object even
when the cache holds the value; `Family.index` formats the same four hex
digits again. ~25 % of the reflector's ExaBGP CPU after the copy was gone.
`patch_family` returns the one `Family` per (afi, safi) and its index bytes
from a table, and looks the cache up before building a default. Same values,
same types (a test compares them with ExaBGP's own for every known family).

All are wrapped methods of the pinned ExaBGP (`Reactor._wait_for_io`,
`Neighbor.remove_self`, `Family.family`, `Family.index`, `AFI.create`,
`SAFI.create`); `tests/unit/bgp/test_exabgp_main.py` fails if one changes shape.
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


def patch_family() -> None:
    from exabgp.protocol.family import AFI, SAFI, Family  # type: ignore[import-untyped]

    if getattr(Family.family, "gingham", False):
        return
    Family.family = _per_family(Family.family)
    Family.index = _per_family(Family.index)
    for resource in (AFI, SAFI):
        create = resource.create.__func__

        def _create(cls: Any, value: int, create: Any = create) -> Any:
            found = cls.cache.get(value)
            return found if found is not None else create(cls, value)

        resource.create = classmethod(_create)


def _per_family(method: Any) -> Any:
    """`method(self)`, computed once per (afi, safi) and then read from a table."""
    table: dict[tuple[int, int], Any] = {}

    def wrapper(self: Any) -> Any:
        key = (self.afi, self.safi)
        found = table.get(key)
        if found is None:
            found = table[key] = method(self)
        return found

    wrapper.gingham = True  # type: ignore[attr-defined]
    return wrapper


def main() -> None:
    patch_reactor()
    patch_remove_self()
    patch_family()
    from exabgp.application.main import main as exabgp_main  # type: ignore[import-untyped]

    exabgp_main()


if __name__ == "__main__":
    main()
