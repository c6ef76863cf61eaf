"""The route-feed delta path is incremental: N deltas cost O(N) work, not O(N x passes).

Work is counted, not timed: `DesiredTracker.evaluated` (learned prefixes
derived), `Reconciler.compared` (route destinations diffed) and the fake
kernel's `applied` (ops). The invariants of the full path still hold on the
incremental one: nothing removed before both snapshots, ECMP, retries, and
the tracker's state always equals `compute_desired` of the same inputs.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import felix.agent
from felix.agent import Agent
from felix.desired import (
    DesiredInputs,
    DesiredTracker,
    EncapMode,
    NodeInfo,
    PoolInfo,
    compute_desired,
)
from felix.feed import LearnedHop, LearnedRoute, RouteUpdate, UpdateType
from tests.unit.felix.fake_kernel import Outcome
from tests.unit.felix.test_agent import FakeHost, make_agent

N2, N3 = IPv4Address("192.0.2.2"), IPv4Address("192.0.2.3")


def route(prefix: IPv4Network, hop: IPv4Address = N2, node: str = "n2") -> LearnedRoute:
    return LearnedRoute(prefix, str(hop), (LearnedHop(hop, node),))


def net(i: int) -> IPv4Network:
    return IPv4Network((0x0A410000 + (i << 6), 26))  # 10.65.x.y/26


def start_stream(agent: Agent) -> int:
    """An empty snapshot: the feed is in sync, deltas follow."""
    stream = agent.feed.open_stream()
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_END))
    return stream


def ready_agent() -> tuple[FakeHost, Agent, int]:
    host = FakeHost()
    host.add_address("eth0", "192.0.2.1/24")
    agent = make_agent(host)
    agent.expect_datastore_kinds(set())
    return host, agent, start_stream(agent)


async def test_n_deltas_one_pass_each_cost_linear_work() -> None:
    n = 300
    host, agent, stream = ready_agent()
    await agent.reconcile(resync=True)
    evaluated, compared = agent.tracker.evaluated, agent.reconciler.compared
    applied = host.applied
    for i in range(n):
        agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(i))))
        await agent.reconcile(resync=False)
    # A full recompute per pass would derive and diff n(n+1)/2 = 45,150 prefixes.
    assert agent.tracker.evaluated - evaluated == n
    assert agent.reconciler.compared - compared == n
    assert host.applied - applied == n
    assert host.forward(net(n - 1)[1]) == {Outcome("plain", str(N2))}
    assert len(host.dump().routes) == n

    for i in range(n):
        agent.feed.apply(stream, RouteUpdate(UpdateType.DEL, route(net(i))))
        await agent.reconcile(resync=False)
    assert agent.tracker.evaluated - evaluated == 2 * n
    assert agent.reconciler.compared - compared == 2 * n
    assert host.applied - applied == 2 * n
    assert host.dump().routes == {}


async def test_deltas_between_passes_coalesce_into_one_pass() -> None:
    host, agent, stream = ready_agent()
    await agent.reconcile(resync=True)
    applied, passes = host.applied, agent.stats.reconciles
    for i in range(500):
        agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(i))))
    for i in range(250):  # withdrawn again before any pass saw them: never programmed
        agent.feed.apply(stream, RouteUpdate(UpdateType.DEL, route(net(i))))
    await agent.reconcile(resync=False)
    assert agent.stats.reconciles - passes == 1
    assert host.applied - applied == 250
    assert host.forward(net(100)[1]) == {Outcome("none")}
    assert host.forward(net(400)[1]) == {Outcome("plain", str(N2))}


async def test_withdrawals_wait_for_both_snapshots_then_apply() -> None:
    host = FakeHost()
    host.add_address("eth0", "192.0.2.1/24")
    agent = make_agent(host)
    agent.expect_datastore_kinds({"IPPool"})
    stream = start_stream(agent)
    agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(1))))
    await agent.reconcile(resync=True)
    agent.feed.apply(stream, RouteUpdate(UpdateType.DEL, route(net(1))))
    await agent.reconcile(resync=False)
    assert host.forward(net(1)[1]) == {Outcome("plain", str(N2))}, "removed before datastore sync"
    agent.datastore_kind_synced("IPPool")
    await agent.reconcile(resync=False)  # no feed change since: the held-back delete goes now
    assert host.forward(net(1)[1]) == {Outcome("none")}


async def test_ecmp_follows_each_peers_deltas() -> None:
    host, agent, stream = ready_agent()
    await agent.reconcile(resync=True)
    both = {Outcome("plain", str(N2)), Outcome("plain", str(N3))}
    agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(7))))
    agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(7), N3, "n3")))
    await agent.reconcile(resync=False)
    assert host.forward(net(7)[1]) == both
    agent.feed.apply(stream, RouteUpdate(UpdateType.DEL, route(net(7))))
    await agent.reconcile(resync=False)
    assert host.forward(net(7)[1]) == {Outcome("plain", str(N3))}


async def test_a_failed_route_is_retried_without_further_deltas() -> None:
    host, agent, stream = ready_agent()
    await agent.reconcile(resync=True)
    host.fail_next[net(3)] = 105  # ENOBUFS, once
    for i in range(5):
        agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(i))))
    await agent.reconcile(resync=False)
    assert host.forward(net(3)[1]) == {Outcome("none")}
    agent.clock.now += 60  # type: ignore[attr-defined]  # past the backoff
    await agent.reconcile(resync=False)
    assert host.forward(net(3)[1]) == {Outcome("plain", str(N2))}
    assert not agent.reconciler.failed_routes


async def test_a_pool_change_rederives_every_learned_route() -> None:
    host, agent, stream = ready_agent()
    agent.nodes["n1"] = NodeInfo(
        "n1", IPv4Address("192.0.2.1"), IPv4Address("10.65.200.1"), "02:00:00:00:00:01"
    )
    agent.nodes["n2"] = NodeInfo(
        "n2", N2, vtep_ip=IPv4Address("10.65.200.2"), vtep_mac="02:00:00:00:00:02"
    )
    for i in range(20):
        agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route(net(i))))
    await agent.reconcile(resync=True)
    assert host.forward(net(5)[1]) == {Outcome("plain", str(N2))}
    agent.pools["p"] = PoolInfo(IPv4Network("10.65.0.0/16"), vxlan_mode=EncapMode.ALWAYS)
    await agent.reconcile(resync=False)
    assert all(host.forward(net(i)[1]) == {Outcome("vxlan", str(N2))} for i in range(20))


async def test_a_table_larger_than_a_slice_restarts_and_shrinks_without_extra_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pass takes a full table a slice at a time; a restarted felix still
    # leaves the routes a previous one programmed alone (no delete, no re-add)
    # and removes exactly what a later snapshot dropped.
    monkeypatch.setattr(felix.agent, "PASS_SLICE", 7)
    host = FakeHost()
    host.add_address("eth0", "192.0.2.1/24")

    def snapshot_of(agent: Agent, count: int, first: int = 0) -> None:
        stream = agent.feed.open_stream()
        agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
        agent.feed.apply_routes(
            stream, UpdateType.ADD, [route(net(i)) for i in range(first, count)]
        )
        agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_END))

    before = make_agent(host)
    before.expect_datastore_kinds(set())
    snapshot_of(before, 30)
    await before.reconcile(resync=True)
    assert len(host.dump().routes) == 30

    after = make_agent(host)
    after.expect_datastore_kinds(set())
    snapshot_of(after, 35)
    applied = host.applied
    await after.reconcile(resync=True)
    assert host.applied - applied == 5, "only the 5 new routes"
    assert all(host.forward(net(i)[1]) == {Outcome("plain", str(N2))} for i in range(35))

    snapshot_of(after, 35, first=10)
    applied = host.applied
    await after.reconcile(resync=False)
    assert host.applied - applied == 10
    assert [i for i in range(35) if host.forward(net(i)[1]) == {Outcome("none")}] == list(range(10))


def test_first_snapshot_counts_as_a_change_even_when_empty() -> None:
    _host, agent, _stream = ready_agent()
    assert agent.feed.synced
    fresh = make_agent(FakeHost())
    s = fresh.feed.open_stream()
    fresh.feed.apply(s, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
    assert fresh.feed.apply(s, RouteUpdate(UpdateType.SNAPSHOT_END)), "no pass would follow"
    s2 = fresh.feed.open_stream()
    fresh.feed.apply(s2, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
    assert not fresh.feed.apply(s2, RouteUpdate(UpdateType.SNAPSHOT_END))


# ---- the tracker equals compute_desired after any sequence of changes

PREFIXES = [net(i) for i in range(6)] + [IPv4Network("192.0.2.0/24")]  # the last covers us
NODES = {
    "n2": NodeInfo("n2", N2, IPv4Address("10.65.200.2"), "02:00:00:00:00:02"),
    "n3": NodeInfo("n3", N3),  # no VTEP: VXLAN routes via it are problems
}
POOLS = [
    [PoolInfo(IPv4Network("10.65.0.0/16"))],
    [PoolInfo(IPv4Network("10.65.0.0/16"), vxlan_mode=EncapMode.ALWAYS)],
    [PoolInfo(IPv4Network("10.65.0.0/16"), ipip_mode=EncapMode.CROSS_SUBNET)],
]
change = st.tuples(
    st.sampled_from(PREFIXES),
    st.sampled_from(["192.0.2.2", "192.0.2.3", "192.0.2.1"]),  # .1 is this node
    st.booleans(),  # add or withdraw
)
step = st.tuples(
    st.lists(change, max_size=6),
    st.integers(0, len(POOLS) - 1),
    st.lists(st.sampled_from(PREFIXES[:3]), max_size=2, unique=True),  # own blocks
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=8))
def test_tracker_matches_a_full_recompute(steps: list[tuple[list, int, list]]) -> None:  # type: ignore[type-arg]
    tracker = DesiredTracker()
    feed: dict[IPv4Network, dict[str, LearnedRoute]] = {}
    for changes, pool_index, blocks in steps:
        touched = set()
        for prefix, peer, add in changes:
            hop = IPv4Address(peer)
            node = {"192.0.2.2": "n2", "192.0.2.3": "n3"}.get(peer, "n1")
            if add:
                feed.setdefault(prefix, {})[peer] = route(prefix, hop, node)
            else:
                feed.get(prefix, {}).pop(peer, None)
            touched.add(prefix)
        learned = {p: [rs[k] for k in sorted(rs)] for p, rs in feed.items() if rs}
        inputs = DesiredInputs(
            node="n1",
            node_address=IPv4Address("192.0.2.1"),
            connected=[IPv4Network("192.0.2.0/24")],
            pools=POOLS[pool_index],
            blocks=blocks,
            nodes=NODES,
            learned=learned,
            ipip_supported=False,
        )
        before = dict(tracker.state.routes)
        changed = tracker.update(inputs, {p: learned.get(p) for p in touched})
        full = compute_desired(inputs)
        assert tracker.state == full.state
        assert sorted(tracker.problems) == sorted(full.problems)
        after = tracker.state.routes
        assert changed == {d for d in before.keys() | after.keys() if before.get(d) != after.get(d)}
