"""Helpers for model tests: build documents, expect exact error lines."""

from __future__ import annotations

from typing import Any

import pytest

from gingham.model import InvalidResource, Resource, parse_resource


def document(
    kind: str, name: str, spec: dict[str, Any] | None = None, **metadata: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "gingham.io/v1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
    }
    if spec is not None:
        doc["spec"] = spec
    return doc


def errors_of(doc: Any) -> list[str]:
    """The error lines `parse_resource` gives for `doc` (fails if it is valid)."""
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    return [str(e) for e in caught.value.errors]


def round_trips(resource: Resource) -> bool:
    return parse_resource(resource.to_document()) == resource
