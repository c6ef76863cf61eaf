"""ExaBGP's words for reflection: attributes read from its JSON, commands written back."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

from bird_agent.events import RoutesAnnounced
from bird_agent.exabgp_reflect import (
    attribute_text,
    attributes_from_json,
    reflected_changes,
)
from bird_agent.exabgp_wire import MAX_NLRI_PER_COMMAND, parse_line
from route_reflector.api.messages import Origin, PathAttributes

A, B, C = (IPv4Address(f"192.0.2.{i}") for i in (1, 2, 3))
CLUSTER = IPv4Address("224.0.0.1")
P1, P2, P3, P4 = (IPv4Network(f"10.65.{i}.0/26") for i in (1, 2, 3, 4))

# What ExaBGP 5 writes for an UPDATE a BIRD route reflector sent us.
UPDATE = {
    "exabgp": "5.0.0",
    "type": "update",
    "neighbor": {
        "address": {"local": "192.0.2.3", "peer": "192.0.2.1"},
        "direction": "receive",
        "message": {
            "update": {
                "attribute": {
                    "origin": "incomplete",
                    "as-path": {"0": {"element": "as-sequence", "value": [65010, 65020]}},
                    "med": 20,
                    "local-preference": 200,
                    "originator-id": "192.0.2.2",
                    "cluster-list": ["224.0.0.1", "224.0.0.9"],
                    "community": [[65000, 1], [65000, 2]],
                    "large-community": [[65000, 1, 2]],
                    "extended-community": [{"value": 1, "string": "target:65000:1"}],
                },
                "announce": {"ipv4 unicast": {"192.0.2.2": [{"nlri": "10.65.1.0/26"}]}},
            }
        },
    },
}


def test_every_path_attribute_is_read_from_exabgp_json() -> None:
    (event,) = parse_line(json.dumps(UPDATE))  # type: ignore[misc]
    assert isinstance(event, RoutesAnnounced)
    attributes = attributes_from_json(event.next_hop, event.as_path, event.attributes)
    assert attributes == PathAttributes(
        next_hop=B,
        as_path=(65010, 65020),
        origin=Origin.INCOMPLETE,
        med=20,
        local_pref=200,
        originator_id=B,
        cluster_list=(CLUSTER, IPv4Address("224.0.0.9")),
        communities=("65000:1", "65000:2"),
        large_communities=("65000:1:2",),
        extended_communities=("target:65000:1",),
    )


def test_missing_attributes_take_their_defaults() -> None:
    attributes = attributes_from_json(A, (), {"origin": "igp"})
    assert attributes == PathAttributes(next_hop=A)
    assert attributes.local_pref == 100 and attributes.med is None


def test_attribute_text_keeps_next_hop_and_names_reflection_attributes() -> None:
    sent = PathAttributes(next_hop=A, med=5).with_reflection(CLUSTER, A)
    assert attribute_text(sent) == (
        "next-hop 192.0.2.1 origin igp local-preference 100 med 5"
        " originator-id 192.0.2.1 cluster-list [ 224.0.0.1 ]"
    )
    both = PathAttributes(next_hop=A, as_path=(1, 2), communities=("1:2",))
    assert "as-path [ 1 2 ]" in attribute_text(both) and "community [ 1:2 ]" in attribute_text(both)


AB, ONLY_A, ONLY_B = frozenset({A, B}), frozenset({A}), frozenset({B})


def test_neighbors_needing_the_same_line_share_one_command() -> None:
    reflected = PathAttributes(next_hop=C).with_reflection(CLUSTER, C)
    table = {P1: (reflected, AB), P2: (reflected, AB)}
    (line,) = reflected_changes(table, {P1: AB, P2: frozenset({B, A})})
    assert line.startswith("neighbor 192.0.2.1 , neighbor 192.0.2.2 announce attributes")
    assert "originator-id 192.0.2.3 cluster-list [ 224.0.0.1 ]" in line
    assert line.endswith("nlri 10.65.1.0/26 10.65.2.0/26")
    assert reflected_changes(table, {}) == []
    (shared,) = reflected_changes(table, {P1: AB}, "reflected")
    assert " announce reflected next-hop " in shared  # ExaBGP's shared-UPDATE command


def test_only_changed_prefixes_are_sent_to_whom_they_changed_for_withdrawals_first() -> None:
    old = PathAttributes(next_hop=C)
    new = PathAttributes(next_hop=C, local_pref=50)
    table = {P1: (old, ONLY_A), P2: (new, ONLY_A), P3: (old, AB)}
    # P1 is in the table but did not change: not looked at, not sent.
    lines = reflected_changes(table, {P2: ONLY_A, P3: AB, P4: ONLY_A, P1: ONLY_B})
    # Withdrawals name no attributes (ExaBGP finds a route by prefix alone).
    assert lines[0] == "neighbor 192.0.2.1 withdraw attributes nlri 10.65.4.0/26"
    assert lines[1] == "neighbor 192.0.2.2 withdraw attributes nlri 10.65.1.0/26"
    announced = lines[2:]
    assert len(announced) == 2
    assert any(
        line.startswith("neighbor 192.0.2.1 , neighbor 192.0.2.2 announce")
        and line.endswith("nlri 10.65.3.0/26")
        for line in announced
    )
    assert any(
        "local-preference 50" in line and line.endswith("nlri 10.65.2.0/26") for line in announced
    )
    # Gone from the table: withdrawn from every neighbor it changed for.
    (gone,) = reflected_changes({}, {P2: ONLY_A, P1: ONLY_A})
    assert gone == "neighbor 192.0.2.1 withdraw attributes nlri 10.65.1.0/26 10.65.2.0/26"


def test_no_command_carries_more_than_the_nlri_limit() -> None:
    attributes = PathAttributes(next_hop=C)
    many = {IPv4Network((0x0A000000 + i * 64, 26)): (attributes, ONLY_A) for i in range(1200)}
    lines = reflected_changes(many, dict.fromkeys(many, ONLY_A))
    assert len(lines) == 3
    assert all(line.count("/26") <= MAX_NLRI_PER_COMMAND for line in lines)
    assert sum(line.count("/26") for line in lines) == 1200
