"""A run's claims by columns (``incentives.runs.claims``, ``incentives.columnar.claims``,
``incentives.claims_by_columns``): a CSV file typed by columns reads as ``read_claims`` reads it, claim rows
make the same ``Claim`` objects again, duplicates are flagged as ``flag_duplicate_claims`` flags them, and the
claims are handed out by partner, each once."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from incentives.claims_by_columns import claim_of, claim_rows, claims_by_columns, flag_duplicates
from incentives.columnar.claims import read_claim_rows
from incentives.errors import InputError
from incentives.inputs import Claim, flag_duplicate_claims, read_claims
from incentives.runs.claims import RunClaims

HEADER = ["claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on", "preapproved"]


def claim(claim_id: str, partner_id: str = "P1", period: str = "2027-Q1", program_id: str | None = None) -> Claim:
    return Claim(claim_id, partner_id, period, "event", Decimal("100"), None, None, True, program_id)


def claims_of(rows: pl.DataFrame) -> list[Claim]:
    return [claim_of(row) for row in rows.iter_rows(named=True)]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows])
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


# --- a CSV file by columns against read_claims ---------------------------------------------------------

IDS = st.sampled_from(["C1", "C2", " C3 ", "", "\x1cC4", "C1"])
AMOUNTS = st.one_of(
    st.sampled_from(["100", "950.50", "007.50", ".5", "5.", "0", "0.000", "0.0000001", "0.0000010", "-5", "+5",
                     "1e3", " 12.5 ", "", "abc", "NaN", "1" * 41, "12345678901234567890.5", "0.1234567890123456789"]),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**6, max_value=10**12).map(str))
DATES = st.sampled_from(["2027-01-20", " 2027-02-01", "2027-02-30", "", "20270101", "0000-01-01", "2027-1-2"])
FLAGS = st.sampled_from(["true", "false", "TRUE", " true", "", "yes"])
PROGRAMS = st.sampled_from(["", "co_marketing", " partner_fund ", None])
ROW = st.tuples(IDS, st.sampled_from(["P1", "P2", " P3", ""]), st.sampled_from(["2027-Q1", "2027-Q2", ""]),
                st.sampled_from(["event", "webinar", " "]), AMOUNTS, DATES, DATES, FLAGS, PROGRAMS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=12), with_program=st.booleans(), quoted=st.booleans(),
       rows_per_block=st.integers(1, 5))
@example(rows=[("C1", "P1", "2027-Q1", "event", "0.0000001", "2027-01-20", "2027-01-21", "true", None)],
         with_program=False, quoted=False, rows_per_block=1)
def test_a_csv_file_by_columns_reads_as_read_claims(tmp_path, rows, with_program, quoted, rows_per_block):
    header = HEADER + (["program_id"] if with_program else [])
    cells = [list(row[:8]) + ([row[8] or ""] if with_program else []) for row in rows]
    path = write_csv(tmp_path / "claims.csv", header, cells)
    if quoted:  # a quote sends the file to the CSV parser instead of polars' split
        path.write_text(path.read_text(encoding="utf-8").replace("event", '"event"'), encoding="utf-8")
    expected = read_claims(path)
    assert claims_of(flag_duplicates(read_claim_rows(path, rows_per_block=rows_per_block))) == expected


def test_the_usual_cells_are_typed_by_columns_and_the_others_read_per_claim(tmp_path):
    path = write_csv(tmp_path / "claims.csv", HEADER + ["program_id"], [
        ["C1", " P1 ", "2027-Q1", "event", "007.50", "2027-01-20", "2027-02-01", "true", " fund "],
        ["C2", "P1", "2027-Q1", "event", "-5", "2027-01-20", "2027-02-01", "TRUE", ""],
        ["C3", "P2", "2027-Q1", "event", "1", "2027-02-30", "", "false", ""]])
    rows = read_claim_rows(path)
    c1, c2, c3 = claims_of(rows)
    assert c1 == Claim("C1", "P1", "2027-Q1", "event", Decimal("7.50"), date(2027, 1, 20), date(2027, 2, 1), True,
                       "fund", 2)
    assert str(c1.amount) == "7.50"
    # read per claim: a sign and an upper-case flag are no problem, a bad date and a missing one are
    assert c2 == Claim("C2", "P1", "2027-Q1", "event", Decimal("-5"), date(2027, 1, 20), date(2027, 2, 1), True,
                       None, 3)
    assert c3.line == 4 and len(c3.problems) == 2 and c3.activity_end is None and c3.submitted_on is None
    assert rows["amount_digits"].to_list() == ["750", "5", "1"]
    assert rows["amount_decimals"].to_list() == [2, 0, 0]


def test_a_file_read_by_columns_has_read_claims_errors(tmp_path):
    path = tmp_path / "claims.csv"
    path.write_text("claim_id,partner_id,period\nC1,P1,2027-Q1\n", encoding="utf-8")
    for read in (read_claims, read_claim_rows):
        with pytest.raises(InputError, match="missing required column.s. activity, amount") as error:
            read(path)
        assert error.value.line == 1
    path.write_text(",".join(HEADER) + "\nC1,P1,2027-Q1,event,1,2027-01-01,2027-01-02,true,extra\n", encoding="utf-8")
    for read in (read_claims, read_claim_rows):
        with pytest.raises(InputError, match="this row has 9 cells but the header has 8 columns") as error:
            read(path)
        assert error.value.line == 2


# --- claim rows and Claim objects ---------------------------------------------------------------------

#: the readers escape a lone surrogate (polars holds UTF-8 only); NaN is never equal to itself, and no reader
#: makes it an amount
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=5)


@settings(max_examples=200, deadline=None)
@given(amount=st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=True),
                        st.decimals(places=3, allow_nan=False, allow_infinity=False)),
       line=st.one_of(st.none(), st.integers(1, 10**9)), problems=st.lists(TEXT, max_size=2),
       program_id=st.one_of(st.none(), TEXT))
def test_a_claim_row_makes_the_same_claim_again(amount, line, problems, program_id):
    original = Claim("C1", "P1", "2027-Q1", "event", amount, date(2027, 1, 2), None, False, program_id, line,
                     tuple(problems))
    again = claim_of(claim_rows([original]).row(0, named=True))
    assert again == original
    assert str(again.amount) == str(original.amount)  # the exponent too


def test_duplicates_are_flagged_by_columns_as_by_objects():
    claims = [claim("C1"), claim("C2"), claim("C1", partner_id="P2"), claim("C'1"), claim("C'1"), claim(""),
              claim(""), claim("C1", partner_id="P3").with_problem("claim_id 'C1' occurs 3 times")]
    assert claims_of(flag_duplicates(claim_rows(claims))) == flag_duplicate_claims(claims)
    # the message quotes as repr does, each copy of a duplicate is flagged, empty ids are missing, not repeated
    flagged = claims_of(flag_duplicates(claim_rows(claims)))
    assert flagged[3].problems == ("claim_id \"C'1\" occurs 2 times",)
    assert flagged[7].problems == ("claim_id 'C1' occurs 3 times",)
    assert flagged[5].problems == ()


def test_claims_by_columns_are_in_units_at_the_most_decimals():
    claims = [Claim(f"C{n}", "P1", "2027-Q1", "event", Decimal(text), None, None, True)
              for n, text in enumerate(["100", "950.50", "1E+2", "-0.125", "0.0000000000000000001"])]
    by_columns = claims_by_columns(claims)
    assert by_columns.amount_scale == 3  # 0.125's; the last one's 19 decimals are too many
    assert by_columns.frame["amount"].to_list() == [100000, 950500, 100000, -125, None]
    assert by_columns.amount_bound == 950500
    assert by_columns.frame["needs_record"].to_list() == [False] * 4 + [True]


# --- a run's claims -------------------------------------------------------------------------------------

def test_claims_are_handed_out_by_partner_each_once_and_a_period_keeps_its_own_and_those_without_one():
    claims = [claim("C1", partner_id="P2"), claim("C2", period="2027-Q2"), claim("C3"), claim("C4", period=""),
              claim("C5", partner_id="P9")]
    cursor = RunClaims.read(claims).cursor()
    first = cursor.through("P1")
    # by partner, then each key in the order it was first met
    assert first.keys().rows() == [("P1", "2027-Q2"), ("P1", "2027-Q1"), ("P1", "")]
    assert [c.claim_id for c in first.of(("P1", "2027-Q1"))] == ["C3"]
    assert first.of(("P2", "2027-Q1")) == []  # not this block's
    assert [c.claim_id for c in cursor.through("P5").of(("P2", "2027-Q1"))] == ["C1"]
    assert not cursor.through("P5")  # handed out already
    assert cursor.through(None).keys().rows() == [("P9", "2027-Q1")]
    of_q1 = RunClaims.read(claims, "2027-Q1").cursor().through(None)
    assert of_q1.keys().rows() == [("P1", "2027-Q1"), ("P1", ""), ("P2", "2027-Q1"), ("P9", "2027-Q1")]


def test_a_run_flags_duplicates_among_the_claims_it_keeps():
    claims = [claim("C1"), claim("C1", partner_id="P2"), claim("C7"), claim("C7", period="2027-Q2")]
    handed = RunClaims.read(claims, "2027-Q1").cursor().through(None)
    assert [c.problems for c in handed.of(("P1", "2027-Q1"))] == [("claim_id 'C1' occurs 2 times",), ()]
    assert [c.problems for c in handed.of(("P2", "2027-Q1"))] == [("claim_id 'C1' occurs 2 times",)]


def test_a_csv_and_a_json_lines_file_give_a_run_the_same_claims(tmp_path):
    rows = [["C1", "P1", "2027-Q1", "event", "950.50", "2027-01-20", "2027-02-01", "true"],
            ["C1", "P2", "2027-Q1", "webinar", "-1", "2027-01-20", "", "false"]]
    path = write_csv(tmp_path / "claims.csv", HEADER, rows)
    jsonl = tmp_path / "claims.jsonl"
    jsonl.write_text("".join(
        '{' + ",".join(f'"{name}": "{cell}"' for name, cell in zip(HEADER, row)) + "}\n" for row in rows),
        encoding="utf-8")
    from_csv, from_jsonl = (RunClaims.read(source).cursor().through(None) for source in (path, jsonl))
    for key in (("P1", "2027-Q1"), ("P2", "2027-Q1")):
        # the same claims but for their lines (the CSV file's first claim is on line 2, the JSON's on line 1)
        assert [replace(c, line=c.line - 1) for c in from_csv.of(key)] == from_jsonl.of(key)
    assert from_csv.of(("P1", "2027-Q1"))[0].amount == Decimal("950.50")
