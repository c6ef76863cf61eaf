"""JSON in and out for the plugin through CPython's `_json` accelerator, without `json`.

Why: `import json` imports `re` (for three patterns in json.decoder/encoder)
and `re` imports `enum`, `functools` and `collections`: ~15-20 ms of a CNI
exec on the 2-core dev machine, for a plugin whose whole budget is 80 ms. The
C scanner and encoder behind `json` do the real work and need none of that;
this module builds them directly with the same settings `json.loads` and
`json.dumps` use, so the accepted input and the bytes written are the same.

Invariants:
- `loads` accepts exactly what `json.loads` accepts for UTF-8 input, and any
  input it does not handle itself (UTF-16/32, a decode error of any kind) is
  handed to `json.loads`, so error messages are the standard library's own.
- `dumps(value)` == `json.dumps(value)` byte for byte (ASCII-only output,
  ", " and ": " separators, NaN allowed), for the dicts, lists, strings,
  numbers, booleans and None the plugin prints.
"""

from __future__ import annotations

import _json

_WHITESPACE = " \t\n\r"


class _ScanContext:
    # The attributes `_json.make_scanner` reads, with `json.JSONDecoder()`'s defaults.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


# typeshed types the context as a scanner; any object with these attributes works.
_scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]


def _encode_default(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# make_encoder(markers, default, encoder, indent, key_separator, item_separator,
#              sort_keys, skipkeys, allow_nan): json.dumps()'s defaults.
_encode = _json.make_encoder(
    {}, _encode_default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def _fallback_loads(data: bytes | str) -> object:
    import json  # slow path only: a malformed or unusual document

    return json.loads(data)


def loads(data: bytes | str) -> object:
    """Parse one JSON document; raises ValueError (json.JSONDecodeError) when it is not."""
    if isinstance(data, bytes):
        if data[:3] == b"\xef\xbb\xbf" or (data[:4] and 0 in data[:4]):
            return _fallback_loads(data)  # BOM or UTF-16/32: json detects the encoding
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _fallback_loads(data)
    else:
        text = data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError):
        # SystemError: on a syntax error CPython 3.11's scanner looks for
        # json.decoder.JSONDecodeError in sys.modules without importing it, and
        # returns NULL with no exception set when `json` was never imported.
        return _fallback_loads(data)
    if text[end:].strip(_WHITESPACE):
        return _fallback_loads(data)  # "Extra data": let json say where
    return value


def dumps(value: object) -> str:
    """`json.dumps(value)` with the default settings."""
    return "".join(_encode(value, 0))
