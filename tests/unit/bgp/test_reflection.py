"""The speaker's side of reflection, pure: events → reflector inputs → what each
peer hears, through the real `Reflector` engine; and loop screening."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from bird_agent.events import (
    BgpEvent,
    EndOfRib,
    PeerDown,
    PeerOpen,
    PeerUp,
    RoutesAnnounced,
    RoutesWithdrawn,
)
from bird_agent.peers import PeerSpec, PeerType
from bird_agent.reflection import CLUSTER_LOOP, ORIGINATOR_LOOP, ReflectionFeed, screen
from route_reflector.api import messages
from route_reflector.api.messages import PathAttributes, apply_outputs
from route_reflector.feed import ReflectFeed

ME = IPv4Address("192.0.2.1")
CLUSTER = IPv4Address("224.0.0.1")
C3, C4, RR2, EXT = (IPv4Address(a) for a in ("192.0.2.3", "192.0.2.4", "192.0.2.2", "198.51.100.9"))
P3, P4, P5 = (IPv4Network(f"10.65.{i}.0/26") for i in (3, 4, 5))


def spec(address: IPv4Address, *, client: bool = True, asn: int = 64512) -> PeerSpec:
    return PeerSpec(
        address=address,
        peer_asn=asn,
        local_asn=64512,
        local_address=ME,
        router_id=ME,
        peer_type=PeerType.ROUTE_REFLECTOR_CLIENT if client else PeerType.ROUTE_REFLECTOR,
        source="test",
        peer_node=str(address),
        route_reflector_client=client,
    )


PEERS = {C3: spec(C3), C4: spec(C4), RR2: spec(RR2, client=False), EXT: spec(EXT, asn=65010)}


class Harness:
    """The speaker's feed wired to a reflector, as gingham-rr runs it (pure)."""

    def __init__(self) -> None:
        self.feed = ReflectionFeed()
        self.reflector = ReflectFeed()
        self.heard: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {}
        self.connect()

    def connect(self) -> None:
        """A (re)connection: a snapshot of what the feed holds."""
        inputs = [
            messages.SnapshotBegin(CLUSTER, ME),
            *self.feed.snapshot(),
            messages.SnapshotEnd(),
        ]
        self._run(inputs)

    def event(self, event: BgpEvent) -> None:
        self._run(self.feed.inputs(event, PEERS))

    def _run(self, inputs: list[messages.FeedInput]) -> None:
        for item in inputs:
            outputs = self.reflector.handle(item)
            assert not any(o.error for o in outputs), outputs
            apply_outputs(self.heard, outputs)

    def up(self, address: IPv4Address, router_id: IPv4Address | None = None) -> None:
        self.event(PeerOpen(address, router_id or address, 64512, 9))
        self.event(PeerUp(address))


def announce(peer: IPv4Address, prefix: IPv4Network, **attributes: object) -> RoutesAnnounced:
    return RoutesAnnounced(peer, peer, (prefix,), attributes={"origin": "igp", **attributes})


def test_a_clients_route_reaches_the_other_clients_and_the_partner_rr() -> None:
    h = Harness()
    for peer in (C3, C4, RR2):
        h.up(peer)
    h.event(announce(C3, P3, **{"local-preference": 100}))
    sent = h.heard[C4][P3]
    assert (sent.next_hop, sent.originator_id, sent.cluster_list) == (C3, C3, (CLUSTER,))
    assert h.heard[RR2][P3] == sent
    assert P3 not in h.heard.get(C3, {})
    # A route from the non-client partner goes to clients only.
    h.event(announce(RR2, P5))
    assert P5 in h.heard[C3] and P5 in h.heard[C4] and P5 not in h.heard.get(RR2, {})
    h.event(RoutesWithdrawn(C3, (P3,)))
    assert P3 not in h.heard[C4] and P3 not in h.heard[RR2]


def test_ebgp_sessions_never_reach_the_reflector() -> None:
    h = Harness()
    h.up(EXT)
    h.up(C4)
    h.event(announce(EXT, P5))
    assert h.feed.up.keys() == {C4}
    assert h.heard.get(C4, {}) == {}


def test_the_router_id_comes_from_the_open_and_a_late_open_updates_it() -> None:
    h = Harness()
    h.up(C3, IPv4Address("10.255.0.3"))
    assert h.feed.up[C3].router_id == IPv4Address("10.255.0.3")
    h.event(PeerOpen(C3, IPv4Address("10.255.0.33"), 64512, 9))
    assert h.feed.up[C3].router_id == IPv4Address("10.255.0.33")


def test_session_loss_withdraws_at_once_without_graceful_restart() -> None:
    h = Harness()
    for peer in (C3, C4):
        h.up(peer)
    h.event(announce(C3, P3))
    h.event(PeerDown(C3, "connection reset"))
    assert P3 not in h.heard[C4] and C3 not in h.feed.up


def test_graceful_restart_keeps_routes_until_end_of_rib_then_sweeps_the_rest() -> None:
    h = Harness()
    for peer in (C3, C4):
        h.up(peer)
    h.event(RoutesAnnounced(C3, C3, (P3, P4), attributes={"origin": "igp"}))
    h.event(PeerDown(C3, "connection reset", graceful_restart_time=120))
    assert {P3, P4} <= set(h.heard[C4])  # kept while it restarts
    h.up(C3)
    h.event(announce(C3, P3))
    h.event(EndOfRib(C3))
    assert P3 in h.heard[C4] and P4 not in h.heard[C4]


def test_a_restart_window_running_out_ends_the_session_in_the_reflector() -> None:
    h = Harness()
    for peer in (C3, C4):
        h.up(peer)
    h.event(announce(C3, P3))
    h.event(PeerDown(C3, "connection reset", graceful_restart_time=1))
    h._run(h.feed.expire(C3))
    assert P3 not in h.heard[C4] and C3 not in h.feed.up


def test_a_reconnection_snapshot_rebuilds_the_same_tables() -> None:
    h = Harness()
    for peer in (C3, C4, RR2):
        h.up(peer)
    h.event(announce(C3, P3))
    h.event(announce(C4, P4, med=7))
    before = {p: dict(t) for p, t in h.heard.items()}
    h.reflector = ReflectFeed()  # gingham-rr restarted
    h.heard = {}
    h.connect()
    assert h.heard == before


def test_a_role_change_is_told_to_the_reflector() -> None:
    h = Harness()
    for peer in (C3, RR2):
        h.up(peer)
    h.event(announce(C3, P3))
    assert P3 in h.heard[RR2]
    # RR2 becomes a client (its cluster ID changed): nothing changes for a
    # client's route, but now RR2's routes go to every client too.
    as_client = {**PEERS, RR2: spec(RR2, client=True)}
    h._run(h.feed.replan(as_client))
    assert h.feed.up[RR2].client


def test_screen_drops_routes_that_come_back_to_their_originator() -> None:
    mine = announce(C3, P3, **{"originator-id": str(ME), "cluster-list": ["224.0.0.9"]})
    event, reason = screen(mine, ME, None)
    assert reason == ORIGINATOR_LOOP
    assert isinstance(event, RoutesWithdrawn) and list(event.prefixes) == [P3]


def test_screen_drops_routes_carrying_our_cluster_id_on_a_reflector_only() -> None:
    looped = announce(RR2, P3, **{"originator-id": "192.0.2.3", "cluster-list": ["224.0.0.1"]})
    event, reason = screen(looped, ME, CLUSTER)
    assert reason == CLUSTER_LOOP and isinstance(event, RoutesWithdrawn)
    # A client (no cluster ID of its own) accepts reflected routes.
    event, reason = screen(looped, IPv4Address("192.0.2.4"), None)
    assert reason is None and event is looped


def test_the_reflector_itself_drops_routes_with_its_own_cluster_id() -> None:
    h = Harness()
    for peer in (C3, RR2):
        h.up(peer)
    h.event(announce(RR2, P5, **{"originator-id": "192.0.2.4", "cluster-list": ["224.0.0.1"]}))
    assert P5 not in h.heard.get(C3, {})
    assert h.reflector.reflector is not None and h.reflector.reflector.loops_dropped == 1
