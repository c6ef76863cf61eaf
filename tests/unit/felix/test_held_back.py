"""One failure holds back only itself; a pod veth that vanished is adopted, not retried.

Issue 16 item 10: a pod whose netns was removed without a DEL left a /32 the
kernel refused (ENODEV) on every resync, and the global backoff that failure
started held every other pod's route back, so unrelated ADDs timed out.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Network

from felix.agent import Agent
from felix.dataplane import Action, KernelState, LinkOp, NextHop, Route, host_interface_name
from felix.desired import LocalWorkload, compute_desired
from felix.feed import RouteUpdate, UpdateType
from felix.reconcile import reconcile_once
from tests.unit.felix.fake_kernel import Outcome
from tests.unit.felix.test_agent import FakeHost, make_agent
from tests.unit.felix.test_reconcile import kernel, node_inputs, synced

NET = IPv4Network
IP = IPv4Address
BLOCK_A, BLOCK_B, BLOCK_C = NET("10.65.0.0/26"), NET("10.65.0.64/26"), NET("10.65.0.128/26")


def test_a_failed_route_holds_back_only_itself() -> None:
    k, rec = kernel(), synced()
    k.fail_next[BLOCK_A] = errno.ENOBUFS
    results = reconcile_once(
        rec, k, compute_desired(node_inputs(blocks=[BLOCK_A, BLOCK_B])).state, 10.0, False
    )
    assert sorted(r.errno for r in results) == [0, errno.ENOBUFS]
    assert not rec.due(10.01)
    # Within A's backoff, a new block goes at once; A waits.
    desired = compute_desired(node_inputs(blocks=[BLOCK_A, BLOCK_B, BLOCK_C])).state
    results = reconcile_once(rec, k, desired, 10.01, False, only={BLOCK_C})
    assert [r.op.route.dst for r in results] == [BLOCK_C]  # type: ignore[union-attr]
    assert k.forward("10.65.0.129") == {Outcome("blackhole")}
    assert k.forward("10.65.0.1") == {Outcome("none")}  # A: not yet
    assert rec.next_retry() == 10.05
    reconcile_once(rec, k, desired, 10.05, False, only=set())
    assert BLOCK_A in rec.programmed.routes
    assert rec.failures == {} and not rec.retries and rec.due(10.05)


def test_a_different_desired_value_is_not_held_by_the_old_ones_failure() -> None:
    """A pod's new /32 on an address whose old route failed goes at once."""
    k, rec = kernel(), synced()
    old, new = host_interface_name("old", "eth0"), host_interface_name("new", "eth0")
    dst = NET("10.65.0.5/32")
    k.links.add(new)  # the old veth is gone
    failing = Route.via(dst, NextHop(None, old))
    results = reconcile_once(rec, k, _routes(failing), 1.0, False)
    assert [r.errno for r in results] == [errno.ENODEV]
    assert rec.take_missing_devices() == {old}
    results = reconcile_once(rec, k, _routes(Route.via(dst, NextHop(None, new))), 1.01, False)
    assert [r.errno for r in results] == [0]
    assert rec.failures == {} and not rec.retries


def test_a_failure_is_forgotten_when_its_object_is_no_longer_wanted() -> None:
    k, rec = kernel(), synced()
    gone = host_interface_name("gone", "eth0")
    dst = NET("10.65.0.6/32")
    reconcile_once(rec, k, _routes(Route.via(dst, NextHop(None, gone))), 1.0, False)
    assert rec.failures and rec.failed_routes == {dst}
    assert reconcile_once(rec, k, _routes(), 1.01, False, only=set()) == []
    assert rec.failures == {} and not rec.failed_routes and not rec.retries
    assert rec.next_retry() is None


def _routes(*routes: Route) -> KernelState:
    state = compute_desired(node_inputs()).state
    state.routes = {r.dst: r for r in routes}
    return state


def _pods(host: FakeHost, *names: str) -> list[LocalWorkload]:
    pods = []
    for i, name in enumerate(names):
        gh = host_interface_name(name, "eth0")
        host.links.add(gh)
        pods.append(LocalWorkload(gh, (IP(f"10.65.0.{10 + i}"),)))
    return pods


async def _ready(host: FakeHost, pods: list[LocalWorkload]) -> Agent:
    agent = make_agent(host)
    host.add_address("eth0", "192.0.2.1/24")
    agent.expect_datastore_kinds(set())
    stream = agent.feed.open_stream()
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_END))
    agent.blocks = {NET("10.65.0.0/26")}
    for pod in pods:
        agent.workloads[pod.host_interface] = pod
    await agent.reconcile(resync=True)
    return agent


async def test_a_veth_gone_at_resync_is_adopted_and_other_pods_still_get_routes() -> None:
    host = FakeHost()
    vanished, live = _pods(host, "vanished", "live")
    agent = await _ready(host, [vanished, live])
    assert host.forward("10.65.0.10") == {_local(vanished)}
    # The netns goes away: the kernel deletes the pair and the /32 through it.
    host.apply([LinkOp(Action.DELETE, vanished.host_interface)])
    await agent.reconcile(resync=True)
    assert vanished.host_interface not in agent.workloads
    assert agent.reconciler.failures == {} and agent.reconciler.due(agent.clock())
    # A new pod at the same instant (no clock advance): routed by the next pass.
    [new] = _pods(host, "new")
    new = LocalWorkload(new.host_interface, (IP("10.65.0.20"),))
    agent.workloads[new.host_interface] = new
    await agent.reconcile(resync=False)
    assert host.forward("10.65.0.20") == {_local(new)}
    assert host.forward("10.65.0.11") == {_local(live)}
    await agent.reconcile(resync=True)  # and the next resync retries nothing
    assert agent.reconciler.failures == {} and not agent.reconciler.retries


async def test_a_veth_gone_before_its_route_went_in_is_adopted_after_one_enodev() -> None:
    host = FakeHost()
    [live] = _pods(host, "live")
    agent = await _ready(host, [live])
    ghost = LocalWorkload(host_interface_name("ghost", "eth0"), (IP("10.65.0.30"),))
    agent.workloads[ghost.host_interface] = ghost  # registered, its veth already gone
    [new] = _pods(host, "new")
    agent.workloads[new.host_interface] = new
    await agent.reconcile(resync=False)
    assert host.forward(str(new.ips[0])) == {_local(new)}
    assert ghost.host_interface not in agent.workloads
    await agent.reconcile(resync=False)
    assert agent.reconciler.failures == {} and not agent.reconciler.retries


async def test_a_veth_made_again_under_the_same_name_is_not_dropped() -> None:
    """The pass saw the old veth gone; the loop registered a new one meanwhile."""
    host = FakeHost()
    [pod] = _pods(host, "again")
    agent = await _ready(host, [pod])
    host.apply([LinkOp(Action.DELETE, pod.host_interface)])
    agent._vanished.append(pod)  # what a pass that saw the old veth gone leaves behind
    # ...while the loop plumbed a new veth of that name (felix.workloads does this).
    host.links.add(pod.host_interface)
    replugged = LocalWorkload(pod.host_interface, pod.ips)
    agent.workloads[pod.host_interface] = replugged
    agent.link_removed(pod.host_interface)
    await agent.reconcile(resync=False)
    assert agent.workloads[pod.host_interface] is replugged
    assert host.forward(str(pod.ips[0])) == {_local(replugged)}


def _local(pod: LocalWorkload) -> Outcome:
    return Outcome("local", pod.host_interface)
