"""Facts by columns (incentives.columnar.facts) against the per-record reader (incentives.inputs.read_facts)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from incentives.columnar.facts import LINE, MAX_DIGITS, PER_RECORD, read_csv_blocks
from incentives.errors import InputError
from incentives.inputs import csv_fact_cells, read_facts
from incentives.rules.columns import Kind


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(blocks) -> list[dict]:
    return [row for block in blocks for row in block.frame.to_dicts()]


def test_cells_typed_as_the_per_record_reader_types_them(tmp_path):
    facts = write(tmp_path / "facts.csv",
                  "partner_id,period,revenue,flag,joined,region\n"
                  "P1,2027-Q1,1234.5,true,2026-01-05,EMEA\n"
                  " P2 ,2027-Q1, 7 ,FALSE,2026-02-28,  APAC \n"
                  "P3,2027-Q1,-.25,, ,x\n"
                  "\n"
                  "P4,2027-Q2,007.,True,2026-01-01,a\n")
    [block] = read_csv_blocks(facts)
    # revenue's scale is its most decimals, 2: 1234.5 → 123450, 7 → 700, -.25 → -25, 007. → 700
    assert block.columns["revenue"].kind is Kind.NUMBER and block.columns["revenue"].scale == 2
    assert block.columns["revenue"].bound == 123450
    assert block.decimals["revenue"].to_list() == [1, 0, 2, 0]  # as written: 1234.5, 7, -.25, 007.
    assert [block.columns[name].kind for name in ("flag", "joined", "region")] == [Kind.BOOLEAN, Kind.DATE, Kind.TEXT]
    assert rows_of([block]) == [
        {LINE: 2, "partner_id": "P1", "period": "2027-Q1", "revenue": 123450, "flag": True,
         "joined": date(2026, 1, 5), "region": "EMEA", PER_RECORD: False},
        {LINE: 3, "partner_id": "P2", "period": "2027-Q1", "revenue": 700, "flag": False,
         "joined": date(2026, 2, 28), "region": "APAC", PER_RECORD: False},
        # empty and blank cells are missing facts, as per record
        {LINE: 4, "partner_id": "P3", "period": "2027-Q1", "revenue": -25, "flag": None, "joined": None,
         "region": "x", PER_RECORD: False},
        {LINE: 6, "partner_id": "P4", "period": "2027-Q2", "revenue": 700, "flag": True,
         "joined": date(2026, 1, 1), "region": "a", PER_RECORD: False}]  # line 5 is blank


def test_rows_the_columns_cannot_hold_go_to_the_per_record_path_with_no_value(tmp_path):
    facts = write(tmp_path / "facts.csv",
                  "partner_id,period,revenue,joined,region\n"
                  "P1,2027-Q1,1e5,2026-01-05,EMEA\n"        # an exponent: per record
                  "P2,2027-Q1,-0.00,2026-01-05,EMEA\n"      # a negative zero: per record
                  "P3,2027-Q1,10,2026-02-30,EMEA\n"         # not a date: a problem per record
                  "P4,2027-Q1,10,2026-01-05,5\n"            # a number in a text column
                  "P5,,10,2026-01-05,EMEA\n"                # no period: a problem
                  "P6,2027-Q1,NaN,2026-01-05,EMEA\n"        # not a number: a problem
                  "P7,2027-Q1,12345678901234567.5,2026-01-05,EMEA\n"  # 18 digits at scale 1: fits Int64
                  "P8,2027-Q1,20,2026-01-05,EMEA\n"
                  "P9,2027-Q1,20,0000-01-01,EMEA\n")  # year 0: polars has it, Python's dates do not
    block = next(read_csv_blocks(facts))
    flagged = {row["partner_id"] or row[LINE]: row[PER_RECORD] for row in rows_of([block])}
    assert flagged == {"P1": True, "P2": True, "P3": True, "P4": True, "P5": True, "P6": True, "P7": False,
                       "P8": False, "P9": True}
    rows = rows_of([block])
    assert all(value is None for row in rows if row[PER_RECORD]
               for name, value in row.items() if name in ("revenue", "joined", "region"))
    assert [row["revenue"] for row in rows if not row[PER_RECORD]] == [123456789012345675, 200]


def test_a_number_too_long_for_the_column_scale_goes_per_record(tmp_path):
    # scale 2 (from 0.25): 12345678901234567 has 17 whole digits, 19 digits of minor units: beyond Int64's 18
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nP1,2027-Q1,0.25\nP2,2027-Q1,12345678901234567\n")
    rows = rows_of(read_csv_blocks(facts))
    assert [(row["revenue"], row[PER_RECORD]) for row in rows] == [(25, False), (None, True)]


def test_only_the_facts_read_are_typed_and_blocks_split_rows(tmp_path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue,region\n" + "".join(
        f"P{n},2027-Q1,{n}.5,{'5' if n == 2 else 'EMEA'}\n" for n in range(1, 6)))
    blocks = list(read_csv_blocks(facts, names={"revenue"}, rows_per_block=2))
    assert [block.frame.height for block in blocks] == [2, 2, 1]
    assert all(list(block.columns) == ["revenue"] for block in blocks)
    # region is not read: its number in a text column does not send P2 per record
    assert [row[PER_RECORD] for row in rows_of(blocks)] == [False] * 5
    assert [row["revenue"] for row in rows_of(blocks)] == [15, 25, 35, 45, 55]


@pytest.mark.parametrize("text, message", [
    ("partner_id,period,revenue\nP1,2027-Q1\n", "this row has 2 cells but the header has 3 columns"),
    ("partner_id,revenue\nP1,5\n", "missing required column(s) period"),
])
def test_a_file_that_cannot_be_read_fails_as_per_record(tmp_path, text, message):
    facts = write(tmp_path / "facts.csv", text)
    with pytest.raises(InputError) as by_columns:
        list(read_csv_blocks(facts))
    with pytest.raises(InputError) as per_record:
        list(read_facts(facts))
    assert message in str(by_columns.value)
    assert (str(by_columns.value), by_columns.value.line) == (str(per_record.value), per_record.value.line)


# --- parity: every row the columns hold has the per-record values --------------------------------

PADDING = st.sampled_from(["", "", "", " ", "\t", "\u00a0", "\u2003", "\x1c", "\u200b"])
NUMBERS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2,
                min_value=-10**6, max_value=10**6).map(str),
    st.integers(-10**20, 10**20).map(str),
    st.tuples(st.sampled_from(["", "+", "-"]), st.text("0123456789", max_size=20),
              st.sampled_from(["", "."]), st.text("0123456789", max_size=20)).map("".join),
    st.sampled_from(["1e5", "1E-3", "-0", "-0.00", "+0", ".5", "5.", "007", "0000.000"]),
)
OTHERS = st.one_of(
    st.sampled_from(["true", "TRUE", "True", "false", "FaLsE", "nan", "NaN", "inf", "-Infinity", "snan12",
                     "2026-02-30", "0000-01-01", "2027-13-01"]),
    st.dates().map(date.isoformat),
    st.text(max_size=8),
)
CELLS = st.tuples(PADDING, st.one_of(NUMBERS, OTHERS, st.just("")), PADDING).map("".join)


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # so that a cell holding a \r alone is quoted too
    writer.writerow(["partner_id", "period", "a", "b", "c"])
    writer.writerows(rows)
    return out.getvalue()


ROWS = st.lists(st.tuples(st.sampled_from(["P1", "P2", " P3 ", "", "P\u00a04"]),
                          st.sampled_from(["2027-Q1", " 2027-Q2", ""]),
                          st.one_of(NUMBERS, CELLS), st.one_of(st.dates().map(date.isoformat), CELLS),
                          CELLS).map(list), min_size=1, max_size=30)


def _kind_of(value) -> Kind:
    return {bool: Kind.BOOLEAN, D: Kind.NUMBER, date: Kind.DATE, str: Kind.TEXT}[type(value)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, rows_per_block=st.integers(1, 40))
@example(rows=[["P1", "2027-Q1", "1.5", "2026-01-01", "x"], ["P2", "2027-Q1", "-0.0", "", "\x1cy\x1c"]],
         rows_per_block=40)
@example(rows=[["P1", "2027-Q1", "0.00", "2000-01-01", "1E-3"]], rows_per_block=1)
def test_every_row_the_columns_hold_has_the_per_record_values(tmp_path, rows, rows_per_block):
    facts = write(tmp_path / "facts.csv", csv_text(rows))
    per_record = {row.line: row for row in read_facts(facts)}
    blocks = list(read_csv_blocks(facts, rows_per_block=rows_per_block))
    by_line = {}
    for block in blocks:
        decimals = {name: series.to_list() for name, series in block.decimals.items()}
        for at, row in enumerate(block.frame.to_dicts()):
            by_line[row[LINE]] = (row, {name: decimals[name][at] for name in decimals}, block.columns)
    assert by_line.keys() == per_record.keys()  # the same rows, blank ones skipped, at the same lines
    with csv_fact_cells(facts) as (header, cells):
        written = {line: dict(zip(header, row)) for line, row in cells}
    for line, expected in per_record.items():
        row, decimals, columns = by_line[line]
        if expected.problems:
            assert row[PER_RECORD], expected.problems
        if row[PER_RECORD]:
            # a documented reason: a problem, or a cell the column cannot hold (another kind, an exponent,
            # a negative zero, too many digits)
            assert expected.problems or any(
                not _held(expected.facts.get(name), written[line][name], columns[name])
                for name in ("a", "b", "c")), (expected, row)
            continue
        assert (row["partner_id"], row["period"]) == (expected.partner_id, expected.period)
        for name in ("a", "b", "c"):
            value, column = expected.facts.get(name), columns[name]
            if value is None:
                assert row[name] is None
                continue
            assert _kind_of(value) is column.kind
            if column.kind is Kind.NUMBER:
                assert D(row[name]).scaleb(-column.scale) == value
                assert -value.as_tuple().exponent == decimals[name]  # the cell's own decimals
            else:
                assert row[name] == value


def _held(value, written: str, column) -> bool:
    """Whether the columns can hold ``value``, read per record from the cell ``written``, in ``column`` (see the
    module docstring)."""
    if value is None:
        return True
    if _kind_of(value) is not column.kind:
        return False
    if column.kind is not Kind.NUMBER:
        return True
    if "e" in written.lower():
        return False
    sign, digits, exponent = value.as_tuple()
    whole_digits = max(len(digits) + exponent, 0) if any(digits) else 0
    return exponent <= 0 and -exponent <= MAX_DIGITS and not (sign and not any(digits)) and (
        whole_digits + column.scale <= MAX_DIGITS)


def test_the_strip_is_pythons(tmp_path):
    # U+001C is whitespace to Python's str.strip (not to Rust's): stripped per record, so by columns too
    facts = write(tmp_path / "facts.csv", "partner_id,period,region\nP1,2027-Q1,\x1cEMEA\x1c\n")
    [row] = rows_of(read_csv_blocks(facts))
    assert row["region"] == next(read_facts(facts)).facts["region"] == "EMEA"
    assert pl.Series(["\x1cEMEA"]).str.strip_chars().to_list() == ["\x1cEMEA"]  # why the set is spelt out


# --- the plain-lines fast path against the parser ----------------------------------------------------

PLAIN_CELLS = st.text(st.characters(exclude_characters=',"\r\n\x00', exclude_categories=("Cs",)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(st.lists(PLAIN_CELLS, min_size=3, max_size=3).map(",".join),
                               st.sampled_from(["", ",,", ",", "   "])), max_size=25),
       ending=st.sampled_from(["\n", "\r\n"]), bom=st.booleans(), last_break=st.booleans(),
       rows_per_block=st.integers(1, 30))
@example(rows=["a,b,c", "", ",,", "d,e,f"], ending="\r\n", bom=True, last_break=False, rows_per_block=2)
def test_plain_lines_split_by_polars_are_the_parsers_rows(tmp_path, rows, ending, bom, last_break, rows_per_block):
    from incentives.columnar.cells import parsed_rows, plain_rows

    text = ending.join(["partner_id,period,x", *rows]) + (ending if last_break else "")
    facts = tmp_path / "facts.csv"
    facts.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    try:
        with csv_fact_cells(facts) as (header, parsed):
            expected = [(lines.to_list(), cells.rows()) for lines, cells in parsed_rows(parsed, 3, rows_per_block)]
    except InputError:  # a ragged row ('   ' has one cell): the parser reports it, the fast path declines
        assert plain_rows(facts, 3, rows_per_block, None) is None
        return
    plain = plain_rows(facts, 3, rows_per_block, None)
    assert plain is not None
    assert [(lines.to_list(), cells.rows()) for lines, cells in plain] == expected


def test_a_file_with_a_quote_or_a_lone_carriage_return_is_left_to_the_parser(tmp_path):
    from incentives.columnar.cells import plain_rows

    for text in ('partner_id,period,x\nP1,2027-Q1,"a"\n', "partner_id,period,x\rP1,2027-Q1,a\r",
                 "partner_id,period,x\nP1,2027-Q1,a\x00\n"):
        facts = write(tmp_path / "facts.csv", text)
        assert plain_rows(facts, 3, 10, None) is None


def test_case_is_folded_in_ascii_only_as_per_record(tmp_path):
    # 'ſ' (long s) and 'K' (Kelvin sign) fold to 's' and 'k' in polars' case-insensitive match, not in the
    # per-record rules': these cells are texts, not a boolean and a non-finite number
    facts = write(tmp_path / "facts.csv", "partner_id,period,word\nP1,2027-Q1,falſe\nP2,2027-Q1,ſnan\nP3,2027-Q1,x\n")
    rows = rows_of(read_csv_blocks(facts))
    assert [(row["word"], row[PER_RECORD]) for row in rows] == [("falſe", False), ("ſnan", False), ("x", False)]
    assert [row.facts["word"] for row in read_facts(facts)] == ["falſe", "ſnan", "x"]


def test_the_whitespace_stripped_by_columns_is_what_str_strip_strips():
    import sys

    from incentives.columnar.cells import WHITESPACE

    assert WHITESPACE == "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())


@given(partners=st.lists(st.sampled_from(["", "P1", "P2", "P3", "P4"]), max_size=30), rows_per_block=st.integers(1, 8))
def test_blocks_end_where_a_partner_does(partners, rows_per_block):
    from incentives.columnar.cells import partner_cuts

    partners = sorted(partners)
    expected, start = [], 0  # by hand: a block's size, then on to the end of its last partner's rows
    while start < len(partners):
        end = min(start + rows_per_block, len(partners))
        while end < len(partners) and partners[end] == partners[end - 1]:
            end += 1
        expected.append((start, end))
        start = end
    assert list(partner_cuts(pl.Series(partners, dtype=pl.String), rows_per_block)) == expected


def test_a_line_end_split_between_two_reads_is_still_a_line_end(tmp_path):
    from incentives.columnar.cells import plain_rows

    # the file is checked 16 MiB at a time: a CRLF across the boundary is not a lone carriage return
    head = "partner_id,period,x\r\n"
    filler = "P1,2027-Q1,1\r\n"
    rows = (2**24 - len(head)) // len(filler) - 1
    text = head + filler * rows
    text += "P2,2027-Q1," + "9" * (2**24 - len(text) - len("P2,2027-Q1,") - 1) + "\r\nP3,2027-Q1,3\r\n"
    facts = write(tmp_path / "facts.csv", text)
    assert facts.read_bytes()[2**24 - 1:2**24 + 1] == b"\r\n"
    blocks = plain_rows(facts, 3, 10**9, None)
    assert blocks is not None
    [(lines, cells)] = list(blocks)
    assert cells["0"].to_list()[-2:] == ["P2", "P3"] and lines.to_list()[-1] == rows + 3
