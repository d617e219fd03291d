"""The program kinds' registry: one module per kind, listed once in ``incentives.kinds``."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import program_text
from incentives.kinds import KINDS
from incentives.loading import CONDITION_KEYS, NUMBER_KEYS, OWN_NAME_KINDS, load_program_file
from incentives.models import Program


def test_the_registry_lists_the_kinds_and_their_sections_in_file_order():
    assert [(kind.name, kind.section) for kind in KINDS.values()] == [
        ("tier", "tiers"), ("goal", "goals"), ("mdf", "mdf")]
    keys = list(Program.model_fields)
    # the kinds' sections stand where the program file has them: after eligibility, before bonuses
    assert keys[keys.index("eligibility"):keys.index("bonuses") + 1] == [
        "eligibility", "tiers", "goals", "mdf", "bonuses"]


def test_the_loader_takes_each_kinds_expression_keys_and_own_names_from_the_registry():
    assert NUMBER_KEYS == {"amount", "qualify_on", "pay_on", "metric", "target", "on"}
    assert CONDITION_KEYS == {"when", "requires"}
    assert OWN_NAME_KINDS == {"this.tier": "tier", "this.attainment": "goal"}


def test_a_program_section_is_its_kinds_section(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text(program_text("""
        tiers:
          qualify_on: revenue
          levels: [{name: Only, from: 0, rate: 1%}]
        """))
    program = load_program_file(file).program
    assert program.section is program.tiers
    assert [level.name for level in program.section.levels] == ["Only"]
    assert KINDS["tier"].tiers(program.section) == ["Only"]
    assert KINDS["goal"].tiers(None) == []  # only tiers name tiers


FLAT_MODULE = '''
"""Flat programs: one rate on one basis (a fourth kind, as docs/architecture.md adds it)."""

from __future__ import annotations

from ..fields import ExpressionField, Percent0To100, Rounding, StrictModel
from ..money import exact_multiply, format_amount, format_rate
from ..rules.backend import Condition
from ..yamlsource import Path
from .base import Compile, Evaluation, Kind, input_names, inputs_from, number


class Flat(StrictModel):
    on: ExpressionField
    rate: Percent0To100


class FlatCalculator:
    def __init__(self, flat: Flat, rounding: Rounding, compile: Compile):
        self._on = flat.on
        self._basis = compile(flat.on)
        self._rate = flat.rate
        self._inputs = input_names(flat.on)

    def conditions(self) -> list[Condition]:
        return []

    def names(self) -> set[str]:
        return set(self._on.names)

    def base(self, evaluation: Evaluation) -> None:
        basis = number(self._basis(evaluation.facts), f"flat basis ({self._on.text})")
        amount = evaluation.rounding.round(exact_multiply(basis, self._rate))
        places = evaluation.rounding.places
        evaluation.add_line("base", "flat", f"flat rate on {self._on.text}", amount,
                            f"{format_amount(basis, places)} × {format_rate(self._rate)} = "
                            f"{format_amount(amount, places)}",
                            basis=basis, rate=self._rate, inputs=inputs_from(self._inputs, evaluation.facts))


def check_flat(flat: Flat, rounding: Rounding) -> list[tuple[Path, str]]:
    return []


FLAT = Kind(name="flat", section="flat", model=Flat, calculator=FlatCalculator, check=check_flat,
            base_line_kinds=frozenset({"base"}), number_keys=frozenset({"on"}))
'''

FLAT_SCRIPT = '''
import json, sys
from incentives import Engine, load_programs
from incentives.errors import ProgramError

engine = Engine(load_programs(sys.argv[1]))
result = engine.evaluate({"partner_id": "P1", "period": "2025-Q1", "revenue": "1234.50"})["flat_fee"]
try:
    load_programs(sys.argv[2])
    refused = None
except ProgramError as error:
    refused = [problem.message for problem in error.problems]
print(json.dumps({"total": str(result.total), "formula": result.lines[0].formula, "refused": refused}))
'''


def test_a_fourth_kind_is_its_module_and_one_registry_entry(tmp_path):
    """The walk-through of docs/architecture.md, done on a copy of the package: a new module and two edited
    lines of the registry, nothing else, give a kind that loads, is checked and pays."""
    package = Path(__import__("incentives").__file__).parent
    copy = tmp_path / "lib" / "incentives"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kinds" / "flat.py").write_text(FLAT_MODULE)
    registry = copy / "kinds" / "__init__.py"
    text = registry.read_text()
    assert "from .tier import TIER\n" in text and "(TIER, GOAL, MDF)" in text
    registry.write_text(text.replace("from .tier import TIER\n", "from .tier import TIER\nfrom .flat import FLAT\n")
                        .replace("(TIER, GOAL, MDF)", "(TIER, GOAL, MDF, FLAT)"))
    header = textwrap.dedent("""
        id: flat_fee
        name: Flat fee
        kind: flat
        version: 1
        currency: USD
        effective: {from: 2025-01-01}
        period: quarter
        """)
    (tmp_path / "flat.yaml").write_text(header + "flat: {on: revenue, rate: 2%}\n")
    (tmp_path / "bad.yaml").write_text(header + "tiers: {qualify_on: revenue, levels: [{name: A, from: 0, rate: 1%}]}\n")
    completed = subprocess.run([sys.executable, "-c", FLAT_SCRIPT, tmp_path / "flat.yaml", tmp_path / "bad.yaml"],
                               capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "lib")})
    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout)
    # 1,234.50 × 2% = 24.69 exactly
    assert outcome["total"] == "24.69"
    assert outcome["formula"] == "1,234.50 × 2% = 24.69"
    # the kinds in registry order: tiers present where they are not allowed, then the flat section missing
    assert outcome["refused"] == ["'tiers' is not allowed in a 'flat' program (kind: flat takes 'flat')",
                                  "a 'flat' program needs a 'flat' section"]


def test_details_are_the_steps_keys_then_each_kinds_in_registry_order():
    import typing

    from incentives.results import Details

    assert list(typing.get_type_hints(Details)) == [
        "places", "proration",  # the steps'
        "goals", "factor",  # goal's
        "opening", "accrued", "accrual_rate", "accrual_rate_source", "accrual_formula", "accrual_inputs",
        "available", "paid", "closing", "rejected_claims"]  # mdf's


def test_a_goal_result_reads_back_with_its_details_typed_and_explains_its_goals(engine_for):
    from decimal import Decimal as D

    from incentives import PayoutResult

    engine = engine_for(program_text("""
        goals:
          targets:
            - {id: sales, metric: revenue, target: 800, weight: 100%}
          payout:
            on: revenue
            curve: [{attainment: 0, factor: 0}, {attainment: 1, factor: 10%}]
        """, kind="goal"))
    result = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": D("600")})["test"]
    # attainment 600 / 800 = 0.75; factor 0.75 × 10% = 0.075; 600 × 0.075 = 45.00
    assert result.details["goals"][0]["attainment"] == D("0.75")
    assert result.total == D("45.00")
    again = PayoutResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert type(again.details["goals"][0]["attainment"]) is D and type(again.details["factor"]) is D
    assert "  goal sales: 600 of 800 = 75% (weight 100%)" in again.explain().splitlines()  # a ratio shows as a percent
