"""The durable_rules backend: exact thresholds, parity with the compiled backend, and every
sharp edge of durable_rules 2.0.28 that the backend guards against (see docs/durable.md).

Tests named ``test_upstream_*`` pin durable_rules' own behaviour — the reason for a guard;
the test next to each shows our matcher is not affected by it.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date
from decimal import Decimal as D
from typing import Any, Callable, Iterator, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import program_text
from incentives.errors import EvaluationError, IncentivesError
from incentives.rules import durable as durable_module
from incentives.rules.backend import Condition
from incentives.rules.compiled import CompiledBackend
from incentives.rules.durable import LIMITS, DurableBackend, DurableMatcher, DurableUnavailableError
from incentives.rules.expressions import parse_expression

Outcome = frozenset[str] | str


def _unavailable() -> str | None:
    try:
        durable_module._durable()
    except DurableUnavailableError as error:
        return str(error)
    return None


DURABLE_UNAVAILABLE = _unavailable()


def runs_without_durable(test: Callable[..., None]) -> Callable[..., None]:
    """Marks the import-guard tests: they also run where durable_rules does not import (3.13)."""
    test.runs_without_durable = True  # type: ignore[attr-defined]
    return test


@pytest.fixture(autouse=True)
def _skip_without_durable(request: pytest.FixtureRequest) -> None:
    if DURABLE_UNAVAILABLE and not getattr(request.function, "runs_without_durable", False):
        pytest.skip(DURABLE_UNAVAILABLE)


def conditions(**texts: str) -> list[Condition]:
    return [Condition(rule_id, parse_expression(text)) for rule_id, text in texts.items()]


@pytest.fixture
def durable() -> Iterator[Callable[..., DurableMatcher]]:
    """Compile conditions into a durable matcher that is closed after the test."""
    made: list[DurableMatcher] = []

    def compile_(conds: list[Condition], name: str = "test") -> DurableMatcher:
        made.append(DurableBackend().compile(conds, ruleset_name=name))
        return made[-1]

    yield compile_
    for matcher in made:
        matcher.close()


def outcome(matcher: Any, facts: Mapping[str, Any]) -> Outcome:
    try:
        return matcher.matching(facts)
    except EvaluationError as error:
        return f"error: {error}"


def compiled_outcome(conds: list[Condition], facts: Mapping[str, Any]) -> Outcome:
    return outcome(CompiledBackend().compile(conds, ruleset_name="reference"), facts)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


# --- exact thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize(("revenue", "holds"), [
    ("99999.99", False),
    ("99999.999999999999999999", False),
    ("100000", True),
    ("100000.00", True),
    ("100000.000000000000000001", True),
])
def test_threshold_boundary_is_exact(durable, revenue, holds):
    matcher = durable(conditions(silver="revenue >= 100000", below="revenue < 100000", at="revenue == 100000"))
    fired = matcher.matching({"revenue": D(revenue)})
    assert ("silver" in fired) is holds
    assert ("below" in fired) is not holds
    assert ("at" in fired) is (D(revenue) == 100000)


def test_decimal_arithmetic_is_exact_where_doubles_are_not(durable):
    matcher = durable(conditions(
        sum_equal="a + b == 0.3",          # 0.1 + 0.2 != 0.3 in doubles
        sum_above="a + b > 0.3",
        grown="revenue * 1.1 >= 110",      # 100 * 1.1 > 110 in doubles
        grown_above="revenue * 1.1 > 110",
    ))
    fired = matcher.matching({"a": D("0.1"), "b": D("0.2"), "revenue": D("100")})
    assert fired == {"sum_equal", "grown"}


@pytest.mark.parametrize(("value", "holds"), [
    (D(2**53), False),                     # 2**53 + 1 rounds to 2**53 as a double
    (D(2**53 + 1), True),
    (D("12345678901234567890123456789"), False),
    (D("12345678901234567890123456790"), True),
    (D("1E-40"), False),
    (D("-1E+50"), False),
])
def test_huge_and_tiny_values_compare_exactly(durable, value, holds):
    matcher = durable(conditions(
        big="x == 9007199254740993 or x > 12345678901234567890123456789",
        tiny="x < 1E-40 and x > 0",
    ))
    assert ("big" in matcher.matching({"x": value})) is holds
    assert "tiny" not in matcher.matching({"x": value})
    assert matcher.matching({"x": D("1E-41")}) == {"tiny"}


def test_only_small_integers_are_posted(durable, monkeypatch):
    posted: list[dict[str, Any]] = []
    matcher = durable(conditions(num="x >= 100000.01", text="tier in ['Gold', 'Silver']", flag="certified",
                                 arithmetic="x * 3% > y"))
    engine = matcher._engine
    real = engine.assert_fact

    def spy(handle: int, fact: str) -> Any:
        posted.append(json.loads(fact))
        return real(handle, fact)

    monkeypatch.setattr(engine, "assert_fact", spy)
    matcher.matching({"x": D("100000.01"), "y": D("1"), "tier": "Gold", "certified": True})
    [fact] = posted
    values = {key: value for key, value in fact.items() if key != "sid"}
    assert all(type(value) is int and 0 <= value < 2**31 for value in values.values()), fact


def test_strings_are_never_compared_with_numbers(durable):
    # In durable '10' < 9 holds; here a text compared with a number is the compiled backend's error.
    conds = conditions(low="x < 9", ten="x == 10")
    matcher = durable(conds)
    facts = {"x": "10"}
    assert outcome(matcher, facts) == compiled_outcome(conds, facts)
    assert outcome(matcher, facts).startswith("error: rule 'low': cannot compare text '10' < number 9")
    assert durable(conditions(ten="x == 10")).matching(facts) == frozenset()


# --- the language, by hand ------------------------------------------------------------------------

LANGUAGE = conditions(
    band="100000 <= revenue < 500000",
    outside="not (100000 <= revenue < 500000)",
    swapped="500000 <= revenue",
    region="region in ['EMEA', 'APAC']",
    not_region="region not in ['EMEA', 'EMEA']",
    text_order="region < 'B'",
    certified="certified",
    uncertified="not certified",
    equal_true="certified == true",
    either="nps >= 50 or certified",
    neither="not (nps >= 50 or certified)",
    negative="revenue > -5",
    listed="revenue in [1, 1.0, 100000.00]",
    two_facts="revenue > quota",
    ratio="revenue / quota >= 150%",
    smallest="min(revenue, quota) >= 100000",
    constant="1 < 2",
)

BY_HAND = [
    ({"revenue": D("100000"), "quota": D("50000"), "region": "EMEA", "certified": True, "nps": D("10")},
     {"band", "region", "certified", "equal_true", "either", "negative",
      "listed", "two_facts", "ratio", "constant"}),
    ({"revenue": D("500000"), "quota": D("500000"), "region": "US", "certified": False, "nps": D("50")},
     {"outside", "swapped", "not_region", "uncertified", "either", "negative", "smallest", "constant"}),
    ({"revenue": D("1.00"), "quota": D("0.5"), "region": "APAC", "certified": False, "nps": D("49.99")},
     {"outside", "region", "not_region", "text_order", "uncertified", "neither", "negative", "listed", "two_facts",
      "ratio", "constant"}),
]


@pytest.mark.parametrize(("facts", "expected"), BY_HAND)
def test_hand_computed_matches(durable, facts, expected):
    matcher = durable(LANGUAGE)
    assert matcher.matching(facts) == expected
    assert compiled_outcome(LANGUAGE, facts) == expected


@pytest.mark.parametrize("facts", [
    {"revenue": D("1"), "quota": D("0"), "region": "EMEA", "certified": True, "nps": D("1")},  # 1 / 0
    {"revenue": D("1"), "quota": D("1"), "region": 7, "certified": True, "nps": D("1")},  # number < 'B'
    {"revenue": D("1"), "quota": D("1"), "region": "EMEA", "certified": "yes", "nps": D("1")},  # not 'yes'
    {"revenue": "lots", "quota": D("1"), "region": "EMEA", "certified": True, "nps": D("1")},
    {"revenue": None, "quota": D("1"), "region": "EMEA", "certified": True, "nps": D("1")},
    {"revenue": D("NaN"), "quota": D("1"), "region": "EMEA", "certified": True, "nps": D("1")},
    {"revenue": D("1"), "quota": D("1"), "region": date(2027, 1, 1), "certified": False, "nps": D("60")},
    {"revenue": D("1"), "quota": D("1"), "region": "EMEA", "certified": True},  # nps missing
])
def test_odd_values_get_the_compiled_backends_answer_or_error(durable, facts):
    assert outcome(durable(LANGUAGE), facts) == compiled_outcome(LANGUAGE, facts)


def test_short_circuit_hides_an_error_exactly_as_in_the_compiled_backend(durable):
    conds = conditions(guarded="quota > 0 and revenue / quota > 2", flag="certified or revenue / quota > 2")
    facts = {"revenue": D("10"), "quota": D("0"), "certified": True}
    assert durable(conds).matching(facts) == {"flag"}
    assert compiled_outcome(conds, facts) == {"flag"}


# --- if(): its value is ours to compute, exactly; Rete compares its rank ------------------------

IF_CONDITIONS = conditions(
    ratio="if(quota > 0, revenue / quota, 0) >= 1.1",  # 110 / 100 = 1.1 exactly
    summed="if(flag, a + b, quota) == 0.3",  # 0.1 + 0.2 != 0.3 in doubles
    chosen="if(flag, revenue > quota, a < b)",
)


@pytest.mark.parametrize(("facts", "expected"), [
    # 110 / 100 = 1.1 >= 1.1; 0.1 + 0.2 = 0.3; flag: 110 > 100
    ({"revenue": D(110), "quota": D(100), "a": D("0.1"), "b": D("0.2"), "flag": True},
     {"ratio", "summed", "chosen"}),
    # quota 0: the ratio branch is never computed (0 >= 1.1 is false, not an error); not flag: quota 0 != 0.3,
    # 0.1 < 0.2
    ({"revenue": D(110), "quota": D(0), "a": D("0.1"), "b": D("0.2"), "flag": False}, {"chosen"}),
    # 0.32 / 0.3 = 1.0666... < 1.1; not flag: quota 0.3 == 0.3; 0.2 < 0.1 is false
    ({"revenue": D("0.32"), "quota": D("0.3"), "a": D("0.2"), "b": D("0.1"), "flag": False}, {"summed"}),
])
def test_if_values_are_compared_exactly_and_only_the_branch_taken_is_computed(durable, facts, expected):
    assert durable(IF_CONDITIONS).matching(facts) == expected
    assert compiled_outcome(IF_CONDITIONS, facts) == expected


def test_a_non_boolean_if_condition_is_the_compiled_backends_error(durable):
    facts = {"revenue": D(110), "quota": D(100), "a": D("0.1"), "b": D("0.2"), "flag": "yes"}
    expected = "error: rule 'summed': if() needs a true or false condition, got text 'yes'"
    assert outcome(durable(IF_CONDITIONS), facts) == expected
    assert compiled_outcome(IF_CONDITIONS, facts) == expected


def test_duplicate_rule_ids_are_refused_like_the_compiled_backend():
    conds = [*conditions(a="x > 1"), *conditions(a="x > 2")]
    with pytest.raises(ValueError, match="duplicate rule ids in prog: a"):
        DurableBackend().compile(conds, ruleset_name="prog")


def test_no_conditions_match_nothing(durable):
    assert durable([]).matching({"x": D(1)}) == frozenset()


# --- parity with the compiled backend on generated conditions and records -------------------------

THRESHOLDS = ["0", "0.3", "-5", "99999.99", "100000", "1E+20", "12345678901234567890.5"]
NUMBER_TERMS = ["n1", "n2", "n1 + n2", "n1 * 1.1", "min(n1, n2)", "-n1", "abs(n2)", "n1 / n2",
                "if(flag, n1, n2)", "if(n2 != 0, n1 / n2, 0)"]


def _atoms() -> st.SearchStrategy[str]:
    threshold = st.sampled_from(THRESHOLDS)
    op = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    term = st.sampled_from(NUMBER_TERMS)
    texts = st.lists(st.sampled_from(["'Gold'", "'Silver'", "'M'", "''"]), min_size=1, max_size=3)
    numbers = st.lists(threshold, min_size=1, max_size=3)
    return st.one_of(
        st.builds("{} {} {}".format, term, op, threshold),
        st.builds("{} {} {}".format, threshold, op, term),
        st.builds("{} <= {} < {}".format, threshold, term, threshold),
        st.builds("s {} {}".format, op, st.sampled_from(["'Gold'", "'M'"])),
        st.builds("s {} [{}]".format, st.sampled_from(["in", "not in"]), texts.map(", ".join)),
        st.builds("n1 {} [{}]".format, st.sampled_from(["in", "not in"]), numbers.map(", ".join)),
        st.sampled_from(["flag", "flag == true", "flag != false", "n1 > n2", "mixed == 1", "mixed < 5",
                         "mixed in [1, 'a']", "s in 'Golden'", "flag < true", "true"]),
    )


def _conditions_text() -> st.SearchStrategy[str]:
    return st.recursive(
        _atoms(),
        lambda inner: st.one_of(
            st.builds("({}) and ({})".format, inner, inner),
            st.builds("({}) or ({})".format, inner, inner),
            st.builds("not ({})".format, inner),
            st.builds("if({}, {}, {})".format, inner, inner, inner),
        ),
        max_leaves=6,
    )


def _numbers() -> st.SearchStrategy[Any]:
    near = st.builds(lambda text, delta: D(text) + D(delta), st.sampled_from(THRESHOLDS),
                     st.sampled_from(["0", "0.01", "-0.01", "1E-30", "-1E-30"]))
    return st.one_of(near, st.decimals(allow_nan=False, allow_infinity=False, places=3),
                     st.sampled_from([D("0.1"), D("0.2"), "7", None, True]))


RECORDS = st.fixed_dictionaries({
    "n1": _numbers(),
    "n2": _numbers(),
    "s": st.sampled_from(["Gold", "Silver", "M", "", "Golden", 3]),
    "flag": st.sampled_from([True, False, True, None]),
    "mixed": st.sampled_from([D(1), D("1.00"), "a", True, None, date(2027, 1, 1), D(4)]),
})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_conditions_text(), min_size=1, max_size=6), records=st.lists(RECORDS, min_size=1, max_size=6))
def test_parity_with_compiled_backend_on_generated_conditions(texts, records):
    conds = [Condition(f"c{index}", parse_expression(text)) for index, text in enumerate(texts)]
    reference = CompiledBackend().compile(conds, ruleset_name="reference")
    matcher = DurableBackend().compile(conds, ruleset_name="parity")
    try:
        for facts in records:
            assert outcome(matcher, facts) == outcome(reference, facts), (texts, facts)
    finally:
        matcher.close()


TIER = """
    eligibility:
      - {id: active, when: "status == 'active'"}
    tiers:
      qualify_on: revenue
      levels:
        - {name: Registered, from: 0, rate: 0%}
        - {name: Silver, from: 100000, rate: 2%, requires: "certifications.sales >= 1"}
        - {name: Gold, from: 500000, rate: 3.5%, requires: "certifications.technical >= 2 and region != 'XX'"}
    bonuses:
      - {id: nps_kicker, when: "nps >= 50 or revenue * 1.1 > 600000", multiplier: 110%}
    """


def test_engine_results_are_identical_with_either_backend(engine_for):
    text = program_text(TIER)
    records = [
        {"partner_id": f"P{index}", "period": "2027-Q1", "status": status, "revenue": D(revenue),
         "certifications": {"sales": D(sales), "technical": D(technical)}, "nps": nps, "region": "EMEA"}
        for index, (status, revenue, sales, technical, nps) in enumerate([
            ("active", "99999.99", 1, 2, D(50)), ("active", "100000", 1, 0, D(49)), ("active", "500000", 1, 2, D(0)),
            ("lapsed", "900000", 3, 3, D(90)), ("active", "545454.55", 1, 2, D(1)), ("active", "1", 0, 0, "n/a"),
        ])
    ]
    with engine_for(text) as compiled, engine_for(text, backend="durable") as rete:
        expected = [result.model_dump() for result in compiled.run(records).results]
        assert [result.model_dump() for result in rete.run(records).results] == expected
    assert {row["status"] for row in expected} == {"ok", "ineligible", "error"}


# --- durable_rules' sharp edges -------------------------------------------------------------------


def raw_host() -> Any:
    return durable_module._durable().host()


_raw_names = itertools.count()


def raw_ruleset(host: Any, rules: Mapping[str, Any], fired: list[str] | None = None) -> str:
    """Register ``rules`` (name -> ``m`` expression) on ``host``; actions append to ``fired``."""
    name = f"raw{next(_raw_names)}"

    def action(rule: str) -> Callable[[Any], None]:
        return lambda closure: fired.append(rule) if fired is not None else None

    host.register_rulesets({name: {rule: {"all": [{"m": m}], "run": action(rule)} for rule, m in rules.items()}})
    return name


def test_upstream_post_fires_one_rule_per_event():
    fired: list[str] = []
    host = raw_host()
    name = raw_ruleset(host, {"a": {"x": 1}, "b": {"$gt": {"x": 0}}}, fired)
    host.post(name, {"sid": "1", "x": 1})
    assert len(fired) == 1


def test_every_true_condition_fires_not_only_the_first(durable):
    matcher = durable(conditions(**{f"c{index}": f"x > {index}" for index in range(10)}))
    assert matcher.matching({"x": D(100)}) == {f"c{index}" for index in range(10)}


def test_upstream_batch_assert_raises_when_a_fact_matches_nothing():
    host = raw_host()
    name = raw_ruleset(host, {"a": {"x": 1}})
    from durable.engine import MessageNotHandledException

    with pytest.raises(MessageNotHandledException):
        host.assert_facts(name, [{"sid": "1", "x": 1}, {"sid": "2", "x": 2}])


def test_a_record_matching_nothing_is_an_empty_set(durable):
    matcher = durable(conditions(a="x == 1", b="x > 5"))
    assert matcher.matching({"x": D(2)}) == frozenset()
    assert matcher.matching({"x": D(1)}) == {"a"}


def test_upstream_1024_live_sessions_per_ruleset():
    host = raw_host()
    name = raw_ruleset(host, {"a": {"x": 1}})
    for sid in range(1024):
        host.assert_fact(name, {"sid": str(sid), "x": 1})
    try:
        with pytest.raises(MemoryError):
            host.assert_fact(name, {"sid": "1024", "x": 1})
    finally:
        for sid in range(1024):
            host.delete_state(name, str(sid))


def test_sessions_are_deleted_so_more_than_1024_records_run(durable):
    matcher = durable(conditions(a="x >= 500"))
    assert sum(len(matcher.matching({"x": D(n)})) for n in range(1500)) == 1000


def _python(code: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=os.path.dirname(os.path.dirname(__file__)),
                          env=None if env is None else {**os.environ, **env})


RAW = """
    from incentives.rules.durable import _durable
    host = _durable().host()
    host.register_rulesets({"r": {"a": {"all": [{"m": %s}], "run": lambda c: None}}})
"""


def test_upstream_deleting_a_session_where_no_action_started_crashes():
    # A use-after-free: whether it brings the process down depends on what the freed memory still holds, so
    # on the heap's layout, which any change to the code shifts (20 deletions in a row survived a quarter of
    # the runs after one). glibc's MALLOC_PERTURB_ fills freed memory, so reading it crashes every time.
    crashed = _python(RAW % '{"x": 1}' + """
    from durable.engine import MessageNotHandledException
    for sid in map(str, range(20)):
        try:
            host.assert_fact("r", {"sid": sid, "x": 2})
        except MessageNotHandledException:
            pass
        host.delete_state("r", sid)
    print("survived")
    """, timeout=60, env={"MALLOC_PERTURB_": "165"})
    assert crashed.returncode in (-6, -11) and "survived" not in crashed.stdout  # SIGABRT (heap) or SIGSEGV


def test_upstream_a_rule_matching_the_state_fact_never_returns():
    with pytest.raises(subprocess.TimeoutExpired):
        _python(RAW % '{"$nex": {"x": 1}}' + '    host.assert_fact("r", {"sid": "1", "y": 2})', timeout=3)


def test_every_rule_tests_the_marker_first_and_every_ruleset_has_a_catch_all(durable):
    matcher = durable(LANGUAGE)
    for definition in matcher.definitions.values():
        assert definition.pop("catch_all") == {"all": [{"m": {"mk": 1}}]}
        for rule in definition.values():
            [test] = rule["all"]
            assert test["m"]["$and"][0] == {"mk": 1}


def test_upstream_or_fires_once_per_true_branch():
    fired: list[str] = []
    host = raw_host()
    name = raw_ruleset(host, {"a": {"$or": [{"x": 1}, {"y": 1}]}}, fired)
    host.assert_fact(name, {"sid": "1", "x": 1, "y": 1})
    assert fired == ["a", "a"]


def test_or_with_every_branch_true_fires_its_id_once(durable):
    matcher = durable(conditions(a="x == 1 or y == 1 or x in [1, 2]", b="x != 1"))
    assert matcher.matching({"x": D(1), "y": D(1)}) == frozenset({"a"})


def test_upstream_65_sibling_rules_matching_one_fact_is_error_303():
    host = raw_host()
    name = raw_ruleset(host, {f"r{index}": {"$gte": {"x": index}} for index in range(65)})
    with pytest.raises(Exception, match="error code: 303"):
        host.assert_fact(name, {"sid": "1", "x": 100})


def test_many_conditions_true_at_once_are_split_across_rulesets(durable):
    matcher = durable(conditions(**{f"c{index}": f"x >= {index} or y < {index}" for index in range(150)}))
    assert len(matcher.definitions) > 1
    assert matcher.matching({"x": D(1000), "y": D(-1)}) == {f"c{index}" for index in range(150)}
    assert matcher.matching({"x": D(75), "y": D(100)}) == {f"c{index}" for index in [*range(76), *range(101, 150)]}


@pytest.mark.parametrize("branches", [1, 2])
def test_layout_model_matches_the_engine_at_its_exact_stack_limit(durable, monkeypatch, branches):
    # 64 stack entries is durable's real limit: with no margin, a full ruleset must still work.
    monkeypatch.setattr(durable_module, "LIMITS", durable_module.Limits(stack=64))
    count = 64 // branches
    text = " or ".join(["x >= {0}", "y >= {0}"][:branches])
    matcher = durable(conditions(**{f"c{index}": text.format(index) for index in range(count + 1)}))
    assert [len(definition) - 1 for definition in matcher.definitions.values()] == [count, 1]
    assert matcher.matching({"x": D(100), "y": D(100)}) == {f"c{index}" for index in range(count + 1)}


def test_513_rules_under_one_node_do_not_hang(durable):
    started = time.perf_counter()
    matcher = durable(conditions(**{f"c{index}": f"x == {index}" for index in range(600)}))
    assert time.perf_counter() - started < 10
    assert matcher.matching({"x": D(517)}) == {"c517"}


def test_a_condition_too_big_for_a_ruleset_is_matched_as_one_computed_boolean(durable):
    long_list = ", ".join(str(n) for n in range(300))
    nested = "x > 0"
    for depth in range(20):
        nested = f"({nested} or y == {depth}) and z != {depth}"
    conds = conditions(listed=f"x in [{long_list}]", nested=nested, small="x > 1")
    matcher = durable(conds)
    for x, y, z in [(299, 3, 30), (300, 1, 1), (0, 19, 20), (-1, 0, 0)]:
        facts = {"x": D(x), "y": D(y), "z": D(z)}
        assert matcher.matching(facts) == compiled_outcome(conds, facts)
    [definition] = matcher.definitions.values()
    assert definition["r0"] == {"all": [{"m": {"$and": [{"mk": 1}, {"f0": 1}]}}]}


def test_upstream_more_than_15_operators_in_one_rule_is_error_113():
    host = raw_host()
    expression: dict[str, Any] = {"x": 1}
    for depth in range(16):
        expression = {"$and" if depth % 2 else "$or": [{"y": depth}, expression]}
    with pytest.raises(Exception, match="error code: 113"):
        raw_ruleset(host, {"a": expression})


def test_upstream_a_fact_of_254_properties_is_error_302():
    host = raw_host()
    name = raw_ruleset(host, {"a": {"x": 1}})
    with pytest.raises(Exception, match="error code: 302"):
        host.assert_fact(name, {"sid": "1", "x": 1, **{f"p{index}": 1 for index in range(252)}})


def wide_conditions(rules: int = 3, width: int = 100) -> list[Condition]:
    """Rules reading ``width`` facts each: few alpha nodes side by side, many posted fields."""
    return conditions(**{
        f"c{rule}": " and ".join(f"v{index} > 0" for index in range(width * rule, width * (rule + 1)))
        for rule in range(rules)
    })


def test_facts_of_many_fields_are_split_across_rulesets(durable):
    matcher = durable(wide_conditions())
    assert len(matcher.definitions) == 2
    assert all(len(ruleset.fields) + 2 <= LIMITS.properties for ruleset in matcher._rulesets)
    facts = {f"v{index}": D(1) for index in range(300)}
    assert matcher.matching(facts) == {"c0", "c1", "c2"}
    assert matcher.matching({**facts, "v150": D(0)}) == {"c0", "c2"}


def test_field_names_never_collide_in_durables_property_hash():
    # durable tells properties apart by their 32-bit FNV-1a hash alone.
    def fnv1a(name: str) -> int:
        value = 0x811C9DC5
        for byte in name.encode():
            value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
        return value

    names = ["sid", "id", "$s", "mk", *(f"f{index}" for index in range(LIMITS.properties))]
    assert len({fnv1a(name) for name in names}) == len(names)


def test_upstream_ruleset_names_cannot_be_registered_twice():
    host = raw_host()
    name = raw_ruleset(host, {"a": {"x": 1}})
    with pytest.raises(Exception, match="already registered"):
        host.register_rulesets({name: {"a": {"all": [{"m": {"x": 1}}], "run": lambda c: None}}})


def test_two_matchers_of_the_same_rules_and_name_are_independent(durable):
    conds = conditions(a="x > 1")
    first, second = durable(conds, "incentives_1_tier_v1"), durable(conds, "incentives_1_tier_v1")
    assert set(first.definitions).isdisjoint(second.definitions)
    assert all(name.startswith("incentives_1_tier_v1#") for name in [*first.definitions, *second.definitions])
    first.close()
    assert second.matching({"x": D(2)}) == {"a"}


def test_no_background_threads_are_started(durable):
    before = threading.active_count()
    matcher = durable(conditions(a="x > 1"))
    matcher.matching({"x": D(2)})
    time.sleep(0.3)  # durable's own host starts its timers 0.1 s after construction
    assert threading.active_count() == before


def test_close_is_idempotent_and_a_closed_matcher_refuses_work():
    matcher = DurableBackend().compile(conditions(a="x > 1"), ruleset_name="closing")
    matcher.close()
    matcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        matcher.matching({"x": D(2)})


# --- failures inside durable_rules ----------------------------------------------------------------


class FaultyEngine:
    """durable_rules_engine, with one function replaced."""

    def __init__(self, real: Any, **replaced: Callable[..., Any]):
        self._real = real
        self._replaced = replaced
        self.deleted: list[str] = []

    def delete_state(self, handle: int, sid: str) -> None:
        self.deleted.append(sid)
        self._real.delete_state(handle, sid)

    def __getattr__(self, name: str) -> Any:
        return self._replaced.get(name) or getattr(self._real, name)


def test_an_engine_error_is_an_evaluation_error_and_the_matcher_goes_on(durable, monkeypatch):
    matcher = durable(conditions(a="x > 1"))
    real = matcher._engine

    def failing(handle: int, fact: str) -> Any:
        raise real.error("Could not assert fact, error code: 101")

    monkeypatch.setattr(matcher, "_engine", FaultyEngine(real, assert_fact=failing))
    with pytest.raises(EvaluationError, match="durable_rules failed on ruleset 'test#.*error code: 101"):
        matcher.matching({"x": D(2)})
    assert matcher._engine.deleted == []  # no action started: deleting could segfault
    monkeypatch.setattr(matcher, "_engine", real)
    assert matcher.matching({"x": D(2)}) == {"a"}


def test_a_real_engine_error_becomes_an_evaluation_error(durable, monkeypatch):
    # Without our property limit the three rules share one fact of 302 properties.
    monkeypatch.setattr(durable_module, "LIMITS", durable_module.Limits(properties=400))
    matcher = durable(wide_conditions())
    assert len(matcher.definitions) == 1
    with pytest.raises(EvaluationError, match="error code: 302"):
        matcher.matching({f"v{index}": D(1) for index in range(300)})


def test_a_session_where_nothing_fired_is_an_error_not_an_empty_answer(durable, monkeypatch):
    matcher = durable(conditions(a="x > 1"))
    monkeypatch.setattr(matcher, "_engine", FaultyEngine(matcher._engine, start_action_for_state=lambda *a: None))
    with pytest.raises(EvaluationError, match="not even the catch-all rule"):
        matcher.matching({"x": D(2)})


def test_an_engine_error_becomes_the_records_error_result(engine_for, monkeypatch):
    def failing(handle: int, fact: str) -> Any:
        raise RuntimeError("simulated")

    with engine_for(program_text(TIER), backend="durable") as engine:
        [compiled] = engine._programs["test"]
        monkeypatch.setattr(compiled.matcher, "_engine", FaultyEngine(compiled.matcher._engine, assert_fact=failing))
        result = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "status": "active", "revenue": D(1),
                                  "certifications": {"sales": D(0), "technical": D(0)}, "nps": D(1),
                                  "region": "X"})
    assert result["test"].status == "error"
    assert "durable_rules failed" in result["test"].errors[0]


# --- Python 3.13 and the import guard -------------------------------------------------------------


@runs_without_durable
def test_unimportable_durable_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)
    durable_module._durable.cache_clear()
    try:
        with pytest.raises(DurableUnavailableError) as caught:
            DurableBackend()
    finally:
        durable_module._durable.cache_clear()
    message = str(caught.value)
    assert isinstance(caught.value, IncentivesError)
    assert message.startswith("the durable backend needs durable-rules, which does not import on Python ")
    assert message.endswith("; use backend='compiled'")


@runs_without_durable
def test_incentives_imports_without_durable_and_the_compiled_backend_works():
    result = _python("""
        import sys
        sys.modules["durable"] = sys.modules["durable.engine"] = sys.modules["durable_rules_engine"] = None
        import incentives, incentives.rules.durable
        from incentives.rules.durable import DurableBackend, DurableUnavailableError
        try:
            DurableBackend()
        except DurableUnavailableError as error:
            print(error)
        import incentives.rules.registry
        print(type(incentives.rules.registry.make_backend("compiled")).__name__)
    """, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "does not import on Python" in result.stdout
    assert result.stdout.strip().endswith("CompiledBackend")


@runs_without_durable
def test_importing_incentives_does_not_import_durable():
    result = _python("import sys, incentives; print('durable' in sys.modules)", timeout=60)
    assert result.stdout.strip() == "False", result.stderr


# --- memory ---------------------------------------------------------------------------------------

MEMORY_RULES = conditions(
    silver="revenue >= 100000 and certifications.sales >= 1",
    gold="revenue >= 500000 and tier in ['Gold', 'Platinum']",
    kicker="nps >= 50 or revenue * 1.1 > 600000",
    eligible="status == 'active'",
)


def _memory_record(n: int) -> dict[str, Any]:
    return {"revenue": D(n % 1_000_000) + D("0.01"), "certifications.sales": D(n % 3), "nps": D(n % 100),
            "tier": ("Gold", "Silver", "Platinum")[n % 3], "status": "active" if n % 7 else "lapsed"}


def _rss_growth_kb(matcher: DurableMatcher, records: int, warm_up: int) -> tuple[int, float]:
    for n in range(warm_up):
        matcher.matching(_memory_record(n))
    before, started = rss_kb(), time.perf_counter()
    for n in range(records):
        matcher.matching(_memory_record(n))
    return rss_kb() - before, records / (time.perf_counter() - started)


def test_memory_is_flat_after_warm_up(durable):
    growth, _ = _rss_growth_kb(durable(MEMORY_RULES), records=20_000, warm_up=2_000)
    assert growth < 2_048


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("INCENTIVES_SLOW") != "1", reason="set INCENTIVES_SLOW=1 to run")
def test_a_million_records_through_one_matcher(durable):
    growth, rate = _rss_growth_kb(durable(MEMORY_RULES), records=1_000_000, warm_up=50_000)
    print(f"\n1,000,000 records: RSS growth {growth} kB after warm-up, {rate:,.0f} records/s")
    assert growth < 4_096
