"""Turning pydantic's validation errors into `FieldError` lines for people.

Pydantic reports ``loc`` tuples and generic wording ("Input should be a valid
integer"); users should read ``spec.blockSize: expected an integer, got "abc"``.

Invariants:
- One `FieldError` per pydantic error; none is dropped.
- Our own validators' messages (`gingham.model.fields.invalid`) pass through
  unchanged, at the path they name or else at pydantic's location.
- Paths are written as in the document (camelCase as typed), ``a.b[0].c``.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from gingham.model.base import FieldError
from gingham.model.fields import shown

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def format_path(loc: Sequence[int | str], model: type[BaseModel] | None = None) -> str:
    """``("spec", "block_size")`` → ``spec.blockSize`` (field names shown by alias)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part
        if model is not None:
            info = model.model_fields.get(part)
            # Pydantic reports a defaulted field by its Python name: show the alias.
            if info is not None and info.alias:
                text = info.alias
            model = _child_model(model, part)
        out += f".{text}" if out else text
    return out


def field_errors(
    model: type[BaseModel], kind: str, name: str, exc: ValidationError, where: str = ""
) -> list[FieldError]:
    """The `FieldError`s of `exc`, raised validating `model` for the object `kind`/`name`."""
    result = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        ctx: dict[str, Any] = error.get("ctx") or {}
        path = ctx.get("path") or format_path(loc, model)
        result.append(FieldError(kind, name, path, _reason(model, error, ctx), where))
    return result


def _reason(model: type[BaseModel], error: Any, ctx: dict[str, Any]) -> str:
    kind_of_error = error["type"]
    if kind_of_error == "gingham":
        return str(ctx["message"])
    if kind_of_error == "missing":
        return "required"
    if kind_of_error == "extra_forbidden":
        hint = _suggest(model, error["loc"])
        return f"unknown field (did you mean {hint}?)" if hint else "unknown field"
    if kind_of_error in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind_of_error]}, got {shown(error['input'])}"
    if kind_of_error in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return str(error["msg"])


def _suggest(model: type[BaseModel], loc: Sequence[int | str]) -> str | None:
    """The closest known field name to the unknown one at the end of `loc`."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str):
            return None
        current = _child_model(current, part)
    if current is None or not isinstance(loc[-1], str):
        return None
    names = [info.alias or field for field, info in current.model_fields.items()]
    lowered = {n.lower(): n for n in names}
    if loc[-1].lower() in lowered:
        return lowered[loc[-1].lower()]
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    return close[0] if close else None


def _child_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    for field, info in model.model_fields.items():
        if key in (field, info.alias):
            return _model_in(info.annotation)
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
