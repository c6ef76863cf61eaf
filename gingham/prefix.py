"""IPv4 prefixes built and hashed fast, for code that handles them by the 100,000.

`parse_prefix` / `prefix_of` give an `IPv4Network` (a subclass of it: equal
to, and hashing like, the plain one, so the two mix in one dict) that is made
without ipaddress's parser and hashes once; `prefix_ints` reads one back as
integers. felix's route feed and desired state, its netlink encoder, and the
speaker's side of the route reflector feed use them: a full table is parsed,
hashed and compared there per prefix.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv4Network


class _Prefix(IPv4Network):
    """An `IPv4Network` that computes its hash once and holds only two ints.

    A learned prefix is hashed about a dozen times on its way to the kernel
    (feed table, by-prefix groups, change sets, desired and programmed state);
    `IPv4Network.__hash__` converts both addresses to int each time, which was
    the largest single cost of a 100,000-route snapshot. Equal to, and hashing
    like, the `IPv4Network` of the same prefix, so the two mix in one dict.

    felix holds one per route of a full table: the network address, netmask
    and length are read from `_key` when asked for (an IPv4Network keeps all
    three in an instance dict: ~150 bytes more per prefix).
    """

    __slots__ = ("_hash", "_key", "_text")
    _hash: int
    _key: int  # address << 6 | length: one int compare decides equality
    _text: str  # str(self), made on first use (the reflector prints each prefix per peer)

    def __init__(self, address: object, strict: bool = True) -> None:
        # IPv4Network's methods that make networks (supernet, subnets...) call the class.
        plain = IPv4Network(address, strict)
        self._key = int(plain.network_address) << 6 | plain.prefixlen
        self._hash = hash(plain)

    @property
    def network_address(self) -> IPv4Address:  # type: ignore[override]
        address = object.__new__(IPv4Address)  # (its constructor re-checks the range)
        address._ip = self._key >> 6  # type: ignore[attr-defined]
        return address

    @property
    def netmask(self) -> IPv4Address:  # type: ignore[override]
        return _MASK_ADDRESSES[self._key & 63]

    @property
    def _prefixlen(self) -> int:  # IPv4Network's own name (typeshed omits it)
        return self._key & 63

    def __reduce__(self) -> tuple[object, tuple[int, int]]:
        # (IPv4Network's re-parses the text into the instance: these attributes are read-only)
        return prefix_of, (self._key >> 6, self._key & 63)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # A withdrawal parses its prefix anew: looking it up compares two objects.
        if other.__class__ is _Prefix:
            return self._key == other._key
        return IPv4Network.__eq__(self, other)

    def __str__(self) -> str:
        try:
            return self._text
        except AttributeError:
            key = self._key
            text = self._text = f"{_ntoa((key >> 6).to_bytes(4, 'big'))}/{key & 63}"
            return text

    def __repr__(self) -> str:
        return f"IPv4Network({str(self)!r})"


_ntoa = socket.inet_ntoa

# prefix length → netmask as an int, and as an address.
MASKS = [(0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF for n in range(33)]
_MASK_ADDRESSES = [IPv4Address(bits) for bits in MASKS]


def prefix_of(address: int, length: int) -> IPv4Network:
    """`IPv4Network((address, length))` (strict), built without its parser.

    For 100,000 prefixes the parser's checks and the two int conversions per
    hash cost more than everything else felix does per route. /31 and /32
    (whose `hosts` the constructor special-cases) and anything invalid go
    through `IPv4Network` itself, which also words the error.
    """
    if not 0 <= length <= 30:
        return IPv4Network((address, length))
    bits = MASKS[length]
    if not 0 <= address <= 0xFFFFFFFF or address & bits != address:
        return IPv4Network((address, length))
    net = object.__new__(_Prefix)
    net._hash = hash(address ^ bits)  # IPv4Network.__hash__'s formula
    net._key = address << 6 | length
    return net


def prefix_ints(prefix: IPv4Network) -> tuple[int, int]:
    """(network address, prefix length) of `prefix`, as ints."""
    if prefix.__class__ is _Prefix:
        key: int = prefix._key
        return key >> 6, key & 63
    return int(prefix.network_address), prefix.prefixlen


def prefix_order(prefix: IPv4Network) -> int:
    """A sort key: by network address, then prefix length (`IPv4Network`'s order)."""
    if prefix.__class__ is _Prefix:
        return prefix._key
    return int(prefix.network_address) << 6 | prefix.prefixlen


def parse_prefix(text: str) -> IPv4Network:
    """`IPv4Network(text)` (strict: no host bits), several times as fast.

    The feed parses one prefix per route update, 100,000 for a full table.
    """
    address, slash, length = text.partition("/")
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
    except OSError:
        return IPv4Network(text)  # let ipaddress word the error
    if not slash or not length.isdigit() or len(length) > 2:
        return IPv4Network(text)
    bits = int(length)
    if bits > 32:
        return IPv4Network(text)
    return prefix_of(int.from_bytes(packed, "big"), bits)
