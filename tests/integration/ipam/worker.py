"""A separate process using IPAM the way a felix would (for the tests).

python -m tests.integration.ipam.worker assign URL NODE PREFIX COUNT
    prints "ready", waits for a line on stdin, makes COUNT assignments with
    handles PREFIX-0.., then prints one JSON line: [[handle, ip], ...].
python -m tests.integration.ipam.worker claim-loop URL NODE PREFIX PER_BLOCK
    prints "ready", waits, then assigns PER_BLOCK addresses per handle
    forever (each fills a block, so nearly every step claims one), printing
    a JSON line per step; it is meant to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from gingham.datastore import open_datastore
from gingham.ipam import IPAM, IPAMUnavailable
from gingham.ipam.blocks import IPAddress

# What a container runtime does on CNI error 11 ("try again later"): retry.
# A machine under heavy load can make the first gRPC connection to etcd time out.
TRY_AGAIN = 5


async def assign_once(ipam: IPAM, handle: str, node: str, count: int = 1) -> list[IPAddress]:
    for attempt in range(TRY_AGAIN):
        try:
            return await ipam.assign(
                handle, node, {"pod": handle, "namespace": "test"}, count=count
            )
        except IPAMUnavailable as exc:
            print(f"try again later ({attempt + 1}/{TRY_AGAIN}): {exc}", file=sys.stderr)
            if attempt == TRY_AGAIN - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))  # a runtime's retry backoff
    raise AssertionError("unreachable")


async def assign(url: str, node: str, prefix: str, count: int) -> None:
    store = open_datastore(url)
    try:
        ipam = IPAM(store)
        got = []
        for i in range(count):
            handle = f"{prefix}-{i}"
            addresses = await assign_once(ipam, handle, node)
            got += [[handle, str(a)] for a in addresses]
        print(json.dumps(got), flush=True)
    finally:
        await store.close()


async def claim_loop(url: str, node: str, prefix: str, per_block: int) -> None:
    store = open_datastore(url)
    ipam = IPAM(store)
    i = 0
    while True:
        handle = f"{prefix}-{i}"
        addresses = await assign_once(ipam, handle, node, per_block)
        print(json.dumps([[handle, str(a)] for a in addresses]), flush=True)
        i += 1


def main() -> None:
    mode, url, node, prefix, number = sys.argv[1:6]
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "assign":
        asyncio.run(assign(url, node, prefix, int(number)))
    else:
        asyncio.run(claim_loop(url, node, prefix, int(number)))


if __name__ == "__main__":
    main()
