"""The ExaBGP entry point's one change to the pinned ExaBGP (bird_agent.exabgp_main)."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bird_agent import exabgp_main
from bird_agent.exabgp_process import ExaBGPOptions, exabgp_environment


class _Queue:
    def __init__(self, pending: bool) -> None:
        self.pending = pending

    def ready(self) -> bool:
        return not self.pending


def test_the_wrapped_method_still_has_the_signature_the_wrapper_relies_on() -> None:
    from exabgp.reactor.asynchronous import ASYNC  # type: ignore[import-untyped]
    from exabgp.reactor.loop import Reactor  # type: ignore[import-untyped]

    exabgp_main.patch_reactor()
    original = inspect.getclosurevars(Reactor._wait_for_io).nonlocals["wait_for_io"]
    assert list(inspect.signature(original).parameters) == ["self", "sleeptime"]
    assert list(inspect.signature(ASYNC.ready).parameters) == ["self"]


def _replaced() -> dict[str, Any]:
    """Every attribute and command the patches replace, as it is now."""
    from exabgp.bgp.message.update import Update  # type: ignore[import-untyped]
    from exabgp.protocol.family import AFI, SAFI, Family  # type: ignore[import-untyped]
    from exabgp.reactor.api.command.command import Command  # type: ignore[import-untyped]
    from exabgp.reactor.asynchronous import ASYNC
    from exabgp.reactor.loop import Reactor
    from exabgp.reactor.protocol import Protocol  # type: ignore[import-untyped]
    from exabgp.rib.outgoing import OutgoingRIB  # type: ignore[import-untyped]

    owners = {
        "Reactor": (Reactor, ["_wait_for_io"]),
        "ASYNC": (ASYNC, ["schedule", "run"]),
        "Family": (Family, ["family", "index"]),
        "AFI": (AFI, ["create"]),
        "SAFI": (SAFI, ["create"]),
        "Update": (Update, ["_split_nlris"]),
        "Protocol": (Protocol, ["new_update"]),
        "OutgoingRIB": (OutgoingRIB, ["pending"]),
    }
    now = {f"{o}.{n}": vars(cls).get(n) for o, (cls, names) in owners.items() for n in names}
    text = Command.callback["text"]
    for name in (f"announce {exabgp_main.REFLECTED}", f"withdraw {exabgp_main.REFLECTED}"):
        now[name] = (text.get(name), name in Command.functions)
    return now


def test_every_patch_is_undone_by_restore() -> None:
    stock = _replaced()
    assert exabgp_main.apply_patches()
    patched = _replaced()
    assert [k for k in stock if patched[k] == stock[k]] == []  # each one replaced
    exabgp_main.restore()
    assert _replaced() == stock


def test_another_exabgp_release_runs_stock_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stock = _replaced()
    monkeypatch.setattr(exabgp_main, "exabgp_version", lambda: "5.0.16")
    assert not exabgp_main.patches_apply()
    assert exabgp_main.default_speed() == exabgp_main.STOCK_SPEED
    assert not exabgp_main.apply_patches()
    for patch in exabgp_main.PATCHES:
        patch()  # each one checks too
    assert _replaced() == stock
    warning = capsys.readouterr().err
    assert "ExaBGP 5.0.16 is installed" in warning and exabgp_main.PINNED_VERSION in warning


def test_stock_can_be_asked_for_on_the_pinned_release(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exabgp_main.exabgp_version() == exabgp_main.PINNED_VERSION  # what the suite runs
    assert exabgp_main.default_speed() == exabgp_main.IDLE_SPEED
    monkeypatch.setenv(exabgp_main.STOCK_VARIABLE, "1")
    stock = _replaced()
    assert not exabgp_main.apply_patches()
    assert _replaced() == stock
    assert exabgp_main.default_speed() == exabgp_main.STOCK_SPEED


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


def test_families_come_from_a_table_with_exabgps_own_values() -> None:
    from exabgp.protocol.family import AFI, SAFI, Family  # type: ignore[import-untyped]

    known = list(Family.size)  # every (afi, safi) ExaBGP knows
    before = [
        (Family(a, s).family().afi_safi(), Family(a, s).index(), type(AFI.create(int(a))))
        for a, s in known
    ]
    unknown_before = (AFI.create(9999), SAFI.create(250))
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


# -- the attribute commands and the NLRI order ----------------------------------


def _change(prefix: str, next_hop: str, local_pref: int, withdraw: bool = False) -> Any:
    from ipaddress import IPv4Network

    from exabgp.bgp.message import Action  # type: ignore[import-untyped]
    from exabgp.bgp.message.update.attribute import (  # type: ignore[import-untyped]
        Attributes,
        LocalPreference,
        NextHop,
        Origin,
    )
    from exabgp.bgp.message.update.nlri.cidr import CIDR  # type: ignore[import-untyped]
    from exabgp.bgp.message.update.nlri.inet import INET  # type: ignore[import-untyped]
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.change import Change  # type: ignore[import-untyped]

    nlri = INET(AFI.ipv4, SAFI.unicast, Action.WITHDRAW if withdraw else Action.ANNOUNCE)
    network = IPv4Network(prefix)
    nlri.cidr = CIDR(network.network_address.packed, network.prefixlen)
    nlri.nexthop = NextHop(next_hop)
    attributes = Attributes()
    attributes.add(Origin(Origin.IGP))
    attributes.add(LocalPreference(local_pref))
    return Change(nlri, attributes)


@pytest.fixture
def quiet_exabgp(monkeypatch: pytest.MonkeyPatch) -> None:
    from exabgp.logger import log  # type: ignore[import-untyped]

    for level in ("debug", "info", "error"):
        monkeypatch.setattr(log, level, lambda *args, **kwargs: None)


def _state(rib: Any) -> Any:
    return (
        {k: dict(v) for k, v in rib._seen.items()},
        dict(rib._new_nlri),
        {a: {f: dict(c) for f, c in fam.items()} for a, fam in rib._new_attr_af_nlri.items()},
        dict(rib._new_attribute),
    )


@pytest.mark.usefixtures("quiet_exabgp")
def test_updates_carry_the_same_nlri_in_the_same_order_as_exabgps_sort() -> None:
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update import Update
    from exabgp.protocol.family import AFI, SAFI  # type: ignore[import-untyped]

    original = Update._split_nlris
    if getattr(original, "gingham", False):
        original = inspect.getclosurevars(original).nonlocals["split_nlris"]
    exabgp_main.patch_nlri_order()
    exabgp_main.patch_nlri_order()  # idempotent
    patched = Update._split_nlris
    changes = [
        _change(prefix, "192.0.2.1", 100, withdraw=i % 3 == 0)
        for i, prefix in enumerate(
            ["10.65.3.0/26", "10.64.0.0/10", "10.65.1.0/26", "10.65.0.0/24", "10.0.0.0/8",
             "10.65.2.0/26", "10.65.0.128/25"]
        )
    ]  # fmt: skip
    v6 = _api().api_attributes(
        "announce attributes next-hop 2001:db8::1 origin igp nlri 2001:db8:1::/64 2001:db8::/64",
        ["n1"],
    )
    for change in v6:
        change.nlri.action = Action.ANNOUNCE
    update = Update([c.nlri for c in [*changes, *v6]], changes[0].attributes)

    class Negotiated:  # what _split_nlris reads of ExaBGP's Negotiated
        families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]

    negotiated: Any = Negotiated()
    try:
        Update._split_nlris = original
        expected = update._split_nlris(negotiated)
    finally:
        Update._split_nlris = patched
    assert update._split_nlris(negotiated) == expected
    assert [n.index() for n in expected[0]] == sorted(n.index() for n in expected[0])
    assert len(expected[0]) == len(changes) and expected[1]  # both kinds were there


@pytest.mark.usefixtures("quiet_exabgp")
def test_accepting_a_peer_goes_ahead_of_queued_route_work() -> None:
    from exabgp.reactor.asynchronous import ASYNC  # type: ignore[import-untyped]

    exabgp_main.patch_accept()
    exabgp_main.patch_accept()  # idempotent
    queue = ASYNC()
    queue.schedule("api", "announce attributes …", iter(()))
    queue.schedule("api", "announce attributes …", iter(()))
    queue.schedule("listener", exabgp_main.ACCEPT, iter(()))
    assert [uid for uid, _ in queue._async] == ["listener", "api", "api"]


def _api() -> Any:
    from exabgp.configuration.configuration import Configuration
    from exabgp.reactor.api import API  # type: ignore[import-untyped]

    return API(Configuration([]))


def _route(change: Any) -> Any:
    nlri = change.nlri
    return (
        change.index(), change.attributes.index(), type(nlri), nlri.action, str(nlri.nexthop),
        nlri.cidr._packed, nlri.cidr.mask, nlri.path_info,
    )  # fmt: skip


ATTRIBUTES = (
    "announce attributes next-hop 192.0.2.3 origin igp local-preference 100"
    " originator-id 192.0.2.3 cluster-list [ 224.0.0.1 ] community [ 65000:1 ]"
)


@pytest.mark.usefixtures("quiet_exabgp")
@pytest.mark.parametrize(
    "nlri",
    [
        "10.65.0.0/26 10.65.0.64/26 10.64.0.0/10 10.0.0.0/8 192.0.2.7/32",
        "10.65.0.0/26",  # one prefix: ExaBGP's parse
        "10.65.0.0/26 10.65.0.65/26",  # host bits: ExaBGP's parse
        "10.65.0.0/26 2001:db8::/64",  # not IPv4: ExaBGP's parse
    ],
)
def test_routes_of_an_attribute_command_are_made_as_exabgps_parser_makes_them(nlri: str) -> None:

    command = f"{ATTRIBUTES} nlri {nlri}"
    theirs = _api().api_attributes(command, ["n1"])
    ours = exabgp_main.parse_routes(_api(), command, ["n1"])
    assert [_route(c) for c in ours] == [_route(c) for c in theirs]
    assert all(c.attributes is ours[0].attributes for c in ours)  # shared, as ExaBGP shares it


@pytest.mark.usefixtures("quiet_exabgp")
def test_a_command_exabgp_refuses_is_refused() -> None:
    command = "announce attributes next-hop nowhere nlri 10.65.0.0/26 10.65.0.64/26"
    assert _api().api_attributes(command, ["n1"]) == []  # the handler answers `error`
    assert exabgp_main.parse_routes(_api(), command, ["n1"]) == []


@pytest.mark.usefixtures("quiet_exabgp")
def test_api_steps_run_without_an_event_loop_and_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    from pathlib import Path as _Path

    import exabgp.reactor.api as api_package  # type: ignore[import-untyped]
    from exabgp.reactor.asynchronous import ASYNC

    # What the patch relies on: every API callback of this ExaBGP is a generator.
    sources = _Path(api_package.__file__).parent.rglob("*.py")
    assert not any("async def" in source.read_text() for source in sources)
    original = ASYNC.run
    if getattr(original, "gingham", False):
        original = inspect.getclosurevars(original).nonlocals["run"]

    def play(run: Any) -> list[Any]:
        seen: list[Any] = []

        def work(name: str, steps: int) -> Iterator[bool]:
            for step in range(steps):
                seen.append((name, step))
                yield False

        queue = ASYNC()
        queue.LIMIT = 4
        queue.schedule("a", "first", work("a", 3))
        queue.schedule("b", "second", work("b", 5))
        results = [run(queue) for _ in range(4)]
        return [seen, results, queue.ready()]

    expected = play(original)
    exabgp_main.patch_api_steps()
    exabgp_main.patch_api_steps()  # idempotent
    monkeypatch.setattr(asyncio, "run", lambda *a, **k: pytest.fail("an event loop was started"))
    assert play(ASYNC.run) == expected


@pytest.mark.usefixtures("quiet_exabgp")
def test_a_withdrawal_naming_no_attributes_takes_back_a_route_sent_with_them() -> None:
    """The adapter withdraws reflected routes by prefix alone: ExaBGP's outgoing
    RIB indexes a route without its next hop or attributes."""
    from exabgp.bgp.message import Action
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    api = _api()
    (announced,) = api.api_attributes(f"{ATTRIBUTES} nlri 10.65.0.0/26", ["n1"])
    (withdrawn,) = api.api_attributes("withdraw attributes nlri 10.65.0.0/26", ["n1"])
    announced.nlri.action, withdrawn.nlri.action = Action.ANNOUNCE, Action.WITHDRAW
    assert withdrawn.index() == announced.index()
    rib = OutgoingRIB(True, [(AFI.ipv4, SAFI.unicast)])
    rib.add_to_rib(announced)
    sent = [(str(n.cidr.prefix()), n.action) for u in rib.updates(False) for n in u.nlris]
    assert sent == [("10.65.0.0/26", Action.ANNOUNCE)]
    rib.add_to_rib(withdrawn)
    sent = [(str(n.cidr.prefix()), n.action) for u in rib.updates(False) for n in u.nlris]
    assert sent == [("10.65.0.0/26", Action.WITHDRAW)]
    assert list(rib.cached_changes()) == []


def _name(address: str, local: str = "172.16.255.254") -> str:
    return (
        f"neighbor {address} local-ip {local} local-as 64512 peer-as 64512"
        f" router-id {local} family-allowed in-open"
    )


NAMES = tuple(
    [_name(f"10.0.0.{i}") for i in (1, 10, 11, 100, 2)]
    + [_name("10.0.0.3", local="10.0.0.1"), "neighbor 10.0.0.4, odd", "x neighbor 10.0.0.5"]
)


ADDRESSES = ["10.0.0.1", "10.0.0.10", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
ADDRESSES += ["10.0.0.99", "10.0.0.1,", "*"]


@settings(max_examples=200, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=6),
    extra=st.sampled_from(["", " local-as 64512", " peer-as 1"]),
)
def test_selecting_neighbors_by_address_matches_exabgps_selection(
    chosen: list[str], extra: str
) -> None:
    from exabgp.reactor.api.command.limit import (  # type: ignore[import-untyped]
        extract_neighbors,
        match_neighbors,
    )

    line = " , ".join(f"neighbor {a}{extra}" for a in chosen) + " announce attributes nlri x"
    descriptions, _ = extract_neighbors(line)
    ours = exabgp_main.select_by_address(NAMES, descriptions, {})
    if ours is None:  # not one address per description: ExaBGP's own selection runs
        assert extra or "*" in chosen
        return
    assert ours == match_neighbors(list(NAMES), descriptions)


# -- shared UPDATEs: reflected routes built once, queued on every session ---------


def _negotiated(asn4: bool = True, msg_size: int = 4096) -> Any:
    from exabgp.bgp.message.open.asn import ASN  # type: ignore[import-untyped]
    from exabgp.bgp.message.open.capability.negotiated import (  # type: ignore[import-untyped]
        Negotiated,
    )
    from exabgp.protocol.family import AFI, SAFI

    negotiated = Negotiated({"capability": {"aigp": False}})
    negotiated.local_as = negotiated.peer_as = ASN(64512)
    negotiated.asn4 = asn4
    negotiated.msg_size = msg_size
    negotiated.families = [(AFI.ipv4, SAFI.unicast)]
    return negotiated


class _Session:
    """Stands in for ExaBGP's Protocol: what `share_changes` and the patched
    `new_update` read (its negotiation, its neighbor's outgoing RIB) and a
    `send` that records the messages."""

    def __init__(self, rib: Any, negotiated: Any) -> None:
        self.negotiated = negotiated
        self.neighbor = _NeighborView(rib)
        self.connection = type("Connection", (), {"session": lambda self: "test"})()
        self.peer = type("Peer", (), {"stats": {"send-update": 0}})()
        self.sent: list[bytes] = []

    def send(self, raw: bytes) -> Iterator[bool]:
        self.sent.append(raw)
        yield True


class _NeighborView(dict[str, Any]):
    def __init__(self, rib: Any) -> None:
        super().__init__({"group-updates": True})
        self.rib = type("Rib", (), {"outgoing": rib})()


class _Peer:
    def __init__(self, session: _Session | None, established: bool = True) -> None:
        from exabgp.bgp.fsm import FSM  # type: ignore[import-untyped]

        self.proto = session
        self.fsm = FSM.ESTABLISHED if established else FSM.IDLE
        self.neighbor = session.neighbor if session is not None else None


def _rib() -> Any:
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    return OutgoingRIB(True, [(AFI.ipv4, SAFI.unicast)])


def _reflected(command: str) -> list[Any]:
    from exabgp.bgp.message import Action

    action = Action.WITHDRAW if command.startswith("withdraw") else Action.ANNOUNCE
    changes = exabgp_main.parse_routes(_api(), command, ["n1"])
    for change in changes:
        change.nlri.action = action
    return changes


def _through_the_rib(changes: list[Any], negotiated: Any) -> list[bytes]:
    """What ExaBGP itself sends a session for `changes` put into its outgoing RIB."""
    rib = _rib()
    for change in changes:
        rib.add_to_rib(change)
    return [raw for update in rib.updates(True) for raw in update.messages(negotiated, True)]


PREFIXES = " ".join(f"10.{128 + i // 256}.{i % 256}.0/26" for i in range(1200))


@pytest.mark.usefixtures("quiet_exabgp")
@pytest.mark.parametrize(
    "command",
    [
        f"{ATTRIBUTES} as-path [ 64512 4200000000 ] med 5 nlri {PREFIXES}",
        f"withdraw attributes nlri {PREFIXES}",
    ],
)
@pytest.mark.parametrize("asn4", [True, False])
def test_a_shared_update_is_what_exabgp_sends_from_its_rib(command: str, asn4: bool) -> None:
    """Byte for byte, split into the same messages (1,200 prefixes need several)."""
    exabgp_main.patch_nlri_order()  # its sort is what the RIB path uses too
    changes = _reflected(command)
    negotiated = _negotiated(asn4=asn4)
    session = _Session(_rib(), negotiated)
    reactor = type("Reactor", (), {"_peers": {"n1": _Peer(session)}})()
    assert exabgp_main.share_changes(reactor, ["n1"], changes) == 1
    queued = [raw for _, raw in vars(session.neighbor.rib.outgoing)[exabgp_main.SHARED]]
    assert queued == _through_the_rib(changes, negotiated)
    assert len(queued) > 1


@pytest.mark.usefixtures("quiet_exabgp")
def test_sessions_alike_share_the_very_same_messages_and_others_get_their_own() -> None:
    changes = _reflected(f"{ATTRIBUTES} as-path [ 64512 ] nlri 10.128.0.0/26 10.128.0.64/26")
    alike = [_Session(_rib(), _negotiated()) for _ in range(3)]
    two_octet = _Session(_rib(), _negotiated(asn4=False))
    down = _Session(_rib(), _negotiated())
    peers = {f"n{i}": _Peer(s) for i, s in enumerate(alike)}
    peers |= {"old": _Peer(two_octet), "down": _Peer(down, established=False)}
    reactor = type("Reactor", (), {"_peers": peers})()
    named = [*peers, "unknown"]
    assert exabgp_main.share_changes(reactor, named, changes) == 4

    def queued(session: _Session) -> list[bytes]:
        return [raw for _, raw in vars(session.neighbor.rib.outgoing).get(exabgp_main.SHARED, ())]

    first = queued(alike[0])
    assert all(a is b for s in alike[1:] for a, b in zip(queued(s), first, strict=True))
    assert queued(two_octet) == _through_the_rib(changes, two_octet.negotiated) != first
    assert queued(down) == []  # no session: it is sent everything when it is up


@pytest.mark.usefixtures("quiet_exabgp")
def test_routes_exabgp_must_handle_per_neighbor_are_not_shared() -> None:
    session = _Session(_rib(), _negotiated())
    reactor = type("Reactor", (), {"_peers": {"n1": _Peer(session)}})()
    v6 = _api().api_attributes(
        "announce attributes next-hop 2001:db8::1 origin igp nlri 2001:db8:1::/64", ["n1"]
    )
    own = _api().api_attributes("announce attributes next-hop self nlri 10.128.0.0/26", ["n1"])
    for changes in (v6, own):
        assert exabgp_main.share_changes(reactor, ["n1"], changes) is None
    assert exabgp_main.SHARED not in vars(session.neighbor.rib.outgoing)


@pytest.mark.usefixtures("quiet_exabgp")
def test_a_session_sends_its_shared_updates_first_and_never_an_ended_sessions() -> None:
    from exabgp.reactor.protocol import Protocol  # type: ignore[import-untyped]
    from exabgp.rib.outgoing import OutgoingRIB

    exabgp_main.patch_shared_updates()
    exabgp_main.patch_shared_updates()  # idempotent
    rib = _rib()
    ended, session = _Session(rib, _negotiated()), _Session(rib, _negotiated())
    assert not OutgoingRIB.pending(rib)
    vars(rib)[exabgp_main.SHARED] = deque([(ended, b"stale"), (session, b"one"), (session, b"two")])
    assert OutgoingRIB.pending(rib)  # End-of-RIB waits for them
    own = _change("10.64.0.0/26", "192.0.2.1", 100)
    rib.add_to_rib(own)
    list(Protocol.new_update(session, True))
    # The shared ones first, in one write, the stale one never; then the RIB's own.
    assert session.sent[0] == b"onetwo" and len(session.sent) == 2
    assert session.peer.stats["send-update"] == 1  # + 1 per send: each UPDATE counted
    assert ended.sent == [] and not OutgoingRIB.pending(rib)
