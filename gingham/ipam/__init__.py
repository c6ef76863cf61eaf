"""IPAM: per-node address blocks with affinity, borrowing and leak repair."""
