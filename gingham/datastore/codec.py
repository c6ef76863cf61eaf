"""Resource ⇄ stored bytes, shared by every backend that stores raw values.

The stored form is the camelCase document (`Resource.to_document()`) as compact
JSON with sorted keys, *without* ``metadata.resourceVersion``: the revision is
owned by the backend (a row column, an etcd mod_revision) and set on read with
`with_revision`, so a stored value never disagrees with where it is stored.

Reading looks the class up in `KINDS` by the kind the backend stored it under
and validates with `model_validate`; a stored value that no longer validates
(e.g. written by a newer Gingham) is a `StoredValueInvalid` naming the key.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from gingham.datastore.base import DatastoreError
from gingham.model.base import KINDS, Resource, resolve_kind


class StoredValueInvalid(DatastoreError):
    """A stored value cannot be decoded as the kind it is stored under."""


def canonical_kind(kind: str) -> str:
    """`ippool` → ``IPPool``; `UnknownKind` (a ValueError) for a name no kind has."""
    if kind in KINDS:
        return kind
    return resolve_kind(kind).kind


def encode(obj: Resource) -> bytes:
    document = obj.to_document()
    metadata: dict[str, Any] = dict(document.get("metadata", {}))
    metadata.pop("resourceVersion", None)
    document["metadata"] = metadata
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def decode(kind: str, name: str, value: bytes | str, revision: str) -> Resource:
    cls = KINDS.get(kind)
    if cls is None:
        raise StoredValueInvalid(f'{kind} "{name}": stored under a kind this Gingham does not know')
    try:
        document = json.loads(value)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        document.pop("kind", None)  # a ClassVar on the model, not a field
        obj = cls.model_validate(document)
    except (ValueError, ValidationError) as exc:
        raise StoredValueInvalid(f'{kind} "{name}": stored value does not decode: {exc}') from exc
    return obj.with_revision(revision)
