"""Backend parity: the compiled and durable_rules backends give identical results on every example program.

Results are compared whole (status, tier, lines with their rule ids and formulas,
reasons, errors, totals), so a rule that fires on one backend and not on the
other shows up as a difference. Records come from the bundled quarter and from
hypothesis, which moves facts onto, just below and just above every constant the
programs compare them with.
"""

from __future__ import annotations

import csv
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import incentives
from conftest import program_text
from incentives.inputs import read_claims, read_facts
from incentives.loading import expressions_of
from incentives.rules import ast
from incentives.rules.durable import DurableUnavailableError, _durable

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "examples" / "facts_2027Q1.csv"
CLAIMS = ROOT / "examples" / "claims_2027Q1.csv"

try:
    _durable()
    DURABLE_MISSING = None
except DurableUnavailableError as error:
    DURABLE_MISSING = str(error)

pytestmark = pytest.mark.skipif(DURABLE_MISSING is not None, reason=str(DURABLE_MISSING))


@pytest.fixture(scope="module")
def programs() -> incentives.ProgramSet:
    return incentives.load_programs(ROOT / "programs")


@pytest.fixture(scope="module")
def engines(programs) -> Iterator[tuple[incentives.Engine, incentives.Engine]]:
    compiled = incentives.Engine(programs)
    durable = incentives.Engine(programs, backend="durable")
    yield compiled, durable
    compiled.close()
    durable.close()


def comparable(results: dict[str, incentives.PayoutResult]) -> dict[str, Any]:
    return {program_id: result.model_dump() for program_id, result in results.items()}


def test_every_example_record_gives_identical_results(engines):
    compiled, durable = engines
    claims = read_claims(CLAIMS)
    compiled_run = compiled.run(read_facts(FACTS), claims=claims)
    durable_run = durable.run(read_facts(FACTS), claims=claims)
    assert len(compiled_run.results) == 300 * len(compiled.program_ids)
    assert [r.model_dump() for r in durable_run.results] == [r.model_dump() for r in compiled_run.results]
    # the example must exercise both outcomes of the rules, or parity proves little
    statuses = {r.status for r in compiled_run.results}
    assert statuses == {"ok", "ineligible"}
    # ... and MDF claim limits (service_provider_mdf) must bind on some claims
    assert any("capped at" in line.formula for r in compiled_run.results for line in r.lines
               if line.kind == "mdf_claim")


def _compared_constants(programs: incentives.ProgramSet) -> list[tuple[str, D]]:
    """(fact name, constant) for every comparison of a plain name with a number, and every tier threshold."""
    found: set[tuple[str, D]] = set()
    for loaded in programs:
        for _, expression in expressions_of(loaded.program):
            found.update(_comparisons(expression.node))
        tiers = loaded.program.tiers
        if tiers is not None and isinstance(tiers.qualify_on.node, ast.Name):
            found.update((tiers.qualify_on.node.name, D(level.from_)) for level in tiers.levels)
    return sorted(found)


def _comparisons(node: Any) -> Iterator[tuple[str, D]]:
    if isinstance(node, ast.Compare):
        operands = (node.left, *node.comparators)
        for left, right in zip(operands, operands[1:]):
            for name, constant in ((left, right), (right, left)):
                if isinstance(name, ast.Name) and isinstance(constant, ast.Literal) \
                        and isinstance(constant.value, D):
                    yield name.name, constant.value
    for child in getattr(node, "__slots__", ()):
        value = getattr(node, child)
        for item in value if isinstance(value, tuple) else (value,):
            if hasattr(item, "offset"):
                yield from _comparisons(item)


def _example_records() -> list[dict[str, Any]]:
    with FACTS.open(encoding="utf-8", newline="") as handle:
        return [{key: value for key, value in row.items() if value != ""} for row in csv.DictReader(handle)][:40]


EXAMPLES = _example_records()


def test_explain_lists_the_same_bonuses_that_did_not_fire(engines):
    compiled, durable = engines
    listed = 0
    for row in read_facts(FACTS):
        results = compiled.evaluate(row)
        not_fired = compiled.not_fired(row, results)
        assert durable.not_fired(row, durable.evaluate(row)) == not_fired
        listed += sum(len(reasons) for reasons in not_fired.values())
    assert listed > 0  # the bundled programs have bonuses that do not fire for some partners


def test_the_programs_compare_facts_with_constants(programs):
    # guards the generator below: without constants there would be nothing on a threshold
    assert len(_compared_constants(programs)) >= 20


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_records_on_and_around_every_threshold_give_identical_results(engines, programs, data):
    compiled, durable = engines
    constants = _compared_constants(programs)
    record = dict(data.draw(st.sampled_from(EXAMPLES)))
    for name, constant in data.draw(st.lists(st.sampled_from(constants), min_size=1, max_size=6)):
        step = data.draw(st.sampled_from([D("-0.01"), D(0), D("0.01"), D("-1E-20")]))
        record[name] = constant + step
    assert comparable(durable.evaluate(record)) == comparable(compiled.evaluate(record))


# --- if(): in a metric, an eligibility rule, a qualify_on, a tier's requires and a bonus ------------

IF_PROGRAM = """
    metrics:
      attainment: "if(quota > 0, revenue / quota, 0)"
    eligibility:
      - {id: engaged, when: "if(segment == 'smb', nps >= 30, nps >= 50)"}
    tiers:
      qualify_on: "if(region == 'EMEA', revenue * 1.1, revenue)"
      levels:
        - {name: Silver, from: 100000, rate: 2%}
        - {name: Gold, from: 500000, rate: 3.5%, requires: "if(certified, true, attainment >= 1.2)"}
    bonuses:
      - {id: overachiever, when: "if(quota > 0, revenue / quota >= 1.5, false)",
         amount: "if(region == 'EMEA', 1000, 500)"}
    """
IF_REVENUES = [D(100000), D(500000), D(100000) / D("1.1"), D(500000) / D("1.1"), D(450000), D(750000)]


@pytest.fixture(scope="module")
def if_engines(tmp_path_factory) -> Iterator[tuple[incentives.Engine, incentives.Engine]]:
    path = tmp_path_factory.mktemp("if_program") / "if.yaml"
    path.write_text(program_text(IF_PROGRAM, id="if_program"), encoding="utf-8")
    programs = incentives.load_programs(path)
    compiled = incentives.Engine(programs)
    durable = incentives.Engine(programs, backend="durable")
    yield compiled, durable
    compiled.close()
    durable.close()


def test_if_program_by_hand(if_engines):
    compiled, durable = if_engines
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": D(460000), "quota": D(300000), "nps": D(30),
              "segment": "smb", "region": "EMEA", "certified": False}
    result = compiled.evaluate(record)["if_program"]
    # smb: nps 30 >= 30 is eligible; EMEA: qualify on 460000 * 1.1 = 506000 >= 500000; not certified, but
    # attainment 460000 / 300000 = 1.533... >= 1.2: Gold, 3.5% * 506000 = 17710; 1.533... >= 1.5: bonus 1000
    assert (result.status, result.tier, result.total) == ("ok", "Gold", D("18710.00"))
    assert comparable(durable.evaluate(record)) == comparable(compiled.evaluate(record))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(revenue=st.sampled_from(IF_REVENUES), step=st.sampled_from([D("-0.01"), D(0), D("0.01")]),
       quota=st.sampled_from([D(0), D(300000), D(500000), "none"]), nps=st.sampled_from([D(29), D(30), D(50)]),
       segment=st.sampled_from(["smb", "enterprise"]), region=st.sampled_from(["EMEA", "US"]),
       certified=st.sampled_from([True, False, "yes"]))
def test_if_program_gives_identical_results(if_engines, revenue, step, quota, nps, segment, region, certified):
    compiled, durable = if_engines
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": revenue + step, "quota": quota, "nps": nps,
              "segment": segment, "region": region, "certified": certified}
    assert comparable(durable.evaluate(record)) == comparable(compiled.evaluate(record))


def test_the_example_quarter_exercises_per_goal_payouts(engines):
    # goal_based_rebate v2 pays each goal on its own (payout.per_goal): the bundled quarter must reach
    # goals under their 80% threshold, goals paying, and goals at their cap, or parity proves little there
    compiled, _ = engines
    run = compiled.run(read_facts(FACTS))
    goals = [goal for result in run.results if result.program_id == "goal_based_rebate" and result.status == "ok"
             for goal in result.details["goals"]]
    factors = {goal["factor"] for goal in goals}
    assert D(0) in factors and D("1.75") in factors and len(factors) > 10


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_per_goal_records_on_and_around_each_goal_threshold_and_cap_give_identical_results(engines, data):
    compiled, durable = engines
    record = dict(data.draw(st.sampled_from(EXAMPLES)))
    quota = D(record["revenue_quota"]) if D(record["revenue_quota"]) > 0 else D(600000)
    record["revenue_quota"] = quota
    # goal_based_rebate v2: threshold 80%, curve knot 100%, program cap 150%, renewals' own cap 110%
    share = data.draw(st.sampled_from([D("0.8"), D("1"), D("1.1"), D("1.5")]))
    step = data.draw(st.sampled_from([D("-0.01"), D(0), D("0.01")]))
    record["revenue"] = quota * share + step
    record["new_logos"] = data.draw(st.sampled_from([D("2.4"), D(3), D("3.3"), D("4.5"), D(2)]))
    record["renewal_rate"] = D("0.9") * share + step / 100
    record["gross_margin"] = data.draw(st.sampled_from([D("0.25"), D("0.2499")]))  # the kicker's rule
    assert comparable(durable.evaluate(record)) == comparable(compiled.evaluate(record))


# --- deductions and the program's own outcome (this.*) ---------------------------------------------
# Conditions that read this.* are matched at their step by matchers of their own; both backends must
# agree on them, on the values each step sees (this.subtotal before it) and on no tier (this.tier none).
OWN_OUTCOME_PROGRAM = """
id: own_outcome
name: Own outcome parity
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
metrics:
  net_sales: "revenue - returns"
tiers:
  qualify_on: net_sales
  levels:
    - {name: Silver, from: 1000,  rate: 10%}
    - {name: Gold,   from: 10000, rate: 20%}
bonuses:
  - {id: gold_kicker, when: "this.tier == 'Gold' and growth >= 10%", multiplier: 110%}
  - {id: big_base,    when: "this.subtotal >= 2200",                 multiplier: 105%}
  - {id: logos,       when: "new_logos >= 1",                        amount: "100 * new_logos"}
  - {id: past_2420,   when: "this.subtotal > 2420",                  amount: "1% * this.base"}
deductions:
  - {id: returns_reserve, amount: "2% * returns", description: returns reserve}
  - {id: no_tier_fee, when: "this.tier != 'Gold' and this.base < 150", amount: 25,
     description: fee below 150}
  - {id: over_2500, when: "this.subtotal >= 2500", amount: "this.subtotal - 2500", description: "above 2,500"}
cap: "max(this.base, 1000)"
min_payout: "this.subtotal / 2 + 50"
"""

AROUND = [D(v) + step for v in (0, 100, 1000, 1250, 10000, 11000, 12100, 12500, 15000)
          for step in (D("-0.01"), D(0), D("0.01"))]


@pytest.fixture(scope="module")
def own_outcome_engines(tmp_path_factory) -> Iterator[tuple[incentives.Engine, incentives.Engine]]:
    path = tmp_path_factory.mktemp("own_outcome") / "own_outcome.yaml"
    path.write_text(OWN_OUTCOME_PROGRAM, encoding="utf-8")
    compiled = incentives.Engine(incentives.load_programs(path))
    durable = incentives.Engine(incentives.load_programs(path), backend="durable")
    yield compiled, durable
    compiled.close()
    durable.close()


def test_the_own_outcome_program_reaches_every_step(own_outcome_engines):
    compiled, _ = own_outcome_engines
    # guards the generator below: one record where every step fires. Net 12,500 − 0: Gold, 20% = 2,500.00;
    # kicker 250.00 and big_base 5% × 2,750 = 137.50 → 2,887.50; logos 100.00, past_2420 1% × 2,500 = 25.00
    # → 3,012.50; reserve 0.00, over_2500 512.50 → 2,500.00; cap max(2,500, 1,000) = 2,500: no line; the
    # minimum 2,500 / 2 + 50 = 1,300 is below 2,500: no line
    result = compiled.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": D(12500), "returns": D(0),
                                "growth": D("0.1"), "new_logos": D(1)})["own_outcome"]
    assert [(line.rule_id, line.amount) for line in result.lines] == [
        ("tier:Gold", D("2500.00")), ("gold_kicker", D("250.00")), ("big_base", D("137.50")),
        ("logos", D("100.00")), ("past_2420", D("25.00")), ("returns_reserve", D("0.00")),
        ("over_2500", D("-512.50"))]
    assert result.total == D("2500.00")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(revenue=st.sampled_from(AROUND), returns=st.sampled_from([D(0), D(100), D("2500.5"), D(20000)]),
       growth=st.sampled_from([D("0.0999"), D("0.1"), D("0.5")]), new_logos=st.sampled_from([D(0), D(1), D(3)]))
def test_deductions_and_own_outcome_give_identical_results(own_outcome_engines, revenue, returns, growth,
                                                           new_logos):
    compiled, durable = own_outcome_engines
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": revenue, "returns": returns,
              "growth": growth, "new_logos": new_logos}
    assert comparable(durable.evaluate(record)) == comparable(compiled.evaluate(record))


EARLIER_PERIODS = """
id: volume
name: Volume rebate
kind: tier
version: 1
currency: USD
effective: {from: 2026-01-01}
period: quarter
defaults: {prior.revenue: 0}
tiers:
  qualify_on: revenue
  levels:
    - {name: Base, from: 0, rate: 2%}
    - {name: Up, from: 50000, rate: 3%, requires: "revenue > prior.revenue"}
bonuses:
  - {id: growth, when: "revenue >= 1.1 * year_ago.revenue", amount: "1% * revenue", description: growth}
"""


@settings(max_examples=60, deadline=None)
@given(revenues=st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["2026-Q1", "2026-Q4", "2027-Q1"]),
                                   st.integers(40000, 60000)), min_size=1, max_size=8))
def test_earlier_periods_give_identical_results(tmp_path_factory, revenues):
    # prior.X and year_ago.X are facts like any other to the rules: on, just below and just above
    # 1.1 × year_ago.revenue and prior.revenue both backends agree (duplicated periods included)
    folder = tmp_path_factory.mktemp("earlier")
    (folder / "volume.yaml").write_text(EARLIER_PERIODS, encoding="utf-8")
    programs = incentives.load_programs(folder)
    records = [{"partner_id": f"P{partner}", "period": period, "revenue": revenue}
               for partner, period, revenue in revenues]
    records += [{"partner_id": "P9", "period": "2026-Q1", "revenue": 50000},  # 1.1 × 50,000 = 55,000 exactly
                {"partner_id": "P9", "period": "2027-Q1", "revenue": 55000}]
    with incentives.Engine(programs) as compiled, incentives.Engine(programs, backend="durable") as durable:
        expected = [result.model_dump() for result in compiled.run(records, period="2027-Q1").results]
        assert [result.model_dump() for result in durable.run(records, period="2027-Q1").results] == expected
    assert {"growth"} <= {line["rule_id"] for result in expected for line in result["lines"]}
