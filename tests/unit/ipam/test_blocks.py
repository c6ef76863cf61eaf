"""The pure block logic: arithmetic, allocation order, release, invariants."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gingham.ipam import blocks as core
from gingham.model.ipam import IPAMBlock, IPAMBlockSpec, affinity_name, block_name, handle_name

V4 = ipaddress.IPv4Network
ip = ipaddress.ip_address


def test_pool_is_cut_into_aligned_blocks_in_order() -> None:
    got = list(core.blocks_of_pool(V4("10.0.0.0/28"), 30))
    assert got == [V4(f"10.0.0.{n}/30") for n in (0, 4, 8, 12)]


def test_first_and_last_address_of_a_block_are_usable() -> None:
    spec = core.empty_block(V4("10.0.0.0/30"), "n1")
    spec, got = core.allocate(spec, 4, "h", {"node": "n1"})
    assert got == [ip("10.0.0.0"), ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]
    assert core.free_count(spec) == 0


def test_ordinal_and_address_are_inverse_and_bounded() -> None:
    block = V4("10.1.2.64/26")
    for ordinal in (0, 1, 63):
        assert core.ordinal_of(block, core.address_of(block, ordinal)) == ordinal
    with pytest.raises(core.AddressOutsideBlock):
        core.address_of(block, 64)
    with pytest.raises(core.AddressOutsideBlock):
        core.ordinal_of(block, ip("10.1.2.128"))


def test_block_containing_an_address() -> None:
    assert core.block_containing(V4("10.0.0.0/16"), 26, ip("10.0.1.70")) == V4("10.0.1.64/26")
    with pytest.raises(ValueError):
        core.block_containing(V4("10.0.0.0/16"), 26, ip("10.1.0.1"))


def test_released_addresses_are_reused_last() -> None:
    spec = core.empty_block(V4("10.0.0.0/29"), "n1")
    spec, first = core.allocate(spec, 2, "a", {"node": "n1"})
    spec, _ = core.release_handle(spec, "a")
    spec, again = core.allocate(spec, 1, "b", {"node": "n1"})
    assert again == [ip("10.0.0.2")]  # not the just-released .0
    assert first[0] not in again


def test_specific_address_taken_names_the_holder() -> None:
    spec = core.empty_block(V4("10.0.0.0/30"), "n1")
    spec = core.allocate_address(spec, ip("10.0.0.2"), "pod-a.eth0", {"node": "n1"})
    with pytest.raises(core.AddressInUse, match=r"10\.0\.0\.2 .*pod-a\.eth0"):
        core.allocate_address(spec, ip("10.0.0.2"), "pod-b.eth0", {"node": "n1"})
    spec, got = core.allocate(spec, 4, "c", {"node": "n1"})
    assert ip("10.0.0.2") not in got and len(got) == 3


def test_release_addresses_reports_what_each_handle_lost() -> None:
    spec = core.empty_block(V4("10.0.0.0/29"), "n1")
    spec, a = core.allocate(spec, 2, "a", {"node": "n1"})
    spec, b = core.allocate(spec, 1, "b", {"node": "n2"})
    spec, lost = core.release_addresses(spec, [a[1], b[0], ip("10.0.0.7")])
    assert lost == {"a": 1, "b": 1}
    assert [x.address for x in core.allocations(spec)] == [a[0]]
    assert len(spec.attributes) == 1  # b's entry is gone


def test_borrowed_is_held_by_a_node_other_than_the_host() -> None:
    spec = core.empty_block(V4("10.0.0.0/30"), "n1")
    spec, _ = core.allocate(spec, 1, "mine", {"node": "n1"})
    spec, _ = core.allocate(spec, 1, "theirs", {"node": "n2"})
    borrowed = [a.handle_id for a in core.allocations(spec) if core.is_borrowed(spec, a)]
    assert borrowed == ["theirs"]


def test_block_validator_refuses_an_inconsistent_block() -> None:
    with pytest.raises(ValueError, match="both allocated and free"):
        IPAMBlockSpec(
            cidr=V4("10.0.0.0/31"),
            allocations=[0, None],
            unallocated=[0, 1],
            attributes=[{"handle_id": "h"}],
        )


def test_names() -> None:
    assert block_name(V4("10.0.0.0/26")) == "10-0-0-0-26"
    assert affinity_name("node-1", V4("10.0.0.64/26")) == "node-1-10-0-0-64-26"
    assert handle_name("abc.eth0") == "abc.eth0"
    odd = handle_name("K8S_pod/x")
    assert odd != handle_name("k8s_pod/x") and odd.startswith("k8s-pod-x-")


# One step of a random workload: allocate n for a handle, or release a handle.
steps = st.lists(
    st.tuples(st.sampled_from(["alloc", "release"]), st.integers(0, 5), st.integers(1, 6)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_random_workload_keeps_every_invariant(ops: list[tuple[str, int, int]]) -> None:
    cidr = V4("10.0.0.0/28")
    spec = core.empty_block(cidr, "n1")
    held: dict[str, set[ipaddress.IPv4Address | ipaddress.IPv6Address]] = {}
    for op, who, n in ops:
        handle = f"h{who}"
        if op == "alloc":
            before = core.free_count(spec)
            spec, got = core.allocate(spec, n, handle, {"node": f"n{who % 2}"})
            assert len(got) == min(n, before)
            for address in got:
                assert address in cidr
                assert all(address not in s for s in held.values())  # never twice
            held.setdefault(handle, set()).update(got)
        else:
            spec, freed = core.release_handle(spec, handle)
            assert set(freed) == held.pop(handle, set())
        # Round-trips through the stored document and revalidates.
        block = IPAMBlock(metadata={"name": block_name(cidr)}, spec=spec)
        again = IPAMBlock.model_validate(block.to_document())
        assert again.spec == spec
        assert core.free_count(spec) == 16 - sum(len(s) for s in held.values())
        owners = {a.address: a.handle_id for a in core.allocations(spec)}
        assert owners == {a: h for h, s in held.items() for a in s}
