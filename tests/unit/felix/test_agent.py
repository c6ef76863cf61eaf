"""The agent over the fake kernel: restart adoption, sync gating, capability reports."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from felix.agent import Agent
from felix.dataplane import host_interface_name
from felix.desired import EncapMode, LocalWorkload, NodeInfo, PoolInfo
from felix.feed import LearnedHop, LearnedRoute, RouteUpdate, UpdateType
from felix.server import update_from_pb
from gingham.v1 import dataplane_pb2 as pb
from tests.unit.felix.fake_kernel import FakeKernel, Outcome

GH = host_interface_name("c1", "eth0")


class FakeHost(FakeKernel):
    def __init__(self) -> None:
        super().__init__()
        self.tunl0_reports = 0
        self.nat: str | None = "table from a previous felix"

    def discover_workloads(self) -> list[LocalWorkload]:
        return [LocalWorkload(GH, (IPv4Address("10.65.0.5"),))] if GH in self.links else []

    def ensure_vxlan(self, vtep_ip: IPv4Address, vtep_mac: str, local: IPv4Address | None) -> None:
        self.links.add("vxlan.gingham")

    def ensure_tunl0(self, tunnel_ip: IPv4Address | None) -> str | None:
        self.tunl0_reports += 1
        return "kernel has no ipip support: IPIP pools cannot be routed on this node"

    def apply_nat(self, ruleset: str | None) -> None:
        self.nat = ruleset


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_agent(host: FakeHost) -> Agent:
    agent = Agent("n1", host, clock=Clock())
    agent.nodes = {"n1": NodeInfo("n1", IPv4Address("192.0.2.1"))}
    agent.connected = [IPv4Network("192.0.2.0/24")]
    agent.pools = {"p": PoolInfo(IPv4Network("10.65.0.0/16"))}
    return agent


def snapshot(agent: Agent, *prefixes: str) -> None:
    stream = agent.feed.open_stream()
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
    for p in prefixes:
        hop = LearnedHop(IPv4Address("192.0.2.2"), "n2")
        route = LearnedRoute(IPv4Network(p), "192.0.2.2", (hop,))
        agent.feed.apply(stream, RouteUpdate(UpdateType.ADD, route))
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_END))
    agent.reconciler.routes_synced = agent.feed.synced


async def test_restarted_agent_keeps_running_pods_and_learned_routes() -> None:
    host = FakeHost()
    host.add_address("eth0", "192.0.2.1/24")
    host.links.add(GH)
    first = make_agent(host)
    await first.start()
    first.expect_datastore_kinds(set())
    snapshot(first, "10.65.1.0/26", "10.65.2.0/26")
    await first.reconcile(resync=True)
    assert host.forward("10.65.0.5") == {Outcome("local", GH)}
    assert host.forward("10.65.2.1") == {Outcome("plain", "192.0.2.2")}

    second = make_agent(host)  # a restart: new process, same kernel
    await second.start()
    second.expect_datastore_kinds({"IPPool"})
    await second.reconcile(resync=True)
    second.datastore_kind_synced("IPPool")
    await second.reconcile(resync=True)
    assert host.forward("10.65.2.1") == {Outcome("plain", "192.0.2.2")}, "removed before feed"
    snapshot(second, "10.65.1.0/26")
    await second.reconcile(resync=True)
    assert host.forward("10.65.2.1") == {Outcome("none")}, "stale route kept"
    assert host.forward("10.65.0.5") == {Outcome("local", GH)}, "adopted pod route removed"
    assert second.ready


async def test_missing_ipip_is_reported_once_and_the_rest_served() -> None:
    host = FakeHost()
    host.add_address("eth0", "192.0.2.1/24")
    agent = make_agent(host)
    agent.pools = {"p": PoolInfo(IPv4Network("10.65.0.0/16"), ipip_mode=EncapMode.ALWAYS)}
    agent.blocks = {IPv4Network("10.65.0.0/26")}
    agent.expect_datastore_kinds(set())
    snapshot(agent, "10.65.1.0/26")
    await agent.reconcile(resync=True)
    await agent.reconcile(resync=False)
    assert len(agent.capability_problems) == 1
    assert any("no ipip support" in p for p in agent.problems)
    assert host.forward("10.65.0.9") == {Outcome("blackhole")}
    assert host.forward("10.65.1.1") == {Outcome("none")}


def test_route_update_translation_names_the_bad_field() -> None:
    good = update_from_pb(
        pb.RouteUpdate(
            type=pb.ADD,
            prefix="10.65.1.0/26",
            peer="192.0.2.2",
            next_hops=[pb.NextHop(address="192.0.2.2", node="n2")],
            encapsulation=pb.ENCAPSULATION_VXLAN,
        )
    )
    assert good.route is not None and good.route.encap.value == "vxlan"
    for msg, field in (
        (pb.RouteUpdate(type=pb.ADD, prefix="10.65.1.0/33"), "prefix"),
        (
            pb.RouteUpdate(
                type=pb.ADD, prefix="10.65.1.0/26", next_hops=[pb.NextHop(address="nope")]
            ),
            "next_hops[0].address",
        ),
        (pb.RouteUpdate(type=pb.ROUTE_UPDATE_TYPE_UNSPECIFIED), "type"),
    ):
        try:
            update_from_pb(msg)
        except ValueError as exc:
            assert str(exc).startswith(field + ":"), exc
        else:
            raise AssertionError(f"{msg} accepted")


async def test_nat_table_follows_pools_only_after_the_datastore_snapshot() -> None:
    host = FakeHost()
    agent = make_agent(host)
    agent.expect_datastore_kinds({"IPPool"})
    await agent.reconcile(resync=True)
    assert host.nat == "table from a previous felix", "touched before the snapshot"
    agent.datastore_kind_synced("IPPool")
    await agent.reconcile(resync=False)
    assert host.nat is None, "no pool wants NAT: the table goes"
    agent.pools["p"] = PoolInfo(IPv4Network("10.65.0.0/16"), nat_outgoing=True)
    agent.pools["q"] = PoolInfo(IPv4Network("10.70.0.0/16"), disabled=True)
    await agent.reconcile(resync=False)
    assert host.nat is not None
    assert "masq_pools { type ipv4_addr; flags interval; elements = { 10.65.0.0/16 }" in host.nat
    assert "elements = { 10.65.0.0/16, 10.70.0.0/16 }" in host.nat
