"""A separate process following IPPools the way felix does (felix.sync.follow),
for the test that stops it across an API server restart and etcd compaction.

python -m tests.integration.k8s.follower KUBECONFIG
    prints one JSON line (the sorted pool names felix holds) whenever that
    set changes; felix.sync logs its re-lists to stderr. Meant to be stopped
    (SIGSTOP/SIGCONT by the test) and finally terminated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from felix.agent import Agent
from felix.sync import follow
from gingham.datastore.kubernetes import KubernetesDatastore
from tests.unit.felix.test_agent import FakeHost  # no kernel: only the pools matter


async def main(kubeconfig: str) -> None:
    store = KubernetesDatastore(kubeconfig, timeout=5.0)
    agent = Agent(node="follower", host=FakeHost())
    following = asyncio.create_task(follow(store, agent, "IPPool", retry=0.2))
    shown: list[str] | None = None
    while not following.done():
        names = sorted(agent.pools)
        if names != shown:
            print(json.dumps(names), flush=True)
            shown = names
        await asyncio.sleep(0.05)
    following.result()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(sys.argv[1]))
