"""The bulk rtnetlink writer and the reconciler against a real routing table."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import Action, NextHop, Route, RouteOp
from felix.desired import DesiredInputs, compute_desired
from felix.feed import LearnedHop, LearnedRoute
from felix.kernel import NetlinkKernel
from felix.reconcile import Reconciler, reconcile_once
from felix.rtnl import LOOKUPS_BEFORE_DUMP, RouteSocket
from tests.support.netns import Netns, Topology

IP, NET = IPv4Address, IPv4Network


def node_with_link(topo: Topology) -> Netns:
    ns, peer = topo.netns("nd"), topo.netns("pe")
    topo.veth(ns, "up0", peer, "down0")
    ns.ip("addr add 192.0.2.1/24 dev up0")
    return ns


def test_ten_thousand_routes_in_dumped_and_out(topo: Topology) -> None:
    ns = node_with_link(topo)
    ns.ip("route add 10.99.0.0/16 via 192.0.2.254 proto static")  # foreign
    routes = [Route.blackhole(NET(f"10.{64 + (i >> 8)}.{i & 255}.0/26")) for i in range(10_000)]
    with RouteSocket(ns.path) as rs:
        results = rs.apply([RouteOp(Action.ADD, r) for r in routes])
        assert all(r.ok for r in results)
        dumped = rs.dump_routes()
        assert dumped == {r.dst: r for r in routes}
        assert ns.ip("-4 route show proto 77").count("blackhole") == 10_000
        results = rs.apply([RouteOp(Action.DELETE, r) for r in routes])
        assert all(r.ok for r in results)
        assert rs.dump_routes() == {}
    assert "10.99.0.0/16 via 192.0.2.254" in ns.routes()


def test_route_shapes_and_per_route_errors(topo: Topology) -> None:
    ns = node_with_link(topo)
    ns.ip("route add 10.98.0.0/24 via 192.0.2.254 proto static")
    ecmp = Route.via(NET("10.65.7.0/26"), NextHop(IP("192.0.2.2")), NextHop(IP("192.0.2.3")))
    onlink = Route.via(NET("10.65.8.0/26"), NextHop(IP("172.31.0.9"), "up0", onlink=True))
    link = Route.link(NET("10.65.0.5/32"), "up0")
    plain = Route.via(NET("10.65.9.0/26"), NextHop(IP("192.0.2.2")))
    ops = [
        RouteOp(Action.ADD, ecmp),
        RouteOp(Action.ADD, onlink),
        RouteOp(Action.ADD, link),
        RouteOp(Action.ADD, plain),
        RouteOp(Action.ADD, Route.via(NET("10.98.0.0/24"), NextHop(IP("192.0.2.2")))),
        RouteOp(Action.ADD, Route.via(NET("10.65.10.0/26"), NextHop(IP("203.0.113.1")))),
        RouteOp(Action.ADD, Route.link(NET("10.65.0.6/32"), "nosuchdev")),
        RouteOp(Action.DELETE, Route.blackhole(NET("10.65.11.0/26"))),
        RouteOp(Action.DELETE, Route.blackhole(NET("10.98.0.0/24"))),  # foreign: not ours
        RouteOp(Action.REPLACE, Route.via(NET("10.65.9.0/26"), NextHop(IP("192.0.2.4")))),
    ]
    with RouteSocket(ns.path) as rs:
        got = [r.errno for r in rs.apply(ops)]
        assert got == [0, 0, 0, 0, errno.EEXIST, errno.ENETUNREACH, errno.ENODEV,
                       errno.ESRCH, errno.ESRCH, 0]  # fmt: skip
        dumped = rs.dump_routes()
    assert dumped[ecmp.dst] == ecmp
    assert dumped[onlink.dst] == onlink
    assert dumped[link.dst] == link
    assert dumped[plain.dst].nexthops == (NextHop(IP("192.0.2.4")),)
    assert "10.98.0.0/24 via 192.0.2.254" in ns.routes()


def test_a_dump_reuses_the_routes_it_is_given_when_the_kernel_agrees(topo: Topology) -> None:
    # A resync of a full table must not hold a second copy of it: a dumped route
    # equal to the one felix believes programmed is that object, and routes
    # through one next hop share one hops tuple.
    ns = node_with_link(topo)
    hop = NextHop(IP("192.0.2.2"))
    routes = [Route.via(NET(f"10.67.{i}.0/26"), hop) for i in range(50)]
    ecmp = Route.via(NET("10.67.100.0/26"), hop, NextHop(IP("192.0.2.3")))
    with RouteSocket(ns.path) as rs:
        assert all(r.ok for r in rs.apply([RouteOp(Action.ADD, r) for r in [*routes, ecmp]]))
        ns.ip("route replace 10.67.7.0/26 via 192.0.2.9 proto 77")  # changed behind felix's back
        believed = {r.dst: r for r in [*routes, ecmp]}
        fresh = rs.dump_routes()
        dumped = rs.dump_routes(reuse=believed)
    changed = NET("10.67.7.0/26")
    assert dumped == fresh
    assert dumped[changed].nexthops == (NextHop(IP("192.0.2.9")),)
    assert dumped[changed] is not believed[changed]
    kept = [dst for dst in dumped if dst != changed]
    assert all(dumped[dst] is believed[dst] for dst in kept)
    assert all(next(k for k in dumped if k == dst) is dst for dst in kept)  # the keys too
    assert len({id(fresh[r.dst].nexthops) for r in routes if r.dst != changed}) == 1


def test_devices_are_looked_up_afresh_in_every_apply(topo: Topology) -> None:
    # A pod veth deleted and made again under its name has a new index; a few
    # devices are asked for by name, many in one apply by one dump of links.
    ns, peer = node_with_link(topo), topo.netns("pp")
    with RouteSocket(ns.path) as rs:
        topo.veth(ns, "pod0", peer, "eth0")
        first = Route.link(NET("10.66.0.1/32"), "pod0")
        assert rs.apply([RouteOp(Action.ADD, first)])[0].ok
        ns.ip("link del pod0")
        topo.veth(ns, "pod0", peer, "eth0")  # same name, new index
        assert rs.apply([RouteOp(Action.ADD, first)])[0].ok
        assert "10.66.0.1 dev pod0" in ns.routes()
        gone = rs.apply([RouteOp(Action.ADD, Route.link(NET("10.66.0.2/32"), "nosuchdev"))])
        assert gone[0].errno == errno.ENODEV
        many = [f"pod{i}" for i in range(1, 2 * LOOKUPS_BEFORE_DUMP + 2)]
        for i, name in enumerate(many, start=1):
            topo.veth(ns, name, peer, f"eth{i}")
        routes = [Route.link(NET(f"10.66.1.{i}/32"), n) for i, n in enumerate(many, start=1)]
        assert all(r.ok for r in rs.apply([RouteOp(Action.ADD, r) for r in routes]))
        dumped = rs.dump_routes()
    assert all(dumped[r.dst] == r for r in [first, *routes])


def test_reconcile_never_touches_foreign_routes(topo: Topology) -> None:
    ns = node_with_link(topo)
    ns.ip("route add 10.65.1.0/26 via 192.0.2.254 proto static")  # clashes with a learned one
    ns.ip("route add 198.18.0.0/15 via 192.0.2.254 proto 16")
    foreign_before = ns.ip("-4 route show")
    learned = {
        NET(p): [LearnedRoute(NET(p), "192.0.2.2", (LearnedHop(IP("192.0.2.2"), "n2"),))]
        for p in ("10.65.1.0/26", "10.65.2.0/26")
    }
    kernel = NetlinkKernel(ns.path)
    try:
        rec = Reconciler(datastore_synced=True, routes_synced=True)
        inputs = DesiredInputs(node="n1", blocks=[NET("10.65.0.0/26")], learned=learned)
        results = reconcile_once(rec, kernel, compute_desired(inputs).state, 0.0, resync=True)
        assert [r.errno for r in results if not r.ok] == [errno.EEXIST]
        assert "blackhole 10.65.0.0/26 proto 77" in ns.routes()
        assert "10.65.2.0/26 via 192.0.2.2 dev up0 proto 77" in ns.routes()
        # Everything felix owned goes on resync with an empty desired state...
        reconcile_once(rec, kernel, compute_desired(DesiredInputs("n1")).state, 100.0, True)
        assert ns.ip("-4 route show proto 77") == ""
        # ...and the foreign routes are exactly as they were.
        assert ns.ip("-4 route show") == foreign_before
    finally:
        kernel.close()
