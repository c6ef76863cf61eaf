"""IPPool: defaults, every rule on a pool, and the messages users see."""

from __future__ import annotations

import ipaddress

import pytest

from gingham.model import EncapsulationMode, IPPool, parse_resource
from tests.unit.model.helpers import document, errors_of, round_trips


def test_minimal_pool_gets_calico_defaults() -> None:
    pool = parse_resource(document("IPPool", "default-pool", {"cidr": "10.244.0.0/16"}))
    assert isinstance(pool, IPPool)
    assert pool.spec.cidr == ipaddress.ip_network("10.244.0.0/16")
    assert pool.spec.block_size == 26
    assert pool.spec.ipip_mode is EncapsulationMode.NEVER
    assert pool.spec.vxlan_mode is EncapsulationMode.NEVER
    assert pool.spec.nat_outgoing is False
    assert pool.spec.disabled is False
    assert pool.spec.node_selector == "all()"
    assert pool.selects_node({})
    assert round_trips(pool)


def test_full_pool_round_trips_in_calico_field_names() -> None:
    spec = {
        "cidr": "192.168.0.0/20",
        "blockSize": 28,
        "ipipMode": "CrossSubnet",
        "vxlanMode": "Never",
        "natOutgoing": True,
        "disabled": True,
        "nodeSelector": "zone == 'a'",
    }
    pool = parse_resource(document("IPPool", "p1", spec, labels={"tier": "gold"}))
    assert isinstance(pool, IPPool)
    assert pool.to_document() == {
        "apiVersion": "gingham.io/v1",
        "kind": "IPPool",
        "metadata": {"name": "p1", "labels": {"tier": "gold"}},
        "spec": spec,
    }
    assert pool.selects_node({"zone": "a"})
    assert not pool.selects_node({"zone": "b"})
    assert round_trips(pool)


def test_snake_case_input_is_accepted_too() -> None:
    pool = parse_resource(
        document("IPPool", "p", {"cidr": "10.0.0.0/16", "block_size": 24, "nat_outgoing": True})
    )
    assert isinstance(pool, IPPool)
    assert (pool.spec.block_size, pool.spec.nat_outgoing) == (24, True)


def test_ipv6_pool_defaults_to_122_blocks() -> None:
    pool = parse_resource(document("IPPool", "v6", {"cidr": "fd00:10::/64", "vxlanMode": "Always"}))
    assert isinstance(pool, IPPool)
    assert pool.spec.block_size == 122
    assert round_trips(pool)


def test_blank_node_selector_means_all() -> None:
    pool = parse_resource(document("IPPool", "p", {"cidr": "10.0.0.0/16", "nodeSelector": ""}))
    assert isinstance(pool, IPPool)
    assert pool.spec.node_selector == "all()"


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (
            {"cidr": "10.0.0.0/16", "blockSize": 33},
            ['IPPool "p1": spec.blockSize: 33 is outside 20..32'],
        ),
        (
            {"cidr": "10.0.0.0/16", "blockSize": 19},
            ['IPPool "p1": spec.blockSize: 19 is outside 20..32'],
        ),
        (
            {"cidr": "fd00::/64", "blockSize": 26},
            ['IPPool "p1": spec.blockSize: 26 is outside 116..128'],
        ),
        (
            {"cidr": "10.0.0.1/16"},
            [
                'IPPool "p1": spec.cidr: 10.0.0.1/16 is not a network address'
                " (it has host bits set): did you mean 10.0.0.0/16?"
            ],
        ),
        (
            {"cidr": "10.0.0.0/33"},
            [
                'IPPool "p1": spec.cidr: "10.0.0.0/33" is not a valid CIDR'
                " (expected e.g. 10.0.0.0/16)"
            ],
        ),
        (
            {"cidr": "10.0.0.0"},
            [
                'IPPool "p1": spec.cidr: "10.0.0.0" is not a CIDR: give a prefix length,'
                " e.g. 10.0.0.0/16"
            ],
        ),
        (
            {"cidr": "300.1.0.0/16"},
            [
                'IPPool "p1": spec.cidr: "300.1.0.0/16" is not a valid CIDR'
                " (expected e.g. 10.0.0.0/16)"
            ],
        ),
        (
            {"cidr": "10.0.0.0/28"},
            [
                'IPPool "p1": spec.blockSize: a block of /26 is larger than the pool'
                " 10.0.0.0/28: use a blockSize of 28 or more, or a larger cidr"
            ],
        ),
        (
            {"cidr": "10.0.0.0/16", "ipipMode": "Always", "vxlanMode": "CrossSubnet"},
            [
                'IPPool "p1": spec.vxlanMode: ipipMode (Always) and vxlanMode (CrossSubnet)'
                " cannot both be on: set one of them to Never"
            ],
        ),
        (
            {"cidr": "fd00::/64", "ipipMode": "CrossSubnet"},
            [
                'IPPool "p1": spec.ipipMode: IPIP carries IPv4 only: fd00::/64 is IPv6,'
                " set ipipMode: Never"
            ],
        ),
        (
            {"cidr": "10.0.0.0/16", "ipipMode": "always"},
            ['IPPool "p1": spec.ipipMode: "always" is not one of Never, Always, CrossSubnet'],
        ),
        (
            {"cidr": "10.0.0.0/16", "nodeSelector": "zone == a"},
            [
                'IPPool "p1": spec.nodeSelector: invalid selector "zone == a": at column 9:'
                ' expected a quoted value after ==, found "a"'
            ],
        ),
        (
            {"cidr": "10.0.0.0/16", "blockSize": "abc", "natOutgoing": "yes"},
            [
                'IPPool "p1": spec.blockSize: expected an integer, got "abc"',
                'IPPool "p1": spec.natOutgoing: expected true or false, got "yes"',
            ],
        ),
        (
            {"cidr": "10.0.0.0/16", "foo": 1, "blocksize": 24},
            [
                'IPPool "p1": spec.foo: unknown field',
                'IPPool "p1": spec.blocksize: unknown field (did you mean blockSize?)',
            ],
        ),
        ({}, ['IPPool "p1": spec.cidr: required']),
        (
            {"cidr": "nonsense", "blockSize": 40},
            [
                'IPPool "p1": spec.cidr: "nonsense" is not a valid CIDR'
                " (expected e.g. 10.0.0.0/16)",
                'IPPool "p1": spec.blockSize: 40 is outside 20..32 (IPv4) and 116..128 (IPv6)',
            ],
        ),
    ],
)
def test_invalid_pools_are_refused_with_exact_messages(
    spec: dict[str, object], errors: list[str]
) -> None:
    assert errors_of(document("IPPool", "p1", spec)) == errors


def test_missing_spec_is_reported() -> None:
    assert errors_of(document("IPPool", "p1")) == ['IPPool "p1": spec: required']
