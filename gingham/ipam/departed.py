"""Nodes that left the cluster: a deleted core Node takes its Gingham Node and IPAM with it.

An operator removes a machine with `kubectl delete node` (or an autoscaler
does). Our `nodes.gingham.io` record would stay behind — the other nodes'
speakers would keep peering with its address — and so would its block
affinities, its blocks and its pods' addresses. `forget_deleted_nodes` does
what Calico's kube-controllers do then: it deletes the record of every node
whose core Node is gone and gives back what that node held in IPAM
(`gingham.ipam.check.forget_nodes`). It lives with IPAM, below the
Kubernetes integration: it needs only the datastore's core Node listing.

Every node agent (felix) runs it on the kubernetes datastore every
`INTERVAL` seconds: it is idempotent and every IPAM write is a compare-and-
swap, so agents that race over the same departed node converge.

Invariants:
- A node counts as gone only when it has our record and no core Node. Our
  records are listed *before* the core Nodes: a node registers after its
  core Node exists, so one registering meanwhile is never taken for gone.
- Nothing of a node whose core Node exists is touched.
"""

from __future__ import annotations

import contextlib

from gingham.datastore.base import NotFound
from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.ipam.allocator import IPAM
from gingham.ipam.check import forget_nodes
from gingham.model.bgp import Node

INTERVAL = 60.0


async def deleted_nodes(store: KubernetesDatastore) -> set[str]:
    """Our Nodes whose core Node is gone."""
    ours = {item.name for item in (await store.list(Node.kind)).items}
    cores = {core.name for core in await store.core_nodes()}
    return ours - cores


async def forget_deleted_nodes(store: KubernetesDatastore, ipam: IPAM) -> list[str]:
    """Delete our Node of every deleted core Node and free what it held; one line
    per change made (none when every node is still there)."""
    gone = await deleted_nodes(store)
    if not gone:
        return []
    done: list[str] = []
    for name in sorted(gone):
        with contextlib.suppress(NotFound):
            await store.delete(Node.kind, name)
            done.append(f"deleted Node {name!r}: its core Node is gone")
    return done + await forget_nodes(ipam, gone)
