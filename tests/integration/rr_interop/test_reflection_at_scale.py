"""Our route reflector at size: 20 BIRD clients x 2,000 prefixes, through the real processes.

One RR node (`gingham node run`: felix, gingham-bgp with ExaBGP, gingham-rr)
and 20 BIRD 2 clients, each originating 2,000 /26s (40,000 prefixes, 760,000
route x client deliveries). Every client must end with exactly the other
clients' 38,000 prefixes, reflected as RFC 4456 says (ORIGINATOR_ID = the
originating client, CLUSTER_LIST = [our cluster ID], next hop unchanged), and
a client that leaves takes its 2,000 prefixes from every other client —
without waiting for a client that stopped reading, which loses its session
when its own hold timer runs out (its prefixes then stay, stale, for its
graceful-restart window, as for a restarting peer: bird_agent.exabgp_wire's
`ends_gracefully`; 94 s in all here).

Before the API bridge flowed both ways under back-pressure this never
converged: ExaBGP and the bridge each waited for the other once both pipes
were full.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.bird_rr import ReflectedRoute, route_attributes
from tests.support.poll import wait_for
from tests.support.rr_scale import CLUSTER_ID, ScaleFabric, client_address, client_prefixes

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

CLIENTS, PER_CLIENT = 20, 2000


def test_every_client_holds_every_reflected_route_and_a_stuck_client_delays_no_one() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    fabric = ScaleFabric(CLIENTS, PER_CLIENT, hold_time=30)
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

        # A client stops reading (SIGSTOP: no reads, no keepalives) while another
        # leaves (its session shut down): the rest lose the leaver's 2,000
        # prefixes without waiting for the stuck client, then the stuck one's
        # 2,000 when its hold timer (30 s) and its graceful-restart window have
        # run out; once it runs again it is given everything back.
        stuck, leaver = fabric.clients[5], fabric.clients[3]
        assert stuck.proc is not None
        os.kill(stuck.proc.pid, signal.SIGSTOP)
        stopped = stuck.proc.pid
        leaver.birdc("disable", "peer")
        others = frozenset({3, 5})

        def everyone_else_holds(count: int) -> bool:
            return all(n == count for _, n in fabric.progress(others).values())

        try:
            t0 = time.monotonic()
            wait_for(lambda: everyone_else_holds(want - PER_CLIENT), timeout=120, interval=0.5,
                     what="the leaver's prefixes withdrawn everywhere")  # fmt: skip
            print(f"withdrawn from 18 clients in {time.monotonic() - t0:.1f}s, one client stuck")
            assert route_attributes(fabric.clients[0], client_prefixes(3, PER_CLIENT)[5]) == []
            wait_for(lambda: everyone_else_holds(want - 2 * PER_CLIENT), timeout=240,
                     interval=0.5, what="the stuck client's prefixes withdrawn")  # fmt: skip
            print(f"the stuck client's prefixes gone {time.monotonic() - t0:.1f}s after it stopped")
            os.kill(stopped, signal.SIGCONT)
            stopped = 0
            rejoined = frozenset({3})
            wait_for(
                lambda: all(
                    n == want - PER_CLIENT for _, n in fabric.progress(rejoined).values()
                ),
                timeout=300, interval=0.5, what="the stuck client back, everyone whole again",
            )  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_logs(fabric)}") from None
        finally:
            if stopped:
                os.kill(stopped, signal.SIGCONT)
    finally:
        fabric.close()


def _logs(fabric: ScaleFabric) -> str:
    return fabric.node.logs() if fabric.node is not None else "(our RR node never started)"
