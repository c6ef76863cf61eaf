"""Route reflector core throughput (skeleton of the RR benchmark).

1 reflector, 20 clients, 5,000 prefixes in all (250 /26s per client), the
shape of the issue's benchmark, measured on the reflector alone:

- core, batched: each client announces its 250 prefixes in one UPDATE
  (what BIRD sends: one attribute set, many NLRI) straight into `Reflector`;
- core, one prefix per UPDATE: the worst case for per-call overhead;
- gRPC: the same batched inputs over a real `Reflect` stream on a unix socket
  (in-process server), protobuf both ways, until the last answer arrives;
- churn: every client withdraws then re-announces 10% of its prefixes.

Each run checks the result against a from-scratch recomputation and that
every client holds the 4,750 prefixes of the others. Prints medians.

Not yet here (needs the speaker): the full benchmark through ExaBGP with BIRD
clients, beside BIRD as the RR in the same run (target within 3x; FACTS.md
measured BIRD: every client holding all 5,000 routes in 3.84 s median).

Run: `.venv/bin/python bench/rr.py [--runs 5] [--clients 20] [--per-client 250]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from gingham.v1 import reflector_pb2_grpc as pb_grpc
from route_reflector.convert import encode_input
from route_reflector.feed import Announce, PeerUp, SnapshotBegin, SnapshotEnd
from route_reflector.reflect import Reflector, expected_adj_rib_out
from route_reflector.rib import PathAttributes, Peer
from route_reflector.server import Metrics, ReflectorServicer

CLUSTER = IPv4Address("224.0.0.1")
RR_ID = IPv4Address("192.0.2.250")


def client_address(i: int) -> IPv4Address:
    return IPv4Address(0xC0000201 + i)  # 192.0.2.1 upwards


def client_prefixes(i: int, per_client: int) -> list[IPv4Network]:
    base = 0x0A400000 + i * per_client * 64
    return [IPv4Network((base + (j << 6), 26)) for j in range(per_client)]


def attributes(i: int) -> PathAttributes:
    return PathAttributes(next_hop=client_address(i))


def fresh(clients: int) -> Reflector:
    reflector = Reflector(CLUSTER, RR_ID)
    for i in range(clients):
        address = client_address(i)
        reflector.peer_up(Peer(address, address, client=True))
    return reflector


def check(reflector: Reflector, clients: int, per_client: int) -> None:
    expected = expected_adj_rib_out(reflector)
    for i in range(clients):
        address = client_address(i)
        out = reflector.adj_rib_out(address)
        assert dict(out) == expected[address], "incremental != from scratch"
        assert len(out) == (clients - 1) * per_client, f"client {i} holds {len(out)}"


def core_batched(clients: int, per_client: int) -> tuple[float, int]:
    reflector = fresh(clients)
    start = time.perf_counter()
    changes = 0
    for i in range(clients):
        changes += len(
            reflector.announce(client_address(i), client_prefixes(i, per_client), attributes(i))
        )
    elapsed = time.perf_counter() - start
    check(reflector, clients, per_client)
    return elapsed, changes


def core_single(clients: int, per_client: int) -> tuple[float, int]:
    reflector = fresh(clients)
    start = time.perf_counter()
    changes = 0
    for i in range(clients):
        address, attrs = client_address(i), attributes(i)
        for prefix in client_prefixes(i, per_client):
            changes += len(reflector.announce(address, [prefix], attrs))
    elapsed = time.perf_counter() - start
    check(reflector, clients, per_client)
    return elapsed, changes


def churn(clients: int, per_client: int) -> tuple[float, int]:
    reflector = fresh(clients)
    for i in range(clients):
        reflector.announce(client_address(i), client_prefixes(i, per_client), attributes(i))
    start = time.perf_counter()
    changes = 0
    for i in range(clients):
        some = client_prefixes(i, per_client)[: per_client // 10]
        changes += len(reflector.withdraw(client_address(i), some))
        changes += len(reflector.announce(client_address(i), some, attributes(i)))
    elapsed = time.perf_counter() - start
    check(reflector, clients, per_client)
    return elapsed, changes


async def _grpc_run(clients: int, per_client: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as run_dir:
        sock = Path(run_dir) / "rr.sock"
        server = grpc.aio.server()
        pb_grpc.add_ReflectorServicer_to_server(ReflectorServicer("bench", Metrics()), server)
        server.add_insecure_port(f"unix:{sock}")
        await server.start()
        channel = grpc.aio.insecure_channel(f"unix:{sock}")
        try:
            inputs = [SnapshotBegin(CLUSTER, RR_ID), SnapshotEnd()]
            inputs += [
                PeerUp(Peer(client_address(i), client_address(i), client=True))
                for i in range(clients)
            ]
            inputs += [
                Announce(client_address(i), tuple(client_prefixes(i, per_client)), attributes(i))
                for i in range(clients)
            ]
            messages = [encode_input(e) for e in inputs]
            start = time.perf_counter()
            call = pb_grpc.ReflectorStub(channel).Reflect(iter(messages))
            changes = 0
            async for output in call:
                for diff in output.diffs:
                    changes += sum(len(g.prefixes) for g in diff.announce) + len(diff.withdraw)
                if output.received == len(messages):
                    break
            elapsed = time.perf_counter() - start
            call.cancel()
            return elapsed, changes
        finally:
            await channel.close()
            await server.stop(None)


def over_grpc(clients: int, per_client: int) -> tuple[float, int]:
    return asyncio.run(_grpc_run(clients, per_client))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=250)
    args = parser.parse_args()
    total = args.clients * args.per_client
    print(f"1 RR, {args.clients} clients, {total} prefixes; median of {args.runs} runs")
    cases: list[tuple[str, Callable[[int, int], tuple[float, int]], int]] = [
        ("core, one UPDATE per client", core_batched, total),
        ("core, one prefix per UPDATE", core_single, total),
        ("gRPC stream, one UPDATE per client", over_grpc, total),
        ("churn: 10% withdrawn + re-announced", churn, 2 * (total // 10)),
    ]
    print(f"{'case':40} {'seconds':>9} {'prefixes in/s':>14} {'changes out/s':>14}")
    for name, run, inputs in cases:
        results = [run(args.clients, args.per_client) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in results)
        changes = results[0][1]
        print(f"{name:40} {seconds:9.3f} {inputs / seconds:14,.0f} {changes / seconds:14,.0f}")
    print(
        "reference (FACTS.md, not this run): BIRD as RR, all 20 clients holding all 5,000 "
        "routes in 3.84 s median; ExaBGP sends ~3,250 prefixes/s batched"
    )


if __name__ == "__main__":
    main()
