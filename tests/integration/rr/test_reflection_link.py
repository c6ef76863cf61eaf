"""`bird_agent.reflection.Reflection` against a real gingham-rr: speaker events in,
per-neighbor routes out; End-of-RIB to a new session waits for the reflector's
answer; a reflector restart keeps what is sent; becoming a non-RR withdraws."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bird_agent.events import PeerOpen, PeerUp, RoutesAnnounced
from bird_agent.peers import PeerSpec, PeerType
from bird_agent.reflection import Reflection
from route_reflector.api.client import Reflected
from route_reflector.api.messages import PathAttributes
from tests.integration.rr.conftest import RunningReflector
from tests.support.poll import async_wait_for

pytestmark = pytest.mark.slow

ME, C3, C4 = (IPv4Address(a) for a in ("192.0.2.1", "192.0.2.3", "192.0.2.4"))
CLUSTER = IPv4Address("224.0.0.1")
P3 = IPv4Network("10.65.3.0/26")


class Adapter:
    """What ExaBGP would hold per neighbor (the adapter's desired reflected routes)."""

    def __init__(self) -> None:
        self.routes: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {}
        self.end_of_rib_ready: Callable[[IPv4Address], bool] = lambda peer: True
        self.kicks = 0

    def set_reflected(
        self, table: Reflected, changes: Mapping[IPv4Network, frozenset[IPv4Address]]
    ) -> None:
        # Like the real adapter: only the prefixes and peers said to have
        # changed are looked at, so a change the link fails to name shows as a
        # difference.
        for prefix, peers in changes.items():
            entry = table.get(prefix)
            for peer in peers:
                held = self.routes.setdefault(peer, {})
                if entry is not None and peer in entry[1]:
                    held[prefix] = entry[0]
                else:
                    held.pop(prefix, None)
                if not held:
                    del self.routes[peer]

    def kick(self) -> None:
        self.kicks += 1


def client(address: IPv4Address) -> PeerSpec:
    return PeerSpec(
        address=address,
        peer_asn=64512,
        local_asn=64512,
        local_address=ME,
        router_id=ME,
        peer_type=PeerType.ROUTE_REFLECTOR_CLIENT,
        source="test",
        peer_node=str(address),
        route_reflector_client=True,
    )


PEERS = {C3: client(C3), C4: client(C4)}


async def test_reflection_end_of_rib_gate_and_reflector_restart(
    reflector_process: RunningReflector, tmp_path: Path
) -> None:
    adapter = Adapter()
    reflection = Reflection(reflector_process.socket, adapter)
    try:
        reflection.configure(CLUSTER, ME, PEERS)
        assert reflection.link is not None
        link = reflection.link
        await asyncio.wait_for(link.in_sync.wait(), 30)
        for peer in (C3, C4):
            reflection.observe(PeerOpen(peer, peer, 64512, 9), PEERS)
            reflection.observe(PeerUp(peer), PEERS)
        # Until the reflector has answered C4's session, C4 gets no End-of-RIB.
        answered_before = link.answered
        gated = not adapter.end_of_rib_ready(C4)
        reflection.observe(RoutesAnnounced(C3, C3, (P3,), attributes={"origin": "igp"}), PEERS)

        async def reflected() -> bool:
            return P3 in adapter.routes.get(C4, {})

        await async_wait_for(reflected, 20, 0.05, "C3's route handed over for C4")
        sent = adapter.routes[C4][P3]
        assert (sent.next_hop, sent.originator_id, sent.cluster_list) == (C3, C3, (CLUSTER,))
        assert adapter.end_of_rib_ready(C4) and adapter.kicks >= 1
        assert gated or link.answered > answered_before  # (it may have answered at once)

        # gingham-rr dies and comes back: nothing handed over changes meanwhile.
        reflector_process.process.send_signal(signal.SIGKILL)
        reflector_process.process.wait(10)

        async def disconnected() -> bool:
            return not link.in_sync.is_set()

        await async_wait_for(disconnected, 20, 0.05, "the link noticing")
        before = {p: dict(t) for p, t in adapter.routes.items()}
        reflector_process.restart(tmp_path / "rr2.log")
        await asyncio.wait_for(link.in_sync.wait(), 30)
        assert adapter.routes == before

        # No longer a route reflector: everything reflected is withdrawn.
        reflection.configure(None, ME, PEERS)
        assert adapter.routes == {}
        assert reflection.link is None
    finally:
        await reflection.stop()
