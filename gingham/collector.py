"""The cyclic garbage collector's thresholds for the daemons that hold route tables.

felix, gingham-bgp and gingham-rr each build tens of thousands of long-lived
objects in a burst (a full table: prefixes, routes, per-peer tables). With
Python's default threshold (a young collection every 700 allocations) the
collector ran every few hundred routes and, every tenth and hundredth time,
walked the growing older generations again: 10-20 % of felix's 100,000-route
snapshot (bench/routes.py), and in gingham-bgp on a route reflector the
largest single line of its profile while 95,000 reflected routes went by
(bench/rr.py). Their state has no reference cycles to speak of; memory is
not at stake.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Collect the young generation every 50,000 allocations instead of 700."""
    gc.set_threshold(50_000, 20, 100)
