"""`gingham lab`: whole fabrics on one machine (network namespaces, or QEMU guests in `vm`).

- `topology`: the pure plan (namespaces, links, addresses, datastore resources).
- `tor`: BIRD configuration of the ToR routers for ``--topology racks``.
- `build`: `up` / `down`, the adapter that applies a plan and undoes exactly it.
- `observe`: felix health, the speakers' peers, routes, the ping matrix.
- `state`: the record of what a lab made, under ``/var/run/gingham/labs/<name>/``
  (``$GINGHAM_LAB_ROOT`` overrides).
"""
