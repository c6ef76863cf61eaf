"""Registering this node in Kubernetes mode: our Node resource follows the
core Node (name from the downward API, labels) and the detected BGP address.

How the two Nodes merge: the core Node (``/api/v1/nodes``, read-only for us)
is the source of the node's name and labels; `podCIDR` is ignored because
Gingham's IPAM is authoritative. Our ``nodes.gingham.io`` object holds what
Kubernetes has no field for (BGP address, AS number, route-reflector cluster
id, VXLAN tunnel endpoint). `register_node` copies the core labels onto our
Node so pool and peer selectors evaluate on the datastore alone, and sets the
BGP address; fields an operator set (asNumber, routeReflectorClusterID, vxlan)
are kept. Idempotent: an up-to-date Node is not rewritten. Lost CAS races are
retried, so concurrent registrations of one node converge.
"""

from __future__ import annotations

import ipaddress

from gingham.datastore.base import AlreadyExists, Conflict, Datastore, NotFound
from gingham.model.base import Metadata
from gingham.model.bgp import Node, NodeBGPSpec, NodeSpec


async def register_node(
    store: Datastore,
    name: str,
    address: ipaddress.IPv4Interface,
    labels: dict[str, str] | None = None,
) -> Node:
    """Create or update our Node `name` with `address` (and `labels`, when given)."""
    while True:
        try:
            current = await store.get(Node.kind, name)
        except NotFound:
            fresh = Node(
                metadata=Metadata(name=name, labels=dict(labels or {})),
                spec=NodeSpec(bgp=NodeBGPSpec(ipv4_address=address)),
            )
            try:
                created = await store.create(fresh)
            except AlreadyExists:
                continue  # registered concurrently: update that one
            assert isinstance(created, Node)
            return created
        assert isinstance(current, Node)
        bgp = current.spec.bgp
        same_address = bgp is not None and bgp.ipv4_address == address
        same_labels = labels is None or current.metadata.labels == labels
        if same_address and same_labels:
            return current
        new_bgp = (
            bgp.model_copy(update={"ipv4_address": address})
            if bgp is not None
            else NodeBGPSpec(ipv4_address=address)
        )
        metadata = current.metadata
        if labels is not None:
            metadata = metadata.model_copy(update={"labels": dict(labels)})
        updated = current.model_copy(
            update={"metadata": metadata, "spec": current.spec.model_copy(update={"bgp": new_bgp})}
        )
        try:
            written = await store.update(updated)
        except Conflict:
            continue
        assert isinstance(written, Node)
        return written
