"""bird_agent.exabgp_cease: the shape of what it wraps, and what the wrappers do.

End to end (real ExaBGP, BIRD and FRR): tests/integration/bgp/test_planned_stop.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

import pytest

from bird_agent import exabgp_cease
from bird_agent.exabgp_wire import ADMINISTRATIVE_SHUTDOWN, teardown_command


def test_stock_exabgp_still_closes_silently_under_graceful_restart_and_drives_main() -> None:
    """What the patch exists for, and the hooks it relies on, in the pinned ExaBGP."""
    from exabgp.reactor.peer import Peer  # type: ignore[import-untyped]

    exabgp_cease.patch_teardown()
    teardown = inspect.getclosurevars(Peer.teardown).nonlocals["teardown"]
    main = inspect.getclosurevars(Peer._main).nonlocals["main"]
    assert list(inspect.signature(teardown).parameters) == ["self", "code", "restart"]
    assert inspect.isgeneratorfunction(main)
    assert "closing the session without notification" in inspect.getsource(main)
    run = inspect.getsource(Peer._run)
    assert "for action in self._main():" in run
    assert "except Notify as notify:" in run
    assert "self.proto.new_notification(notify)" in run
    # A peer torn down for good refuses new connections (no quick comeback).
    assert "if self.stopping():" in inspect.getsource(Peer.handle_connection)


def test_teardown_asks_for_the_cease_and_keeps_the_peer_down() -> None:
    from exabgp.reactor.delay import Delay  # type: ignore[import-untyped]
    from exabgp.reactor.peer import Peer

    exabgp_cease.patch_teardown()
    exabgp_cease.patch_teardown()  # idempotent: wrapped once
    peer = object.__new__(Peer)
    peer._delay = Delay()
    peer.teardown(ADMINISTRATIVE_SHUTDOWN)
    assert peer._gingham_cease == ADMINISTRATIVE_SHUTDOWN
    assert peer._teardown == ADMINISTRATIVE_SHUTDOWN
    assert peer.stopping()  # no restart: new connections are refused


class _Peer:
    _gingham_cease: int | None = None


def test_a_requested_cease_is_raised_before_the_session_resumes() -> None:
    from exabgp.bgp.message import Notify  # type: ignore[import-untyped]

    closed: list[bool] = []

    def session() -> Generator[str, None, None]:
        try:
            yield "first"
            yield "second"  # resumed, ExaBGP's _main would close silently here
        finally:
            closed.append(True)

    peer = _Peer()
    steps = exabgp_cease.until_cease(peer, session(), Notify)
    assert next(steps) == "first"
    peer._gingham_cease = ADMINISTRATIVE_SHUTDOWN
    with pytest.raises(Notify) as raised:
        next(steps)
    notify: Any = raised.value
    assert (notify.code, notify.subcode) == (6, 2)
    assert exabgp_cease.SHUTDOWN_COMMUNICATION.encode() in notify.data
    assert closed == [True]


def test_without_a_teardown_the_session_runs_as_before() -> None:
    from exabgp.bgp.message import Notify

    def session() -> Generator[str, None, None]:
        yield from ("a", "b")

    assert list(exabgp_cease.until_cease(_Peer(), session(), Notify)) == ["a", "b"]


def test_the_command_names_the_neighbor_and_the_subcode() -> None:
    from ipaddress import IPv4Address

    assert teardown_command(IPv4Address("10.0.0.2")) == "neighbor 10.0.0.2 teardown 2"
