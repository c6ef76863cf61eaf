"""How the daemons that hold route tables manage memory: the cyclic garbage
collector's thresholds, and where the C library puts large blocks.

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

import ctypes
import gc

# mallopt(3)'s parameter for the size from which malloc maps a block of its own.
M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 128 * 1024


def tune_gc() -> None:
    """Collect the young generation every 50,000 allocations instead of 700."""
    gc.set_threshold(50_000, 20, 100)


def return_large_blocks() -> bool:
    """Have malloc map every block of `LARGE_BLOCK` or more on its own, so that
    freeing it returns it to the system (mallopt M_MMAP_THRESHOLD).

    glibc starts at that size but raises the threshold by itself, up to 32 MiB,
    each time such a block is freed: after that, the tables a full route table
    makes and drops (dicts and sets of 100,000 entries, a few MiB each) come
    from the heap, and the holes they leave when freed stay in the process's
    peak. Setting the threshold turns that adjustment off. False where the C
    library does not take the setting.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))
