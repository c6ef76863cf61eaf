"""CustomResourceDefinitions generated from the resource model.

One CRD per registered kind: ``<plural>.gingham.io``, cluster-scoped, version
``v1`` served and stored, with a structural OpenAPI v3 schema derived from the
pydantic spec model — camelCase properties (the same aliases `to_document`
writes), required fields, enums, integer ranges, formats and patterns for the
field types of `gingham.model.fields`.

Invariants:
- Deterministic: the same model gives byte-identical YAML (kinds sorted, keys
  in a fixed order), so tests/unit/k8s compares manifests/crds.yaml with it.
- Every schema node has a ``type`` (structural), except int-or-string fields
  (durations), which say so with ``x-kubernetes-int-or-string``.
- ``x-kubernetes-preserve-unknown-fields`` appears nowhere: every field is
  typed. A type the generator does not know is a `TypeError` naming the model
  and field, so a new field type cannot slip into a CRD untyped.
- Cross-field rules (blockSize vs the cidr's family, keepalive < hold, ...)
  stay in the model; the schema holds the per-field part of them.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, PlainValidator
from pydantic.alias_generators import to_camel

from gingham.model import fields
from gingham.model.base import API_VERSION, KINDS, Resource

GROUP, VERSION = API_VERSION.split("/")

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"

# Schemas of the named field types (compared by equality of the Annotated alias).
_KNOWN_TYPES: list[tuple[Any, dict[str, Any]]] = [
    (fields.ASNumber, {"type": "integer", "minimum": 1, "maximum": fields.MAX_AS_NUMBER}),
    (fields.Port, {"type": "integer", "minimum": 1, "maximum": 65535}),
    (fields.Bool, {"type": "boolean"}),
    (fields.Text, {"type": "string"}),
    (fields.CIDR, {"type": "string", "format": "cidr"}),
    # Interfaces are address/prefix (host bits allowed): Kubernetes' "cidr"
    # format is net.ParseCIDR, which accepts exactly that.
    (fields.IPv4Interface, {"type": "string", "format": "cidr"}),
    (fields.IPv6Interface, {"type": "string", "format": "cidr"}),
    (fields.IPv4Address, {"type": "string", "format": "ipv4"}),
    (fields.IPAddress, {"type": "string", "maxLength": 45}),
    # The model accepts upper case and "-" and normalises to lower-case ":".
    (fields.MACAddress, {"type": "string", "pattern": r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$"}),
    (fields.SelectorText, {"type": "string"}),
    (
        fields.DNSName,
        {"type": "string", "maxLength": 253, "pattern": rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"},
    ),
    # Written as "90s"; a number of seconds is accepted on input.
    (
        fields.Duration,
        {"x-kubernetes-int-or-string": True, "pattern": r"^([0-9]+(h|m|s))+$"},
    ),
]

# Per-field ranges the model checks in a validator rather than in the type.
_FIELD_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # 20..32 for IPv4 and 116..128 for IPv6 pools; the family check is the model's.
    ("IPPoolSpec", "block_size"): {"type": "integer", "minimum": 20, "maximum": 128},
}


def _validators(metadata: Any) -> list[Any]:
    return [m.func for m in metadata if isinstance(m, PlainValidator)]


# pydantic moves a field's top-level Annotated metadata into FieldInfo.metadata,
# so the named types are recognised by their validator function.
_BY_VALIDATOR = {
    func: schema
    for known, schema in _KNOWN_TYPES
    for func in _validators(typing.get_args(known)[1:])
}


def _known(metadata: Any) -> dict[str, Any] | None:
    for func in _validators(metadata):
        if func in _BY_VALIDATOR:
            return dict(_BY_VALIDATOR[func])
    return None


def schema_for(annotation: Any, where: str) -> dict[str, Any]:
    """The structural schema of one annotation (`where` names it in errors)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            inner = schema_for(rest[0], where)
            if len(rest) < len(args) and where.endswith("[]"):
                inner["nullable"] = True  # e.g. a free slot in an IPAM block
            return inner
        raise TypeError(f"{where}: no CRD schema for the union {annotation}")
    if origin is typing.Annotated:
        return _known(annotation.__metadata__) or schema_for(args[0], where)
    if origin is list:
        return {"type": "array", "items": schema_for(args[0], where + "[]")}
    if origin is dict:
        if args[0] is not str:
            raise TypeError(f"{where}: CRD maps need string keys")
        return {"type": "object", "additionalProperties": schema_for(args[1], where + "{}")}
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return {"type": "string", "enum": [m.value for m in annotation]}
        if issubclass(annotation, BaseModel):
            return model_schema(annotation)
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer"}
        if annotation is float:
            return {"type": "number"}
        if annotation is str:
            return {"type": "string"}
    raise TypeError(f"{where}: no CRD schema for {annotation!r}")


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        key = info.serialization_alias or info.alias or to_camel(name)
        override = _FIELD_OVERRIDES.get((model.__name__, name))
        where = f"{model.__name__}.{name}"
        schema = (
            dict(override)
            if override
            else _known(info.metadata) or schema_for(info.annotation, where)
        )
        for rule in info.metadata:
            if isinstance(rule, annotated_types.Ge):
                schema["minimum"] = rule.ge
            elif isinstance(rule, annotated_types.Le):
                schema["maximum"] = rule.le
            elif isinstance(rule, annotated_types.Gt):
                schema["minimum"], schema["exclusiveMinimum"] = rule.gt, True
            elif isinstance(rule, annotated_types.Lt):
                schema["maximum"], schema["exclusiveMaximum"] = rule.lt, True
        properties[key] = schema
        if info.is_required():
            required.append(key)
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def crd(cls: type[Resource]) -> dict[str, Any]:
    """The CustomResourceDefinition document for one kind."""
    plural = cls.plural.lower()
    spec_info = cls.model_fields["spec"]
    top: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": schema_for(spec_info.annotation, f"{cls.kind}.spec"),
        },
    }
    if spec_info.is_required():
        top["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": cls.kind,
                "listKind": f"{cls.kind}List",
                "plural": plural,
                "singular": cls.kind.lower(),
                "categories": ["gingham"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": top},
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    import gingham.model  # noqa: F401  (registers every kind)

    return [
        crd(KINDS[kind]) for kind in sorted(KINDS) if KINDS[kind].__module__.startswith("gingham.")
    ]


def crds_yaml() -> str:
    """manifests/crds.yaml, exactly."""
    import yaml

    header = (
        "# Generated from the resource model by `gingham k8s crds`; do not edit.\n"
        "# tests/unit/k8s/test_crds.py fails when this file and the model disagree.\n"
    )
    body = yaml.safe_dump_all(all_crds(), sort_keys=False, default_flow_style=False, width=100)
    return header + "---\n" + body
