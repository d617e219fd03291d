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
