"""Documents in, resources out: parsing, loading files, cross-object checks.

`parse_resource` turns one mapping into a typed `Resource`; `load_documents`
reads a whole YAML or JSON text (what ``gingham apply -f`` gets);
`check_set` runs the rules that involve several objects (pool overlaps,
immutable pool fields) against what is already stored.

Invariants:
- Nothing is half-accepted: every problem of every document is collected and
  raised together as one `InvalidResource`, one `FieldError` per problem, each
  saying where it is (``pools.yaml: document 2: IPPool "p1": spec.blockSize:
  33 is outside 20..32``).
- `parse_resource(r.to_document()) == r` for every valid resource `r`.
- ``projectcalico.org/v3`` documents are accepted as ``gingham.io/v1`` (the
  field names are Calico's); the result always carries ``gingham.io/v1``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from gingham.model.base import (
    API_VERSION,
    KINDS,
    FieldError,
    InvalidResource,
    Resource,
    UnknownKind,
    resolve_kind,
)
from gingham.model.errors import field_errors
from gingham.model.fields import shown
from gingham.model.network import IPPool

CALICO_API_VERSION = "projectcalico.org/v3"
_ACCEPTED_API_VERSIONS = (API_VERSION, CALICO_API_VERSION)


def parse_resource(doc: Any, where: str = "") -> Resource:
    """One document (a mapping) → its typed resource, or `InvalidResource`."""
    if not isinstance(doc, Mapping):
        raise InvalidResource(
            [
                FieldError(
                    "",
                    "",
                    "",
                    "expected a resource (a mapping with apiVersion, kind, metadata, spec),"
                    f" got {shown(doc)}",
                    where,
                )
            ]
        )
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    name = name if isinstance(name, str) else ""
    kind_text = doc.get("kind")
    if not isinstance(kind_text, str):
        known = ", ".join(sorted(KINDS))
        reason = "required" if kind_text is None else f"expected a string, got {shown(kind_text)}"
        raise InvalidResource([FieldError("", name, "kind", f"{reason} (one of {known})", where)])
    try:
        cls = resolve_kind(kind_text)
    except UnknownKind as exc:
        raise InvalidResource([FieldError("", name, "kind", str(exc), where)]) from None

    errors: list[FieldError] = []
    api_version = doc.get("apiVersion")
    if api_version is None:
        errors.append(FieldError(cls.kind, name, "apiVersion", f"required ({API_VERSION})", where))
    elif api_version not in _ACCEPTED_API_VERSIONS:
        errors.append(
            FieldError(
                cls.kind,
                name,
                "apiVersion",
                f"{shown(api_version)} is not supported: use {API_VERSION}",
                where,
            )
        )
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    body["apiVersion"] = API_VERSION
    try:
        resource = cls.model_validate(body)
    except ValidationError as exc:
        errors.extend(field_errors(cls, cls.kind, name, exc, where))
    if errors:
        raise InvalidResource(errors)
    return resource


def load_documents(text: str, source: str = "-") -> list[Resource]:
    """Every resource in a YAML stream or JSON text; all problems raised together.

    Accepted shapes: YAML documents separated by ``---``; a JSON object; a list
    of objects; a ``kind: List`` (or ``…List``) wrapper with ``items``. Empty
    documents are skipped.
    """
    resources: list[Resource] = []
    wheres: list[str] = []
    errors: list[FieldError] = []
    for where, doc in _documents(text, source):
        try:
            resources.append(parse_resource(doc, f"{source}: {where}"))
            wheres.append(where)
        except InvalidResource as exc:
            errors.extend(exc.errors)

    located = list(zip(resources, [f"{source}: {w}" for w in wheres], wheres, strict=True))
    errors.extend(_duplicates(located))
    errors.extend(_overlaps_in_file(located))
    if errors:
        raise InvalidResource(errors)
    return resources


# (resource, full location for its errors, short location for cross-references)
_Located = list[tuple[Resource, str, str]]


def _duplicates(located: _Located) -> Iterator[FieldError]:
    first_seen: dict[tuple[str, str], str] = {}
    for resource, where, short in located:
        key = (resource.kind, resource.name)
        if key not in first_seen:
            first_seen[key] = short
            continue
        reason = f"defined twice in this file (first in {first_seen[key]})"
        yield FieldError(resource.kind, resource.name, "metadata.name", reason, where)


def _overlaps_in_file(located: _Located) -> Iterator[FieldError]:
    pools = [(r, where, short) for r, where, short in located if isinstance(r, IPPool)]
    for index, (pool, where, _) in enumerate(pools):
        for other, _, other_short in pools[:index]:
            if pool.name != other.name and pool.spec.cidr.overlaps(other.spec.cidr):
                reason = f"{_overlap_reason(pool, other)} ({other_short})"
                yield FieldError(pool.kind, pool.name, "spec.cidr", reason, where)


def _overlap_reason(pool: IPPool, other: IPPool) -> str:
    return f'{pool.spec.cidr} overlaps IPPool "{other.name}" ({other.spec.cidr})'


def check_pool_overlaps(pools: Iterable[IPPool]) -> list[FieldError]:
    """One error per pair of distinct pools whose CIDRs overlap (on the later one)."""
    seen: list[IPPool] = []
    errors = []
    for pool in pools:
        for other in seen:
            if pool.name != other.name and pool.spec.cidr.overlaps(other.spec.cidr):
                errors.append(
                    FieldError(pool.kind, pool.name, "spec.cidr", _overlap_reason(pool, other))
                )
        seen.append(pool)
    return errors


def check_set(resources: Iterable[Resource], existing: Iterable[Resource] = ()) -> list[FieldError]:
    """Rules across objects, for writing `resources` into a store holding `existing`.

    - pools may not overlap each other nor any stored pool (the stored version
      of a pool being rewritten does not count);
    - a stored pool's cidr and blockSize cannot change: IPAM blocks were carved
      from them. Make a new pool, disable the old one, delete it once empty.
    """
    incoming = list(resources)
    stored = {(r.kind, r.name): r for r in existing}
    new_pools = [r for r in incoming if isinstance(r, IPPool)]
    replaced = {p.name for p in new_pools}
    errors = check_pool_overlaps(new_pools)
    for pool in new_pools:
        for other in stored.values():
            if (
                isinstance(other, IPPool)
                and other.name not in replaced
                and pool.spec.cidr.overlaps(other.spec.cidr)
            ):
                errors.append(
                    FieldError(
                        pool.kind,
                        pool.name,
                        "spec.cidr",
                        _overlap_reason(pool, other) + " (already stored)",
                    )
                )
        errors.extend(_immutable_pool_fields(pool, stored.get((pool.kind, pool.name))))
    return errors


def _immutable_pool_fields(pool: IPPool, old: Resource | None) -> Iterator[FieldError]:
    if not isinstance(old, IPPool):
        return
    advice = (
        "addresses were allocated from it; create a new pool, disable this one"
        " and delete it once it is empty"
    )
    if pool.spec.cidr != old.spec.cidr:
        yield FieldError(
            pool.kind,
            pool.name,
            "spec.cidr",
            f"cannot change from {old.spec.cidr} to {pool.spec.cidr}: {advice}",
        )
    if pool.spec.block_size != old.spec.block_size:
        yield FieldError(
            pool.kind,
            pool.name,
            "spec.blockSize",
            f"cannot change from {old.spec.block_size} to {pool.spec.block_size}: {advice}",
        )


# --- reading text ---------------------------------------------------------------


def _documents(text: str, source: str) -> Iterator[tuple[str, Any]]:
    """(location, document) pairs, lists and List wrappers expanded, blanks skipped."""
    for number, doc in enumerate(_parse_text(text, source), start=1):
        if doc is None:
            continue
        items = _list_items(doc)
        if items is None:
            yield f"document {number}", doc
            continue
        for index, item in enumerate(items, start=1):
            if item is not None:
                yield f"document {number}, item {index}", item


def _list_items(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if (
        isinstance(doc, Mapping)
        and isinstance(doc.get("kind"), str)
        and doc["kind"].endswith("List")
        and isinstance(doc.get("items"), list)
    ):
        return list(doc["items"])
    return None


_YAML_SEPARATOR = re.compile(r"^---\s*$", re.MULTILINE)


def _parse_text(text: str, source: str) -> list[Any]:
    # Like kubectl: text opening with "{" or "[" is JSON (unless "---" lines make
    # it a YAML stream of JSON-looking documents). Falling back to YAML on a
    # JSON error would read broken JSON as a flow mapping with another meaning.
    if text.lstrip().startswith(("{", "[")) and not _YAML_SEPARATOR.search(text):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise _syntax_error(source, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}") from None
    # PyYAML is imported only when a file is read: daemons import the model too.
    from gingham.model.yaml_reader import YAMLSyntaxError, load_yaml_stream

    try:
        return load_yaml_stream(text)
    except YAMLSyntaxError as exc:
        raise _syntax_error(source, exc.line, exc.column, f"invalid YAML: {exc.problem}") from None


def _syntax_error(source: str, line: int, column: int, message: str) -> InvalidResource:
    where = f"{source}: line {line}, column {column}" if line else source
    return InvalidResource([FieldError("", "", "", message, where)])
