"""cni: the CNI plugin (spec 1.1.0), a thin gRPC client of the node's felix."""
