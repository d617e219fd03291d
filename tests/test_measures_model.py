"""Measures files (kind: measures): loaded with the programs, validated and located as program files are."""

from __future__ import annotations

from pathlib import Path

import pytest

import incentives
from incentives.loading import load_program_file, load_programs
from incentives.measures.model import Aggregation

ROOT = Path(__file__).resolve().parent.parent

# the SPEC's example, as written there
DEALS = """\
id: deal_measures
kind: measures
source: deals                 # named on the command line: --transactions deals=FILE
partner: partner_id           # column naming the partner
date: closed_on               # assigns each row to a period of this calendar
period: quarter
fiscal_year_start: "01-01"
measures:
  revenue:        {sum: amount, where: "stage == 'won'"}
  deals_won:      {count: true, where: "stage == 'won'"}
  new_logos:      {count_distinct: customer_id, where: "stage == 'won' and new_customer"}
  pipeline_value: {sum: amount, where: "stage in ['open', 'commit']"}
  largest_deal:   {max: amount, where: "stage == 'won'"}
  avg_deal_size:  "revenue / max(deals_won, 1)"      # derived from the others
"""

TIER = """\
id: tier
name: Tier
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
tiers:
  qualify_on: revenue
  levels:
    - {name: Base, from: 0, rate: 2%}
"""


def problems_of(write_program, text: str, name: str = "measures.yaml") -> list[str]:
    path = write_program(text, name)
    with pytest.raises(incentives.ProgramError) as caught:
        load_programs(path)
    return [str(problem).removeprefix(f"{path}:") for problem in caught.value.problems]


def test_the_spec_example_loads_with_its_aggregations_and_derived_measure(write_program):
    path = write_program(DEALS, "deals.yaml")
    write_program(TIER, "tier.yaml")
    loaded = load_programs(path.parent)
    assert [item.program.id for item in loaded] == ["tier"]  # a measures file is not a program
    [measures_file] = loaded.measures
    measures = measures_file.measures
    assert (measures.id, measures.source, measures.partner, measures.date, measures.period) == \
        ("deal_measures", "deals", "partner_id", "closed_on", "quarter")
    assert {name: (aggregation.function, aggregation.column,
                   aggregation.where.text if aggregation.where else None)
            for name, aggregation in measures.aggregations.items()} == {
        "revenue": ("sum", "amount", "stage == 'won'"),
        "deals_won": ("count", None, "stage == 'won'"),
        "new_logos": ("count_distinct", "customer_id", "stage == 'won' and new_customer"),
        "pipeline_value": ("sum", "amount", "stage in ['open', 'commit']"),
        "largest_deal": ("max", "amount", "stage == 'won'")}
    assert {name: expression.text for name, expression in measures.derived.items()} == \
        {"avg_deal_size": "revenue / max(deals_won, 1)"}
    assert list(measures.measures) == ["revenue", "deals_won", "new_logos", "pipeline_value", "largest_deal",
                                       "avg_deal_size"]  # file order
    assert measures_file.file == str(path) and len(measures_file.sha256) == 64
    # the engine is made of the programs alone
    assert incentives.Engine(loaded).program_ids == ["tier"]


def test_partner_and_fiscal_year_start_have_defaults(write_program):
    path = write_program("id: m\nkind: measures\nsource: deals\ndate: closed_on\nperiod: month\n"
                         "measures: {deals: {count: true}}\n")
    [loaded] = load_programs(path).measures
    assert (loaded.measures.partner, loaded.measures.fiscal_year_start) == ("partner_id", "01-01")
    assert loaded.measures.aggregations["deals"] == Aggregation(count=True)


def test_keys_and_values_the_model_refuses_are_located(write_program):
    assert problems_of(write_program, """\
id: m
kind: measures
source: deals
date: closed_on
period: quartr
measures:
  revenue:  {summ: amount}
  deals:    {count: true, sum: amount}
  nothing:  {where: "x > 1"}
  rows:     {count: false}
  "2x":     {count: true}
""") == [
        "5:9: period: Input should be 'month', 'quarter', 'half' or 'year', found 'quartr'",
        "7:14: unknown key 'summ'; did you mean 'sum'?",
        "8:3: deals: needs exactly one of sum, count, count_distinct, min, max, avg, found sum, count",
        "9:3: nothing: needs exactly one of sum, count, count_distinct, min, max, avg",
        "10:21: count: Input should be True, found False",
        "11:3: measures: String should match pattern '^[A-Za-z][A-Za-z0-9_]*$', found '2x'",
    ]


def test_what_the_expressions_cannot_do_is_located(write_program):
    assert problems_of(write_program, """\
id: m
kind: measures
source: deals
date: closed_on
period: quarter
measures:
  share:    "won / deals + later"
  deals:    {count: true}
  later:    {sum: amount, where: "stage + 1"}
  old:      "prior.deals * 2"
  period:   {count: true, where: "this.total > 0"}
""") == [
        "7:13: derived measure 'share' reads deals, later, defined at or after it; derived measures are computed in "
        "file order",
        "7:13: derived measure 'share' reads won, which is not a measure of this file",
        "11:3: 'period' names a facts record's key; a measure needs a name of its own",
        "9:35: certain to fail: a condition must be true or false, not the result of '+' (a number)",
        "10:14: 'prior.deals' cannot be read here: a derived measure reads the measures before it (earlier "
        "periods' measures feed the programs' prior. and year_ago.)",
        "11:35: 'this.total' cannot be read here: a 'where' reads the columns of a transaction (earlier "
        "periods' measures feed the programs' prior. and year_ago.)",
    ]


def test_an_id_and_a_measure_are_defined_once_across_measures_files(write_program):
    write_program("id: m\nkind: measures\nsource: deals\ndate: closed_on\nperiod: quarter\n"
                  "measures: {deals: {count: true}}\n", "a.yaml")
    second = write_program("id: m\nkind: measures\nsource: invoices\ndate: issued_on\nperiod: quarter\n"
                           "measures:\n  invoiced: {sum: amount}\n  deals: {count: true}\n", "b.yaml")
    with pytest.raises(incentives.ProgramError) as caught:
        load_programs(second.parent)
    first = second.parent / "a.yaml"
    assert [str(problem) for problem in caught.value.problems] == [
        f"{second}:1:5: measures id 'm' is also the id of {first}",
        f"{second}:8:3: measure 'deals' is also defined in {first}",
    ]


def test_a_measures_file_is_not_a_program_file(write_program):
    path = write_program(DEALS)
    with pytest.raises(incentives.ProgramError, match=r"a measures file, not a program \(kind: measures\)"):
        load_program_file(path)
