"""Reading a YAML stream strictly: safe types only, no key given twice.

Kept apart from `gingham.model.documents` so that importing the model (as
felix and the speaker do) does not import PyYAML; only reading a file does.

Invariants:
- Only the safe loader is used (plain data: mappings, lists, scalars).
- A mapping with a repeated key is an error: YAML would silently keep the
  last value, and a user who wrote `spec` twice meant something else.
- Every syntax problem becomes one `YAMLSyntaxError` with a 1-based line and
  column (0 when PyYAML gives no position).
"""

from __future__ import annotations

from typing import Any

import yaml

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLSyntaxError(ValueError):
    def __init__(self, line: int, column: int, problem: str) -> None:
        self.line, self.column, self.problem = line, column, problem
        super().__init__(f"line {line}, column {column}: {problem}")


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """Safe loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[str] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f'key "{key}" appears twice in one mapping', key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_stream(text: str) -> list[Any]:
    """Every document of `text` (None for an empty one); `YAMLSyntaxError` on bad input."""
    try:
        return list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if mark is None:
            raise YAMLSyntaxError(0, 0, problem) from None
        raise YAMLSyntaxError(mark.line + 1, mark.column + 1, problem) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(0, 0, str(exc)) from None
