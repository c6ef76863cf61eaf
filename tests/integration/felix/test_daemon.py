"""gingham-felix as a process in a node namespace: gRPC feed in, kernel routes out.

Covers: the socket is 0600 and serves grpc health; a route snapshot pushed
over RouteFeed becomes kernel routes; readiness waits for both snapshots;
`kill -9` and restart remove no owned route (a sampler watches the table the
whole time) and stale routes go only once the new speaker's snapshot ends; a
foreign route in the same table survives everything.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from felix.netns import socket_in_netns
from felix.rtnl import RouteSocket
from gingham.datastore import open_datastore
from gingham.model.base import KINDS
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.support.netns import Netns, Topology
from tests.support.poll import async_wait_for, wait_for

FELIX = str(Path(sys.executable).with_name("gingham-felix"))
HTTP_PORT = 9099
KEEP, STALE = IPv4Network("10.65.1.0/26"), IPv4Network("10.65.2.0/26")


def resource(kind: str, name: str, spec: dict[str, object]):  # type: ignore[no-untyped-def]
    import gingham.model  # noqa: F401

    doc = {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return KINDS[kind].model_validate(doc)


async def seed(url: str) -> None:
    ds = open_datastore(url)
    try:
        await ds.create(resource("IPPool", "default", {"cidr": "10.65.0.0/16"}))
        for i in (1, 2, 3):
            await ds.create(
                resource("Node", f"node{i}", {"bgp": {"ipv4Address": f"192.0.2.{i}/24"}})
            )
    finally:
        await ds.close()


class Felix:
    def __init__(self, ns: Netns, url: str, run_dir: Path, log: Path) -> None:
        self.ns, self.url, self.run_dir, self.log = ns, url, run_dir, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def sock(self) -> Path:
        return self.run_dir / "felix.sock"

    def start(self) -> None:
        args = ["ip", "netns", "exec", self.ns.name, FELIX, "--node", "node1",
                "--datastore", self.url, "--run-dir", str(self.run_dir),
                "--http", f"127.0.0.1:{HTTP_PORT}", "--resync", "0.5"]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self.healthy, timeout=20, what="felix serving health")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"felix exited {self.proc.returncode}:\n{self.log.read_text()}")
        if not self.sock.exists():
            return False
        with grpc.insecure_channel(f"unix:{self.sock}") as ch:
            try:
                reply = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def http(self, path: str) -> int:
        s = socket_in_netns(self.ns.path, socket.AF_INET, socket.SOCK_STREAM)
        with s:
            s.settimeout(3)
            s.connect(("127.0.0.1", HTTP_PORT))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return int(s.recv(4096).split()[1])


@pytest.fixture
def felix(topo: Topology, tmp_path: Path) -> Iterator[Felix]:
    node, router = topo.netns("nd"), topo.netns("rt")
    topo.veth(node, "up0", router, "down0")
    node.ip("addr add 192.0.2.1/24 dev up0")
    router.ip("addr add 192.0.2.254/24 dev down0")
    url = f"sqlite:///{tmp_path}/store.db"
    import asyncio

    asyncio.run(seed(url))
    f = Felix(node, url, tmp_path / "run", tmp_path / "felix.log")
    try:
        yield f
    finally:
        f.kill9()


def add(prefix: IPv4Network, hop: str, node: str) -> pb.RouteUpdate:
    return pb.RouteUpdate(type=pb.ADD, prefix=str(prefix), peer=hop,
                          next_hops=[pb.NextHop(address=hop, node=node)])  # fmt: skip


async def push_snapshot(sock: Path, routes: list[pb.RouteUpdate]):  # type: ignore[no-untyped-def]
    channel = grpc.aio.insecure_channel(f"unix:{sock}")
    call = pb_grpc.RouteFeedStub(channel).SyncRoutes()
    for msg in [
        pb.RouteUpdate(type=pb.SNAPSHOT_BEGIN),
        *routes,
        pb.RouteUpdate(type=pb.SNAPSHOT_END),
    ]:
        await call.write(msg)
    ack = await call.read()
    assert ack.in_sync and not ack.error, ack
    return channel, call


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


async def test_add_workload_reports_missing_ipam(felix: Felix) -> None:
    felix.start()
    async with grpc.aio.insecure_channel(f"unix:{felix.sock}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.DataplaneStub(ch).AddWorkload(pb.AddWorkloadRequest(container_id="c1"))
    err = info.value
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    detail = dict(err.trailing_metadata() or ())["gingham-error-bin"]
    assert pb.ErrorDetail.FromString(detail).code == pb.TRY_AGAIN_LATER
