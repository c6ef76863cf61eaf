"""Stored form of a resource: camelCase JSON without the revision; reads set it."""

from __future__ import annotations

import json

import pytest

from gingham.datastore.codec import StoredValueInvalid, canonical_kind, decode, encode
from gingham.datastore.etcd import prefix_range_end
from gingham.model import Resource, UnknownKind, parse_resource


def pool(resource_version: str | None = None) -> Resource:
    metadata: dict[str, object] = {"name": "p1", "labels": {"zone": "a"}}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return parse_resource(
        {
            "apiVersion": "gingham.io/v1",
            "kind": "IPPool",
            "metadata": metadata,
            "spec": {"cidr": "10.1.0.0/16", "blockSize": 27, "ipipMode": "Always"},
        }
    )


def test_stored_value_is_the_camel_case_document_without_revision() -> None:
    stored = json.loads(encode(pool("41")))

    assert stored["kind"] == "IPPool"
    assert stored["spec"]["blockSize"] == 27 and stored["spec"]["ipipMode"] == "Always"
    assert "resourceVersion" not in stored["metadata"]


def test_decode_restores_the_object_with_the_backend_revision() -> None:
    original = pool()
    decoded = decode("IPPool", "p1", encode(original), "42")

    assert decoded.resource_version == "42"
    assert decoded.with_revision(None) == original


@pytest.mark.parametrize(
    "value",
    [b"not json", b"[1, 2]", b'{"apiVersion": "gingham.io/v1", "metadata": {"name": "p1"}}'],
)
def test_a_value_that_does_not_decode_names_the_key(value: bytes) -> None:
    with pytest.raises(StoredValueInvalid, match='IPPool "p1": stored value does not decode'):
        decode("IPPool", "p1", value, "1")


def test_a_kind_this_gingham_does_not_know_is_refused() -> None:
    with pytest.raises(StoredValueInvalid, match="does not know"):
        decode("Frobnicator", "x", b"{}", "1")
    with pytest.raises(UnknownKind):
        canonical_kind("frobnicators")
    assert canonical_kind("ippools") == "IPPool"


def test_prefix_range_end_covers_exactly_the_prefix() -> None:
    assert prefix_range_end(b"/gingham/v1/Node/") == b"/gingham/v1/Node0"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"\xff\xff") == b"\0"
