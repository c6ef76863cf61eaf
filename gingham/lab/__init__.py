"""`gingham lab`: whole fabrics on one machine (network namespaces, or QEMU guests in `vm`).

- `topology`: the pure plan (namespaces, links, addresses, datastore resources).
- `backend`: `LabBackend`, what every kind of lab offers (up, wait, status,
  ping, exec), and `LabError`, `Matrix`.
- `backends`: the namespace and VM backends, and `backend_for`, the one place
  that chooses between them.
- `tor`: FRR (default) or BIRD configuration of the ToRs for ``--topology racks``.
- `build`: the namespace lab's `up` / `wait_converged`, the adapter that applies
  a plan; `tor_commands` and `cni_chain` are reusable by other backends.
- `observe`: the namespace lab's felix health, the speakers' and ToRs' peers,
  routes, the ping matrix, `lab_status` (what ``lab status -o json`` prints).
- `teardown`: `down`, which removes any lab from its record.
- `graph`: the picture (`build_scene` is pure; SVG by hand, PNG with Pillow).
- `state`: the record of what a lab made, under ``/var/run/gingham/labs/<name>/``
  (``$GINGHAM_LAB_ROOT`` overrides).
- `vm`: QEMU guests as nodes (``lab up --vm``).

Imports go one way: `backends` → `build`, `observe`, `vm.lab` → `backend`,
`teardown`, `state`, `topology`; nothing below `backends` imports it.

From Python (the benchmarks do this)::

    options = LabOptions(name="b", nodes=20, topology="rr")
    backend = backends.backend_for(options)
    state = backend.up(options, progress=print, wait=120)
    backend.wait_converged(state, progress=print, wait=120)
    ...
    teardown.down("b", progress=print)
"""
