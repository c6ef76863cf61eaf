"""`Attachment` (one pod interface felix wired) and its WorkloadEndpoint record.

felix.workloads decides when attachments come and go; this module owns how
they are written to and found in the datastore, Calico's way: one
`WorkloadEndpoint` per attachment, named uniquely per (node, container ID,
interface), see `gingham.model.workload.workload_endpoint_name`.

Invariants:
- Two attachments never share a record: two live pods whose container IDs
  differ only in case or punctuation, or two sandboxes of one pod, have two.
- A write returns the record's revision; the attachment keeps it and the
  record's name, so removal is one compare-and-swap delete of exactly that
  record (no listing), whatever naming it was written under.
- Without a remembered revision (a repeated DEL, a record felix never saw
  written) removal lists this node's records and removes the ones of the
  (container ID, interface), each CAS on the revision it read.
- `EndpointRecords(None, node)` records nothing (felix without a datastore).
- A sandbox is its network namespace's identity (device, inode), not the
  path a runtime names it by (`same_sandbox`, `sandbox_alive`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from ipaddress import IPv4Address

from gingham.datastore.base import AlreadyExists, Conflict, Datastore, NotFound
from gingham.model.workload import WorkloadEndpoint, workload_endpoint_name

KIND = "WorkloadEndpoint"


@dataclass(frozen=True)
class Attachment:
    container_id: str
    interface: str
    netns: str
    host_interface: str
    ips: tuple[IPv4Address, ...]
    host_mac: str
    pod_mac: str
    mtu: int
    pod_namespace: str = ""
    pod_name: str = ""
    pod_uid: str = ""
    # The revision of its WorkloadEndpoint as felix wrote or loaded it ("": none).
    endpoint_revision: str = ""
    # The name of that record as written or loaded ("": felix's current naming).
    endpoint_name: str = ""
    # (st_dev, st_ino) of `netns` when added: which namespace it was, whatever
    # path names it later (None: unknown, e.g. reloaded after a restart).
    netns_id: tuple[int, int] | None = None


def netns_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the namespace at `path`: the same for every path of it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def same_sandbox(known: Attachment, netns: str) -> bool | None:
    """Is `netns` the namespace `known` was attached in? None: felix cannot tell."""
    if not known.netns:
        return None
    if netns == known.netns and known.netns_id is None:
        return True
    found = netns_identity(netns)
    return found is not None and found == known.netns_id


def other_live_sandbox(known: Attachment, netns: str) -> bool:
    """`netns` is not `known`'s namespace, and `known`'s still exists."""
    return same_sandbox(known, netns) is False and sandbox_alive(known)


def sandbox_alive(known: Attachment) -> bool:
    """Does `known`'s namespace still exist (its path names the same namespace)?"""
    found = netns_identity(known.netns)
    return found is not None and (known.netns_id is None or found == known.netns_id)


class EndpointRecords:
    def __init__(self, datastore: Datastore | None, node: str) -> None:
        self.datastore, self.node = datastore, node

    def name_for(self, a: Attachment) -> str:
        """The record's name: the one it was loaded under, else the current naming."""
        if a.endpoint_name:
            return a.endpoint_name
        if a.pod_name:
            return workload_endpoint_name(
                self.node, a.container_id, a.interface, orchestrator="k8s",
                namespace=a.pod_namespace, pod=a.pod_name,
            )  # fmt: skip
        return workload_endpoint_name(self.node, a.container_id, a.interface)

    async def record(self, a: Attachment) -> str:
        """Write the attachment's WorkloadEndpoint; its revision ("" without a datastore)."""
        if self.datastore is None:
            return ""
        doc = {
            "apiVersion": "gingham.io/v1",
            "kind": KIND,
            "metadata": {"name": self.name_for(a)},
            # Python field names (the models accept them as well as camelCase).
            "spec": {
                "node": self.node,
                "orchestrator": "k8s" if a.pod_name else "cni",
                "namespace": a.pod_namespace,
                "pod": a.pod_name,
                "container_id": a.container_id,
                "endpoint": a.interface,
                "interface_name": a.host_interface,
                "ip_networks": [f"{ip}/32" for ip in a.ips],
                "mac": a.pod_mac,
            },
        }
        obj = WorkloadEndpoint.model_validate(doc)
        try:
            stored = await self.datastore.create(obj)
        except AlreadyExists:
            # This attachment's own record, left by an earlier add: rewrite it.
            current = await self.datastore.get(KIND, obj.name)
            stored = await self.datastore.update(obj.with_revision(current.resource_version))
        return stored.resource_version or ""

    async def forget(self, container_id: str, interface: str, known: Attachment | None) -> None:
        """Remove the attachment's record(s); `known` is felix's own view of it, if any."""
        if self.datastore is None:
            return
        if known is not None and known.endpoint_revision:
            with contextlib.suppress(NotFound, Conflict):
                await self.datastore.delete(KIND, self.name_for(known), known.endpoint_revision)
            return
        for wep in await self.this_node():
            spec = wep.spec
            if spec.container_id == container_id and spec.endpoint == interface:
                with contextlib.suppress(NotFound, Conflict):
                    await self.datastore.delete(KIND, wep.name, wep.resource_version)

    async def this_node(self) -> list[WorkloadEndpoint]:
        """Every WorkloadEndpoint of this node (none without a datastore)."""
        if self.datastore is None:
            return []
        listing = await self.datastore.list(KIND)
        return [
            w for w in listing.items if isinstance(w, WorkloadEndpoint) and w.spec.node == self.node
        ]
