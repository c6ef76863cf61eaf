"""The errors IPAM raises, typed so callers map them without parsing text.

felix maps them to CNI codes: `IPAMUnavailable` (and its subclass
`ConflictRetriesExceeded`) is "try again later" (CNI code 11); `PoolExhausted`
and `AddressInUse` mean no address can be given; `InvalidRequest` is the
caller's mistake.
"""

from __future__ import annotations

from gingham.ipam.blocks import AddressInUse as _AddressInUse


class IPAMError(Exception):
    """Base of every IPAM failure; the message names the object and the reason."""


class IPAMUnavailable(IPAMError):
    """The datastore cannot be reached: nothing was decided, try again later."""


class ConflictRetriesExceeded(IPAMUnavailable):
    """Every attempt lost a compare-and-swap race; the store is too busy right now."""


class PoolExhausted(IPAMError):
    """No usable pool has a free address for this node (or strict affinity forbids
    borrowing one)."""


class AddressInUse(IPAMError, _AddressInUse):
    """A specific address was requested and someone else holds it."""


class InvalidRequest(IPAMError, ValueError):
    """The request itself is wrong (address outside every pool, unknown pool...)."""


class BlockNotReleasable(IPAMError):
    """release-block refused: the block is not this node's or still holds addresses."""
