"""IPAM kinds: documents round-trip; bad input names the object and field."""

from __future__ import annotations

from typing import Any

import pytest

from gingham.model import InvalidResource, parse_resource


def _doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _errors(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    return [str(e) for e in caught.value.errors]


def test_ipam_configuration() -> None:
    config = parse_resource(_doc("IPAMConfiguration", "default", {"strictAffinity": True}))
    assert parse_resource(config.to_document()) == config
    assert _errors(_doc("IPAMConfiguration", "x", {"maxBlocksPerHost": -1})) == [
        'IPAMConfiguration "x": metadata.name: the IPAM configuration must be named "default"',
        'IPAMConfiguration "x": spec.maxBlocksPerHost: Input should be greater than or equal to 0',
    ]


def test_block_documents_round_trip_and_are_checked() -> None:
    spec = {
        "cidr": "10.0.0.0/31",
        "affinity": "host:n1",
        "allocations": [0, None],
        "unallocated": [1],
        "attributes": [{"handleId": "h", "secondary": {"node": "n1"}}],
    }
    block = parse_resource(_doc("IPAMBlock", "10-0-0-0-31", spec))
    assert parse_resource(block.to_document()) == block
    bad = {**spec, "allocations": [0, 0, None]}
    assert _errors(_doc("IPAMBlock", "b", bad)) == [
        'IPAMBlock "b": spec.allocations: has 3 entries, the block 10.0.0.0/31 has 2 addresses'
    ]


def test_affinity_and_workload_endpoint() -> None:
    aff = parse_resource(
        _doc("BlockAffinity", "n1-10-0-0-0-26", {"node": "n1", "cidr": "10.0.0.0/26"})
    )
    assert aff.to_document()["spec"]["state"] == "pending"
    wep = parse_resource(
        _doc(
            "WorkloadEndpoint",
            "n1-k8s-default-pod-eth0",
            {"node": "n1", "containerId": "abc", "ipNetworks": ["10.0.0.5/32"]},
        )
    )
    assert wep.spec.handle == "abc.eth0"
    assert parse_resource(wep.to_document()) == wep
