"""`parse_prefix` / `prefix_of`: the feed's fast prefixes behave exactly like `IPv4Network`."""

from __future__ import annotations

import copy
import pickle
from ipaddress import IPv4Address, IPv4Network
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from felix.desired import PoolInfo, pool_for
from gingham.prefix import parse_prefix, prefix_of

prefixes = st.builds(
    lambda address, length: IPv4Network((address, length), strict=False),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 32),
)


@given(prefixes)
def test_a_parsed_prefix_is_the_ipaddress_network(net: IPv4Network) -> None:
    fast = parse_prefix(str(net))
    assert fast == net and net == fast and (fast != net) is False
    assert hash(fast) == hash(net)
    assert {net: "x"}[fast] == "x" and {fast: "y"}[net] == "y"
    assert str(fast) == str(net) and repr(fast) == repr(net)
    assert (fast.network_address, fast.netmask, fast.prefixlen) == (
        net.network_address,
        net.netmask,
        net.prefixlen,
    )
    assert fast.broadcast_address == net.broadcast_address
    assert fast.hostmask == net.hostmask
    assert fast.num_addresses == net.num_addresses
    assert list(islice(fast.hosts(), 3)) == list(islice(net.hosts(), 3))
    assert fast.network_address in fast
    assert fast.subnet_of(IPv4Network("0.0.0.0/0"))
    assert sorted([fast, IPv4Network("128.0.0.0/1")]) == sorted([net, IPv4Network("128.0.0.0/1")])
    assert prefix_of(int(net.network_address), net.prefixlen) == net


@given(prefixes)
def test_networks_made_from_a_parsed_prefix_are_the_same_as_ipaddress_makes(
    net: IPv4Network,
) -> None:
    # It keeps only ints: what ipaddress makes from it (by calling its class),
    # copies and pickles must still be the same networks.
    fast = parse_prefix(str(net))
    if net.prefixlen:
        assert fast.supernet() == net.supernet() and hash(fast.supernet()) == hash(net.supernet())
    if net.prefixlen < 32:
        assert list(fast.subnets()) == list(net.subnets())
        assert list(fast.address_exclude(next(net.subnets()))) == list(
            net.address_exclude(next(net.subnets()))
        )
    for copied in (copy.copy(fast), copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        assert copied == net and hash(copied) == hash(net) and str(copied) == str(net)


@pytest.mark.parametrize(
    "text", ["10.1.2.1/26", "10.1.2.0/33", "10.1.2.0/-1", "10.1.2/24", "x/8", "10.1.2.0/", ""]
)
def test_a_bad_prefix_fails_like_ipaddress(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        parse_prefix(text)
    with pytest.raises(ValueError) as theirs:
        IPv4Network(text)
    assert str(ours.value) == str(theirs.value)


def test_out_of_range_integers_fail_like_ipaddress() -> None:
    for address, length in ((1 << 32, 8), (-1, 8), (0x0A000001, 8), (0, 40)):
        with pytest.raises(ValueError):
            prefix_of(address, length)
    assert prefix_of(0x0A000001, 32) == IPv4Network("10.0.0.1/32")
    assert list(prefix_of(0x0A000000, 31).hosts()) == [
        IPv4Address("10.0.0.0"),
        IPv4Address("10.0.0.1"),
    ]


@given(prefixes, st.lists(prefixes, max_size=6))
def test_pool_for_is_the_most_specific_pool_holding_the_prefix(
    net: IPv4Network, cidrs: list[IPv4Network]
) -> None:
    pools = [PoolInfo(cidr) for cidr in cidrs]
    holding = [p for p in pools if net.subnet_of(p.cidr)]
    found = pool_for(parse_prefix(str(net)), pools)
    if not holding:
        assert found is None
    else:
        assert found is not None and found.cidr.prefixlen == max(p.cidr.prefixlen for p in holding)
        assert net.subnet_of(found.cidr)
