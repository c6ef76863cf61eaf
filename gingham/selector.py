"""Calico-style label selectors: the one parser everything that selects uses.

Grammar (precedence ``!`` > ``&&`` > ``||``; parentheses group)::

    expr    := and ( "||" and )*
    and     := unary ( "&&" unary )*
    unary   := "!" unary | "(" expr ")" | term
    term    := "all()" | "has(" KEY ")"
             | KEY ( "==" | "!=" | "contains" | "starts with" | "ends with" ) VALUE
             | KEY ( "in" | "not in" ) "{" [ VALUE ( "," VALUE )* ] "}"
    VALUE   := 'text' | "text"          (no escapes, as in Calico)
    KEY     := [prefix/]name            (Kubernetes label key syntax)

Semantics follow Calico: ``k != 'v'`` and ``k not in {...}`` also match objects
that lack the label (``contains``, ``starts with`` and ``ends with`` do not);
``!has(k)`` matches objects without it. An empty (or blank) selector text
means ``all()``.

Invariants:
- `parse_selector` returns immutable `Selector` trees and caches them by text,
  so callers may parse on every use.
- `str(selector)` is canonical: parsing it again yields an equal selector with
  the same string (set members sorted, double quotes unless the value holds one,
  parentheses only where precedence needs them).
- Every parse failure is a `SelectorError` naming the 1-based column and what
  was expected there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "All",
    "And",
    "Contains",
    "EndsWith",
    "Equals",
    "Has",
    "In",
    "Not",
    "NotEquals",
    "NotIn",
    "Or",
    "Selector",
    "SelectorError",
    "StartsWith",
    "parse_selector",
]


class SelectorError(ValueError):
    """A selector text that does not parse; says where and what was expected."""

    def __init__(self, text: str, position: int, message: str) -> None:
        self.text = text
        self.position = position
        self.message = message
        super().__init__(f"invalid selector {_quote(text)}: at column {position + 1}: {message}")


class Selector:
    """A parsed selector: `matches(labels)`; `str()` gives the canonical text."""

    # Binding strength used by __str__ to decide where parentheses are needed.
    _strength = 3

    def matches(self, labels: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def _wrapped(self, outer: int) -> str:
        text = str(self)
        return f"({text})" if self._strength < outer else text


@dataclass(frozen=True)
class All(Selector):
    def matches(self, labels: Mapping[str, str]) -> bool:
        return True

    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True)
class Has(Selector):
    key: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels

    def __str__(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True)
class Equals(Selector):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) == self.value

    def __str__(self) -> str:
        return f"{self.key} == {_quote(self.value)}"


@dataclass(frozen=True)
class NotEquals(Selector):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) != self.value

    def __str__(self) -> str:
        return f"{self.key} != {_quote(self.value)}"


@dataclass(frozen=True)
class In(Selector):
    key: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value in self.values

    def __str__(self) -> str:
        return f"{self.key} in {_set_text(self.values)}"


@dataclass(frozen=True)
class NotIn(Selector):
    key: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is None or value not in self.values

    def __str__(self) -> str:
        return f"{self.key} not in {_set_text(self.values)}"


@dataclass(frozen=True)
class Contains(Selector):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and self.value in value

    def __str__(self) -> str:
        return f"{self.key} contains {_quote(self.value)}"


@dataclass(frozen=True)
class StartsWith(Selector):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value.startswith(self.value)

    def __str__(self) -> str:
        return f"{self.key} starts with {_quote(self.value)}"


@dataclass(frozen=True)
class EndsWith(Selector):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value.endswith(self.value)

    def __str__(self) -> str:
        return f"{self.key} ends with {_quote(self.value)}"


@dataclass(frozen=True)
class Not(Selector):
    operand: Selector

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.operand.matches(labels)

    def __str__(self) -> str:
        return "!" + self.operand._wrapped(3)


@dataclass(frozen=True)
class And(Selector):
    operands: tuple[Selector, ...]
    _strength = 2

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(op.matches(labels) for op in self.operands)

    def __str__(self) -> str:
        return " && ".join(op._wrapped(3) for op in self.operands)


@dataclass(frozen=True)
class Or(Selector):
    operands: tuple[Selector, ...]
    _strength = 1

    def matches(self, labels: Mapping[str, str]) -> bool:
        return any(op.matches(labels) for op in self.operands)

    def __str__(self) -> str:
        return " || ".join(op._wrapped(2) for op in self.operands)


def _quote(value: str) -> str:
    return f"'{value}'" if '"' in value else f'"{value}"'


def _set_text(values: frozenset[str]) -> str:
    return "{" + ", ".join(_quote(v) for v in sorted(values)) + "}"


# --- tokenizer ---------------------------------------------------------------

# A label key: optional DNS-subdomain prefix and '/', then a name. The tokenizer
# is generous (any run of these characters); `_check_key` enforces the syntax
# so the error can say what is wrong with the key instead of "unexpected '.'".
_WORD = re.compile(r"[A-Za-z0-9_./-]+")
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PUNCT = ("&&", "||", "==", "!=", "!", "(", ")", "{", "}", ",")


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "end", or the punctuation itself
    text: str
    position: int


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the selector"
    if token.kind == "string":
        return f"the value {_quote(token.text)}"
    return f'"{token.text}"'


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
            continue
        if char in "'\"":
            end = text.find(char, pos + 1)
            if end < 0:
                raise SelectorError(text, pos, f"unterminated value: no closing {char}")
            tokens.append(_Token("string", text[pos + 1 : end], pos))
            pos = end + 1
            continue
        punct = next((p for p in _PUNCT if text.startswith(p, pos)), None)
        if punct is not None:
            tokens.append(_Token(punct, punct, pos))
            pos += len(punct)
            continue
        word = _WORD.match(text, pos)
        if word is None:
            raise SelectorError(text, pos, f"unexpected character {char!r}")
        tokens.append(_Token("word", word.group(), pos))
        pos = word.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# --- parser ------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def _peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def fail(self, expected: str, token: _Token | None = None) -> SelectorError:
        token = token or self.token
        return SelectorError(
            self.text, token.position, f"expected {expected}, found {_describe(token)}"
        )

    def take(self, kind: str, expected: str) -> _Token:
        token = self.token
        if token.kind != kind:
            raise self.fail(expected)
        self.index += 1
        return token

    def parse(self) -> Selector:
        if self.token.kind == "end":
            return All()
        result = self.expr()
        if self.token.kind != "end":
            raise self.fail('"&&", "||" or the end of the selector')
        return result

    def expr(self) -> Selector:
        operands = [self.conjunction()]
        while self.token.kind == "||":
            self.index += 1
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Selector:
        operands = [self.unary()]
        while self.token.kind == "&&":
            self.index += 1
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Selector:
        if self.token.kind == "!":
            self.index += 1
            return Not(self.unary())
        if self.token.kind == "(":
            self.index += 1
            inner = self.expr()
            self.take(")", '")"')
            return inner
        return self.term()

    def term(self) -> Selector:
        token = self.token
        if token.kind != "word":
            raise self.fail('a label key, "has(", "all()", "!" or "("')
        if token.text in ("all", "has") and self._peek().kind == "(":
            self.index += 2
            if token.text == "all":
                self.take(")", '")" after "all("')
                return All()
            key = self.key()
            self.take(")", '")" after the label key')
            return Has(key)
        key = self.key()
        op = self.token
        if op.kind in ("==", "!="):
            self.index += 1
            value = self.take("string", f"a quoted value after {op.text}").text
            return Equals(key, value) if op.kind == "==" else NotEquals(key, value)
        if op.kind == "word" and op.text == "in":
            self.index += 1
            return In(key, self.value_set())
        if op.kind == "word" and op.text == "not" and self._peek().text == "in":
            self.index += 2
            return NotIn(key, self.value_set())
        if op.kind == "word" and op.text == "contains":
            self.index += 1
            return Contains(key, self.take("string", "a quoted value after contains").text)
        if op.kind == "word" and op.text in ("starts", "ends") and self._peek().text == "with":
            self.index += 2
            value = self.take("string", f"a quoted value after {op.text} with").text
            return StartsWith(key, value) if op.text == "starts" else EndsWith(key, value)
        raise self.fail(
            f'"==", "!=", "in", "not in", "contains", "starts with" or "ends with"'
            f" after the label key {key}"
        )

    def key(self) -> str:
        token = self.take("word", "a label key")
        _check_key(self.text, token)
        return token.text

    def value_set(self) -> frozenset[str]:
        self.take("{", '"{"')
        values: list[str] = []
        if self.token.kind == "}":
            self.index += 1
            return frozenset()
        while True:
            values.append(self.take("string", "a quoted value").text)
            if self.token.kind == "}":
                self.index += 1
                return frozenset(values)
            self.take(",", '"," or "}"')


def _check_key(text: str, token: _Token) -> None:
    prefix, slash, name = token.text.rpartition("/")
    problem = None
    if slash and (len(prefix) > 253 or not _PREFIX.fullmatch(prefix)):
        problem = "its prefix before '/' must be a DNS subdomain (lower-case, e.g. example.com)"
    elif not _NAME.fullmatch(name):
        problem = (
            "a label name is 1-63 characters of letters, digits, '-', '_' and '.',"
            " starting and ending with a letter or digit"
        )
    if problem:
        raise SelectorError(text, token.position, f'bad label key "{token.text}": {problem}')


@lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Parse a Calico selector; blank text is `all()`. Raises `SelectorError`."""
    return _Parser(text).parse()
