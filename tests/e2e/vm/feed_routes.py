"""Play the BGP speaker inside a guest: push routes to the local felix and hold the stream.

    python -m tests.e2e.vm.feed_routes SOCKET ROUTES_FILE

Started together with felix, so its imports overlap felix's start-up: it
waits for ROUTES_FILE (one `PREFIX NEXTHOP NODE` per line, written by the
test once the blocks are known) and for felix's socket, sends a full
snapshot (SNAPSHOT_BEGIN, one ADD per route, SNAPSHOT_END) on felix's
RouteFeed, prints felix's ack as JSON, then keeps the stream open (felix
forgets a stream's routes when it closes) until killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc

from gingham.v1 import dataplane_pb2 as pb
from gingham.v1 import dataplane_pb2_grpc as pb_grpc


async def wait_for_file(path: str) -> None:
    while not os.path.exists(path):
        await asyncio.sleep(0.1)


async def feed(sock: str, routes_file: str) -> None:
    await wait_for_file(routes_file)
    await wait_for_file(sock)
    with open(routes_file) as f:
        routes = [line.split() for line in f if line.strip()]
    async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
        call = pb_grpc.RouteFeedStub(channel).SyncRoutes()  # type: ignore[no-untyped-call]
        await call.write(pb.RouteUpdate(type=pb.SNAPSHOT_BEGIN))
        for prefix, hop, node in routes:
            nh = pb.NextHop(address=hop, node=node)
            await call.write(pb.RouteUpdate(type=pb.ADD, prefix=prefix, peer=hop, next_hops=[nh]))
        await call.write(pb.RouteUpdate(type=pb.SNAPSHOT_END))
        ack = await call.read()
        print(json.dumps({"in_sync": ack.in_sync, "error": ack.error}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(feed(sys.argv[1], sys.argv[2]))
