"""`gingham node status` on a route reflector node: the reflector's table and JSON (pure)."""

from __future__ import annotations

from gingham.cli.bgp_status import reflector_json, render_reflector
from gingham.v1 import reflector_pb2 as pb


def reply() -> pb.ReflectorStatusReply:
    return pb.ReflectorStatusReply(
        node="rr1", cluster_id="224.0.0.1", router_id="192.0.2.1", in_sync=True,
        clients=2, non_clients=1, prefixes=3, reflected_updates=7,
        peers=[
            pb.ReflectorPeer(address="192.0.2.2", router_id="192.0.2.2", client=False,
                             peer_type="route reflector", received=1, advertised=2),
            pb.ReflectorPeer(address="192.0.2.3", router_id="192.0.2.3", client=True,
                             peer_type="route reflector client", received=1, advertised=2),
        ],
        best_paths=[
            pb.BestPath(prefix="10.65.3.0/26", peer="192.0.2.3", candidates=1,
                        attributes=pb.PathAttributes(next_hop="192.0.2.3"),
                        advertised_to=["192.0.2.2", "192.0.2.4"]),
        ],
    )  # fmt: skip


def test_reflector_table_names_roles_and_counts() -> None:
    text = render_reflector(reply(), routes=True)
    assert "cluster ID 224.0.0.1" in text and "2 clients, 1 non-clients, 3 prefixes" in text
    header = next(line for line in text.splitlines() if "PEER ADDRESS" in line)
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "PEER ADDRESS", "ROLE", "ROUTER ID", "RECEIVED", "ADVERTISED",
    ]  # fmt: skip
    client = next(line for line in text.splitlines() if line.startswith("| 192.0.2.3 "))
    assert "route reflector client" in client
    assert "10.65.3.0/26 via 192.0.2.3 from 192.0.2.3" in text
    assert "to 192.0.2.2, 192.0.2.4" in text


def test_reflector_before_its_first_snapshot() -> None:
    empty = pb.ReflectorStatusReply(node="rr1")
    assert "waiting for the speaker" in render_reflector(empty)


def test_reflector_json_is_stable() -> None:
    document = reflector_json(reply())
    assert document["clients"] == 2 and document["non_clients"] == 1
    assert document["peers"][1] == {
        "address": "192.0.2.3", "router_id": "192.0.2.3", "client": True,
        "peer_type": "route reflector client", "received": 1, "advertised": 2,
    }  # fmt: skip
    (best,) = document["best_paths"]
    assert best["next_hop"] == "192.0.2.3" and best["local_pref"] == 100
    assert best["originator_id"] is None and best["cluster_list"] == []
