"""The pure core against a fake kernel that answers longest-prefix lookups."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import VXLAN_DEVICE, Action, LinkOp, NextHop, Route, host_interface_name
from felix.desired import (
    DesiredInputs,
    EncapMode,
    LocalWorkload,
    NodeInfo,
    PoolInfo,
    compute_desired,
)
from felix.feed import Encap, LearnedHop, LearnedRoute
from felix.reconcile import Reconciler, reconcile_once
from tests.unit.felix.fake_kernel import FakeKernel, Outcome

NET = IPv4Network
IP = IPv4Address
POOL = NET("10.65.0.0/16")


def learned(prefix: str, *hops: tuple[str, str], peer: str = "", encap: Encap = Encap.FROM_POOL):
    next_hops = tuple(LearnedHop(IP(a), n) for a, n in hops)
    return LearnedRoute(NET(prefix), peer or hops[0][0], next_hops, encap)


def node_inputs(**kw: object) -> DesiredInputs:
    base = DesiredInputs(
        node="n1",
        node_address=IP("192.0.2.1"),
        connected=[NET("192.0.2.0/24")],
        pools=[PoolInfo(POOL)],
        nodes={
            "n1": NodeInfo("n1", IP("192.0.2.1"), IP("10.65.0.1"), "02:00:00:00:00:01"),
            "n2": NodeInfo("n2", IP("192.0.2.2"), IP("10.65.1.1"), "02:00:00:00:00:02"),
            "n3": NodeInfo("n3", IP("198.51.100.3"), IP("10.65.2.1"), "02:00:00:00:00:03"),
        },
    )
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def kernel() -> FakeKernel:
    k = FakeKernel()
    k.add_address("eth0", "192.0.2.1/24")
    return k


def synced() -> Reconciler:
    return Reconciler(datastore_synced=True, routes_synced=True)


def converge(rec: Reconciler, k: FakeKernel, inputs: DesiredInputs, now: float = 0.0) -> None:
    results = reconcile_once(rec, k, compute_desired(inputs).state, now, resync=True)
    assert all(r.ok for r in results), [r for r in results if not r.ok]


def test_blocks_blackhole_and_local_pods_win() -> None:
    k, rec = kernel(), synced()
    gh = host_interface_name("c1", "eth0")
    k.links.add(gh)
    converge(
        rec,
        k,
        node_inputs(
            blocks=[NET("10.65.0.0/26")], workloads=[LocalWorkload(gh, (IP("10.65.0.5"),))]
        ),
    )
    assert k.forward("10.65.0.5") == {Outcome("local", gh)}
    assert k.forward("10.65.0.6") == {Outcome("blackhole")}
    assert k.forward("10.65.0.64") == {Outcome("none")}


def test_remote_block_plain_ipip_vxlan_and_cross_subnet() -> None:
    routes = {
        NET("10.65.1.0/26"): [learned("10.65.1.0/26", ("192.0.2.2", "n2"))],
        NET("10.65.2.0/26"): [learned("10.65.2.0/26", ("198.51.100.3", "n3"))],
    }
    cases = [
        (PoolInfo(POOL), "plain", "plain"),
        (PoolInfo(POOL, ipip_mode=EncapMode.ALWAYS), "ipip", "ipip"),
        (PoolInfo(POOL, ipip_mode=EncapMode.CROSS_SUBNET), "plain", "ipip"),
        (PoolInfo(POOL, vxlan_mode=EncapMode.ALWAYS), "vxlan", "vxlan"),
        (PoolInfo(POOL, vxlan_mode=EncapMode.CROSS_SUBNET), "plain", "vxlan"),
    ]
    for pool, same_subnet, other_subnet in cases:
        k, rec = kernel(), synced()
        k.links |= {"tunl0", VXLAN_DEVICE}
        # n3 is not on a connected subnet: plain routing to it cannot work at all.
        wanted = (
            routes
            if other_subnet != "plain"
            else {NET("10.65.1.0/26"): routes[NET("10.65.1.0/26")]}
        )
        converge(rec, k, node_inputs(pools=[pool], learned=wanted))
        got2 = k.forward("10.65.1.9")
        assert got2 == {Outcome(same_subnet, "192.0.2.2")}, (pool, got2)
        if other_subnet != "plain":
            assert k.forward("10.65.2.9") == {Outcome(other_subnet, "198.51.100.3")}, pool


def test_feed_hint_overrides_pool_and_vxlan_needs_a_vtep() -> None:
    k, rec = kernel(), synced()
    k.links.add(VXLAN_DEVICE)
    routes = {
        NET("10.65.1.0/26"): [learned("10.65.1.0/26", ("192.0.2.2", "n2"), encap=Encap.VXLAN)],
        NET("10.65.9.0/26"): [learned("10.65.9.0/26", ("192.0.2.9", "n9"), encap=Encap.VXLAN)],
    }
    inputs = node_inputs(learned=routes)
    desired = compute_desired(inputs)
    assert any("n9 has no VTEP" in p for p in desired.problems)
    converge(rec, k, inputs)
    assert k.forward("10.65.1.1") == {Outcome("vxlan", "192.0.2.2")}
    assert k.forward("10.65.9.1") == {Outcome("none")}


def test_two_nodes_announcing_one_prefix_is_ecmp() -> None:
    k, rec = kernel(), synced()
    prefix = NET("10.65.7.0/26")
    inputs = node_inputs(
        learned={
            prefix: [
                learned("10.65.7.0/26", ("192.0.2.2", "n2")),
                learned("10.65.7.0/26", ("192.0.2.4", "n4")),
            ]
        }
    )
    converge(rec, k, inputs)
    assert k.forward("10.65.7.1") == {Outcome("plain", "192.0.2.2"), Outcome("plain", "192.0.2.4")}
    # One node withdraws: the route is replaced by the single path.
    inputs.learned = {prefix: [learned("10.65.7.0/26", ("192.0.2.4", "n4"))]}
    converge(rec, k, inputs)
    assert k.forward("10.65.7.1") == {Outcome("plain", "192.0.2.4")}


def test_own_routes_reflected_back_and_hijacks_are_refused() -> None:
    k, rec = kernel(), synced()
    inputs = node_inputs(
        blocks=[NET("10.65.0.0/26")],
        learned={
            NET("10.65.0.0/26"): [learned("10.65.0.0/26", ("192.0.2.1", "n1"))],
            NET("192.0.2.0/24"): [learned("192.0.2.0/24", ("192.0.2.2", "n2"))],
        },
    )
    desired = compute_desired(inputs)
    assert any("covers this node's address" in p for p in desired.problems)
    converge(rec, k, inputs)
    assert k.forward("10.65.0.3") == {Outcome("blackhole")}
    assert k.lookup("192.0.2.7") == Route.link(NET("192.0.2.0/24"), "eth0")


def test_ipip_without_kernel_support_is_reported_not_programmed() -> None:
    k, rec = kernel(), synced()
    inputs = node_inputs(
        pools=[PoolInfo(POOL, ipip_mode=EncapMode.ALWAYS)],
        learned={NET("10.65.1.0/26"): [learned("10.65.1.0/26", ("192.0.2.2", "n2"))]},
        ipip_supported=False,
    )
    desired = compute_desired(inputs)
    assert desired.problems and "no ipip support" in desired.problems[0]
    converge(rec, k, inputs)
    assert k.forward("10.65.1.1") == {Outcome("none")}


def test_restart_removes_nothing_until_both_snapshots_then_stale_goes() -> None:
    k = kernel()
    first = synced()
    inputs = node_inputs(
        blocks=[NET("10.65.0.0/26")],
        learned={
            NET("10.65.1.0/26"): [learned("10.65.1.0/26", ("192.0.2.2", "n2"))],
            NET("10.65.3.0/26"): [learned("10.65.3.0/26", ("192.0.2.3", "n3"))],
        },
    )
    converge(first, k, inputs)
    before = dict(k.routes)

    # felix restarts: empty desired state, nothing synced yet.
    restarted = Reconciler()
    converge(restarted, k, node_inputs())
    assert k.routes == before
    restarted.datastore_synced = True
    converge(restarted, k, node_inputs(blocks=[NET("10.65.0.0/26")]))
    assert k.routes == before, "deleted before the route snapshot"

    # Route snapshot arrives without 10.65.3.0/26: now, and only now, it goes.
    restarted.routes_synced = True
    inputs.learned = {NET("10.65.1.0/26"): [learned("10.65.1.0/26", ("192.0.2.2", "n2"))]}
    converge(restarted, k, inputs)
    assert k.forward("10.65.3.1") == {Outcome("none")}
    assert k.forward("10.65.1.1") == {Outcome("plain", "192.0.2.2")}
    assert k.forward("10.65.0.1") == {Outcome("blackhole")}


def test_foreign_routes_survive_and_clashes_are_reported() -> None:
    k, rec = kernel(), synced()
    operator = Route.via(NET("10.65.1.0/26"), NextHop(IP("192.0.2.254")))
    other = Route.via(NET("203.0.113.0/24"), NextHop(IP("192.0.2.254")))
    k.add_foreign(operator)
    k.add_foreign(other)
    inputs = node_inputs(
        learned={NET("10.65.1.0/26"): [learned("10.65.1.0/26", ("192.0.2.2", "n2"))]}
    )
    results = reconcile_once(rec, k, compute_desired(inputs).state, 0.0, resync=True)
    assert [r.errno for r in results] == [errno.EEXIST]
    assert "does not own" in rec.failures["10.65.1.0/26"]
    # Reconcile again with nothing desired: foreign routes stay, ours are none.
    converge(rec, k, node_inputs(), now=100.0)
    assert k.forward("10.65.1.1") == {Outcome("plain", "192.0.2.254")}
    assert k.forward("203.0.113.5") == {Outcome("plain", "192.0.2.254")}


def test_failed_apply_keeps_old_view_and_retries_after_backoff() -> None:
    k, rec = kernel(), synced()
    block = NET("10.65.0.0/26")
    k.fail_next[block] = errno.ENOBUFS
    inputs = node_inputs(blocks=[block])
    desired = compute_desired(inputs).state
    results = reconcile_once(rec, k, desired, now=10.0, resync=False)
    assert [r.errno for r in results] == [errno.ENOBUFS]
    assert block not in rec.programmed.routes
    assert reconcile_once(rec, k, desired, now=10.01, resync=False) == []  # backing off
    assert k.forward("10.65.0.1") == {Outcome("none")}
    # Second failure doubles the delay.
    k.fail_next[block] = errno.ENOBUFS
    reconcile_once(rec, k, desired, now=10.05, resync=False)
    assert not rec.due(10.1) and rec.due(10.15)
    reconcile_once(rec, k, desired, now=10.15, resync=False)
    assert k.forward("10.65.0.1") == {Outcome("blackhole")}
    assert rec.failures == {} and rec.due(10.15)


def test_stale_owned_links_are_removed_after_sync_only() -> None:
    k = kernel()
    stale, live = host_interface_name("old", "eth0"), host_interface_name("new", "eth0")
    k.links |= {stale, live, "eth1"}
    inputs = node_inputs(workloads=[LocalWorkload(live, (IP("10.65.0.9"),))])
    rec = Reconciler()
    converge(rec, k, inputs)
    assert stale in k.links
    rec.datastore_synced = rec.routes_synced = True
    converge(rec, k, inputs)
    assert stale not in k.links and live in k.links and "eth1" in k.links
    assert k.forward("10.65.0.9") == {Outcome("local", live)}


def test_host_interface_name() -> None:
    name = host_interface_name("0123456789abcdef", "eth0")
    assert name.startswith("gh") and len(name) == 13
    assert name == host_interface_name("0123456789abcdef", "eth0")
    assert name != host_interface_name("0123456789abcdef", "eth1")


def test_pod_veth_deleted_and_made_again_gets_its_route_back_before_any_resync() -> None:
    """CNI DEL then ADD of one container ID: same veth name, same address, new link.

    The kernel dropped the /32 with the old link; felix's view must drop it too,
    or the new pod looks routed while nothing routes to it (until a resync).
    """
    name = host_interface_name("c1", "eth0")
    pod = LocalWorkload(name, (IP("10.65.0.5"),))
    for rec in (synced(), Reconciler()):  # in sync, and a felix still waiting for snapshots
        k = kernel()
        k.links.add(name)
        inputs = node_inputs(blocks=[NET("10.65.0.0/26")], workloads=[pod])
        converge(rec, k, inputs)
        assert k.forward("10.65.0.5") == {Outcome("local", name)}

        k.apply([LinkOp(Action.DELETE, name)])  # DeleteWorkload removes the veth...
        rec.forget_link(name)
        k.links.add(name)  # ...and the re-ADD makes a new one under the same name
        results = reconcile_once(rec, k, compute_desired(inputs).state, 1.0, resync=False)
        assert all(r.ok for r in results), results
        assert k.forward("10.65.0.5") == {Outcome("local", name)}
        assert NET("10.65.0.5/32") in rec.programmed.routes
