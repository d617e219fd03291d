"""Checks at load: an expression certain to fail for every partner is found before any record is read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from incentives.errors import EvaluationError
from incentives.rules.checks import BOOLEAN, LIST, NUMBER, TEXT, check_expression
from incentives.rules.closures import compile_expression
from incentives.rules.expressions import parse_expression

ORDER = "only two numbers, two texts or two dates can be ordered"


def findings(text: str, expected: str | None = None) -> list[tuple[int, str]]:
    checked = check_expression(parse_expression(text).node, {"is_big": BOOLEAN, "ratio": NUMBER},
                               expected=expected, place="'amount'")
    return [(finding.offset, finding.message) for finding in checked.findings]


@pytest.mark.parametrize(("text", "offset", "message"), [
    # the example: a comparison's result is a boolean for every partner
    ("(rev_att >= 80%) * 2", 1, "cannot multiply a comparison's result (true or false): '*' needs two numbers"),
    ("x + 'a'", 4, "cannot add the text 'a': '+' needs two numbers"),
    ("(a and b) - 1", 1, "cannot subtract the result of 'and' (true or false): '-' needs two numbers"),
    ("is_big / 2", 0, "cannot divide metric 'is_big' (true or false): '/' needs two numbers"),
    ("[1, 2] * 2", 0, "cannot multiply a list: '*' needs two numbers"),
    ("x / (2 - 2)", 5, "division by zero: the divisor is always 0"),
    ("-'a'", 1, "unary '-' needs a number, not the text 'a'"),
    ("not 5", 4, "'not' needs true or false, not the number 5"),
    ("x > 1 and 2%", 10, "'and' needs true or false operands, not the number 0.02"),
    ("x or ratio", 5, "'or' needs true or false operands, not metric 'ratio' (a number)"),
    ("5 < 'a'", 0, f"cannot compare the number 5 < the text 'a': {ORDER}"),
    ("x < -5 <= 'a'", 4, f"cannot compare the number -5 <= the text 'a': {ORDER}"),
    ("is_big < x", 0, f"cannot order metric 'is_big' (true or false): {ORDER}"),
    ("x >= [1]", 5, f"cannot order a list: {ORDER}"),
    ("x in 5", 5, "'in' needs a list or a text on its right, not the number 5"),
    ("5 not in 'abc'", 0, "cannot look for the number 5 in a text: only text is found in text"),
    ("min(x, true)", 7, "min() needs numbers, not the boolean true"),
    ("abs(x > 1)", 4, "abs() needs numbers, not a comparison's result (true or false)"),
    ("if(1, x, y)", 3, "if() needs a true or false condition, not the number 1"),
    ("if(c, 1, 2) < 'b'", 0, f"cannot compare the result of if() (a number) < the text 'b': {ORDER}"),
])
def test_a_certain_failure_is_found_at_its_operand(text, offset, message):
    assert findings(text) == [(offset, f"certain to fail: {message}")]


@pytest.mark.parametrize(("text", "message"), [
    ("5 == 'a'", "always false: the number 5 == the text 'a' compares values of different types, which are never equal"),
    ("is_big != 1", "always true: metric 'is_big' (true or false) != the number 1 compares values of different "
                    "types, which are never equal"),
])
def test_an_equality_between_two_types_is_found(text, message):
    assert findings(text) == [(0, message)]


@pytest.mark.parametrize(("text", "expected", "message"), [
    ("revenue + 1", BOOLEAN, "a condition must be true or false, not the result of '+' (a number)"),
    ("'gold'", BOOLEAN, "a condition must be true or false, not the text 'gold'"),
    ("ratio", BOOLEAN, "a condition must be true or false, not metric 'ratio' (a number)"),
    ("revenue > 1", NUMBER, "'amount' must be a number, not a comparison's result (true or false)"),
    ("if(c, 'a', 'b')", NUMBER, "'amount' must be a number, not the result of if() (a text)"),
])
def test_a_value_of_the_wrong_type_for_its_place_is_found(text, expected, message):
    assert findings(text, expected) == [(0, f"certain to fail: {message}")]


@pytest.mark.parametrize("text", [
    "revenue * 2",  # a fact's type is known only per record
    "revenue / quota >= 80%",
    "status == 5",
    "region in 'EMEA APAC'",
    "x in [1, 'a']",
    "'a' in 'abc'",
    "ratio * 2 > 1 and is_big",
    "is_big == true",
    "if(c, 1, 'a') > 'b'",  # the branch taken decides
    "if(false, 1 * true, 2) > 1",  # the branch not taken is never evaluated
    "if(1 > 2, 'a' + 1, 3) > 1",
    "false and 1 * true",  # nor an operand after a constant that decides 'and'
    "true or not 5",
    "x / 2",
    "min(if(c, x, y), 3)",
])
def test_what_may_succeed_is_not_a_finding(text):
    assert findings(text) == []


def test_every_certain_failure_in_an_expression_is_found_in_text_order():
    assert findings("(a > 1) * 2 + -'x'", BOOLEAN) == [
        (0, "certain to fail: a condition must be true or false, not the result of '+' (a number)"),
        (1, "certain to fail: cannot multiply a comparison's result (true or false): '*' needs two numbers"),
        (15, "certain to fail: unary '-' needs a number, not the text 'x'"),
    ]


@pytest.mark.parametrize(("text", "kind"), [
    ("1 + x", NUMBER), ("x > 1", BOOLEAN), ("'a'", TEXT), ("[x]", LIST), ("x", None), ("is_big", BOOLEAN),
    ("if(c, 1, 2)", NUMBER), ("if(c, 1, 'a')", None), ("if(true, 'a', 1)", TEXT), ("not x", BOOLEAN),
])
def test_static_types(text, kind):
    assert check_expression(parse_expression(text).node, {"is_big": BOOLEAN}).kind == kind


@pytest.mark.parametrize("text", ["(x > 1) * 2", "-'a'", "not 5", "5 < 'a'", "min(x, true)", "if(1, x, y)",
                                  "x in 5", "x / (2 - 2)"])
@pytest.mark.parametrize("x", [Decimal(3), "a", True])
def test_what_is_found_does_fail_at_run_time(text, x):
    with pytest.raises(EvaluationError):
        compile_expression(parse_expression(text).node)({"x": x, "y": x})
