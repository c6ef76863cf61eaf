"""What the `gingham-node` service account may do: least privilege, derived.

`NODE_ACCESS` says which datastore operations the node agent (felix, the CNI
plugin's IPAM, the BGP speaker, node registration) performs on each kind;
`required_rules` turns that into (API group, resource, verb) triples through
the backend's `OPERATION_VERBS`. manifests/rbac.yaml is written by hand for
reading, and tests/unit/k8s/test_rbac_fake.py checks it equals
`required_rules()` exactly (no wildcards, nothing missing, nothing extra).

Invariants: every kind of the model has an entry (a new kind forces a
decision); nothing here grants access to core objects beyond listing Nodes
(addresses and labels for auto-detection; `podCIDR` is ignored).
"""

from __future__ import annotations

from gingham.datastore.kubernetes import CORE_NODE_VERBS, GROUP, OPERATION_VERBS

READ = ("get", "list", "watch")
WRITE = (*READ, "create", "update", "delete")

NODE_ACCESS: dict[str, tuple[str, ...]] = {
    # Configuration the node follows; written by an operator (kubectl / gingham CLI).
    "IPPool": READ,
    "BGPConfiguration": READ,
    "BGPPeer": READ,
    "IPAMConfiguration": READ,
    # The node registers and refreshes its own Node (BGP address, VTEP), and deletes
    # the record of a node whose core Node was deleted (gingham.ipam.departed, as
    # Calico's kube-controllers do).
    "Node": (*READ, "create", "update", "delete"),
    # IPAM on pod ADD/DEL: blocks are claimed, borrowed from and released.
    "IPAMBlock": WRITE,
    "BlockAffinity": WRITE,
    "IPAMHandle": WRITE,
    # One per pod interface, written on ADD and removed on DEL.
    "WorkloadEndpoint": WRITE,
}


def required_rules() -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) the node agent needs."""
    from gingham.model.base import KINDS

    rules = {("", "nodes", verb) for verb in CORE_NODE_VERBS}
    for kind, operations in NODE_ACCESS.items():
        plural = KINDS[kind].plural.lower()
        for operation in operations:
            rules |= {(GROUP, plural, verb) for verb in OPERATION_VERBS[operation]}
    return rules
