"""Label selectors: what they match, how they print, how they fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gingham.selector import (
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Has,
    In,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    SelectorError,
    StartsWith,
    parse_selector,
)

RR = {"route-reflector": "true", "example.com/rack": "r1", "zone": "a"}
WORKER = {"example.com/rack": "r2", "zone": "b"}
BARE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("text", "rr", "worker", "bare"),
    [
        ("", True, True, True),
        ("   ", True, True, True),
        ("all()", True, True, True),
        ("has(route-reflector)", True, False, False),
        ("!has(route-reflector)", False, True, True),
        ("zone == 'a'", True, False, False),
        ('zone == "a"', True, False, False),
        ("zone != 'a'", False, True, True),  # absent label: != matches (Calico)
        ("example.com/rack in {'r1', 'r3'}", True, False, False),
        ("example.com/rack not in {'r1'}", False, True, True),
        ("zone in {}", False, False, False),
        ("zone not in {}", True, True, True),
        ("has(zone) && zone != 'a'", False, True, False),
        ("zone == 'a' || zone == 'b'", True, True, False),
        ("!(zone == 'a' || zone == 'b')", False, False, True),
        # && binds tighter than ||
        ("has(route-reflector) || has(zone) && zone == 'b'", True, True, False),
        ("(has(route-reflector) || has(zone)) && zone == 'b'", False, True, False),
        # ! binds tighter than &&
        ("!has(route-reflector) && has(zone)", False, True, False),
        ("!!has(zone)", True, True, False),
        ("has(zone)&&zone=='a'", True, False, False),
        ("example.com/rack contains '1'", True, False, False),
        ("example.com/rack starts with 'r'", True, True, False),
        ("example.com/rack ends with '2'", False, True, False),
        ("!(zone ends with 'b')", True, False, True),
    ],
)
def test_matches(text: str, rr: bool, worker: bool, bare: bool) -> None:
    selector = parse_selector(text)
    assert (selector.matches(RR), selector.matches(WORKER), selector.matches(BARE)) == (
        rr,
        worker,
        bare,
    )


def test_keywords_are_keys_when_not_calls() -> None:
    assert parse_selector("has == 'x'").matches({"has": "x"})
    assert parse_selector("all == 'x' && not not in {'y'}").matches({"all": "x", "not": "z"})
    assert parse_selector("in != 'x'").matches({})


def test_values_may_hold_the_other_quote_and_operators() -> None:
    selector = parse_selector("""note == "it's && || ()" """)
    assert selector == Equals("note", "it's && || ()")
    assert str(selector) == """note == "it's && || ()\""""
    assert str(parse_selector("""a == 'say "hi"'""")) == """a == 'say "hi"'"""


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", "all()"),
        ("has( a )", "has(a)"),
        ("a=='1'", 'a == "1"'),
        ("a in {'z','b', 'b'}", 'a in {"b", "z"}'),
        ("(a == '1')", 'a == "1"'),
        ("(a == '1' && b == '2') || c == '3'", 'a == "1" && b == "2" || c == "3"'),
        ("a == '1' && (b == '2' || c == '3')", 'a == "1" && (b == "2" || c == "3")'),
        ("!(has(a) && has(b))", "!(has(a) && has(b))"),
        ("!!has(a)", "!!has(a)"),
        ("a   starts   with 'x' || b contains 'y'", 'a starts with "x" || b contains "y"'),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_selector(text)) == canonical
    assert parse_selector(canonical) == parse_selector(text)


def test_parse_results_are_cached_and_immutable() -> None:
    assert parse_selector("has(a) && b == 'c'") is parse_selector("has(a) && b == 'c'")
    assert hash(parse_selector("a in {'x'}")) == hash(In("a", frozenset({"x"})))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a == x", 'at column 6: expected a quoted value after ==, found "x"'),
        ("a ==", "at column 5: expected a quoted value after ==, found the end of the selector"),
        ("has(a", 'at column 6: expected ")" after the label key, found the end of the selector'),
        ("(has(a)", 'at column 8: expected ")", found the end of the selector'),
        ("has(a))", 'at column 7: expected "&&", "||" or the end of the selector, found ")"'),
        ("a = 'b'", "at column 3: unexpected character '='"),
        ("a == 'b", "at column 6: unterminated value: no closing '"),
        (
            "a",
            'at column 2: expected "==", "!=", "in", "not in", "contains", "starts with" or'
            ' "ends with" after the label key a, found the end of the selector',
        ),
        (
            "a starts 'x'",
            'at column 3: expected "==", "!=", "in", "not in", "contains", "starts with" or'
            ' "ends with" after the label key a, found "starts"',
        ),
        (
            "a contains",
            "at column 11: expected a quoted value after contains, found the end of the selector",
        ),
        (
            "has(a) &&",
            'at column 10: expected a label key, "has(", "all()", "!" or "(",'
            " found the end of the selector",
        ),
        ("a in {'x' 'y'}", 'at column 11: expected "," or "}", found the value "y"'),
        ("a in 'x'", 'at column 6: expected "{", found the value "x"'),
        ("all(", 'at column 5: expected ")" after "all(", found the end of the selector'),
        (
            "-a == 'x'",
            'at column 1: bad label key "-a": a label name is 1-63 characters of'
            " letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
        ),
        (
            "Example.com/a == 'x'",
            'at column 1: bad label key "Example.com/a": its prefix'
            " before '/' must be a DNS subdomain (lower-case, e.g. example.com)",
        ),
    ],
)
def test_errors_name_position_and_expectation(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    quoted = f"'{text}'" if '"' in text else f'"{text}"'
    assert str(caught.value) == f"invalid selector {quoted}: {message}"
    assert isinstance(caught.value, ValueError)


# --- properties -------------------------------------------------------------------

KEYS = st.sampled_from(["a", "zone", "example.com/rack", "route-reflector", "x_y.z"])
VALUES = st.sampled_from(["", "1", "r1", "it's", 'say "hi"', "&& ||"])
LABELS = st.dictionaries(KEYS, st.sampled_from(["", "1", "r1", "it's", "x"]), max_size=4)


def _selectors() -> st.SearchStrategy[Selector]:
    leaves = st.one_of(
        st.just(All()),
        st.builds(Has, KEYS),
        st.builds(Equals, KEYS, VALUES),
        st.builds(NotEquals, KEYS, VALUES),
        st.builds(In, KEYS, st.frozensets(VALUES, max_size=3)),
        st.builds(NotIn, KEYS, st.frozensets(VALUES, max_size=3)),
        st.builds(Contains, KEYS, VALUES),
        st.builds(StartsWith, KEYS, VALUES),
        st.builds(EndsWith, KEYS, VALUES),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(Not, inner),
            st.builds(And, st.tuples(inner, inner)),
            st.builds(Or, st.tuples(inner, inner)),
        ),
        max_leaves=8,
    )


def _evaluate(selector: Selector, labels: dict[str, str]) -> bool:
    """An independent reading of Calico's semantics, to check `matches` against."""
    match selector:
        case All():
            return True
        case Has(key):
            return key in labels
        case Equals(key, value):
            return key in labels and labels[key] == value
        case NotEquals(key, value):
            return not (key in labels and labels[key] == value)
        case In(key, values):
            return key in labels and labels[key] in values
        case NotIn(key, values):
            return not (key in labels and labels[key] in values)
        case Contains(key, value):
            return key in labels and value in labels[key]
        case StartsWith(key, value):
            return key in labels and labels[key][: len(value)] == value
        case EndsWith(key, value):
            return (
                key in labels
                and len(labels[key]) >= len(value)
                and (labels[key][len(labels[key]) - len(value) :] == value)
            )
        case Not(operand):
            return not _evaluate(operand, labels)
        case And(operands):
            return all(_evaluate(op, labels) for op in operands)
        case Or(operands):
            return any(_evaluate(op, labels) for op in operands)
    raise AssertionError(selector)


@settings(deadline=None)
@given(_selectors(), LABELS)
def test_canonical_text_parses_back_to_the_same_meaning(
    selector: Selector, labels: dict[str, str]
) -> None:
    text = str(selector)
    reparsed = parse_selector(text)
    assert str(reparsed) == text
    assert reparsed.matches(labels) == _evaluate(selector, labels) == selector.matches(labels)


@settings(deadline=None)
@given(st.text(alphabet="ab=!&|(){}'\" ,inothasl", max_size=20))
def test_any_text_parses_or_raises_selector_error(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as exc:
        assert 0 <= exc.position <= len(text)
    else:
        assert str(parse_selector(str(selector))) == str(selector)
