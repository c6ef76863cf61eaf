"""`gingham lab`: whole fabrics on one machine (network namespaces, or QEMU guests in `vm`).

- `topology`: the pure plan (namespaces, links, addresses, datastore resources).
- `tor`: FRR (default) or BIRD configuration of the ToRs for ``--topology racks``.
- `build`: `up` / `wait_converged` / `down`, the adapter that applies a plan and
  undoes exactly it; `tor_commands` and `cni_chain` are reusable by other backends.
- `observe`: felix health, the speakers' and ToRs' peers, routes, the ping matrix,
  `lab_status` (what ``lab status -o json`` prints).
- `graph`: the picture (`build_scene` is pure; SVG by hand, PNG with Pillow).
- `state`: the record of what a lab made, under ``/var/run/gingham/labs/<name>/``
  (``$GINGHAM_LAB_ROOT`` overrides).

From Python (the benchmarks do this)::

    state = build.up(LabOptions(name="b", nodes=20, topology="rr"), progress=print)
    build.wait_converged(state, progress=print, wait=120)
    ...
    build.down("b", progress=print)
"""
