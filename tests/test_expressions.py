"""The expression parser: exact ASTs, percent literals, names, rejections, fuzzing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from incentives.errors import ExpressionError
from incentives.rules.ast import BoolOp, Binary, Call, Compare, If, ListLiteral, Literal, Name, Node, Unary
from incentives.rules.expressions import MAX_DEPTH, MAX_LENGTH, parse_expression

D = Decimal


def node_of(text: str) -> Node:
    return parse_expression(text).node


def same(actual: Node, expected: Node) -> bool:
    """Dataclass equality says Literal(True) == Literal(Decimal(1)); repr keeps types and exponents."""
    return repr(actual) == repr(expected)


# --- allowed constructs --------------------------------------------------------------------

ALLOWED = [
    ("42", Literal(D("42"), 0)),
    ("0.035", Literal(D("0.035"), 0)),
    ("1_000.50", Literal(D("1000.50"), 0)),
    ("1e3", Literal(D("1E+3"), 0)),
    (".5", Literal(D("0.5"), 0)),
    ("'Gold'", Literal("Gold", 0)),
    ('"a b"', Literal("a b", 0)),
    ("true", Literal(True, 0)),
    ("false", Literal(False, 0)),
    ("True", Literal(True, 0)),
    ("False", Literal(False, 0)),
    ("[]", ListLiteral((), 0)),
    ("[1, 'a', x]", ListLiteral((Literal(D(1), 1), Literal("a", 4), Name("x", 9)), 0)),
    ("(1, 2)", ListLiteral((Literal(D(1), 1), Literal(D(2), 4)), 0)),
    ("revenue", Name("revenue", 0)),
    ("certifications.sales", Name("certifications.sales", 0)),
    ("partner_tier . tier", Name("partner_tier.tier", 0)),
    ("a.b.c", Name("a.b.c", 0)),
    ("-x", Unary("-", Name("x", 1), 0)),
    ("+x", Unary("+", Name("x", 1), 0)),
    ("not x", Unary("not", Name("x", 4), 0)),
    ("a + b * c", Binary("+", Name("a", 0), Binary("*", Name("b", 4), Name("c", 8), 4), 0)),
    ("(a + b) * c", Binary("*", Binary("+", Name("a", 1), Name("b", 5), 1), Name("c", 10), 0)),
    ("a - b / c", Binary("-", Name("a", 0), Binary("/", Name("b", 4), Name("c", 8), 4), 0)),
    ("a - b - c", Binary("-", Binary("-", Name("a", 0), Name("b", 4), 0), Name("c", 8), 0)),
    (
        "a and b or not c",
        BoolOp("or", (BoolOp("and", (Name("a", 0), Name("b", 6)), 0), Unary("not", Name("c", 15), 11)), 0),
    ),
    ("a and b and c", BoolOp("and", (Name("a", 0), Name("b", 6), Name("c", 12)), 0)),
    ("a < b <= c", Compare(Name("a", 0), ("<", "<="), (Name("b", 4), Name("c", 9)), 0)),
    ("a > b", Compare(Name("a", 0), (">",), (Name("b", 4),), 0)),
    ("a >= b", Compare(Name("a", 0), (">=",), (Name("b", 5),), 0)),
    ("a == b != c", Compare(Name("a", 0), ("==", "!="), (Name("b", 5), Name("c", 10)), 0)),
    (
        "x in [1, 2]",
        Compare(Name("x", 0), ("in",), (ListLiteral((Literal(D(1), 6), Literal(D(2), 9)), 5),), 0),
    ),
    ("x not in y", Compare(Name("x", 0), ("not in",), (Name("y", 9),), 0)),
    ("abs(x)", Call("abs", (Name("x", 4),), 0)),
    ("min(a, b)", Call("min", (Name("a", 4), Name("b", 7)), 0)),
    ("max([a, b, 1])", Call("max", (Name("a", 5), Name("b", 8), Literal(D(1), 11)), 0)),
    ("min([a])", Call("min", (Name("a", 5),), 0)),
    ("3.5% * revenue", Binary("*", Literal(D("0.035"), 0), Name("revenue", 7), 0)),
    # 'if' is a Python keyword: the call is read from a renamed token, offsets unchanged.
    (
        "if(t > 0, a / t, 0)",
        If(Compare(Name("t", 3), (">",), (Literal(D(0), 7),), 3), Binary("/", Name("a", 10), Name("t", 14), 10),
           Literal(D(0), 17), 0),
    ),
    ("x + if (c, 1%, y)", Binary("+", Name("x", 0), If(Name("c", 8), Literal(D("0.01"), 11), Name("y", 15), 4), 0)),
    ("not if(a, b, c)", Unary("not", If(Name("a", 7), Name("b", 10), Name("c", 13), 4), 0)),
    ("if(if(a, b, c), 1, 2)", If(If(Name("a", 6), Name("b", 9), Name("c", 12), 3), Literal(D(1), 16),
                                 Literal(D(2), 19), 0)),
    ("[if(a, 1, 2)]", ListLiteral((If(Name("a", 4), Literal(D(1), 7), Literal(D(2), 10), 1),), 0)),
    # Offsets count characters, not the UTF-8 bytes Python's ast reports.
    (
        "region == 'Zürich' and x",
        BoolOp("and", (Compare(Name("region", 0), ("==",), (Literal("Zürich", 10),), 0), Name("x", 23)), 0),
    ),
    ("größe > 1", Compare(Name("größe", 0), (">",), (Literal(D(1), 8),), 0)),
    # A YAML block string is one logical line; offsets still count the line breaks.
    ("a >= 1\nand b", BoolOp("and", (Compare(Name("a", 0), (">=",), (Literal(D(1), 5),), 0), Name("b", 11)), 0)),
    ("a\r\n+ b", Binary("+", Name("a", 0), Name("b", 5), 0)),
    ("  x", Name("x", 2)),
    ("\n  x > 1 ", Compare(Name("x", 3), (">",), (Literal(D(1), 7),), 3)),
]


@pytest.mark.parametrize(("text", "expected"), ALLOWED, ids=[text for text, _ in ALLOWED])
def test_allowed_construct_gives_exact_ast(text: str, expected: Node) -> None:
    assert same(node_of(text), expected)


def test_expression_keeps_text_and_is_frozen() -> None:
    expression = parse_expression("x > 1")
    assert expression.text == "x > 1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        expression.text = "y"  # type: ignore[misc]


def test_names_are_kept_as_written_not_unicode_normalised() -> None:
    # Python's parser NFKC-normalises identifiers ("ﬁ" -> "fi"); fact keys are not normalised.
    assert parse_expression("ﬁeld > 1").names == frozenset({"ﬁeld"})


def test_string_escapes_follow_python() -> None:
    assert node_of(r"'a\tb'") == Literal("a\tb", 0)


# --- percent literals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("3.5%", "0.035"),
        ("100%", "1.00"),
        ("0.5%", "0.005"),
        ("3%", "0.03"),
        ("0%", "0.00"),
        ("150%", "1.50"),
        ("1_000%", "10.00"),
        # More digits than the default 28-digit context: still exact, nothing rounded.
        ("33.333333333333333333333333333333%", "0.33333333333333333333333333333333"),
    ],
)
def test_percent_literal_is_the_exact_decimal_over_100(text: str, exact: str) -> None:
    node = node_of(text)
    assert isinstance(node, Literal) and type(node.value) is Decimal
    assert str(node.value) == exact


def test_percent_literal_in_expressions() -> None:
    assert same(node_of("3% * x"), Binary("*", Literal(D("0.03"), 0), Name("x", 5), 0))
    assert same(node_of("-3%"), Unary("-", Literal(D("0.03"), 1), 0))
    assert same(node_of("(3%)"), Literal(D("0.03"), 1))
    assert same(node_of("min(3%, x)"), Call("min", (Literal(D("0.03"), 4), Name("x", 8)), 0))
    assert same(node_of("x>=80%"), Compare(Name("x", 0), (">=",), (Literal(D("0.80"), 3),), 0))
    assert same(node_of("[50%,x]"), ListLiteral((Literal(D("0.50"), 1), Name("x", 5)), 0))


MODULO = "the modulo operator is not supported; a percent literal is written 3.5% with no space"


@pytest.mark.parametrize(
    ("text", "offset"),
    [("3.5 %", 4), ("x % 2", 2), ("3%x", 1), ("3%(x)", 1), ("x%", 1), ("%", 0), ("3%%", 2), ("0x10%", 4)],
)
def test_percent_sign_that_is_not_a_percent_literal_is_an_error(text: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert (caught.value.message, caught.value.offset) == (MODULO, offset)


def test_percent_inside_a_string_is_just_text() -> None:
    assert node_of("'50%'") == Literal("50%", 0)


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("a + b.c * min(d, e) > 0 and true", {"a", "b.c", "d", "e"}),
        ("abs(x) in [y, 'z', false]", {"x", "y"}),
        ("x + x > x", {"x"}),
        ("if(c, a, b.d)", {"c", "a", "b.d"}),  # both branches: a fact must be present to be skipped
        ("1 + 2", set()),
        ("partner_tier.tier == 'Gold' and partner_tier.eligible", {"partner_tier.tier", "partner_tier.eligible"}),
    ],
)
def test_names_are_every_fact_read_and_nothing_else(text: str, names: set[str]) -> None:
    assert parse_expression(text).names == frozenset(names)


# --- rejections ----------------------------------------------------------------------------

REJECTED = [
    ("sum(x)", "unknown function 'sum'; allowed: abs, if, max, min", 0),
    ("x + sum(y)", "unknown function 'sum'; allowed: abs, if, max, min", 4),
    ("x.upper()", "unknown function 'x.upper'; allowed: abs, if, max, min", 0),
    ("__import__('os')", "unknown function '__import__'; allowed: abs, if, max, min", 0),
    ("1(2)", "only abs, if, max, min can be called", 0),
    ("x[0]", "subscripts are not supported", 0),
    ("1 + x[1:2]", "subscripts are not supported", 4),
    ("lambda: 1", "lambda is not supported", 0),
    ("[y for y in x]", "comprehensions are not supported", 0),
    ("{y for y in x}", "comprehensions are not supported", 0),
    ("{y: 1 for y in x}", "comprehensions are not supported", 0),
    ("min(y for y in x)", "comprehensions are not supported", 3),
    ("max(*a)", "unpacking with * is not supported", 4),
    ("__class__", "names starting with '_' are not allowed", 0),
    ("_x + 1", "names starting with '_' are not allowed", 0),
    ("a.__class__", "names starting with '_' are not allowed", 2),
    ("a.b._c", "names starting with '_' are not allowed", 4),
    ("a ** 2", "the ** operator is not supported", 2),
    ("(a)**(2)", "the ** operator is not supported", 3),
    ("a // 2", "the // operator is not supported; use /", 2),
    ("a & b", "the & operator is not supported; use and", 2),
    ("a | b", "the | operator is not supported; use or", 2),
    ("a << 1", "the << operator is not supported", 2),
    ("~a", "the ~ operator is not supported", 0),
    ("a is b", "'is' is not supported; use ==", 2),
    ("x > 1 is not y", "'is not' is not supported; use !=", 6),
    ("min(a, key=b)", "keyword arguments are not supported", 7),
    ("max(**a)", "keyword arguments are not supported", 4),
    ("abs(a, b)", "abs() takes exactly one argument (2 given)", 0),
    ("abs()", "abs() takes exactly one argument (0 given)", 0),
    ("min()", "min() needs at least one argument", 0),
    ("max(x)", "max() of a single value: write max(a, b) or max([a, b])", 4),
    ("min([])", "min() of an empty list", 4),
    ("min", "'min' is a function; call it: min(...)", 0),
    ("x + abs", "'abs' is a function; call it: abs(...)", 4),
    ("None", "None is not part of the expression language; give missing facts a value in the program's defaults", 0),
    ("x == null", "null is not part of the expression language; give missing facts a value in the program's defaults", 5),
    ("true.x", "'true' is reserved and cannot start a dotted name", 0),
    ("'x'.y", "only a name can have a dotted part, as in certifications.sales", 0),
    ("x if y else z", "conditional expressions (a if b else c) are not supported", 0),
    ("x if (y) else z", "conditional expressions (a if b else c) are not supported", 0),
    ("True if(y) else z", "conditional expressions (a if b else c) are not supported", 0),
    ("if(a, b)", "if() takes exactly three arguments, if(condition, then, else) (2 given)", 0),
    ("x + if(a, b, c, d)", "if() takes exactly three arguments, if(condition, then, else) (4 given)", 4),
    ("if()", "if() takes exactly three arguments, if(condition, then, else) (0 given)", 0),
    ("if(a, b, c=1)", "keyword arguments are not supported", 9),
    ("_f(a, b, c)", "unknown function '_f'; allowed: abs, if, max, min", 0),
    ("{'a': 1}", "dictionaries are not supported", 0),
    ("{1, 2}", "sets are not supported; write a list: [a, b]", 0),
    ("f'{x}'", "f-strings are not supported", 0),
    ("b'x'", "bytes literals are not supported", 0),
    ("(x := 1)", "the := operator is not supported", 1),
    ("[*a]", "unpacking with * is not supported", 1),
    ("await x", "await is not supported", 0),
    ("(yield)", "yield is not supported", 1),
    ("...", "'...' is not supported", 0),
    ("3j", "imaginary numbers are not supported", 0),
    ("x + 2J", "imaginary numbers are not supported", 4),
    ("0x1F", "hexadecimal numbers are not supported; write decimal numbers", 0),
    ("0o17", "octal numbers are not supported; write decimal numbers", 0),
    ("x * 0b1", "binary numbers are not supported; write decimal numbers", 4),
    ("1e101", "number is out of range (exponent beyond ±100)", 0),
    ("1e999", "number is out of range (exponent beyond ±100)", 0),
    ("x > 1e-101", "number is out of range (exponent beyond ±100)", 4),
    ("1" * 51, "number has more than 50 digits", 0),
    ("1" * 51 + "%", "number has more than 50 digits", 0),
    ("tier = 'Gold'", "'=' is not a comparison; use ==", 5),
    ("(a) = 1", "'=' is not a comparison; use ==", 4),
    ("x # note", "comments (#) are not supported", 2),
    ("a > 1 # and\nb", "comments (#) are not supported", 6),
    ("'a\nb'", "a string cannot span lines", 0),
    ("", "empty expression", 0),
    (" \n\t ", "empty expression", 0),
    ("x\0", "expression contains a NUL character", 1),
    ("x == '\ud800'", "expression contains an invalid character (a lone surrogate)", 6),
    ("x" * (MAX_LENGTH + 1), "expression is too long (2,001 characters; at most 2,000)", MAX_LENGTH),
    ("-" * (MAX_DEPTH + 20) + "x", f"expression is nested too deeply (more than {MAX_DEPTH} levels)", MAX_DEPTH),
]


@pytest.mark.parametrize(("text", "message", "offset"), REJECTED, ids=[repr(t[0])[:40] for t in REJECTED])
def test_rejected_construct_names_the_problem_and_where(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert (caught.value.message, caught.value.offset) == (message, offset)


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("a +", "syntax error: invalid syntax", 3),
        ("a b", "syntax error: invalid syntax", 2),
        ("(a b)", "syntax error: invalid syntax. Perhaps you forgot a comma?", 1),
        ("(a", "syntax error: '(' was never closed", 0),
        ("x > (3% * y", "syntax error: '(' was never closed", 4),
        ("'abc", "syntax error: unterminated string literal", 0),
        ("'a # b", "syntax error: unterminated string literal", 0),
        ("a $ b", "syntax error: invalid syntax", 2),
        ("  a +", "syntax error: invalid syntax", 5),
        ("'é' +", "syntax error: invalid syntax", 5),
        ("'é' $ b", "syntax error: invalid syntax", 4),
        ("'éé' 1", "syntax error: invalid syntax", 5),
        ("(" * 300 + "x" + ")" * 300, "syntax error: too many nested parentheses", 200),
    ],
)
def test_syntax_errors_use_the_parsers_message_and_position(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert (caught.value.message, caught.value.offset) == (message, offset)


def test_long_flat_sums_are_bounded_by_depth() -> None:
    assert parse_expression("+".join(["x"] * MAX_DEPTH)).names == frozenset({"x"})
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("+".join(["x"] * (MAX_DEPTH + 1)))


def test_non_text_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="an expression must be text, not int"):
        parse_expression(4)  # type: ignore[arg-type]


# --- fuzzing -------------------------------------------------------------------------------

VALID = [
    "revenue >= 100000 and certifications.sales >= 1",
    "3.5% * security_revenue + 500 * new_logos",
    "partner_tier.tier in ['Gold', 'Platinum'] or not eligible",
    "min(max(a, 0), [1, 2]) < abs(-x) <= 10",
    "(a + b) / 2 != 1_000.50 and region == 'Zürich'",
    "if(quota > 0, revenue / quota, 0) >= 80% and not if(a, b, c)",
]
NOISE = "()[]{}%*+-/<>=!.,:'\"#_\\ \n\tjJxeE0123456789abcdefnotandorinlambdaifTrueNone@~^&|é\0"


def test_fuzz_seeds_are_valid() -> None:
    for text in VALID:
        parse_expression(text)


def walk(node: Node) -> list[Node]:
    children: tuple[Node, ...] = ()
    for field in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, field.name)
        if isinstance(value, tuple):
            children += tuple(item for item in value if not isinstance(item, str))
        elif dataclasses.is_dataclass(value):
            children += (value,)  # type: ignore[assignment]
    return [node, *(descendant for child in children for descendant in walk(child))]


def check_parse_outcome(text: str) -> None:
    try:
        expression = parse_expression(text)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text), (text, error.offset)
        assert error.message
        return
    for node in walk(expression.node):
        assert 0 <= node.offset < len(text), (text, node)
    assert all(name and not name.startswith("_") for name in expression.names)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if kind == "insert":
            text = text[:at] + draw(st.text(alphabet=NOISE, min_size=1, max_size=3)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        else:
            text = text[:at] + text[at : at + 8] + text[at:]
    return text


FUZZ = settings(max_examples=300, deadline=timedelta(milliseconds=500), suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text())
def test_fuzz_arbitrary_text_parses_or_raises_expression_error(text: str) -> None:
    check_parse_outcome(text)


@FUZZ
@given(mutated())
def test_fuzz_mutated_expressions_parse_or_raise_expression_error(text: str) -> None:
    check_parse_outcome(text)


@FUZZ
@given(st.text(alphabet=NOISE, max_size=60))
def test_fuzz_operator_soup_parses_or_raises_expression_error(text: str) -> None:
    check_parse_outcome(text)
