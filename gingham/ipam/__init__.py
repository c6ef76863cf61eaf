"""IPAM: per-node address blocks with affinity, borrowing and leak repair.

`IPAM` (gingham.ipam.allocator) assigns and releases; gingham.ipam.query
answers "which blocks are this node's" and "which addresses did it borrow";
gingham.ipam.check finds and repairs leaks. Errors are in gingham.ipam.errors.
"""

from __future__ import annotations

from gingham.ipam.allocator import IPAM, ipip_tunnel_handle, vxlan_tunnel_handle
from gingham.ipam.errors import (
    AddressInUse,
    BlockNotReleasable,
    ConflictRetriesExceeded,
    InvalidRequest,
    IPAMError,
    IPAMUnavailable,
    PoolExhausted,
)
from gingham.ipam.query import allocations, blocks_for_node, borrowed_ips

__all__ = [
    "IPAM",
    "AddressInUse",
    "BlockNotReleasable",
    "ConflictRetriesExceeded",
    "IPAMError",
    "IPAMUnavailable",
    "InvalidRequest",
    "PoolExhausted",
    "allocations",
    "blocks_for_node",
    "borrowed_ips",
    "ipip_tunnel_handle",
    "vxlan_tunnel_handle",
]
