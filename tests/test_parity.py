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
        not_fired = compiled.bonuses_not_fired(row, results)
        assert durable.bonuses_not_fired(row, durable.evaluate(row)) == not_fired
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
