"""gingham-felix as a process in a node namespace: gRPC feed in, kernel routes out.

Covers: the socket is 0600 and serves grpc health; a route snapshot pushed
over RouteFeed becomes kernel routes; readiness waits for both snapshots;
`kill -9` and restart remove no owned route (a sampler watches the table the
whole time) and stale routes go only once the new speaker's snapshot ends; a
foreign route in the same table survives everything.
"""

from __future__ import annotations

import asyncio
import importlib.util
import stat
import threading
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import grpc
import pytest

from felix.rtnl import RouteSocket
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.integration.felix.daemon import HTTP_PORT, Felix, add, push_snapshot, resource, seed
from tests.support.netns import Netns, Topology
from tests.support.poll import async_wait_for, wait_for

KEEP, STALE = IPv4Network("10.65.1.0/26"), IPv4Network("10.65.2.0/26")


@pytest.fixture
def felix(topo: Topology, tmp_path: Path) -> Iterator[Felix]:
    node, router = topo.netns("nd"), topo.netns("rt")
    topo.veth(node, "up0", router, "down0")
    node.ip("addr add 192.0.2.1/24 dev up0")
    router.ip("addr add 192.0.2.254/24 dev down0")
    url = f"sqlite:///{tmp_path}/store.db"
    objects = [resource("IPPool", "default", {"cidr": "10.65.0.0/16"})]
    objects += [
        resource("Node", f"node{i}", {"bgp": {"ipv4Address": f"192.0.2.{i}/24"}}) for i in (1, 2, 3)
    ]
    asyncio.run(seed(url, objects))
    f = Felix(node, url, tmp_path / "run", tmp_path / "felix.log")
    try:
        yield f
    finally:
        f.kill9()


def owned(ns: Netns) -> set[IPv4Network]:
    with RouteSocket(ns.path) as rs:
        return set(rs.dump_routes())


async def test_felix_restart_keeps_routes_and_resyncs(felix: Felix) -> None:
    ns = felix.ns
    ns.ip("route add 10.99.0.0/16 via 192.0.2.254 proto static")
    felix.start()
    mode = stat.S_IMODE(felix.sock.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert felix.http("/liveness") == 200
    assert felix.http("/readiness") == 503, "ready before the route snapshot?"

    channel, call = await push_snapshot(
        felix.sock, [add(KEEP, "192.0.2.2", "node2"), add(STALE, "192.0.2.3", "node3")]
    )
    wait_for(lambda: owned(ns) == {KEEP, STALE}, timeout=10, what="routes from the feed")
    wait_for(lambda: felix.http("/readiness") == 200, timeout=10, what="readiness")
    assert "felix_routes_programmed 2.0" in metrics(felix)

    # Watch the table continuously across kill -9 and restart.
    missing: list[set[IPv4Network]] = []
    stop = threading.Event()

    samples = [0]

    def sample() -> None:
        with RouteSocket(ns.path) as rs:
            while not stop.is_set():
                samples[0] += 1
                seen = set(rs.dump_routes())
                if KEEP not in seen or STALE not in seen:
                    missing.append(seen)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        await channel.close()
        felix.kill9()
        felix.start()
        status = await status_of(felix)
        assert status.datastore_synced and not status.routes_synced
        # Resyncs happen every 0.5 s; before the new snapshot nothing may go.
        await async_wait_for(lambda: reconciled_thrice(felix), timeout=10, what="resyncs")
        assert owned(ns) == {KEEP, STALE}
        stop.set()
        sampler.join()
        assert not missing, f"owned routes disappeared during restart: {missing[:3]}"
        assert samples[0] > 50, "the sampler barely ran"

        channel, call = await push_snapshot(felix.sock, [add(KEEP, "192.0.2.2", "node2")])
        wait_for(lambda: owned(ns) == {KEEP}, timeout=10, what="stale route removed")
        await call.write(pb.RouteUpdate(type=pb.DEL, prefix=str(KEEP), peer="192.0.2.2"))
        wait_for(lambda: owned(ns) == set(), timeout=10, what="delta DEL applied")
        await channel.close()
    finally:
        stop.set()
    assert "10.99.0.0/16 via 192.0.2.254" in ns.routes(), "foreign route touched"


def metrics(felix: Felix) -> str:
    out = felix.ns.exec(
        [
            "python3",
            "-c",
            f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{HTTP_PORT}/metrics').read().decode())",
        ]
    )
    return out.stdout


async def status_of(felix: Felix) -> pb.StatusReply:
    async with grpc.aio.insecure_channel(f"unix:{felix.sock}") as ch:
        return await pb_grpc.DataplaneStub(ch).Status(pb.StatusRequest(), timeout=5)


async def reconciled_thrice(felix: Felix) -> bool:
    """At least three passes in this process (so at least two periodic resyncs)."""
    text = metrics(felix)
    count = next(
        (
            float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("felix_reconcile_seconds_count")
        ),
        0.0,
    )
    return count >= 3


async def test_add_workload_errors_carry_a_cni_mappable_detail(felix: Felix) -> None:
    """Without IPAM in the build: UNIMPLEMENTED; with it: a bad netns is refused."""
    felix.start()
    has_ipam = importlib.util.find_spec("gingham.ipam.allocator") is not None
    request = pb.AddWorkloadRequest(container_id="c1", netns="/run/netns/gone-for-good")
    async with grpc.aio.insecure_channel(f"unix:{felix.sock}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.DataplaneStub(ch).AddWorkload(request)
    err = info.value
    detail = pb.ErrorDetail.FromString(dict(err.trailing_metadata() or ())["gingham-error-bin"])
    if has_ipam:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert detail.code == pb.INVALID_ARGUMENT and detail.field == "netns"
    else:
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED
        assert detail.code == pb.TRY_AGAIN_LATER
