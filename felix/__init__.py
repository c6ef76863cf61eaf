"""felix: the node dataplane agent, the only writer of kernel state on a node."""
