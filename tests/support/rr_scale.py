"""A route reflector with many BIRD clients: the fabric bench/rr.py and the scale test share.

`ScaleFabric(clients, per_client)` makes one bridge, an RR namespace at
`RR_ADDRESS` and one namespace per BIRD 2 client on `SEGMENT`; client `i`
originates `client_prefixes(i, per_client)` /26s from `POOL` and starts with
its session disabled. Put a reflector in `fabric.rr` (BIRD with
`tests.support.bird_rr.BirdReflector`, or ours with `start_gingham_rr`),
then `enable_all()` and poll `progress()`.

Address plan: the peering segment and the pool never overlap, at any size
this module accepts (`client_prefixes` refuses what does not fit), so no
reflected route can capture a session's own addresses.

`close()` stops every daemon by PID and removes every namespace, even when
a start failed half-way.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from tests.support import bgpd
from tests.support.bird_rr import session_and_imported
from tests.support.netns import Netns, Topology
from tests.support.node_fabric import NodeRun, resource

AS = 64512
POOL = IPv4Network("10.128.0.0/9")  # 131,072 /26s
SEGMENT = IPv4Network("172.16.0.0/16")  # up to 65,000 clients
RR_ADDRESS = IPv4Address("172.16.255.254")
CLUSTER_ID = IPv4Address("1.1.1.1")
assert not POOL.overlaps(SEGMENT)


def client_address(i: int) -> IPv4Address:
    return SEGMENT.network_address + 1 + i


def client_prefixes(i: int, per_client: int) -> list[IPv4Network]:
    """Client `i`'s /26s, carved upward from the pool's start, never outside it."""
    base = int(POOL.network_address) + i * per_client * 64
    if base + per_client * 64 > int(POOL.broadcast_address) + 1:
        raise ValueError(f"{i + 1} clients x {per_client} /26s do not fit in {POOL}")
    return [IPv4Network((base + (j << 6), 26)) for j in range(per_client)]


class ScaleFabric:
    """A bridge, the RR namespace and one namespace per BIRD client."""

    # Calico's and BIRD's usual 90 s hold time, not the tests' 9 s: a busy 2-core machine
    # can leave ExaBGP silent for seconds in the middle of a large burst.
    def __init__(self, clients: int, per_client: int, hold_time: int = 90) -> None:
        self.per_client = per_client
        self.topo = Topology()
        self.clients: list[bgpd.Bird] = []
        self.node: NodeRun | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="grrscale-"))
        try:
            seg = self.topo.netns("sw")
            bridge = self.topo.bridge(seg)

            def member(address: IPv4Address) -> Netns:
                ns = self.topo.netns("rb")
                self.topo.attach(seg, bridge, ns, "up0")
                ns.ip(f"addr add {address}/{SEGMENT.prefixlen} dev up0")
                return ns

            self.rr = member(RR_ADDRESS)
            for i in range(clients):
                peering = bgpd.DaemonPeering(
                    netns=member(client_address(i)).name, address=client_address(i), asn=AS,
                    neighbor=RR_ADDRESS, neighbor_asn=AS, hold_time=hold_time,
                    originate=client_prefixes(i, per_client), enabled=False,
                )  # fmt: skip
                self.clients.append(bgpd.Bird(peering))
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda bird: bird.start(), self.clients))
        except BaseException:
            self.close()
            raise

    @property
    def expected_per_client(self) -> int:
        """Routes each client should hold: every other client's prefixes."""
        return (len(self.clients) - 1) * self.per_client

    def enable_all(self) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda bird: bird.enable(), self.clients))

    def progress(self, skip: frozenset[int] = frozenset()) -> dict[int, tuple[bool, int]]:
        """Per client not in `skip`: (session Established, routes imported)."""
        todo = [i for i in range(len(self.clients)) if i not in skip]
        with ThreadPoolExecutor(4) as pool:
            states = pool.map(lambda i: session_and_imported(self.clients[i]), todo)
            return dict(zip(todo, states, strict=True))

    def start_gingham_rr(self, env: dict[str, str] | None = None, timeout: float = 180) -> NodeRun:
        """Our RR node (`gingham node run`: felix, gingham-bgp/ExaBGP, gingham-rr), every
        client a BGPPeer of it, mesh off; returns once it is fully up."""
        url = f"sqlite:///{self.tmp}/store.db"
        asyncio.run(self._seed(url))
        node = self.node = NodeRun("rr", self.rr, self.tmp / "run", self.tmp / "node.log")
        node.start(url, env)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline or not node.alive():
                raise RuntimeError(f"our RR node not ready:\n{node.logs()}")
            time.sleep(0.2)  # polling a log file for start-up, with a deadline
        return node

    def _ready(self) -> bool:
        # ExaBGP listens before its API process is attached; sessions that
        # come up then are reset when it attaches. Ready = the speaker saw
        # the API (SpeakerRestarted), felix took its first route snapshot and
        # gingham-rr serves.
        run = self.tmp / "run"
        log = run / "logs" / "bgp.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return (
            "SpeakerRestarted(generation=" in text
            and "felix took the route snapshot" in text
            and (run / "rr.sock").exists()
        )

    async def _seed(self, url: str) -> None:
        from gingham.datastore import open_datastore

        store = open_datastore(url)
        try:
            for obj in [
                resource("IPPool", "scale", {"cidr": str(POOL)}),
                resource("BGPConfiguration", "default",
                         {"asNumber": AS, "nodeToNodeMeshEnabled": False}),
                resource("Node", "rr",
                         {"bgp": {"ipv4Address": f"{RR_ADDRESS}/{SEGMENT.prefixlen}",
                                  "routeReflectorClusterID": str(CLUSTER_ID)}},
                         {"route-reflector": "true"}),
                *[resource("BGPPeer", f"client{i}",
                           {"node": "rr", "peerIP": str(client_address(i)), "asNumber": AS})
                  for i in range(len(self.clients))],
            ]:  # fmt: skip
                await store.create(obj)
        finally:
            await store.close()

    def close(self) -> None:
        if self.node is not None:
            self.node.stop()
        for bird in self.clients:
            bgpd.stop_quietly(bird)
        self.topo.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
