"""Our route reflector at size: 20 BIRD clients x 2,000 prefixes, through the real processes.

One RR node (`gingham node run`: felix, gingham-bgp with ExaBGP, gingham-rr)
and 20 BIRD 2 clients, each originating 2,000 /26s (40,000 prefixes, 760,000
route x client deliveries). Every client must end with exactly the other
clients' 38,000 prefixes, reflected as RFC 4456 says (ORIGINATOR_ID = the
originating client, CLUSTER_LIST = [our cluster ID], next hop unchanged), and
a client that leaves takes its 2,000 prefixes from every other client.

Before the API bridge flowed both ways under back-pressure this never
converged: ExaBGP and the bridge each waited for the other once both pipes
were full.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.bird_rr import ReflectedRoute, route_attributes
from tests.support.poll import wait_for
from tests.support.rr_scale import CLUSTER_ID, ScaleFabric, client_address, client_prefixes

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

CLIENTS, PER_CLIENT = 20, 2000


def test_every_client_holds_every_reflected_route_and_loses_a_leaving_clients() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    fabric = ScaleFabric(CLIENTS, PER_CLIENT)
    try:
        fabric.start_gingham_rr()
        started = time.monotonic()
        fabric.enable_all()
        want = fabric.expected_per_client
        held: dict[int, int] = {}

        def everyone_holds(count: int) -> bool:
            for i, (_, imported) in fabric.progress().items():
                held[i] = imported
            return all(n == count for n in held.values())

        try:
            wait_for(lambda: everyone_holds(want), timeout=300, interval=0.5,
                     what=f"every client holding {want} routes")  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}: held {held}\n{_logs(fabric)}") from None
        print(f"{CLIENTS} x {PER_CLIENT}: every client holds every route"
              f" {time.monotonic() - started:.1f}s after the sessions were enabled")  # fmt: skip

        # RFC 4456 on a sample: first and last prefix of a few clients, seen by another.
        for origin in (0, 7, CLIENTS - 1):
            seen_by = fabric.clients[(origin + 1) % CLIENTS]
            for prefix in client_prefixes(origin, PER_CLIENT)[:: PER_CLIENT - 1]:
                assert route_attributes(seen_by, prefix) == [
                    ReflectedRoute(client_address(origin), client_address(origin), (CLUSTER_ID,))
                ], f"{prefix} as client {origin} sent it, reflected"

        # A client leaves (its session shut down): the others lose all it sent.
        fabric.clients[3].birdc("disable", "peer")
        remaining = {i: c for i, c in enumerate(fabric.clients) if i != 3}
        try:
            wait_for(
                lambda: all(
                    n == want - PER_CLIENT
                    for i, (_, n) in fabric.progress(frozenset({3})).items()
                    if i in remaining
                ),
                timeout=120, interval=0.5, what="client 3's prefixes withdrawn everywhere",
            )  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_logs(fabric)}") from None
        assert route_attributes(fabric.clients[0], client_prefixes(3, PER_CLIENT)[5]) == []
    finally:
        fabric.close()


def _logs(fabric: ScaleFabric) -> str:
    return fabric.node.logs() if fabric.node is not None else "(our RR node never started)"
