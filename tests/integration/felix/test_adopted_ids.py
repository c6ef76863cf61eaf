"""Veths felix knows only from the kernel keep their names in List and GC replies.

A felix restarted without its WorkloadEndpoints (or from before they were
written) adopts every `gh*` veth it finds; the veth's ifalias
(`<container ID>/<pod interface>`) is then the only record of the attachment.
ListWorkloads and GarbageCollect must report that container ID and pod
interface (GC used to answer an empty container ID and the host veth name).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from pathlib import Path

import grpc
import pytest

from felix.agent import Agent
from felix.dataplane import host_interface_name
from felix.host import Host
from felix.server import DataplaneServicer
from felix.veth import VethSpec, plumb
from felix.workloads import Workloads
from gingham.datastore import open_datastore
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.integration.felix.ipam_double import ListIpam
from tests.support.netns import Netns, Topology

CID = "ctr-adopted-0123456789"


@pytest.fixture
async def adopted(node: Netns, topo: Topology, tmp_path: Path) -> AsyncIterator[tuple[Netns, str]]:
    pod = topo.netns("pod")
    gh = host_interface_name(CID, "net1")
    spec = VethSpec(gh, "net1", pod.path, (IPv4Address("10.65.0.9"),), container_id=CID)
    await asyncio.to_thread(plumb, node.path, spec)
    yield node, gh


async def test_list_and_gc_name_an_adopted_veth_by_its_ifalias(
    adopted: tuple[Netns, str], tmp_path: Path
) -> None:
    node, gh = adopted
    host = Host(node.path)
    agent = Agent("node1", host, resync_interval=30.0)
    agent.expect_datastore_kinds(set())
    await agent.start()  # adopts the veth: felix has no record of its container ID
    assert gh in agent.workloads
    datastore = open_datastore(f"sqlite:///{tmp_path}/store.db")
    workloads = Workloads(agent, node.path, ListIpam(["10.65.0.5"]), datastore=datastore)
    server = grpc.aio.server()
    pb_grpc.add_DataplaneServicer_to_server(DataplaneServicer(agent, node.path, workloads), server)
    sock = tmp_path / "felix.sock"
    server.add_insecure_port(f"unix:{sock}")
    await server.start()
    channel = grpc.aio.insecure_channel(f"unix:{sock}")
    try:
        stub = pb_grpc.DataplaneStub(channel)
        listed = (await stub.ListWorkloads(pb.ListWorkloadsRequest())).workloads
        assert [(w.id.container_id, w.id.interface_name) for w in listed] == [(CID, "net1")]
        assert listed[0].host_interface == gh

        gc = await stub.GarbageCollect(pb.GarbageCollectRequest(valid=[]))
        assert [(w.container_id, w.interface_name) for w in gc.removed] == [(CID, "net1")]
        assert gh not in node.ip("link show")
        assert not (await stub.ListWorkloads(pb.ListWorkloadsRequest())).workloads
    finally:
        await channel.close()
        await server.stop(grace=None)
        await datastore.close()
        host.close()
