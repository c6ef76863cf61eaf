"""Several reflectors and clients together: redundant pairs and distinct clusters."""

from __future__ import annotations

from ipaddress import IPv4Network

from tests.unit.rr.fabric import Fabric
from tests.unit.rr.helpers import attrs, ip, net

RR1, RR2 = ip("192.0.2.101"), ip("192.0.2.102")
CLIENTS = [ip(f"192.0.2.{i}") for i in range(1, 5)]


def block(i: int) -> IPv4Network:
    return net(f"10.65.{i}.0/26")


def redundant_pair() -> Fabric:
    fabric = Fabric()
    cluster = ip("224.0.0.1")
    for rr in (RR1, RR2):
        fabric.add_reflector(rr, cluster)
    for client in CLIENTS:
        fabric.add_client(client)
        for rr in (RR1, RR2):
            fabric.connect(rr, client, client=True)
    # Same cluster: the two RRs are each other's non-clients.
    fabric.connect(RR1, RR2, client=False)
    fabric.connect(RR2, RR1, client=False)
    for i, client in enumerate(CLIENTS):
        fabric.originate(client, block(i), attrs(str(client)))
    return fabric


def test_redundant_pair_every_client_hears_every_block_from_both() -> None:
    fabric = redundant_pair()
    for i, client in enumerate(CLIENTS):
        routes = fabric.routes_of(client)
        assert set(routes) == {block(j) for j in range(len(CLIENTS)) if j != i}
        assert all(senders == {RR1, RR2} for senders in routes.values())
    # Each RR dropped the other's reflections of every block (cluster list loop).
    assert fabric.reflectors[RR1].loops_dropped >= len(CLIENTS)
    assert fabric.reflectors[RR2].loops_dropped >= len(CLIENTS)


def test_redundant_pair_survives_one_reflector_stopping() -> None:
    fabric = redundant_pair()
    fabric.stop_reflector(RR1)
    for i, client in enumerate(CLIENTS):
        routes = fabric.routes_of(client)
        assert set(routes) == {block(j) for j in range(len(CLIENTS)) if j != i}
        assert all(senders == {RR2} for senders in routes.values())


def test_redundant_pair_withdrawal_is_gone_everywhere() -> None:
    fabric = redundant_pair()
    fabric.withdraw(CLIENTS[0], block(0))
    for client in CLIENTS:
        assert block(0) not in fabric.routes_of(client)
    for rr in fabric.reflectors.values():
        assert rr.best(block(0)) is None


def test_reflectors_of_different_clusters_pass_routes_between_them() -> None:
    fabric = Fabric()
    fabric.add_reflector(RR1, ip("224.0.0.1"))
    fabric.add_reflector(RR2, ip("224.0.0.2"))
    left, right = CLIENTS[:2], CLIENTS[2:]
    for client in CLIENTS:
        fabric.add_client(client)
    for client in left:
        fabric.connect(RR1, client, client=True)
    for client in right:
        fabric.connect(RR2, client, client=True)
    # Different clusters: each RR is the other's client (as Calico configures it).
    fabric.connect(RR1, RR2, client=True)
    fabric.connect(RR2, RR1, client=True)
    for i, client in enumerate(CLIENTS):
        fabric.originate(client, block(i), attrs(str(client)))
    for i, client in enumerate(CLIENTS):
        assert set(fabric.routes_of(client)) == {block(j) for j in range(4) if j != i}
    # A right-hand block as a left-hand client hears it: through both clusters,
    # original next hop and originator.
    heard = fabric.clients[left[0]][(RR1, block(2))]
    assert heard.next_hop == right[0]
    assert heard.originator_id == right[0]
    assert heard.cluster_list == (ip("224.0.0.1"), ip("224.0.0.2"))
    assert fabric.reflectors[RR1].loops_dropped == 0
