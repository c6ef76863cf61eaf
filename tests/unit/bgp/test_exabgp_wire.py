"""ExaBGP's text formats: rendered configuration, commands, and JSON parsing.

The JSON lines are verbatim what ExaBGP 5.0.15 wrote for a BIRD 2 peer.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bird_agent import exabgp_wire as wire
from bird_agent.events import (
    EndOfRib,
    NotificationReceived,
    PeerConnected,
    PeerDown,
    PeerOpen,
    PeerUp,
    RoutesAnnounced,
    RoutesWithdrawn,
)
from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.peers import PeerSpec, PeerType

A = IPv4Address
N = IPv4Network
HEAD = (
    '{ "exabgp": "5.0.0", "time": 1795917706.29, "host" : "vm", "pid" : 9795, "ppid" : 1, '
    '"counter": 1, '
)
NEIGHBOR = (
    '"neighbor": { "address": { "local": "10.99.0.1", "peer": "10.99.0.2" }, '
    '"asn": { "local": 65001, "peer": 65002 }, "router-id": "10.99.0.1" , '
)
PEER = A("10.99.0.2")


def spec(address: str, password: str | None = None, hold: int = 9) -> PeerSpec:
    return PeerSpec(
        address=A(address),
        peer_asn=65002,
        local_asn=64512,
        local_address=A("10.99.0.1"),
        router_id=A("10.99.0.1"),
        peer_type=PeerType.GLOBAL,
        source="tor",
        password=password,
        hold_time=hold,
    )


def test_config_renders_every_session_setting_deterministically() -> None:
    peers = [spec("10.99.0.3"), spec("10.99.0.2", password="pw")]
    text = wire.render_config(peers, ["/usr/bin/python3", "-I", "/x/bridge.py", "/run/api.sock"])
    assert text == wire.render_config(list(reversed(peers)), ["/usr/bin/python3", "-I",
                                      "/x/bridge.py", "/run/api.sock"])  # fmt: skip
    assert "run /usr/bin/python3 -I /x/bridge.py /run/api.sock;" in text
    assert text.index("neighbor 10.99.0.2 {") < text.index("neighbor 10.99.0.3 {")
    for line in (
        "local-as 64512;",
        "peer-as 65002;",
        "hold-time 9;",
        "router-id 10.99.0.1;",
        "local-address 10.99.0.1;",
        'md5-password "pw";',
        "graceful-restart 120;",
        "ipv4 unicast;",
        "neighbor-changes;",
        "receive { parsed; update; open; notification; }",
    ):
        assert line in text
    assert text.count("md5-password") == 1
    # We send End-of-RIB ourselves (after our announcements are queued).
    assert text.count("manual-eor true;") == 2
    assert "passive" not in text
    passive = wire.render_config([replace(spec("10.99.0.2"), passive=True)], ["x"])
    assert "passive true;" in passive
    assert wire.end_of_rib_command(A("10.99.0.2")) == "neighbor 10.99.0.2 announce eor ipv4 unicast"


def test_unrenderable_password_is_a_clear_error() -> None:
    with pytest.raises(wire.ConfigError, match="password"):
        wire.render_config([spec("10.99.0.2", password='a"b')], ["x"])


def test_environment_runs_as_root_and_listens_where_asked() -> None:
    env = wire.environment([A("10.0.0.1"), A("10.0.0.2")], 1179)
    assert env["exabgp_daemon_user"] == "root"
    assert env["exabgp_daemon_drop"] == "false"
    assert env["exabgp_tcp_bind"] == "10.0.0.1 10.0.0.2"
    assert env["exabgp_tcp_port"] == "1179"
    assert wire.environment([], 179)["exabgp_tcp_bind"] == ""


def test_commands_are_batched_per_next_hop_and_chunked() -> None:
    prefixes = [N(f"10.{i // 256}.{i % 256}.0/24") for i in range(1200)]
    lines = list(wire.announce_commands([A("10.0.0.9"), A("10.0.0.2")], A("10.0.0.1"), prefixes))
    assert len(lines) == 3
    assert lines[0].startswith(
        "neighbor 10.0.0.2 , neighbor 10.0.0.9 announce attributes next-hop 10.0.0.1 nlri "
    )
    assert sum(len(line.split(" nlri ")[1].split()) for line in lines) == 1200
    withdraw = next(wire.withdraw_commands([A("10.0.0.2")], "self", [N("10.1.0.0/26")]))
    assert withdraw == "neighbor 10.0.0.2 withdraw attributes next-hop self nlri 10.1.0.0/26"


def test_acks_and_chatter() -> None:
    assert wire.parse_line("done\n") == wire.Ack(True)
    assert wire.parse_line("error\n") == wire.Ack(False)
    assert wire.parse_line("something else") is None
    assert wire.parse_line("{ not json") is None


def test_state_changes() -> None:
    for state, kind in (("connected", PeerConnected), ("up", PeerUp)):
        line = HEAD + '"type": "state", ' + NEIGHBOR + f'"state": "{state}" }} }}'
        assert wire.parse_line(line) == [kind(PEER)]
    down = (
        HEAD
        + '"type": "state", '
        + NEIGHBOR
        + ('"state": "down", "reason": "notification received (6,4)" } }')
    )
    assert wire.parse_line(down) == [PeerDown(PEER, "notification received (6,4)")]


def test_open_gives_router_id_and_graceful_restart_time() -> None:
    line = (
        HEAD
        + '"type": "open", '
        + NEIGHBOR
        + (
            '"direction": "receive", "open": { "version": 4, "asn": 65002, "hold_time": 9, '
            '"router_id": "10.99.0.2", "capabilities": { "1": { "name": "multiprotocol", '
            '"families": [ "ipv4/unicast" ] }, "64": { "name": "graceful restart", "time": 120, '
            '"address-family-flags": { "ipv4/unicast": [ ] }, "restart-flags": [ ]  }, '
            '"65": { "name": "asn4", "asn4": 65002 } } } } }'
        )
    )
    (event,) = wire.parse_line(line)  # type: ignore[misc]
    assert isinstance(event, PeerOpen)
    assert event.router_id == PEER and event.asn == 65002 and event.hold_time == 9
    assert event.graceful_restart_time == 120
    assert "multiprotocol" in event.capabilities


def test_updates_announce_withdraw_and_end_of_rib() -> None:
    announce = (
        HEAD
        + '"type": "update", '
        + NEIGHBOR
        + (
            '"direction": "receive", "message": { "update": { "attribute": { "origin": "igp", '
            '"as-path": {"0": {"element": "as-sequence", "value": [65002, 65010]}} }, '
            '"announce": { "ipv4 unicast": { "10.99.0.2": [ { "nlri": "10.200.0.0/26" }, '
            '{ "nlri": "10.200.0.64/26" } ] } } } } } }'
        )
    )
    assert wire.parse_line(announce) == [
        RoutesAnnounced(
            PEER, A("10.99.0.2"), (N("10.200.0.0/26"), N("10.200.0.64/26")), (65002, 65010)
        )
    ]
    withdraw = (
        HEAD
        + '"type": "update", '
        + NEIGHBOR
        + (
            '"direction": "receive", "message": { "update": { "withdraw": { "ipv4 unicast": '
            '[ { "nlri": "10.200.0.0/26" } ] } } } } }'
        )
    )
    assert wire.parse_line(withdraw) == [RoutesWithdrawn(PEER, (N("10.200.0.0/26"),))]
    eor = (
        HEAD
        + '"type": "update", '
        + NEIGHBOR
        + (
            '"direction": "receive", "message": '
            '{ "eor": { "afi" : "ipv4", "safi" : "unicast" } } } }'
        )
    )
    assert wire.parse_line(eor) == [EndOfRib(PEER)]


def test_notification_and_unknown_types() -> None:
    note = (
        HEAD
        + '"type": "notification", '
        + NEIGHBOR
        + ('"notification": { "code": 6, "subcode": 4, "data": "0x", "message": "" } } }')
    )
    assert wire.parse_line(note) == [NotificationReceived(PEER, 6, 4)]
    assert wire.parse_line(HEAD + '"type": "keepalive", ' + NEIGHBOR + '"x": 1 } }') == []
    assert wire.parse_line('{"type": "state"}') == []


def test_adapter_refuses_unrenderable_peers_up_front(tmp_path: Path) -> None:
    adapter = ExaBGPAdapter(ExaBGPOptions(run_dir=tmp_path))
    with pytest.raises(wire.ConfigError, match="password"):
        adapter.set_peers([spec("10.99.0.2", password="new\nline")])


def test_a_message_with_a_bad_prefix_is_skipped_not_fatal() -> None:
    bad = (
        HEAD
        + '"type": "update", '
        + NEIGHBOR
        + (
            '"direction": "receive", "message": { "update": { "withdraw": { "ipv4 unicast": '
            '[ { "nlri": "10.200.0.1/26" }, { "nlri": "1.2.3/8" } ] } } } } }'
        )
    )
    assert wire.parse_line(bad) == []


def test_which_session_ends_keep_routes_for_graceful_restart() -> None:
    assert wire.ends_gracefully("closing connection")
    assert wire.ends_gracefully("notification sent (4,0)")  # our hold timer ran out
    assert not wire.ends_gracefully("notification received (6,4)")  # peer's admin reset
    assert not wire.ends_gracefully("notification sent (3,1)")  # we refused its UPDATE


def test_export_batches_move_each_neighbor_from_what_it_holds_to_what_is_desired() -> None:
    p1, p2, p3 = N("10.244.1.0/26"), N("10.244.2.0/26"), N("10.244.3.0/26")
    nh = A("10.0.0.1")
    fresh, old, done = A("10.0.0.2"), A("10.0.0.3"), A("10.0.0.4")
    batches = wire.export_batches(
        {fresh: {}, old: {p1: nh, p3: nh}, done: {p1: nh, p2: nh}}, {p1: nh, p2: nh}
    )
    by_neighbors = {b.neighbors: b.lines for b in batches}
    assert set(by_neighbors) == {(fresh,), (old,)}  # `done` already holds it all
    assert by_neighbors[(fresh,)] == (
        f"neighbor {fresh} announce attributes next-hop {nh} nlri {p1} {p2}",
    )
    assert by_neighbors[(old,)] == (
        f"neighbor {old} withdraw attributes next-hop {nh} nlri {p3}",
        f"neighbor {old} announce attributes next-hop {nh} nlri {p2}",
    )
    # Neighbors holding the same thing share one batch.
    (shared,) = wire.export_batches({fresh: {}, old: {}}, {p1: "self"})
    assert shared.neighbors == (fresh, old)
    assert shared.lines == (
        f"neighbor {fresh} , neighbor {old} announce attributes next-hop self nlri {p1}",
    )
