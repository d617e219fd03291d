"""The compiled backend: exact, strict evaluation of expressions, and rule matching."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal, getcontext, localcontext
from typing import Any

import pytest

from incentives.errors import EvaluationError
from incentives.rules.ast import Binary, Call, Compare, Literal, Name
from incentives.rules.backend import Condition
from incentives.rules.closures import compile_expression
from incentives.rules.compiled import CompiledBackend
from incentives.rules.expressions import parse_expression

D = Decimal


def evaluate(text: str, facts: Mapping[str, Any] | None = None) -> Any:
    return compile_expression(parse_expression(text).node)(facts or {})


def fails(text: str, facts: Mapping[str, Any] | None = None) -> str:
    with pytest.raises(EvaluationError) as caught:
        evaluate(text, facts)
    return str(caught.value)


class CountingFacts(Mapping[str, Any]):
    """Records every read, to observe evaluation order and short-circuits."""

    def __init__(self, facts: dict[str, Any]):
        self.facts = facts
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.reads.append(key)
        return self.facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.facts)

    def __len__(self) -> int:
        return len(self.facts)


# --- arithmetic ----------------------------------------------------------------------------


def test_decimal_arithmetic_is_exact() -> None:
    assert evaluate("0.1 + 0.2 == 0.3") is True
    assert str(evaluate("0.1 + 0.2")) == "0.3"


def test_percent_of_a_fact_is_exact() -> None:
    amount = evaluate("3% * security_revenue", {"security_revenue": D("612500")})
    assert type(amount) is Decimal
    assert amount == D("18375.00")
    assert str(evaluate("3.5% * 612500")) == "21437.500"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("-2 * 3", "-6"),
        ("10 - 2 - 3", "5"),
        ("100 / 10 / 4", "2.5"),
        ("+x", "7.50"),
        ("-x", "-7.50"),
        ("x - 7.5", "0.00"),
        ("1 / 3", "0.3333333333333333333333333333"),
    ],
)
def test_arithmetic(text: str, value: str) -> None:
    result = evaluate(text, {"x": D("7.50")})
    assert type(result) is Decimal and str(result) == value


def test_division_uses_the_current_decimal_context_and_leaves_it_alone() -> None:
    with localcontext() as context:
        context.prec = 5
        assert str(evaluate("x / 3", {"x": D(1)})) == "0.33333"
        assert str(evaluate("x * 3 + 1", {"x": D("1234.567")})) == "3704.701"  # exact: 7 digits at precision 5
    assert getcontext().prec == 28
    assert str(evaluate("x / 3", {"x": D(1)})) == "0.3333333333333333333333333333"


@pytest.mark.parametrize(
    ("text", "facts", "message"),
    [
        ("x + 5", {"x": "x"}, "cannot add text 'x' and number 5: '+' needs two numbers"),
        ("5 - x", {"x": True}, "cannot subtract number 5 and boolean true: '-' needs two numbers"),
        ("true * 2", {}, "cannot multiply boolean true and number 2: '*' needs two numbers"),
        ("x / 2", {"x": date(2027, 1, 1)}, "cannot divide date 2027-01-01 and number 2: '/' needs two numbers"),
        ("x + 1", {"x": None}, "cannot add no value (None) and number 1: '+' needs two numbers"),
        # The engine hands over Decimals; an int is a bug upstream, not silently a number.
        ("x + 1", {"x": 1}, "cannot add int 1 and number 1: '+' needs two numbers"),
        ("[1] + [2]", {}, "cannot add list [number 1] and list [number 2]: '+' needs two numbers"),
        ("-x", {"x": "a"}, "unary '-' needs a number, got text 'a'"),
        ("+x", {"x": False}, "unary '+' needs a number, got boolean false"),
    ],
)
def test_arithmetic_needs_two_decimals(text: str, facts: dict[str, Any], message: str) -> None:
    assert fails(text, facts) == message


def test_division_by_zero_is_an_evaluation_error() -> None:
    assert fails("x / y", {"x": D(5), "y": D("0.00")}) == "division by zero: number 5 / 0"
    assert fails("1 / 0") == "division by zero: number 1 / 0"


def test_literal_division_by_zero_fails_at_evaluation_not_compilation() -> None:
    evaluator = compile_expression(parse_expression("1 / 0 > x").node)
    with pytest.raises(EvaluationError, match="division by zero"):
        evaluator({"x": D(1)})


def test_decimal_signals_become_evaluation_errors() -> None:
    assert fails("x / y", {"x": D("1e999999"), "y": D("0.1")}) == "1E+999999 / 0.1 failed: Overflow"
    assert "failed: InvalidOperation" in fails("x < 1", {"x": D("NaN")})


def test_sums_differences_and_products_keep_every_digit() -> None:
    # 30 and 31 significant digits: Python's default context (28) would round each of these.
    big = D("123456789012345678901234567890.12")
    assert evaluate("x + 0.01", {"x": big}) == D("123456789012345678901234567890.13")
    assert evaluate("x - 0.02", {"x": big}) == D("123456789012345678901234567890.10")
    assert evaluate("x * 3", {"x": big}) == D("370370367037037036703703703670.36")
    assert evaluate("-x", {"x": big}) == D("-123456789012345678901234567890.12")
    assert evaluate("abs(0 - x)", {"x": big}) == big
    # division keeps the thread's context: 28 significant digits
    assert evaluate("1 / 3") == D("0.3333333333333333333333333333")


# --- comparisons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("3 > 2 >= 2", True),
        ("2 <= 1", False),
        ("'a' < 'b'", True),
        ("'b' <= 'a'", False),
        ("d1 < d2", True),
        ("d2 <= d1", False),
        ("1 == 1.00", True),
        ("1 != 1.00", False),
        ("true == 1", False),
        ("1 != true", True),
        ("'1' == 1", False),
        ("[1, 2] == [1.0, 2.00]", True),
        ("[true] == [1]", False),
        ("[1] == [1, 1]", False),
        ("d1 == d1", True),
        ("none1 == none2", True),
        ("none1 != 0", True),
        ("'Gold' in ['Silver', 'Gold']", True),
        ("'Gold' not in ['Silver', 'Gold']", False),
        ("x in [1, 2]", True),
        ("true in [1]", False),
        ("1 in [true]", False),
        ("'old' in 'Gold'", True),
        ("'Old' in 'Gold'", False),
        ("'b' in allowed", True),
        ("'c' not in allowed", True),
        ("[1] in [[1.0], [2]]", True),
    ],
)
def test_comparisons(text: str, expected: bool) -> None:
    facts = {
        "d1": date(2027, 1, 1),
        "d2": date(2027, 3, 31),
        "x": D("1.00"),
        "none1": None,
        "none2": None,
        "allowed": ("a", "b"),
    }
    assert evaluate(text, facts) is expected


def test_chain_reads_the_middle_once_and_stops_at_the_first_false_link() -> None:
    facts = CountingFacts({"x": D(5), "y": D(1)})
    assert evaluate("1 < x < 10", facts) is True
    assert facts.reads == ["x"]
    # Python's chain semantics: after 2 < 1 fails, 1 < 'a' is never compared.
    assert evaluate("2 < y < 'a'", facts) is False


@pytest.mark.parametrize(
    ("text", "facts", "message"),
    [
        (
            "x < 1",
            {"x": "a"},
            "cannot compare text 'a' < number 1: only two numbers, two texts or two dates can be ordered",
        ),
        (
            "true >= 1",
            {},
            "cannot compare boolean true >= number 1: only two numbers, two texts or two dates can be ordered",
        ),
        (
            "d > 0",
            {"d": date(2027, 1, 1)},
            "cannot compare date 2027-01-01 > number 0: only two numbers, two texts or two dates can be ordered",
        ),
        (
            "x <= 1",
            {"x": None},
            "cannot compare no value (None) <= number 1: only two numbers, two texts or two dates can be ordered",
        ),
        ("1 in 'abc'", {}, "cannot look for number 1 in text 'abc': only text is found in text"),
        ("x in 5", {"x": D(5)}, "'in' needs a list or a text on its right, got number 5"),
        ("x not in y", {"x": D(5), "y": True}, "'in' needs a list or a text on its right, got boolean true"),
    ],
)
def test_comparison_type_errors(text: str, facts: dict[str, Any], message: str) -> None:
    assert fails(text, facts) == message


# --- booleans ------------------------------------------------------------------------------


def test_and_or_short_circuit_without_reading_the_rest() -> None:
    facts = CountingFacts({"y": "not a boolean"})
    assert evaluate("false and x", facts) is False
    assert evaluate("true or x", facts) is True
    assert evaluate("1 > 2 and y", facts) is False
    assert evaluate("1 < 2 or y", facts) is True
    assert facts.reads == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true and true", True),
        ("true and false", False),
        ("false or false", False),
        ("false or true", True),
        ("true and true and false", False),
        ("false or false or true", True),
        ("not false", True),
        ("not true", False),
        ("not 1 > 2 and 2 > 1", True),
    ],
)
def test_boolean_operators(text: str, expected: bool) -> None:
    assert evaluate(text) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("true and 'a'", "'and' needs true or false operands, got text 'a'"),
        ("1 or true", "'or' needs true or false operands, got number 1"),
        ("false or x", "'or' needs true or false operands, got no value (None)"),
        ("not 1", "'not' needs true or false, got number 1"),
    ],
)
def test_boolean_operators_need_booleans(text: str, message: str) -> None:
    assert fails(text, {"x": None}) == message


# --- functions, lists, names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("min(3, 1, 2)", "1"),
        ("max([3, 1, 2])", "3"),
        ("min([x])", "7"),
        ("max(x, 100)", "100"),
        ("abs(-2.5)", "2.5"),
        ("abs(x - 10)", "3"),
        ("max(1.0, 1)", "1.0"),
        ("min(1, 1.0)", "1"),
    ],
)
def test_functions(text: str, value: str) -> None:
    assert str(evaluate(text, {"x": D(7)})) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abs(true)", "abs() needs numbers, got boolean true"),
        ("min(1, 'a')", "min() needs numbers, got text 'a'"),
        ("max(x, 1)", "max() needs numbers, got date 2027-01-01"),
    ],
)
def test_functions_need_numbers(text: str, message: str) -> None:
    assert fails(text, {"x": date(2027, 1, 1)}) == message


# --- if() ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "value"),
    [
        ({"actual": D(90), "target": D(120)}, D("0.75")),  # 90 / 120 = 0.75
        ({"actual": D(90), "target": D(0)}, D(0)),  # the division is never evaluated
    ],
)
def test_if_evaluates_only_the_branch_it_takes(facts: dict[str, Any], value: Decimal) -> None:
    counting = CountingFacts(facts)
    assert evaluate("if(target > 0, actual / target, 0)", counting) == value
    assert counting.reads == (["target", "actual", "target"] if facts["target"] else ["target"])


def test_if_gives_the_branchs_value_of_any_type() -> None:
    assert evaluate("if(x > 1, 'big', 'small')", {"x": D(2)}) == "big"
    assert evaluate("if(x > 1, 'big', 'small')", {"x": D(1)}) == "small"
    # 2 * 1.5 + 1 = 4: an if() is an operand like any other
    assert evaluate("if(gold, 1.5, 1) * x + 1", {"gold": True, "x": D(2)}) == D(4)
    assert evaluate("if(true, 1, 2)") == D(1)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("1", "if() needs a true or false condition, got number 1"),
        ("x", "if() needs a true or false condition, got text 'yes'"),
        ("none", "if() needs a true or false condition, got no value (None)"),
    ],
)
def test_if_needs_a_boolean_condition(condition: str, message: str) -> None:
    assert fails(f"if({condition}, 1, 2)", {"x": "yes", "none": None}) == message


def test_a_non_boolean_if_condition_in_a_rule_names_the_rule() -> None:
    matcher = CompiledBackend().compile(conditions(kicker="if(region, nps > 50, false)"), ruleset_name="r")
    with pytest.raises(EvaluationError) as caught:
        matcher.matching({"region": "EMEA", "nps": D(60)})
    assert str(caught.value) == "rule 'kicker': if() needs a true or false condition, got text 'EMEA'"


def test_list_literal_is_a_tuple_of_values() -> None:
    assert evaluate("[1, 'a', x]", {"x": True}) == (D(1), "a", True)


def test_missing_fact_is_an_evaluation_error() -> None:
    assert fails("x + 1") == "missing fact 'x'"
    assert fails("certifications.sales >= 1") == "missing fact 'certifications.sales'"


def test_dotted_names_are_single_keys() -> None:
    assert evaluate("partner_tier.tier == 'Gold'", {"partner_tier.tier": "Gold"}) is True


def test_hand_built_nodes_compile() -> None:
    node = Compare(Binary("*", Literal(D("0.5")), Name("x")), ("<", "<"), (Name("y"), Call("max", (Name("y"), Literal(D(9))))))
    evaluator = compile_expression(node)
    assert evaluator({"x": D(4), "y": D(3)}) is True
    assert evaluator({"x": D(8), "y": D(3)}) is False


def test_compile_rejects_foreign_objects() -> None:
    with pytest.raises(TypeError):
        compile_expression("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        compile_expression(Call("abs", (Literal(D(1)), Literal(D(2)))))


def test_constant_subtrees_are_folded_once() -> None:
    # A folded subtree hands out the very same value object on every evaluation.
    evaluator = compile_expression(parse_expression("[1, 2 + 3]").node)
    assert evaluator({}) == (D(1), D(5))
    assert evaluator({}) is evaluator({})
    mixed = compile_expression(parse_expression("[x, 2 + 3]").node)
    assert mixed({"x": D(1)})[1] is mixed({"x": D(2)})[1]


# --- the backend ---------------------------------------------------------------------------


def conditions(**rules: str) -> list[Condition]:
    return [Condition(rule_id, parse_expression(text)) for rule_id, text in rules.items()]


def test_backend_returns_the_ids_of_the_conditions_that_hold() -> None:
    backend = CompiledBackend()
    assert backend.name == "compiled"
    matcher = backend.compile(
        conditions(
            silver="revenue >= 100000",
            gold="revenue >= 500000",
            certified="certifications.sales >= 1",
            emea="region in ['EMEA', 'APAC']",
        ),
        ruleset_name="partner_tier_v1",
    )
    facts = {"revenue": D("250000"), "certifications.sales": D(2), "region": "AMER"}
    assert matcher.matching(facts) == frozenset({"silver", "certified"})
    assert matcher.matching({**facts, "revenue": D(0), "region": "EMEA"}) == frozenset({"certified", "emea"})


def test_backend_with_no_conditions_matches_nothing() -> None:
    assert CompiledBackend().compile([], ruleset_name="empty").matching({}) == frozenset()


def test_backend_rejects_a_non_boolean_condition_naming_the_rule() -> None:
    matcher = CompiledBackend().compile(conditions(ok="true", double="revenue * 2"), ruleset_name="r")
    with pytest.raises(EvaluationError) as caught:
        matcher.matching({"revenue": D(5)})
    assert str(caught.value) == "rule 'double' must be true or false, got number 10"


def test_backend_prefixes_evaluation_errors_with_the_rule() -> None:
    matcher = CompiledBackend().compile(conditions(nps="nps >= 50"), ruleset_name="r")
    with pytest.raises(EvaluationError) as caught:
        matcher.matching({"nps": "high"})
    assert str(caught.value) == (
        "rule 'nps': cannot compare text 'high' >= number 50: only two numbers, two texts or two dates can be ordered"
    )
    with pytest.raises(EvaluationError, match="^rule 'nps': missing fact 'nps'$"):
        matcher.matching({})


@pytest.mark.parametrize("text, facts", [
    ("x < 2", {"x": D(1)}), ("x >= 2", {"x": D(1)}), ("1 < x <= 3", {"x": D(2)}), ("x == 'a'", {"x": "a"}),
    ("x != 1", {"x": True}), ("x == [1, 2]", {"x": (D(1), D(2))}), ("x in [1, 2]", {"x": D(3)}),
    ("'b' in x", {"x": "abc"}), ("x not in ['a']", {"x": "b"}), ("not x", {"x": False}),
    ("x and y", {"x": True, "y": False}), ("x or y", {"x": False, "y": True}), ("1 < 2", {}), ("true", {}),
    ("x * 2 > 1", {"x": D(1)}), ("min(x, 2) == 1", {"x": D(1)}),
])
def test_comparisons_and_logic_give_a_bool(text: str, facts: dict[str, Any]) -> None:
    """Comparisons, ``and``/``or`` and ``not`` give a ``bool``, never a merely truthy value."""
    assert type(compile_expression(parse_expression(text).node)(facts)) is bool


def test_backend_rejects_a_non_boolean_name_among_boolean_conditions() -> None:
    matcher = CompiledBackend().compile(conditions(ok="x >= 1", flag="flag"), ruleset_name="r")
    assert matcher.matching({"x": D(1), "flag": True}) == frozenset({"ok", "flag"})
    with pytest.raises(EvaluationError, match="^rule 'flag' must be true or false, got number 1$"):
        matcher.matching({"x": D(1), "flag": D(1)})


def test_a_single_condition_matches_like_many() -> None:
    matcher = CompiledBackend().compile(conditions(flag="flag"), ruleset_name="r")
    assert matcher.matching({"flag": True}) == frozenset({"flag"})
    assert matcher.matching({"flag": False}) == frozenset()
    with pytest.raises(EvaluationError, match="^rule 'flag' must be true or false, got number 1$"):
        matcher.matching({"flag": D(1)})
    with pytest.raises(EvaluationError, match="^rule 'flag': missing fact 'flag'$"):
        matcher.matching({})


def test_backend_rejects_duplicate_rule_ids() -> None:
    duplicated = [*conditions(a="true"), *conditions(a="false")]
    with pytest.raises(ValueError, match="duplicate rule ids in r: a"):
        CompiledBackend().compile(duplicated, ruleset_name="r")


def test_close_is_an_idempotent_no_op() -> None:
    matcher = CompiledBackend().compile(conditions(a="true"), ruleset_name="r")
    matcher.close()
    matcher.close()
    assert matcher.matching({}) == frozenset({"a"})
