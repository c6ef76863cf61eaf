"""`Attachment` (one pod interface felix wired) and its WorkloadEndpoint record.

felix.workloads decides when attachments come and go; this module owns how
they are written to and found in the datastore, Calico's way: one
`WorkloadEndpoint` per attachment, named from the node, the orchestrator and
the pod (k8s) or the container ID (plain CNI), see
`gingham.model.workload.workload_endpoint_name`.

Invariants:
- A write returns the record's revision; the attachment keeps it, so removal
  is one compare-and-swap delete of exactly that record (no listing), and a
  newer sandbox's record that took the same name (Conflict) is never removed.
- Without a remembered revision (a repeated DEL, a record felix never saw
  written) removal lists this node's records and removes the ones of the
  (container ID, interface), each CAS on the revision it read.
- `EndpointRecords(None, node)` records nothing (felix without a datastore).
"""

from __future__ import annotations

import contextlib
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


class EndpointRecords:
    def __init__(self, datastore: Datastore | None, node: str) -> None:
        self.datastore, self.node = datastore, node

    def name_for(self, a: Attachment) -> str:
        if a.pod_name:
            return workload_endpoint_name(
                self.node, "k8s", a.pod_namespace, a.pod_name, a.interface
            )
        return workload_endpoint_name(self.node, "cni", "", a.container_id, a.interface)

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
            # A pod's new sandbox reuses the name: the newest attachment wins.
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
