"""Whole gingham nodes (`gingham node run`) and foreign routers on one L2 segment.

A `Fabric` is a bridge namespace plus a datastore: an sqlite file, or with
`etcd=True` an etcd in the bridge namespace at `ETCD_ADDRESS` (the nodes
reach it over the segment; the test's own reads and writes go through the
`gingham` CLI run in that namespace). `add_node` makes a
node namespace on the segment at `10.71.0.<i>/24`, writes its Node resource
(optionally an RR: `routeReflectorClusterID`, label `route-reflector`) and
starts `gingham node run` in it — felix, gingham-bgp and, on RR nodes,
gingham-rr, exactly as production runs them. `add_pod` asks that node's felix
for a pod (AddWorkload over its socket). `add_router` makes a bare namespace
on the segment for BIRD/FRR/GoBGP/ExaBGP. `Pings` keeps a ping going from a
pod and counts what came back (traffic through a fault).

Teardown (the `Fabric` context manager): every `node run` gets SIGTERM by
PID (its supervisor stops its own children), then SIGKILL after a grace
period; the etcd (if any) is stopped by PID; every namespace is deleted.
Nothing touches the host namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import grpc

from gingham.datastore import open_datastore
from gingham.model.base import KINDS, Resource
from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc
from tests.support import bgpd
from tests.support.netns import Netns, Topology
from tests.support.poll import wait_for

BIN = Path(sys.executable).parent
SEGMENT = "10.71.0"
AS = 64512
ETCD_ADDRESS = f"{SEGMENT}.250"  # on the segment's bridge, with etcd=True


def address(index: int) -> IPv4Address:
    return IPv4Address(f"{SEGMENT}.{index}")


def resource(
    kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> Resource:
    import gingham.model  # noqa: F401  (registers every kind)

    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    doc = {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": metadata, "spec": spec}
    return KINDS[kind].model_validate(doc)


@dataclass
class NodeRun:
    """One `gingham node run` in its namespace."""

    name: str
    ns: Netns
    run_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def felix_sock(self) -> Path:
        return self.run_dir / "felix.sock"

    def start(self, url: str, env: dict[str, str] | None = None) -> None:
        cmd = ["ip", "netns", "exec", self.ns.name, str(BIN / "gingham"), "node", "run",
               "--node", self.name, "--datastore", url, "--run-dir", str(self.run_dir),
               "--grace", "3"]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def logs(self, tail: int = 3000) -> str:
        parts = [f"--- {self.log.name}\n{self.log.read_text(errors='replace')[-tail:]}"]
        for path in sorted(self.run_dir.glob("**/*.log")):
            parts.append(f"--- {path}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)


@dataclass
class Fabric:
    tmp: Path
    topo: Topology = field(default_factory=Topology)
    nodes: dict[str, NodeRun] = field(default_factory=dict)
    pods: dict[str, Netns] = field(default_factory=dict)
    pod_ips: dict[str, str] = field(default_factory=dict)
    # Foreign daemons (tests.support.bgpd) to stop before the namespaces go.
    daemons: list[bgpd.BgpDaemon] = field(default_factory=list)
    # An etcd in the segment namespace instead of an sqlite file.
    etcd: bool = False

    def __post_init__(self) -> None:
        self.url = f"sqlite:///{self.tmp}/store.db"
        self.segment = self.topo.netns("sw")
        self.bridge = self.topo.bridge(self.segment)
        self.etcd_proc: subprocess.Popen[bytes] | None = None
        if self.etcd:
            self.segment.ip(f"addr add {ETCD_ADDRESS}/24 dev {self.bridge}")
            self.url = f"etcd://{ETCD_ADDRESS}:2379"
            self.topo.stack.callback(self.stop_etcd)
            self.start_etcd()

    # -- etcd (etcd=True) ------------------------------------------------------------

    def start_etcd(self) -> None:
        """Start the segment's etcd (again: same data dir, same revisions) and wait for it."""
        assert self.etcd_proc is None, "etcd already running"
        client = f"http://{ETCD_ADDRESS}:2379"
        peer = "http://127.0.0.1:2380"  # one member: never leaves the segment namespace
        data = self.tmp / "etcd"
        with (self.tmp / "etcd.log").open("ab") as log:
            self.etcd_proc = subprocess.Popen(
                ["ip", "netns", "exec", self.segment.name, "etcd", "--name", "fabric",
                 "--data-dir", str(data), "--listen-client-urls", client,
                 "--advertise-client-urls", client, "--listen-peer-urls", peer,
                 "--initial-advertise-peer-urls", peer, "--initial-cluster", f"fabric={peer}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_for(self._etcd_healthy, 60, 0.1, "the fabric's etcd")

    def _etcd_healthy(self) -> bool:
        assert self.etcd_proc is not None
        if self.etcd_proc.poll() is not None:
            raise AssertionError(f"etcd exited: {(self.tmp / 'etcd.log').read_text()[-2000:]}")
        probe = self.segment.exec(
            ["curl", "-sf", "--max-time", "1", f"http://{ETCD_ADDRESS}:2379/health"], False
        )
        return '"health":"true"' in probe.stdout.replace(" ", "")

    def stop_etcd(self) -> None:
        """SIGTERM by PID (SIGKILL if it lingers); the data dir stays."""
        proc, self.etcd_proc = self.etcd_proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def gingham(self, *args: str) -> str:
        """The `gingham` CLI on this fabric's datastore, from the segment namespace."""
        done = self.segment.exec([str(BIN / "gingham"), "--datastore", self.url, *args])
        return done.stdout

    # -- namespaces -------------------------------------------------------------------

    def _attach(self, tag: str, index: int) -> Netns:
        ns = self.topo.netns(tag)
        self.topo.attach(self.segment, self.bridge, ns, "up0")
        ns.ip(f"addr add {address(index)}/24 dev up0")
        return ns

    def add_router(self, index: int) -> Netns:
        """A bare namespace on the segment at 10.71.0.<index> (for a foreign daemon)."""
        return self._attach("r", index)

    # -- datastore --------------------------------------------------------------------

    async def apply(self, *objects: Any) -> None:
        if self.etcd:
            path = self.tmp / "apply.json"
            path.write_text("\n---\n".join(json.dumps(o.to_document()) for o in objects))
            await asyncio.to_thread(self.gingham, "apply", "-f", str(path))
            return
        store = open_datastore(self.url)
        try:
            for obj in objects:
                await store.create(obj)
        finally:
            await store.close()

    async def delete(self, kind: str, name: str) -> None:
        if self.etcd:
            await asyncio.to_thread(self.gingham, "delete", kind, name)
            return
        store = open_datastore(self.url)
        try:
            await store.delete(kind, name)
        finally:
            await store.close()

    async def items(self, kind: str) -> list[Any]:
        if self.etcd:
            listing = json.loads(await asyncio.to_thread(self.gingham, "get", kind, "-o", "json"))
            return [KINDS[kind].model_validate(doc) for doc in listing["items"]]
        store = open_datastore(self.url)
        try:
            return list((await store.list(kind)).items)
        finally:
            await store.close()

    # -- nodes --------------------------------------------------------------------------

    async def add_node(
        self, index: int, *, cluster_id: str | None = None, env: dict[str, str] | None = None
    ) -> NodeRun:
        name = f"node{index}"
        ns = self._attach("n", index)
        bgp: dict[str, Any] = {"ipv4Address": f"{address(index)}/24"}
        labels = None
        if cluster_id is not None:
            bgp["routeReflectorClusterID"] = cluster_id
            labels = {"route-reflector": "true"}
        await self.apply(resource("Node", name, {"bgp": bgp}, labels))
        node = NodeRun(name, ns, self.tmp / f"run-{name}", self.tmp / f"{name}.log")
        self.nodes[name] = node
        self.topo.stack.callback(node.stop)  # before its namespace goes (LIFO)
        node.start(self.url, env)
        return node

    async def add_pod(self, node: str) -> str:
        """A pod on `node` through its felix; returns the pod's IP."""
        run = self.nodes[node]
        await asyncio.to_thread(wait_for, run.felix_sock.exists, 300, 0.2, f"{node}'s felix socket")
        pod = self.topo.netns("p")
        async with grpc.aio.insecure_channel(f"unix:{run.felix_sock}") as channel:
            stub = pb_grpc.DataplaneStub(channel)  # type: ignore[no-untyped-call]
            reply = await stub.AddWorkload(
                pb.AddWorkloadRequest(
                    container_id=f"c-{node}-{len(self.pods)}",
                    netns=pod.path,
                    interface_name="eth0",
                    pod_namespace="default",
                    pod_name=f"pod-{node}",
                ),
                timeout=60,
                wait_for_ready=True,
            )
        ip = str(reply.ips[0].address).split("/")[0]
        self.pods[node] = pod
        self.pod_ips[node] = ip
        return ip

    def pings(self, src: str, dst: str) -> bool:
        return self.pods[src].ping(self.pod_ips[dst], timeout=1.0)

    def all_pods_ping(self) -> bool:
        names = list(self.pods)
        return all(self.pings(a, b) for a in names for b in names if a != b)

    async def blocks_of(self, node: str) -> list[str]:
        return [str(b.spec.cidr) for b in await self.items("IPAMBlock") if b.spec.host == node]

    def logs(self) -> str:
        parts = [node.logs() for node in self.nodes.values()]
        for daemon in self.daemons:
            if daemon.log.exists():
                text = daemon.log.read_text(errors="replace")[-3000:]
                parts.append(f"--- {daemon.name} {daemon.peering.address}\n{text}")
        return "\n".join(parts)

    # -- lifecycle ----------------------------------------------------------------------

    def start_daemon(self, daemon: bgpd.BgpDaemon) -> bgpd.BgpDaemon:
        """Start a BIRD/FRR/GoBGP daemon; the fabric stops it on close."""
        self.daemons.append(daemon)
        try:
            daemon.start()
        except RuntimeError:
            # bgpd's own readiness deadline is 10 s; on a machine at load 100+
            # FRR alone can take longer to answer vtysh. Alive = keep waiting.
            if daemon.proc is None or daemon.proc.poll() is not None:
                raise
            wait_for(daemon.ready, 120, 0.2, f"{daemon.name} ready")
        return daemon

    def close(self) -> None:
        for daemon in self.daemons:
            bgpd.stop_quietly(daemon)
        self.topo.close()

    def __enter__(self) -> Fabric:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pings:
    """A ping every `interval` seconds from namespace `pod` to `address` until `stop()`."""

    def __init__(self, pod: Netns, address: str, interval: float = 0.05) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", pod.name, "ping", "-n", "-i", str(interval), address],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.output = ""

    def stop(self) -> tuple[int, int]:
        """SIGINT (by PID), then (sent, received); replies in flight count as lost."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.output, _ = self.proc.communicate(timeout=10)
        found = re.search(r"(\d+) packets transmitted, (\d+) received", self.output)
        assert found, self.output
        return int(found.group(1)), int(found.group(2))


def kernel_route(ns: Netns, prefix: str) -> dict[str, Any] | None:
    """The kernel's route for exactly `prefix` in `ns` (iproute2 JSON), or None."""
    routes = json.loads(ns.ip(f"-j -4 route show {prefix}") or "[]")
    for route in routes:
        if route.get("dst") == prefix:
            return dict(route)
    return None


RR_HTTP_PORT = 9097  # gingham-rr's default --http (localhost, inside the node's netns)


def metric(ns: Netns, name: str, port: int = RR_HTTP_PORT) -> float | None:
    """A Prometheus sample `name` (no labels) from localhost:`port`/metrics in `ns`."""
    proc = ns.exec(["curl", "-sf", "--max-time", "5", f"http://127.0.0.1:{port}/metrics"], False)
    for line in proc.stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == name:
            return float(words[1])
    return None


def close_quietly(fabric: Fabric) -> None:
    with contextlib.suppress(Exception):
        fabric.close()
