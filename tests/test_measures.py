"""Measures computed from transactions (incentives.measures): values by hand, a plain-Python reference over
100k rows, periods of fiscal calendars, and bad input."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import incentives
from incentives.errors import EvaluationError
from incentives.loading import load_programs
from incentives.measures.compute import ROWS_PER_BATCH, compute_measures, measure_facts
from incentives.measures.model import MeasuresFile
from incentives.periods import parse_period, periods_covering
from incentives.rules.closures import compile_expression

ROOT = Path(__file__).resolve().parent.parent

DEALS = """\
id: deal_measures
kind: measures
source: deals
date: closed_on
period: quarter
measures:
  revenue:        {sum: amount, where: "stage == 'won'"}
  deals_won:      {count: true, where: "stage == 'won'"}
  new_logos:      {count_distinct: customer_id, where: "stage == 'won' and new_customer"}
  pipeline_value: {sum: amount, where: "stage in ['open', 'commit']"}
  largest_deal:   {max: amount, where: "stage == 'won'"}
  smallest_deal:  {min: amount}
  average_deal:   {avg: amount, where: "stage == 'won'"}
  avg_deal_size:  "revenue / max(deals_won, 1)"
"""

HEADER = "deal_id,partner_id,closed_on,stage,amount,customer_id,new_customer\n"


def measures_of(write_program, text: str = DEALS):
    return loaded_measures(write_program, text).measures


def loaded_measures(write_program, text: str = DEALS, file: str = "measures.yaml"):
    [loaded] = load_programs(write_program(text, file)).measures
    return loaded


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("rows_per_batch", [ROWS_PER_BATCH, 1])  # one row a batch: C1 of P1 in two batches
def test_measures_by_hand(write_program, tmp_path, rows_per_batch):
    deals = write(tmp_path / "deals.csv", HEADER + (
        "D1,P1,2027-01-05,won,1000.50,C1,true\n"
        "D2,P1, 2027-02-05 ,won,250,C2,false\n"          # cells are stripped
        "D3,P1,2027-02-06,open,9999,C3,true\n"
        "D4,P2,2027-03-31,won,100.25,C4,true\n"
        "D5,P2,2027-04-01,won,50,C4,true\n"              # the next quarter
        "D6,P3,2027-01-10,lost,10,C5,\n"                 # an empty new_customer is never read: not won
        "D7,,2027-01-10,won,10,C5,true\n"                # rejected: no partner
        "D8,P4,2027-02-30,won,10,C5,true\n"              # rejected: no such day
        "D9,P4,2027-02-03,won,1e3,C5,true\n"             # rejected: not a plain decimal
        "D10,P1,2027-01-07,won,,C1,true\n"))             # won, without an amount: counted, adds nothing
    facts = compute_measures(measures_of(write_program), deals, rejected_to=tmp_path / "rejected.csv",
                             rows_per_batch=rows_per_batch)
    assert facts.frame.rows() == [
        # 1000.50 + 250; three won (D10 too); C1 twice is one logo; D3 open; the largest won; the smallest of
        # all its rows with an amount; 1250.50 / 2 amounts; 1250.50 / 3 to 28 digits
        ("P1", "2027-Q1", "1250.50", "3", "1", "9999.00", "1000.50", "250.00", "625.25",
         "416.8333333333333333333333333"),
        ("P2", "2027-Q1", "100.25", "1", "1", "0.00", "100.25", "100.25", "100.25", "100.25"),
        ("P2", "2027-Q2", "50.00", "1", "1", "0.00", "50.00", "50.00", "50", "50"),
        # no won deal: no largest, no average (0 / 0), 0 / max(0, 1) = 0
        ("P3", "2027-Q1", "0.00", "0", "0", "0.00", None, "10.00", None, "0"),
    ]
    assert (facts.transactions, facts.rejected) == (10, 3)
    assert facts.first_rejected == [(7, "partner_id is empty"),
                                    (8, "closed_on '2027-02-30' is not a date (YYYY-MM-DD)"),
                                    (9, "amount '1e3' is not a plain decimal")]
    assert (tmp_path / "rejected.csv").read_text(encoding="utf-8") == (
        "row,why,deal_id,partner_id,closed_on,stage,amount,customer_id,new_customer\n"
        '7,partner_id is empty,D7,"",2027-01-10,won,10,C5,true\n'
        "8,closed_on '2027-02-30' is not a date (YYYY-MM-DD),D8,P4,2027-02-30,won,10,C5,true\n"
        "9,amount '1e3' is not a plain decimal,D9,P4,2027-02-03,won,1e3,C5,true\n")
    assert facts.notes == [
        "deal_measures: 3 of 10 transactions of " + str(deals) + " rejected: row 7: partner_id is empty; row 8: "
        "closed_on '2027-02-30' is not a date (YYYY-MM-DD); row 9: amount '1e3' is not a plain decimal",
        "deal_measures: revenue: 1 matching row has no amount; it adds nothing",
        "deal_measures: largest_deal: 1 matching row has no amount; it adds nothing",
        "deal_measures: smallest_deal: 1 matching row has no amount; it adds nothing",
        "deal_measures: average_deal: 1 matching row has no amount; it adds nothing",
        "deal_measures: largest_deal has no value for 1 of 4 partners and periods (no matching row, a measure "
        "it reads has none, or a division by zero)",
        "deal_measures: average_deal has no value for 1 of 4 partners and periods (no matching row, a measure "
        "it reads has none, or a division by zero)",
    ]


def test_a_where_that_cannot_be_read_on_a_row_does_not_match_it_and_is_counted(write_program, tmp_path):
    measures = measures_of(write_program, "id: m\nkind: measures\nsource: s\ndate: day\nperiod: month\n"
                                          "measures:\n  big: {count: true, where: 'amount / units > 10'}\n")
    rows = write(tmp_path / "s.csv", "partner_id,day,amount,units\nP1,2027-01-01,100,5\nP1,2027-01-02,100,0\n"
                                     "P1,2027-01-03,100,\nP1,2027-01-04,30,1\n")
    facts = compute_measures(measures, rows)
    assert facts.frame.rows() == [("P1", "2027-01", "2")]  # 20 and 30; a division by zero, an empty cell
    assert facts.notes == ["m: big: its where could not be evaluated on 2 rows (a cell it reads is empty, or it "
                           "divides by zero); they are not counted"]


# --- the reference: the same measures in plain Python, row by row ------------------------------------------


def _cell_kind(cells: list[str]) -> str:
    filled = [cell for cell in cells if cell]
    if filled and all(re.fullmatch(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", cell) for cell in filled):
        return "number"
    if filled and all(cell in ("true", "false") for cell in filled):
        return "boolean"
    return "text"


def _value(cell: str, kind: str):
    if cell == "":
        return None
    return Decimal(cell) if kind == "number" else (cell == "true") if kind == "boolean" else cell


def reference(measures, rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Decimal | None]]:
    """The measures of ``rows`` computed one row at a time with Decimals and the closures."""
    kinds = {column: _cell_kind([row[column].strip() for row in rows]) for column in ("stage", "new_customer")}
    days = [date.fromisoformat(row["closed_on"]) for row in rows]
    periods = periods_covering(measures.period, measures.fiscal_year_start, min(days), max(days))
    wheres = {name: compile_expression(aggregation.where.node) if aggregation.where else None
              for name, aggregation in measures.aggregations.items()}
    groups: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row, day in zip(rows, days):
        label = next(period.label for period in periods if period.start <= day <= period.end)
        facts = {column: _value(row[column].strip(), kind) for column, kind in kinds.items()}
        group = groups[(row["partner_id"], label)]
        for name, aggregation in measures.aggregations.items():
            where = wheres[name]
            try:
                holds = where is None or where(facts) is True
            except EvaluationError:
                holds = False
            if holds:
                cell = row[aggregation.column].strip() if aggregation.column else "row"
                if cell:
                    group[name].append(Decimal(cell) if aggregation.function not in ("count", "count_distinct")
                                       else cell)
                elif aggregation.function == "count":
                    group[name].append(cell)
    found = {}
    for key, values in groups.items():
        measured: dict[str, Decimal | None] = {}
        for name, aggregation in measures.aggregations.items():
            found_values = values[name]
            measured[name] = {
                "sum": lambda: sum(found_values, Decimal(0)),
                "count": lambda: Decimal(len(found_values)),
                "count_distinct": lambda: Decimal(len(set(found_values))),
                "min": lambda: min(found_values) if found_values else None,
                "max": lambda: max(found_values) if found_values else None,
                "avg": lambda: sum(found_values, Decimal(0)) / len(found_values) if found_values else None,
            }[aggregation.function]()
        for name, expression in measures.derived.items():
            try:
                measured[name] = compile_expression(expression.node)(measured)
            except EvaluationError:
                measured[name] = None
        found[key] = measured
    return found


def random_deals(count: int, seed: int) -> list[dict[str, str]]:
    chooser = random.Random(seed)
    first = date(2026, 1, 1)
    rows = []
    for index in range(count):
        cents = chooser.choice([0, 1, 2])
        # returns are negative; a sign, leading zeros and spaces as exports write them
        amount = f"{chooser.randint(-50_000, 2_000_000) / 10**cents:.{cents}f}" if chooser.random() > 0.02 else ""
        amount = chooser.choice([amount, amount, amount, f" {amount} ", f"+{amount}" if amount[:1] not in "-" else
                                 amount, f"00{amount}" if amount[:1] not in "-" else amount])
        rows.append({"deal_id": f"D{index}", "partner_id": f"P{chooser.randint(1, 500):04d}",
                     "closed_on": (first + timedelta(days=chooser.randint(0, 500))).isoformat(),
                     "stage": chooser.choice(["won", "won", "lost", "open", "commit"]),
                     "amount": amount, "customer_id": f"C{chooser.randint(1, 3000)}",
                     "new_customer": chooser.choice(["true", "false", ""])})
    return rows


# the transactions are grouped in batches whose partial aggregates are merged: 997 rows a batch merges ~100 of
# them, and keeps the distinct customers of a partner's period across batches
@pytest.mark.parametrize("rows_per_batch", [ROWS_PER_BATCH, 997])
def test_the_measures_of_100k_rows_are_the_plain_python_reference(write_program, tmp_path, rows_per_batch):
    measures = measures_of(write_program, DEALS.replace("period: quarter", "period: quarter\nfiscal_year_start: "
                                                                          '"07-01"'))
    rows = random_deals(100_000, seed=7)
    path = tmp_path / "deals.csv"
    pl.DataFrame(rows).write_csv(path)
    computed = compute_measures(measures, path, rows_per_batch=rows_per_batch)
    expected = reference(measures, rows)
    assert computed.rejected == 0
    assert len(computed.frame) == len(expected)
    for row in computed.frame.iter_rows(named=True):
        wanted = expected[(row["partner_id"], row["period"])]
        for name in measures.measures:
            value = wanted[name]
            assert (None if row[name] is None else Decimal(row[name])) == value, (row["partner_id"], name)
        # a sum has the column's decimals (some amounts have two)
        assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}", row["revenue"])


# --- periods ---------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(start=st.sampled_from(["01-01", "04-01", "07-01", "10-15", "01-31", "12-31"]),
       granularity=st.sampled_from(["month", "quarter", "half", "year"]),
       days=st.lists(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)), min_size=1, max_size=30))
def test_each_transaction_is_in_the_period_of_its_day(start, granularity, days):
    measures = MeasuresFile.model_validate({"id": "m", "kind": "measures", "source": "s", "date": "day",
                                            "period": granularity, "fiscal_year_start": start,
                                            "measures": {"n": {"count": True}}})
    frame = pl.DataFrame({"partner_id": [f"P{index:03d}" for index in range(len(days))],
                          "day": [day.isoformat() for day in days]})
    computed = compute_measures(measures, frame, name="s")
    labels = dict(zip(computed.frame["partner_id"], computed.frame["period"]))
    for index, day in enumerate(days):
        period = parse_period(labels[f"P{index:03d}"], start)
        assert period.granularity == granularity and period.start <= day <= period.end


def test_periods_covering_tile_the_days_they_cover():
    found = periods_covering("quarter", "07-01", date(2026, 6, 30), date(2027, 1, 1))
    assert [period.label for period in found] == ["2026-Q4", "2027-Q1", "2027-Q2", "2027-Q3"]
    assert all(earlier.end + timedelta(days=1) == later.start for earlier, later in zip(found, found[1:]))
    # fiscal 0001 would start in year 0: its first days are in no period
    assert [period.label for period in periods_covering("year", "07-01", date(1, 1, 1), date(1, 12, 31))] == \
        ["0002"]


# --- bad input ------------------------------------------------------------------------------------------------


def test_a_missing_column_is_an_input_error_naming_the_file(write_program, tmp_path):
    path = write(tmp_path / "deals.csv", "partner_id,closed_on,stage\nP1,2027-01-01,won\n")
    with pytest.raises(incentives.InputError) as caught:
        compute_measures(measures_of(write_program), path)
    # a column a where reads too: a where on a column the file lacks could never hold
    assert str(caught.value) == (f"{path}:1: missing columns amount, customer_id, new_customer (read by the "
                                 "measures 'deal_measures'); the file has: partner_id, closed_on, stage")


def test_a_file_that_is_not_utf8_is_an_input_error_at_its_line(write_program, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes((HEADER + "D1,P1,2027-01-05,won,10,C1,true\nD2,P\xe9,2027-01-05,won,10,C1,true\n")
                     .encode("latin-1"))
    with pytest.raises(incentives.InputError) as caught:
        compute_measures(measures_of(write_program), path)
    assert str(caught.value) == f"{path}:3: the file is not UTF-8 text"


def test_a_floating_point_column_is_refused(write_program, tmp_path):
    frame = pl.DataFrame({"partner_id": ["P1"], "closed_on": ["2027-01-01"], "stage": ["won"], "amount": [1.5],
                          "customer_id": ["C1"], "new_customer": [True]})
    with pytest.raises(incentives.InputError, match="column amount holds floating-point numbers"):
        compute_measures(measures_of(write_program), frame, name="deals")


def test_a_parquet_file_of_typed_columns_is_read_as_the_text_they_stand_for(write_program, tmp_path):
    frame = pl.DataFrame({"partner_id": ["P1", "P1"], "closed_on": [date(2027, 1, 1), date(2027, 2, 1)],
                          "stage": ["won", "won"], "amount": pl.Series([Decimal("10.50"), Decimal("2.25")],
                                                                     dtype=pl.Decimal(10, 2)),
                          "customer_id": [1, 2], "new_customer": [True, False]})
    frame.write_parquet(tmp_path / "deals.parquet")
    computed = compute_measures(measures_of(write_program), tmp_path / "deals.parquet")
    assert computed.frame.rows() == [("P1", "2027-Q1", "12.75", "2", "1", "0.00", "10.50", "2.25", "6.375",
                                      "6.375")]


def test_several_measures_files_are_joined_by_partner_and_period(write_program, tmp_path):
    deals = loaded_measures(write_program, "id: d\nkind: measures\nsource: deals\ndate: day\nperiod: quarter\n"
                                           "measures: {deals: {count: true}}\n", "deals.yaml")
    invoices = loaded_measures(write_program, "id: i\nkind: measures\nsource: invoices\ndate: day\n"
                                              "period: quarter\nmeasures: {invoiced: {sum: amount}}\n", "invoices.yaml")
    found = measure_facts([deals, invoices], {
        "deals": pl.DataFrame({"partner_id": ["P1", "P2"], "day": ["2027-01-01", "2027-01-02"]}),
        "invoices": pl.DataFrame({"partner_id": ["P2", "P3"], "day": ["2027-02-01", "2027-04-01"],
                                  "amount": ["10.5", "3"]})})
    # no invoice of P1, no deal of P3: a sum and a count of none are 0
    assert found.frame.rows() == [("P1", "2027-Q1", "1", "0.0"), ("P2", "2027-Q1", "1", "10.5"),
                                  ("P3", "2027-Q2", "0", "3.0")]
    with pytest.raises(incentives.InputError, match="no transactions given for invoices .* --transactions "
                                                    "invoices=FILE"):
        measure_facts([deals, invoices], {"deals": pl.DataFrame({"partner_id": ["P1"], "day": ["2027-01-01"]})})
