"""The generated matcher answers exactly as the closures do, or hands the record to them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incentives.errors import EvaluationError
from incentives.rules.backend import Condition
from incentives.rules.closures import CompiledMatcher, compile_expression
from incentives.rules.compiled import TABLE_LIMIT, CompiledBackend, GeneratedMatcher
from incentives.rules.expressions import parse_expression

SHAPES = [
    "nps >= 50", "nps < 4.5%", "-5 <= nps", "nps > -5", "status == 'active'", "status != 'active'",
    "flag == true", "nps == 50", "segment in ['smb', 'commercial']", "segment not in ['smb']",
    "nps in [1, 2.0, 3]", "nps not in [1]", "flag", "not flag", "flag and nps >= 50",
    "status == 'active' or nps > 10", "not (nps >= 50 and segment == 'smb')", "nps * 2 >= 100",
    "0 < nps <= 100", "status >= 'b'", "nps in ['1', 1]", "segment in 'smb commercial'", "true", "false",
    "abs(nps) > 3", "joined == joined", "if(flag, nps >= 50, status == 'active')",
    "if(status == 'active', 1, 0) > 0", "if(nps > 0, 100 / nps >= 2, false)", "if(nps, flag, true)",
]

VALUES = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-200, max_value=200),
    st.sampled_from([D("50"), D("50.00"), D("1"), D("2"), D("0.045"), D("NaN"), D("sNaN"), True, False, None,
                     "active", "smb", "commercial", "a", "b", "", "1", date(2027, 1, 1), ("smb",), ()]),
)
FACTS = st.dictionaries(st.sampled_from(["nps", "status", "flag", "segment", "joined"]), VALUES)


def conditions(*texts: str) -> list[Condition]:
    return [Condition(f"r{index}", parse_expression(text)) for index, text in enumerate(texts)]


def closures_answer(texts: tuple[str, ...], facts: dict[str, Any]) -> Any:
    """What the closures, one rule at a time, answer or raise: the reference."""
    matcher = CompiledMatcher([(condition.rule_id, compile_expression(condition.expression.node))
                               for condition in conditions(*texts)])
    try:
        return matcher.matching(facts)
    except EvaluationError as error:
        return ("error", str(error))
    except ArithmeticError as error:  # a signalling NaN in ``in``: the engine makes it the record's error
        return ("arithmetic", type(error).__name__)


def generated_answer(texts: tuple[str, ...], facts: dict[str, Any]) -> Any:
    try:
        return GeneratedMatcher(conditions(*texts)).matching(facts)
    except EvaluationError as error:
        return ("error", str(error))
    except ArithmeticError as error:
        return ("arithmetic", type(error).__name__)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SHAPES), min_size=0, max_size=TABLE_LIMIT + 3, unique=True), FACTS)
def test_generated_matcher_answers_or_raises_as_the_closures_do(texts, facts):
    assert generated_answer(tuple(texts), facts) == closures_answer(tuple(texts), facts)


def test_inline_shapes_answer_without_the_closures(monkeypatch):
    def handed_over(self, facts):
        raise AssertionError(f"handed over to the closures: {facts}")

    monkeypatch.setattr(CompiledMatcher, "matching", handed_over)
    matcher = GeneratedMatcher(conditions("nps >= 50", "status == 'active'", "segment in ['smb']", "flag"))
    assert matcher.matching({"nps": D("50.00"), "status": "active", "segment": "smb", "flag": True}) == {
        "r0", "r1", "r2", "r3"}
    assert matcher.matching({"nps": D("49.99"), "status": "Active", "segment": ("smb",), "flag": False}) == set()


def test_a_boolean_if_is_inline_and_evaluates_only_the_branch_it_takes(monkeypatch):
    def handed_over(self, facts):
        raise AssertionError(f"handed over to the closures: {facts}")

    monkeypatch.setattr(CompiledMatcher, "matching", handed_over)
    matcher = GeneratedMatcher(conditions("if(flag, nps >= 50, status == 'active')"))
    assert matcher.matching({"flag": True, "nps": D(50)}) == {"r0"}  # status is never read
    assert matcher.matching({"flag": False, "status": "active"}) == {"r0"}  # nor nps
    assert matcher.matching({"flag": False, "status": "lapsed", "nps": "not a number"}) == set()


def test_a_non_boolean_if_condition_is_reported_by_the_closures():
    matcher = GeneratedMatcher(conditions("if(nps, flag, true)"))
    with pytest.raises(EvaluationError) as caught:
        matcher.matching({"nps": D(1), "flag": True})
    assert str(caught.value) == "rule 'r0': if() needs a true or false condition, got number 1"


def test_a_value_of_the_wrong_type_is_reported_by_the_closures():
    matcher = GeneratedMatcher(conditions("status == 'active'", "nps >= 50"))
    with pytest.raises(EvaluationError) as caught:
        matcher.matching({"status": "active", "nps": "50"})
    assert str(caught.value) == ("rule 'r1': cannot compare text '50' >= number 50: "
                                 "only two numbers, two texts or two dates can be ordered")


def test_a_short_circuited_operand_is_not_checked():
    matcher = GeneratedMatcher(conditions("status == 'active' or nps >= 50"))
    assert matcher.matching({"status": "active", "nps": "not a number"}) == {"r0"}
    assert matcher.matching({"status": "active"}) == {"r0"}  # nps missing, never read


def test_more_conditions_than_the_table_holds_and_none_at_all():
    texts = [f"nps >= {threshold}" for threshold in range(TABLE_LIMIT + 2)]
    matcher = GeneratedMatcher(conditions(*texts))
    assert matcher.matching({"nps": D("3")}) == {"r0", "r1", "r2", "r3"}
    assert GeneratedMatcher([]).matching({}) == frozenset()


def test_program_text_never_reaches_the_generated_source():
    quote = "x') or __import__('os').system('exit 1') or ('"
    matcher = GeneratedMatcher(conditions(f"status == {quote!r}", "status in ['\\n    return 1']"))
    assert matcher.matching({"status": quote}) == {"r0"}
    assert matcher.matching({"status": "\n    return 1"}) == {"r1"}


def test_the_compiled_backend_matches_with_the_generated_function():
    matcher = CompiledBackend().compile(conditions("nps >= 50"), ruleset_name="test")
    assert isinstance(matcher, GeneratedMatcher)
    assert matcher.matching({"nps": D("51")}) == {"r0"}
