"""The resource envelope shared by every Gingham kind, and the kind registry.

A resource is what a user writes in YAML::

    apiVersion: gingham.io/v1
    kind: IPPool
    metadata: {name: default-pool, labels: {...}}
    spec: {...}

Python code uses snake_case attributes; documents use Calico's camelCase names
(every model sets an alias generator, so both are accepted on input and
`to_document` always writes camelCase).

Invariants:
- `metadata.resource_version` is owned by the datastore: it is the opaque
  revision of the stored object, used for compare-and-swap. User input may
  carry one (it is then checked on update) but never invents meaning for it.
- Every concrete kind registers itself with `register_kind`; `KINDS` maps the
  canonical kind name (``IPPool``) to its class.
- Validation failures are `InvalidResource`, whose lines read
  ``IPPool "p1": spec.blockSize: 33 is outside 20..32`` (prefixed with
  `FieldError.where`, e.g. ``pools.yaml: document 2``, when it is known).
- `metadata.name` is a DNS-1123 subdomain unless a kind overrides
  `Resource.name_problem`; label keys and values follow Kubernetes' rules, so
  every label a selector can name is well formed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from gingham.model.fields import dns_subdomain_problem, invalid, label_problem

API_VERSION = "gingham.io/v1"


class Model(BaseModel):
    """Base for every part of a resource: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )


class Metadata(Model):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resource_version: str | None = None
    uid: str | None = None
    creation_timestamp: str | None = None

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        # Selectors can only match well-formed labels; refuse the rest up front.
        for key, value in labels.items():
            problem = label_problem(key, value)
            if problem:
                raise invalid(problem)
        return labels


@dataclass(frozen=True)
class FieldError:
    """One reason a resource is invalid: which object, which field, why."""

    kind: str
    name: str
    path: str
    reason: str
    # Where the document came from, e.g. "pools.yaml: document 2" (may be empty).
    where: str = ""

    def __str__(self) -> str:
        parts = [self.where] if self.where else []
        if self.kind or self.name:
            parts.append(" ".join(filter(None, (self.kind, f'"{self.name}"' if self.name else ""))))
        if self.path:
            parts.append(self.path)
        return ": ".join([*parts, self.reason])


class InvalidResource(ValueError):
    """A document or resource failed validation; `errors` says where and why."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class UnknownKind(ValueError):
    """A kind name (as typed by a user) that names no Gingham resource."""


class Resource(Model):
    """The envelope. Subclasses set `kind` (ClassVar) and type `spec`."""

    kind: ClassVar[str]
    plural: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    api_version: str = API_VERSION
    metadata: Metadata
    spec: Any

    @model_validator(mode="before")
    @classmethod
    def _drop_own_kind(cls, data: Any) -> Any:
        # `kind` is a ClassVar, not a field: accept it (as `to_document` writes
        # it) when it names this class, so `X.model_validate(x.to_document())`
        # works; any other kind is an error, not silently re-typed.
        if isinstance(data, dict) and "kind" in data:
            if data["kind"] != cls.kind:
                raise invalid(f'expected kind {cls.kind}, got "{data["kind"]}"', path="kind")
            data = {k: v for k, v in data.items() if k != "kind"}
        return data

    @field_validator("metadata")
    @classmethod
    def _check_name(cls, metadata: Metadata) -> Metadata:
        problem = cls.name_problem(metadata.name)
        if problem:
            raise invalid(problem, path="metadata.name")
        return metadata

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Why `name` is not acceptable for this kind (None if it is).

        Default: a DNS-1123 subdomain, as Kubernetes and Calico require. A kind
        with other naming rules overrides this.
        """
        return dns_subdomain_problem(name)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def resource_version(self) -> str | None:
        return self.metadata.resource_version

    def with_revision(self: R, revision: str | None) -> R:
        """A copy carrying the datastore revision `revision`."""
        meta = self.metadata.model_copy(update={"resource_version": revision})
        return self.model_copy(update={"metadata": meta})

    def to_document(self) -> dict[str, Any]:
        """The camelCase document (what `get -o yaml` prints and stores keep)."""
        body = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        # Empty label/annotation maps are noise in `get -o yaml`; absent means empty.
        for key in ("labels", "annotations"):
            if not body["metadata"].get(key):
                body["metadata"].pop(key, None)
        return {"apiVersion": body.pop("apiVersion"), "kind": self.kind, **body}


R = TypeVar("R", bound=Resource)

KINDS: dict[str, type[Resource]] = {}
_LOOKUP: dict[str, str] = {}


def register_kind(cls: type[R]) -> type[R]:
    """Class decorator: make `cls` known by kind, plural and aliases (any case)."""
    KINDS[cls.kind] = cls
    for word in (cls.kind, cls.plural, *cls.aliases):
        _LOOKUP[word.lower()] = cls.kind
    return cls


def resolve_kind(word: str) -> type[Resource]:
    """`ippool`, `IPPools`, `ippools` → IPPool (calicoctl-style lookup)."""
    canonical = _LOOKUP.get(word.lower())
    if canonical is None:
        import difflib  # only on this error path

        known = ", ".join(sorted(KINDS))
        close = difflib.get_close_matches(word.lower(), _LOOKUP, n=1, cutoff=0.7)
        hint = f"did you mean {_LOOKUP[close[0]]}? " if close else ""
        raise UnknownKind(f'unknown resource kind "{word}" ({hint}known kinds: {known})')
    return KINDS[canonical]
