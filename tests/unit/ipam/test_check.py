"""ipam check's pure decision: what is leaked or stale, given the state."""

from __future__ import annotations

import ipaddress

from gingham.ipam import blocks as core
from gingham.ipam.check import find_problems
from gingham.model.base import Metadata
from gingham.model.ipam import (
    AffinityState,
    BlockAffinity,
    BlockAffinitySpec,
    IPAMBlock,
    IPAMHandle,
    IPAMHandleSpec,
    affinity_name,
    block_name,
)

B1 = ipaddress.IPv4Network("10.0.0.0/30")
B2 = ipaddress.IPv4Network("10.0.0.4/30")


def block(cidr: ipaddress.IPv4Network, node: str | None, *held: tuple[str, str]) -> IPAMBlock:
    spec = core.empty_block(cidr, node)
    for handle, holder in held:
        spec, _ = core.allocate(spec, 1, handle, {"node": holder})
    return IPAMBlock(metadata=Metadata(name=block_name(cidr)), spec=spec)


def affinity(node: str, cidr: ipaddress.IPv4Network, state: AffinityState) -> BlockAffinity:
    return BlockAffinity(
        metadata=Metadata(name=affinity_name(node, cidr)),
        spec=BlockAffinitySpec(node=node, cidr=cidr, state=state),
    )


def handle(handle_id: str, **counts: int) -> IPAMHandle:
    return IPAMHandle(
        metadata=Metadata(name=handle_id),
        spec=IPAMHandleSpec(handle_id=handle_id, block={str(B1): n for n in counts.values()}),
    )


CONFIRMED = AffinityState.CONFIRMED


def test_consistent_state_is_clean() -> None:
    report = find_problems(
        [block(B1, "a", ("pod.eth0", "a"), ("ipip-tunnel-addr-a", "a"))],
        [affinity("a", B1, CONFIRMED)],
        [handle("pod.eth0", b=1), handle("ipip-tunnel-addr-a", b=1)],
        nodes={"a"},
        live_handles={"pod.eth0"},
    )
    assert report.clean, report.lines()


def test_leaks_orphans_and_stale_claims() -> None:
    report = find_problems(
        [
            block(B1, "a", ("dead.eth0", "a"), ("ipip-tunnel-addr-gone", "a")),
            block(B2, "gone", ("x", "gone")),
        ],
        [
            affinity("a", B1, AffinityState.PENDING),  # block is a's: confirm
            affinity("b", B1, AffinityState.PENDING),  # lost claim: delete
            affinity("gone", B2, CONFIRMED),  # node gone: delete
        ],
        [handle("ghost", b=1)],
        nodes={"a", "b"},
        live_handles=set(),
    )
    assert {(x.handle, x.reason) for x in report.leaked} == {
        ("dead.eth0", "no live workload has this handle"),
        ("ipip-tunnel-addr-gone", "no live workload has this handle"),
        ("x", "node 'gone' does not exist"),
    }
    assert report.orphan_blocks == [(B2, "gone")]
    assert {(a.name, a.action) for a in report.affinities} == {
        (affinity_name("a", B1), "confirm"),
        (affinity_name("b", B1), "delete"),
        (affinity_name("gone", B2), "delete"),
    }
    assert report.stale_handles == ["ghost"]


def test_missing_affinity_is_recreated() -> None:
    report = find_problems([block(B1, "a")], [], [], nodes={"a"}, live_handles=set())
    assert [(a.name, a.action) for a in report.affinities] == [(affinity_name("a", B1), "create")]
