"""The ExaBGP entry point's one change to the pinned ExaBGP (bird_agent.exabgp_main)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from bird_agent import exabgp_main
from bird_agent.exabgp_process import ExaBGPOptions, exabgp_environment


class _Queue:
    def __init__(self, pending: bool) -> None:
        self.pending = pending

    def ready(self) -> bool:
        return not self.pending


def test_the_wrapped_method_still_has_the_shape_the_wrapper_relies_on() -> None:
    from exabgp.reactor.asynchronous import ASYNC  # type: ignore[import-untyped]
    from exabgp.reactor.loop import Reactor  # type: ignore[import-untyped]

    exabgp_main.patch_reactor()
    original = inspect.getclosurevars(Reactor._wait_for_io).nonlocals["wait_for_io"]
    assert list(inspect.signature(original).parameters) == ["self", "sleeptime"]
    assert "self._poller.poll(sleeptime)" in inspect.getsource(original)
    assert list(inspect.signature(ASYNC.ready).parameters) == ["self"]
    assert "_wait_for_io(sleep)" in inspect.getsource(Reactor.run)


def test_queued_api_work_is_never_left_waiting_and_idle_waits_stay() -> None:
    from exabgp.reactor.loop import Reactor

    exabgp_main.patch_reactor()
    exabgp_main.patch_reactor()  # idempotent: wrapped once
    waits: list[int] = []

    class Poller:
        def poll(self, timeout: int) -> list[Any]:
            waits.append(timeout)
            return []

    reactor = object.__new__(Reactor)
    reactor._poller = Poller()
    for pending in (True, False):
        reactor.asynchronous = _Queue(pending)
        assert list(reactor._wait_for_io(100)) == []
    assert waits == [0, 100]


def test_the_environment_sets_the_idle_speed_the_entry_point_expects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = ExaBGPOptions(run_dir=tmp_path)
    monkeypatch.delenv("exabgp_reactor_speed", raising=False)
    assert exabgp_environment(options)["exabgp_reactor_speed"] == exabgp_main.IDLE_SPEED
    monkeypatch.setenv("exabgp_reactor_speed", "0.1")  # an operator's choice wins
    assert exabgp_environment(options)["exabgp_reactor_speed"] == "0.1"


def test_remove_self_copies_only_what_it_rewrites(monkeypatch: pytest.MonkeyPatch) -> None:
    from exabgp.bgp.neighbor import Neighbor  # type: ignore[import-untyped]

    original_source = inspect.getsource(Neighbor.remove_self)
    exabgp_main.patch_remove_self()
    exabgp_main.patch_remove_self()  # idempotent
    original = inspect.getclosurevars(Neighbor.remove_self).nonlocals["remove_self"]
    # The shape the wrapper relies on: a deep copy, then `next-hop self` rewritten.
    source = inspect.getsource(original)
    assert "deepcopy(changes)" in source and "if not change.nlri.nexthop.SELF" in source
    assert original_source == source

    class Hop:
        def __init__(self, is_self: bool) -> None:
            self.SELF = is_self

    class Nlri:
        def __init__(self, is_self: bool) -> None:
            self.nexthop = Hop(is_self)

    class Change:
        def __init__(self, is_self: bool) -> None:
            self.nlri = Nlri(is_self)

    neighbor = Neighbor.__new__(Neighbor)
    plain = Change(False)
    assert neighbor.remove_self(plain) is plain
    rewritten: list[Any] = []
    monkeypatch.setattr(Neighbor, "ip_self", lambda self, afi: rewritten.append(afi) or "192.0.2.1")
    marked = Change(True)
    marked.nlri.afi = 1  # type: ignore[attr-defined]
    marked.attributes = {}  # type: ignore[attr-defined]
    copy = neighbor.remove_self(marked)
    assert copy is not marked and copy.nlri.nexthop == "192.0.2.1" and rewritten == [1]


def test_families_come_from_a_table_with_exabgps_own_values() -> None:
    from exabgp.protocol.family import AFI, SAFI, Family  # type: ignore[import-untyped]

    known = list(Family.size)  # every (afi, safi) ExaBGP knows
    before = [
        (Family(a, s).family().afi_safi(), Family(a, s).index(), type(AFI.create(int(a))))
        for a, s in known
    ]
    unknown_before = (AFI.create(9999), SAFI.create(250))
    assert "cls.cache.get(value, _AFI(value))" in inspect.getsource(AFI.create)
    assert "return Family(self.afi, self.safi)" in inspect.getsource(Family.family)
    exabgp_main.patch_family()
    exabgp_main.patch_family()  # idempotent
    after = [
        (Family(a, s).family().afi_safi(), Family(a, s).index(), type(AFI.create(int(a))))
        for a, s in known
    ]
    assert after == before
    assert Family(AFI.ipv4, SAFI.unicast).family() is Family(AFI.ipv4, SAFI.unicast).family()
    assert AFI.create(int(AFI.ipv4)) is AFI.ipv4 and SAFI.create(int(SAFI.unicast)) is SAFI.unicast
    assert (AFI.create(9999), SAFI.create(250)) == unknown_before  # not cached: built, as before
