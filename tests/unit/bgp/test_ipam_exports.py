"""What a node announces, from the cluster's IPAMBlocks: its affine blocks, a /32
per address it borrowed elsewhere, nothing once the affinity moves away."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from bird_agent.speaker import ClusterView, ipam_prefixes, plan_for
from gingham.ipam import blocks as core
from gingham.model.base import Metadata
from gingham.model.bgp import Node
from gingham.model.documents import load_documents
from gingham.model.ipam import IPAMBlock

NODES = """
apiVersion: gingham.io/v1
kind: Node
metadata: {name: n1}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
apiVersion: gingham.io/v1
kind: Node
metadata: {name: n2}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
"""

B1 = IPv4Network("10.65.1.0/26")
B2 = IPv4Network("10.65.2.0/26")


def block(cidr: IPv4Network, host: str | None, held_by: dict[str, int] | None = None) -> IPAMBlock:
    spec = core.empty_block(cidr, host)
    for node, count in (held_by or {}).items():
        spec, _ = core.allocate(spec, count, f"h-{node}", {"node": node})
    name = str(cidr).replace(".", "-").replace("/", "-")
    return IPAMBlock(metadata=Metadata(name=name), spec=spec)


def cluster(*blocks: IPAMBlock) -> ClusterView:
    view = ClusterView()
    for obj in [*load_documents(NODES), *blocks]:
        view.objects[obj.kind][obj.name] = obj
    return view


def test_affine_blocks_and_borrowed_addresses() -> None:
    blocks = [block(B1, "n1", {"n1": 2}), block(B2, "n2", {"n2": 1, "n1": 2})]
    own, borrowed = ipam_prefixes("n1", blocks)
    assert own == [B1]
    # n2 held the first address of B2; n1 borrowed the next two.
    assert borrowed == [IPv4Address("10.65.2.1"), IPv4Address("10.65.2.2")]


def test_plan_announces_from_ipam_with_the_node_address_as_next_hop() -> None:
    plan = plan_for("n1", cluster(block(B1, "n1"), block(B2, "n2", {"n2": 1, "n1": 1})))
    hop = IPv4Address("10.0.0.1")
    assert plan.exports == {B1: hop, IPv4Network("10.65.2.1/32"): hop}


def test_affinity_moved_away_is_withdrawn() -> None:
    assert plan_for("n1", cluster(block(B1, "n1"))).exports
    assert plan_for("n1", cluster(block(B1, "n2"))).exports == {}
    assert plan_for("n1", cluster(block(B1, None))).exports == {}


def test_by_hand_override_still_wins() -> None:
    plan = plan_for("n1", cluster(block(B1, "n1")), blocks=[B2])
    assert plan.exports == {B2: IPv4Address("10.0.0.1")}
    assert isinstance(cluster().of(Node)[0], Node)
