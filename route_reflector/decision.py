"""The BGP decision process, as far as an iBGP route reflector needs it.

`best_path(paths)` picks one path per prefix, following RFC 4271 §9.1.2.2
with the route reflection changes of RFC 4456 §9. Each step removes from
consideration the paths that lose it; the first step that leaves a single
path decides:

1. highest LOCAL_PREF (absent: 100, filled in by the adapter);
2. shortest AS_PATH;
3. lowest ORIGIN (IGP < EGP < INCOMPLETE);
4. MULTI_EXIT_DISC: among paths *from the same neighbouring AS* (the first
   AS of the AS_PATH; an empty AS_PATH is our own AS), those whose MED is
   higher than the lowest MED of that group drop out. Paths from different
   neighbouring ASes are not compared on MED: we do **not** do
   "always-compare-med" (RFC 4271's default, and BIRD's and FRR's). A missing
   MED counts as 0, the lowest (RFC 4271 §9.1.2.2 c);
5. (eBGP over iBGP and IGP cost to the next hop do not apply: every path is
   iBGP and the reflector does not resolve next hops);
6. lowest ORIGINATOR_ID, or the sending peer's router ID when the path has
   none (RFC 4456 §9);
7. shortest CLUSTER_LIST (RFC 4456 §9);
8. lowest peer address.

Invariants:
- Pure and deterministic: the result depends on the set of paths, never on
  their order (step 4 is applied as RFC 4271 describes it — a filter over the
  whole set — so MED's lack of transitivity cannot make the result depend on
  comparison order).
- Step 8 always decides, because one peer gives at most one path per prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

from route_reflector.rib import Path

# The neighbouring AS of a path with an empty AS_PATH: our own AS (any key
# that no real AS number uses will do).
_LOCAL_AS = -1


def neighbour_as(path: Path) -> int:
    """RFC 4271 §9.1.2.2: the AS the path was learned from, for MED grouping."""
    as_path = path.attributes.as_path
    return as_path[0] if as_path else _LOCAL_AS


def _keep_min(paths: list[Path], key: Callable[[Path], int | IPv4Address]) -> list[Path]:
    keys = [key(p) for p in paths]
    lowest = min(keys)
    return [p for p, k in zip(paths, keys, strict=True) if k == lowest]


def _med(path: Path) -> int:
    med = path.attributes.med
    return 0 if med is None else med


def _keep_lowest_med_per_neighbour_as(paths: list[Path]) -> list[Path]:
    lowest: dict[int, int] = {}
    for path in paths:
        asn = neighbour_as(path)
        lowest[asn] = min(lowest.get(asn, _med(path)), _med(path))
    return [p for p in paths if _med(p) == lowest[neighbour_as(p)]]


# Each step keeps the paths that survive it; applied in order.
_STEPS: tuple[Callable[[list[Path]], list[Path]], ...] = (
    lambda ps: _keep_min(ps, lambda p: -p.attributes.local_pref),
    lambda ps: _keep_min(ps, lambda p: len(p.attributes.as_path)),
    lambda ps: _keep_min(ps, lambda p: int(p.attributes.origin)),
    _keep_lowest_med_per_neighbour_as,
    lambda ps: _keep_min(ps, lambda p: p.originator),
    lambda ps: _keep_min(ps, lambda p: len(p.attributes.cluster_list)),
    lambda ps: _keep_min(ps, lambda p: p.peer.address),
)


def best_path(paths: Iterable[Path]) -> Path | None:
    """The best of `paths` (all for the same prefix), or None when there are none."""
    remaining = list(paths)
    if not remaining:
        return None
    for step in _STEPS:
        if len(remaining) == 1:
            break
        remaining = step(remaining)
    return remaining[0]
