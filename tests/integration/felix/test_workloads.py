"""AddWorkload / DeleteWorkload / Check / List / GC over real gRPC and a real kernel.

IPAM here is a small in-memory allocator standing in for gingham.ipam (being
written separately); everything else is real: the servicer on a unix socket,
the agent loop, veths and routes in namespaces, ping between pods.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import grpc
import pytest

from felix.agent import Agent
from felix.attachments import KIND
from felix.dataplane import host_interface_name
from felix.desired import PoolInfo
from felix.feed import RouteUpdate, UpdateType
from felix.host import Host
from felix.server import DataplaneServicer
from felix.workloads import Workloads
from gingham.datastore import Datastore, open_datastore
from gingham.model.base import Metadata
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.integration.felix.ipam_double import ListIpam
from tests.support.netns import Netns, Topology
from tests.support.poll import async_wait_for


@pytest.fixture
async def felix(
    node: Netns, tmp_path: Path
) -> AsyncIterator[tuple[pb_grpc.DataplaneStub, ListIpam, Agent, Datastore, Workloads]]:
    host = Host(node.path)
    agent = Agent("node1", host, resync_interval=5.0)
    agent.expect_datastore_kinds(set())
    stream = agent.feed.open_stream()  # an (empty) route snapshot: removals allowed
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_BEGIN))
    agent.feed.apply(stream, RouteUpdate(UpdateType.SNAPSHOT_END))
    ipam = ListIpam(["10.65.0.5", "10.65.0.6"])
    datastore = open_datastore(f"sqlite:///{tmp_path}/store.db")
    workloads = Workloads(agent, node.path, ipam, datastore=datastore)
    server = grpc.aio.server()
    pb_grpc.add_DataplaneServicer_to_server(DataplaneServicer(agent, node.path, workloads), server)
    sock = tmp_path / "felix.sock"
    server.add_insecure_port(f"unix:{sock}")
    await server.start()
    loop_task = asyncio.create_task(agent.run())
    channel = grpc.aio.insecure_channel(f"unix:{sock}")
    try:
        yield pb_grpc.DataplaneStub(channel), ipam, agent, datastore, workloads
    finally:
        await datastore.close()
        await channel.close()
        loop_task.cancel()
        await asyncio.gather(loop_task, return_exceptions=True)
        await server.stop(grace=None)
        host.close()


def add_request(cid: str, pod: Netns, **kw: object) -> pb.AddWorkloadRequest:
    return pb.AddWorkloadRequest(container_id=cid, netns=pod.path, interface_name="eth0",
                                 pod_namespace="default", pod_name=f"pod-{cid}", **kw)  # fmt: skip


async def expect_error(call: object, status: grpc.StatusCode) -> pb.ErrorDetail:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == status, info.value
    return pb.ErrorDetail.FromString(
        dict(info.value.trailing_metadata() or ())["gingham-error-bin"]
    )


async def test_add_check_list_delete_gc(felix, topo: Topology, node: Netns) -> None:  # type: ignore[no-untyped-def]
    stub, ipam, agent, datastore, _workloads = felix
    pod1, pod2, pod3 = topo.netns("pa"), topo.netns("pb"), topo.netns("pc")

    r1 = await stub.AddWorkload(add_request("c1", pod1))
    r2 = await stub.AddWorkload(add_request("c2", pod2, mtu=1400))
    assert [ip.address for ip in r1.ips] == ["10.65.0.5/32"]
    assert r1.host_interface.startswith("gh") and r1.mtu == 1500 and r2.mtu == 1400
    assert r1.interfaces[1].sandbox == pod1.path and r1.mac == r1.interfaces[1].mac
    assert await stub.AddWorkload(add_request("c1", pod1)) == r1, "not idempotent"
    assert ipam.free == []

    # Routes are programmed before AddWorkload returns: traffic works at once.
    assert pod1.ping("10.65.0.6"), "pod to pod on one node"
    assert pod2.ping("192.0.2.1"), "pod to its node"
    check = await stub.CheckWorkload(pb.CheckWorkloadRequest(container_id="c1", netns=pod1.path))
    assert check.ok, check.problems
    listed = await stub.ListWorkloads(pb.ListWorkloadsRequest())
    assert sorted(w.id.container_id for w in listed.workloads) == ["c1", "c2"]
    weps = {w.spec.container_id: w for w in (await datastore.list("WorkloadEndpoint")).items}
    assert sorted(weps) == ["c1", "c2"]
    assert weps["c1"].name.startswith("node1-k8s-default-pod-c1-eth0-")
    assert [str(n) for n in weps["c1"].spec.ip_networks] == ["10.65.0.5/32"]
    assert weps["c1"].spec.interface_name == r1.host_interface

    detail = await expect_error(
        stub.AddWorkload(add_request("c3", pod3)), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert detail.code == pb.ADDRESS_EXHAUSTED
    assert host_interface_name("c3", "eth0") not in node.ip("link show"), "left a veth behind"
    bad = pb.AddWorkloadRequest(container_id="c4", netns="/run/netns/does-not-exist")
    detail = await expect_error(stub.AddWorkload(bad), grpc.StatusCode.INVALID_ARGUMENT)
    assert detail.code == pb.INVALID_ARGUMENT and detail.field == "netns"

    pod2.destroy()  # the runtime may remove the netns before DEL
    assert (await stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id="c2"))).existed
    assert not (await stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id="c2"))).existed
    assert r2.host_interface not in node.ip("link show")
    assert ipam.free == [IPv4Address("10.65.0.6")]
    assert [w.spec.container_id for w in (await datastore.list("WorkloadEndpoint")).items] == ["c1"]
    await agent.reconciled()
    assert "10.65.0.6" not in node.ip("-4 route show proto 77")

    valid = [pb.WorkloadId(container_id="c1", interface_name="eth0")]
    gc = await stub.GarbageCollect(pb.GarbageCollectRequest(valid=valid))
    assert list(gc.removed) == []
    gc = await stub.GarbageCollect(pb.GarbageCollectRequest(valid=[]))
    assert [w.container_id for w in gc.removed] == ["c1"]
    assert r1.host_interface not in node.ip("link show") and len(ipam.free) == 2
    detail = await expect_error(
        stub.CheckWorkload(pb.CheckWorkloadRequest(container_id="c1", netns=pod1.path)),
        grpc.StatusCode.NOT_FOUND,
    )
    assert detail.code == pb.NOT_FOUND


async def test_concurrent_retries_of_one_add_assign_once(felix, topo: Topology) -> None:  # type: ignore[no-untyped-def]
    stub, ipam, _agent, _datastore, _workloads = felix
    pod = topo.netns("pa")
    first, second = await asyncio.gather(
        stub.AddWorkload(add_request("c9", pod)), stub.AddWorkload(add_request("c9", pod))
    )
    assert first == second
    assert ipam.free == [IPv4Address("10.65.0.6")], "a retried ADD took a second address"
    assert pod.ping("192.0.2.1")


async def test_add_delete_add_again_with_the_same_container_id(
    felix, topo: Topology, node: Netns
) -> None:  # type: ignore[no-untyped-def]
    """containerd retries a sandbox with the same ID: the new veth gets a new ifindex.

    The re-ADD must program the /32 against the new link (not a cached index of
    the deleted one) even though the address and the interface name are the same.
    """
    stub, ipam, agent, _datastore, _workloads = felix
    agent.resync_interval = 3600.0  # only the event-driven path, as between resyncs
    pod = topo.netns("pa")
    first = await stub.AddWorkload(add_request("c5", pod))
    for attempt in range(3):
        assert (await stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id="c5"))).existed
        ipam.free.sort()  # like real IPAM: the lowest free address, i.e. the same one again
        again = await stub.AddWorkload(add_request("c5", pod))
        assert [ip.address for ip in again.ips] == [ip.address for ip in first.ips], attempt
        assert again.host_interface == first.host_interface
        assert pod.ping("192.0.2.1"), f"re-ADD {attempt}: pod cannot reach its node"
        routes = node.ip("-4 route show proto 77")
        assert f"10.65.0.5 dev {first.host_interface}" in routes, routes
        # A resync would repair a bad apply in the end; the first try must be right.
        assert agent.stats.errors == 0, agent.problems


async def test_requested_mac_is_the_pod_interface_mac(felix, topo: Topology, node: Netns) -> None:  # type: ignore[no-untyped-def]
    stub, ipam, _agent, _datastore, _workloads = felix
    pod = topo.netns("pa")
    reply = await stub.AddWorkload(add_request("c6", pod, mac="0A:58:0A:41:00:05"))
    assert reply.mac == reply.interfaces[1].mac == "0a:58:0a:41:00:05"
    assert "link/ether 0a:58:0a:41:00:05" in pod.ip("link show eth0")
    # The host answers for the pod with that MAC (its permanent neighbour entry).
    assert "lladdr 0a:58:0a:41:00:05 PERMANENT" in node.ip(f"neigh show dev {reply.host_interface}")
    assert pod.ping("192.0.2.1")
    assert await stub.AddWorkload(add_request("c6", pod, mac="0a:58:0a:41:00:05")) == reply

    for bad in ("01:00:5e:00:00:01", "0a:58:0a:41:00", "zz:58:0a:41:00:05"):
        detail = await expect_error(
            stub.AddWorkload(add_request("c7", topo.netns("pb"), mac=bad)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert (detail.code, detail.field) == (pb.INVALID_ARGUMENT, "mac"), bad
        assert bad in detail.message
    assert ipam.free == [IPv4Address("10.65.0.6")], "a refused ADD took an address"


async def test_check_and_list_return_the_full_record(felix, topo: Topology) -> None:  # type: ignore[no-untyped-def]
    stub, _ipam, _agent, _datastore, workloads = felix
    pod = topo.netns("pa")
    added = await stub.AddWorkload(add_request("c8", pod))
    check = await stub.CheckWorkload(pb.CheckWorkloadRequest(container_id="c8", netns=pod.path))
    assert check.ok, check.problems
    record = check.workload
    assert (record.id.container_id, record.id.interface_name) == ("c8", "eth0")
    assert (record.mac, record.host_interface) == (added.mac, added.host_interface)
    assert list(record.ips) == ["10.65.0.5"] and record.pod_name == "pod-c8"
    listed = await stub.ListWorkloads(pb.ListWorkloadsRequest())
    assert list(listed.workloads) == [record]

    # A felix that found the veth in the kernel with no record of it (restart
    # without a WorkloadEndpoint) still names the attachment and its MAC.
    workloads.attachments.clear()
    (found,) = (await stub.ListWorkloads(pb.ListWorkloadsRequest())).workloads
    assert (found.id.container_id, found.id.interface_name) == ("c8", "eth0")
    assert found.mac == added.mac and list(found.ips) == ["10.65.0.5"]
    check = await stub.CheckWorkload(pb.CheckWorkloadRequest(container_id="c8", netns=pod.path))
    assert check.workload.id.container_id == "c8" and check.workload.mac == added.mac


async def test_pools_by_name_or_cidr_in_preference_order(
    felix, topo: Topology, node: Netns
) -> None:  # type: ignore[no-untyped-def]
    stub, ipam, agent, _datastore, _workloads = felix
    agent.pools["pool-a"] = PoolInfo(IPv4Network("10.70.0.0/24"))
    agent.pools["pool-b"] = PoolInfo(IPv4Network("10.71.0.0/24"))
    agent.pools["off"] = PoolInfo(IPv4Network("10.72.0.0/24"), disabled=True)
    ipam.pools = {"pool-a": [IPv4Address("10.70.0.9")], "pool-b": [IPv4Address("10.71.0.9")]}

    by_cidr = await stub.AddWorkload(add_request("p1", topo.netns("pa"), pools=["10.70.0.0/24"]))
    assert [ip.address for ip in by_cidr.ips] == ["10.70.0.9/32"]
    # pool-a is now full: the next pool in the list is used.
    by_name = await stub.AddWorkload(
        add_request("p2", topo.netns("pb"), pools=["pool-a", "pool-b"])
    )
    assert [ip.address for ip in by_name.ips] == ["10.71.0.9/32"]

    for pools, field, words in (
        (["pool-b", "10.99.0.0/16"], "pools[1]", "no IPPool is named '10.99.0.0/16'"),
        (["nope"], "pools[0]", "known: off (10.72.0.0/24), pool-a"),
        (["off"], "pools[0]", "'off' is disabled"),
    ):
        detail = await expect_error(
            stub.AddWorkload(add_request("p3", topo.netns("pc"), pools=pools)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert (detail.code, detail.field) == (pb.INVALID_ARGUMENT, field), detail
        assert words in detail.message, detail.message
    assert host_interface_name("p3", "eth0") not in node.ip("link show"), "left a veth behind"
    assert len(ipam.free) == 2


async def test_delete_waits_for_an_add_in_progress_of_the_same_attachment(
    felix, topo: Topology, node: Netns
) -> None:  # type: ignore[no-untyped-def]
    """The plugin's deadline undo sends DEL while its ADD may still be running in felix.

    DEL must take effect after that ADD, never interleave with it: when both
    have returned, nothing of the attachment is left.
    """
    stub, ipam, agent, datastore, workloads = felix
    pod = topo.netns("pa")
    ipam.gate = asyncio.Event()
    add = asyncio.ensure_future(stub.AddWorkload(add_request("d1", pod)))
    await async_wait_for(_true_when(lambda: ipam.waiting == 1), what="ADD inside IPAM")
    delete = asyncio.ensure_future(stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id="d1")))
    name = host_interface_name("d1", "eth0")
    await async_wait_for(_true_when(lambda: workloads._locks.users(name) == 2), what="DEL waiting")
    ipam.gate.set()
    added, deleted = await asyncio.gather(add, delete)
    assert deleted.existed, "DEL ran before the ADD it was meant to undo"
    assert added.host_interface not in node.ip("link show")
    assert len(ipam.free) == 2 and ipam.by_handle == {}
    assert (await datastore.list("WorkloadEndpoint")).items == []
    await agent.reconciled()
    assert "10.65.0.5" not in node.ip("-4 route show proto 77")
    assert len(workloads._locks) == 0, "a lock outlived its attachment"


def _true_when(probe):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(probe())

    return check


@pytest.mark.parametrize("restarted", [False, True], ids=["netns-known", "reloaded"])
async def test_a_second_sandbox_of_one_container_id_is_refused_and_the_first_keeps_working(
    felix, topo: Topology, node: Netns, restarted: bool
) -> None:  # type: ignore[no-untyped-def]
    """Issue 16 item 3: the same container ID and interface ADDed into another netns.

    Reloaded from its record after a restart felix has no netns in memory: the
    kernel's pair decides."""
    stub, ipam, agent, datastore, workloads = felix
    first_ns, second_ns = topo.netns("pa"), topo.netns("pb")
    first = await stub.AddWorkload(add_request("c7", first_ns))
    if restarted:
        workloads.attachments.clear()
        await workloads.load()
    detail = await expect_error(
        stub.AddWorkload(add_request("c7", second_ns)), grpc.StatusCode.INVALID_ARGUMENT
    )
    named = "another network namespace" if restarted else first_ns.path
    assert detail.field == "netns" and named in detail.message, detail
    assert "DEL it" in detail.message
    assert ipam.free == [IPv4Address("10.65.0.6")], "the refused ADD took an address"
    assert "eth0" not in second_ns.ip("link show")
    # The runtime cleans up its failed sandbox with a DEL naming that netns: not ours.
    other = pb.DeleteWorkloadRequest(container_id="c7", netns=second_ns.path)
    assert not (await stub.DeleteWorkload(other)).existed
    assert first_ns.ping("192.0.2.1"), "the first sandbox went dark"
    routes = node.ip("-4 route show proto 77")
    assert f"10.65.0.5 dev {first.host_interface}" in routes, routes
    assert [w.spec.container_id for w in (await datastore.list("WorkloadEndpoint")).items] == ["c7"]
    again = await stub.AddWorkload(add_request("c7", first_ns))  # its own ADD: idempotent
    assert [ip.address for ip in again.ips] == ["10.65.0.5/32"]
    # The first sandbox's own DEL (containerd's second DEL has no netns) still works.
    assert (await stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id="c7"))).existed
    assert sorted(ipam.free) == [IPv4Address("10.65.0.5"), IPv4Address("10.65.0.6")]
    await agent.reconciled()
    assert "10.65.0.5" not in node.ip("-4 route show proto 77")


async def test_a_second_path_to_the_same_netns_is_the_same_sandbox(
    felix, topo: Topology, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    stub, ipam, _agent, _datastore, _workloads = felix
    pod = topo.netns("pa")
    alias = tmp_path / "netns-alias"
    alias.touch()
    subprocess.run(["mount", "--bind", pod.path, str(alias)], check=True)
    try:
        first = await stub.AddWorkload(add_request("c8", pod))
        again = await stub.AddWorkload(
            pb.AddWorkloadRequest(container_id="c8", netns=str(alias), interface_name="eth0",
                                  pod_namespace="default", pod_name="pod-c8")
        )  # fmt: skip
        assert [ip.address for ip in again.ips] == [ip.address for ip in first.ips]
        assert ipam.free == [IPv4Address("10.65.0.6")]
        assert (
            await stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id="c8", netns=str(alias)))
        ).existed
    finally:
        subprocess.run(["umount", str(alias)], check=False)


async def test_a_container_id_whose_netns_is_gone_can_be_added_into_a_new_one(
    felix, topo: Topology, node: Netns
) -> None:  # type: ignore[no-untyped-def]
    """The first sandbox died without a DEL: the new ADD cleans it up, one address in all."""
    stub, ipam, _agent, datastore, _workloads = felix
    old, new = topo.netns("pa"), topo.netns("pb")
    await stub.AddWorkload(add_request("c10", old))
    old.destroy()
    reply = await stub.AddWorkload(add_request("c10", new))
    assert len(ipam.free) == 1, "the dead sandbox's address leaked or a second was taken"
    assert new.ping("192.0.2.1")
    assert reply.interfaces[1].sandbox == new.path
    weps = (await datastore.list("WorkloadEndpoint")).items
    assert [(w.spec.container_id, [str(n) for n in w.spec.ip_networks]) for w in weps] == [
        ("c10", [ips.address for ips in reply.ips])
    ]


async def test_records_written_under_the_old_naming_are_still_removed(
    felix, topo: Topology
) -> None:  # type: ignore[no-untyped-def]
    """A pod ADDed by a felix from before per-attachment names gets its DEL handled:
    after a restart (the record is loaded under its name) and without any memory
    of it (found by container ID and interface)."""
    stub, _ipam, _agent, datastore, workloads = felix
    for how in ("reloaded", "unknown"):
        cid = f"up-{how}"
        reply = await stub.AddWorkload(add_request(cid, topo.netns("pa")))
        [wep] = [w for w in (await datastore.list(KIND)).items if w.spec.container_id == cid]
        old_name = f"node1-k8s-default-pod-{cid}-eth0"  # what that felix wrote
        await datastore.delete(KIND, wep.name)
        await datastore.create(wep.model_copy(update={"metadata": Metadata(name=old_name)}))
        if how == "reloaded":  # a restart: felix reads its records back
            workloads.attachments.clear()
            await workloads.load()
            assert workloads.attachments[reply.host_interface].endpoint_name == old_name
        else:
            known = workloads.attachments[reply.host_interface]
            workloads.attachments[reply.host_interface] = dataclasses.replace(
                known, endpoint_revision="", endpoint_name=""
            )
        assert (await stub.DeleteWorkload(pb.DeleteWorkloadRequest(container_id=cid))).existed
        left = [w.name for w in (await datastore.list(KIND)).items]
        assert old_name not in left, f"{how}: the old record outlived its pod's DEL"


@pytest.mark.parametrize("restarted", [False, True], ids=["running", "restarted"])
async def test_a_vanished_pod_keeps_its_address_until_gc(
    felix, topo: Topology, node: Netns, restarted: bool
) -> None:  # type: ignore[no-untyped-def]
    """Also after a restart: felix reloads the record of a pod it has no veth for."""
    stub, ipam, agent, datastore, workloads = felix
    pod, other = topo.netns("pa"), topo.netns("pb")
    await stub.AddWorkload(add_request("c13", pod))
    pod.destroy()  # no DEL
    agent.request_resync()

    async def adopted() -> bool:
        listed = await stub.ListWorkloads(pb.ListWorkloadsRequest())
        return "c13" not in {w.id.container_id for w in listed.workloads}

    await async_wait_for(adopted, what="felix to adopt the vanished veth")
    if restarted:
        workloads.attachments.clear()
        await workloads.load()
    assert ipam.free == [IPv4Address("10.65.0.6")], "freed without a DEL or GC"
    assert [w.spec.container_id for w in (await datastore.list(KIND)).items] == ["c13"]
    reply = await stub.AddWorkload(add_request("c14", other))  # not held back
    assert other.ping("192.0.2.1") and agent.problems == []
    valid = [pb.WorkloadId(container_id="c14", interface_name="eth0")]
    gc = await stub.GarbageCollect(pb.GarbageCollectRequest(valid=valid))
    assert [w.container_id for w in gc.removed] == ["c13"]
    assert ipam.free == [IPv4Address("10.65.0.5")]
    assert [w.spec.container_id for w in (await datastore.list(KIND)).items] == ["c14"]
    assert reply.host_interface in node.ip("link show")
