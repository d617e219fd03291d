"""Facts and claims readers, and API record normalisation."""

from __future__ import annotations

import types
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from incentives.errors import InputError
from incentives.inputs import (
    Claim,
    FactRow,
    RecordError,
    fact_row,
    flag_duplicate_claims,
    normalize_claim,
    normalize_record,
    read_claims,
    read_facts,
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def rows(path: Path) -> list[FactRow]:
    return list(read_facts(path))


def input_error(path: Path, reader: Any = rows) -> InputError:
    with pytest.raises(InputError) as caught:
        reader(path)
    assert caught.value.file == str(path)
    return caught.value


# -- CSV facts: typing ------------------------------------------------------------------------

TYPED_CSV = (
    "partner_id,period,revenue,refund,big,half,certifications.sales,active,flag,joined_on,tier,"
    "notes,thousands,pct,code,spaced\n"
    "00123,2027-Q1,612500.00,-12.50,1e3,.5,2,true,FALSE,2027-02-15,Gold,,\"1,000\",3.5%,A-1,  42  \n"
)


def test_csv_typing_per_cell_kind(tmp_path: Path) -> None:
    [row] = rows(write(tmp_path, "facts.csv", TYPED_CSV))
    assert row.problems == []
    assert (row.line, row.partner_id, row.period) == (2, "00123", "2027-Q1")
    assert row.facts == {
        "partner_id": "00123",  # always a string, leading zeros kept
        "period": "2027-Q1",
        "revenue": D("612500.00"),
        "refund": D("-12.50"),
        "big": D("1E+3"),
        "half": D("0.5"),
        "certifications.sales": D(2),
        "active": True,
        "flag": False,
        "joined_on": date(2027, 2, 15),
        "tier": "Gold",
        # notes: empty cell -> missing
        "thousands": "1,000",  # thousands separators are not numbers
        "pct": "3.5%",
        "code": "A-1",
        "spaced": D(42),  # surrounding whitespace ignored
    }
    assert "notes" not in row.facts
    assert type(row.facts["revenue"]) is D and type(row.facts["active"]) is bool
    assert str(row.facts["revenue"]) == "612500.00"


@pytest.mark.parametrize("cell, problem", [
    ("NaN", "revenue: 'NaN' is not a number"),
    ("nan", "revenue: 'nan' is not a number"),
    ("Infinity", "revenue: 'Infinity' is not a number"),
    ("-inf", "revenue: '-inf' is not a number"),
    ("sNaN", "revenue: 'sNaN' is not a number"),
    ("2027-02-30", "revenue: '2027-02-30' is not a valid date"),
])
def test_csv_bad_cells_are_problems_of_their_row(tmp_path: Path, cell: str, problem: str) -> None:
    path = write(tmp_path, "facts.csv", f"partner_id,period,revenue,tier\nP1,2027-Q1,{cell},Gold\nP2,2027-Q1,5,\n")
    first, second = rows(path)
    assert first.problems == [problem]
    assert first.facts == {"partner_id": "P1", "period": "2027-Q1", "tier": "Gold"}
    assert second.problems == [] and second.facts["revenue"] == D(5)


def test_csv_missing_partner_id_or_period_still_yields_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "partner_id,period,revenue\n,2027-Q1,1\nP2,  ,2\n,,3\n")
    first, second, third = rows(path)
    assert (first.partner_id, first.problems) == ("", ["missing partner_id"])
    assert (second.period, second.problems) == ("", ["missing period"])
    assert third.problems == ["missing partner_id", "missing period"]
    assert third.facts == {"revenue": D(3)}
    assert [row.line for row in (first, second, third)] == [2, 3, 4]


def test_csv_header_names_are_stripped_and_column_order_free(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", " revenue , period ,partner_id\n10,2027-Q1,P1\n")
    [row] = rows(path)
    assert row.facts == {"partner_id": "P1", "period": "2027-Q1", "revenue": D(10)}


# -- CSV facts: lines and files ---------------------------------------------------------------

def test_csv_line_numbers_with_quoted_newlines_blank_lines_and_crlf(tmp_path: Path) -> None:
    text = (
        "partner_id,period,notes\r\n"  # 1
        "P1,2027-Q1,\"two\r\nlines\"\r\n"  # 2-3
        "\r\n"  # 4 blank: skipped
        ",,\r\n"  # 5 all cells empty: skipped
        "P2,2027-Q1,\"a\nb\nc\"\r\n"  # 6-8
        "P3,2027-Q1,x\r\n"  # 9
    )
    result = rows(write(tmp_path, "facts.csv", text))
    assert [(row.line, row.partner_id) for row in result] == [(2, "P1"), (6, "P2"), (9, "P3")]
    assert result[0].facts["notes"] == "two\r\nlines"


def test_csv_bom_is_stripped(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", b"\xef\xbb\xbfpartner_id,period,revenue\nP1,2027-Q1,10\n")
    [row] = rows(path)
    assert row.facts == {"partner_id": "P1", "period": "2027-Q1", "revenue": D(10)}


def test_csv_header_only_yields_nothing(tmp_path: Path) -> None:
    assert rows(write(tmp_path, "facts.csv", "partner_id,period\n")) == []


@pytest.mark.parametrize("row", ["P2,2027-Q1,20,extra", "P2,2027-Q1"])
def test_csv_ragged_row_fails_the_file_at_its_line(tmp_path: Path, row: str) -> None:
    path = write(tmp_path, "facts.csv", f"partner_id,period,revenue\nP1,2027-Q1,\"a\nb\"\n\n{row}\n")
    error = input_error(path)
    assert error.line == 5
    assert "the header has 3 columns" in str(error)


def test_csv_reading_is_streamed(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "partner_id,period\nP1,2027-Q1\nP2,2027-Q1,oops\n")
    stream = read_facts(path)
    assert next(stream).partner_id == "P1"  # the bad row has not been read yet
    with pytest.raises(InputError) as caught:
        next(stream)
    assert caught.value.line == 3


def test_csv_not_utf8_reports_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", b"partner_id,period,name\nP1,2027-Q1,ok\nP2,2027-Q1,M\xfcller\n")
    error = input_error(path)
    assert error.line == 3
    assert "not UTF-8" in str(error)


def test_csv_not_utf8_far_into_the_file(tmp_path: Path) -> None:
    # beyond the decoder's first chunk, after a quoted newline and CRLF endings
    body = "".join(f"P{n},2027-Q1,\"x\"\r\n" for n in range(5000))
    content = ("partner_id,period,name\r\nP,2027-Q1,\"a\r\nb\"\r\n" + body).encode() + b"Q,2027-Q1,\xe9\r\n"
    error = input_error(write(tmp_path, "facts.csv", content))
    assert error.line == 1 + 2 + 5000 + 1


@pytest.mark.parametrize("header, kind", [
    ("partner_id;period;revenue", "semicolon"),
    ("partner_id\tperiod\trevenue", "tab"),
    ("partner_id|period|revenue", "pipe"),
])
def test_csv_other_delimiter(tmp_path: Path, header: str, kind: str) -> None:
    error = input_error(write(tmp_path, "facts.csv", f"{header}\nP1;2027-Q1;10\n"))
    assert f"expected comma-separated values; the header looks {kind}-separated" in str(error)
    assert error.line == 1


@pytest.mark.parametrize("content, line, message", [
    ("", 1, "empty"),
    ("\n\n", 1, "empty"),
    ("partner_id,period,revenue,revenue\n", 1, "duplicate column name(s) in the header: revenue"),
    ("partner_id,revenue\nP1,1\n", 1, "missing required column(s) period"),
    ("\nrevenue\nP1\n", 2, "missing required column(s) partner_id, period"),
    ("partner_id,period,\nP1,2027-Q1,\n", 1, "column 3 of the header has no name"),
    ("partner_id,period\nP1,\"2027-Q1\nP2,2027-Q1\n", 2, "malformed CSV"),
    ("partner_id,period\nP1,\"2027\"-Q1\n", 2, "malformed CSV"),
])
def test_csv_file_level_problems(tmp_path: Path, content: str, line: int, message: str) -> None:
    error = input_error(write(tmp_path, "facts.csv", content))
    assert error.line == line
    assert message in str(error)


def test_unsupported_suffix_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.json", "{}")
    with pytest.raises(InputError, match="expected .csv, .jsonl or .ndjson"):
        read_facts(path)  # checked at once, before iteration
    with pytest.raises(InputError, match="no such file"):
        read_facts(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="not a regular file"):
        read_facts(tmp_path)


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    assert rows(write(tmp_path, "FACTS.CSV", "partner_id,period\nP1,2027-Q1\n"))[0].partner_id == "P1"


# -- JSON Lines facts ------------------------------------------------------------------------

def test_jsonl_records_are_flattened_and_typed(tmp_path: Path) -> None:
    text = (
        '{"partner_id": "P1", "period": "2027-Q1", "revenue": 612500.10, "deals": 12,'
        ' "certifications": {"sales": 2, "technical": {"level": 3}}, "joined_on": "2027-02-15",'
        ' "quota": "100000", "tier": "Gold", "active": true, "tags": ["a", 1.5], "nothing": null}\n'
        "\n"
        '   \n'
        '{"partner_id": 1001, "period": "2027-Q2", "revenue": 0.1}\n'
    )
    first, second = rows(write(tmp_path, "facts.jsonl", text))
    assert first.problems == [] and first.line == 1
    assert first.facts == {
        "partner_id": "P1", "period": "2027-Q1",
        "revenue": D("612500.10"), "deals": D(12),
        "certifications.sales": D(2), "certifications.technical.level": D(3),
        "joined_on": date(2027, 2, 15),  # ISO date strings are dates, as in CSV
        "quota": D(100000),  # numeric strings are numbers, as in CSV
        "tier": "Gold", "active": True, "tags": ("a", D("1.5")),
    }
    assert str(first.facts["revenue"]) == "612500.10"  # never through a float
    assert (second.line, second.partner_id, second.facts["revenue"]) == (4, "1001", D("0.1"))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_jsonl_nan_makes_the_record_an_error(tmp_path: Path, literal: str) -> None:
    path = write(tmp_path, "facts.ndjson", f'{{"partner_id": "P1", "period": "2027-Q1", "revenue": {literal}}}\n')
    [row] = rows(path)
    assert row.problems == [f"revenue: {literal} is not a number"]
    assert "revenue" not in row.facts


@pytest.mark.parametrize("line, message", [
    ('{"partner_id": "P1", "period": ', "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('"P1"', "expected a JSON object, got str"),
])
def test_jsonl_bad_line_fails_the_file(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "facts.jsonl", '{"partner_id": "P0", "period": "2027-Q1"}\n\n' + line + "\n")
    error = input_error(path)
    assert error.line == 3
    assert message in str(error)


def test_jsonl_bom_crlf_and_bad_utf8(tmp_path: Path) -> None:
    good = write(tmp_path, "good.jsonl", b'\xef\xbb\xbf{"partner_id": "P1", "period": "2027-Q1"}\r\n')
    assert rows(good)[0].facts == {"partner_id": "P1", "period": "2027-Q1"}
    bad = write(tmp_path, "bad.jsonl", b'{"partner_id": "P1", "period": "2027-Q1"}\n{"name": "\xff"}\n')
    assert input_error(bad).line == 2


def test_jsonl_missing_ids_are_row_problems(tmp_path: Path) -> None:
    [row] = rows(write(tmp_path, "facts.jsonl", '{"period": 2027, "partner_id": true}\n'))
    assert row.period == "2027"  # a JSON number period becomes its digits
    assert row.problems == ["partner_id must be a string, not bool True"]


# -- API records ----------------------------------------------------------------------------

def test_normalize_record_types() -> None:
    record = {
        "partner_id": 42,
        "period": "2027-Q1",
        "revenue": 612500,
        "rate": 0.035,  # through its shortest repr
        "refund": D("-12.50"),
        "quota": "100000.00",
        "active": True,  # a bool is not a number
        "joined_on": date(2027, 2, 15),
        "renewal": "2027-06-30",
        "certifications": {"sales": 2, "technical": None},
        "regions": ["EMEA", "2", ["x"]],
        "closed": None,
        "tier": " Gold ",
        "blank": "   ",
    }
    assert normalize_record(record) == {
        "partner_id": "42",
        "period": "2027-Q1",
        "revenue": D(612500),
        "rate": D("0.035"),
        "refund": D("-12.50"),
        "quota": D("100000.00"),
        "active": True,
        "joined_on": date(2027, 2, 15),
        "renewal": date(2027, 6, 30),
        "certifications.sales": D(2),
        "regions": ("EMEA", D(2), ("x",)),
        "tier": "Gold",
    }
    result = normalize_record(record)
    assert type(result["active"]) is bool and type(result["rate"]) is D


def test_normalize_record_is_idempotent() -> None:
    once = normalize_record({"partner_id": "P1", "period": "2027-Q1", "a": {"b": "1.50"}, "d": "2027-01-01",
                             "s": "x", "l": [1, "y"]})
    assert normalize_record(once) == once


def test_normalize_record_accepts_any_mapping() -> None:
    record = types.MappingProxyType({"partner_id": "P1", "period": "2027-Q1", "n": types.MappingProxyType({"x": 1})})
    assert normalize_record(record)["n.x"] == D(1)


@pytest.mark.parametrize("record, problems", [
    ({"period": "2027-Q1"}, ["missing partner_id"]),
    ({"partner_id": "  ", "period": None}, ["missing partner_id", "missing period"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": D("NaN")}, ["x: NaN is not a number"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": D("-Infinity")}, ["x: -Infinity is not a number"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": float("nan")}, ["x: NaN is not a number"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": float("inf")}, ["x: Infinity is not a number"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": "Infinity"}, ["x: 'Infinity' is not a number"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": {"y": "NaN"}}, ["x.y: 'NaN' is not a number"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": datetime(2027, 1, 1, 9)},
     ["x: 2027-01-01T09:00:00 is a datetime; pass a date (value.date())"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": {1, 2}}, ["x: unsupported value of type set"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": [1, None]},
     ["x: a list cannot hold a missing (empty or null) item"]),
    ({"partner_id": "P1", "period": "2027-Q1", "x": [{"a": 1}]},
     ["x: a list of mappings cannot be flattened to named facts"]),
    ({"partner_id": "P1", "period": "2027-Q1", "a.b": 1, "a": {"b": 2}},
     ["a.b: given twice (as a dotted name and inside a nested mapping)"]),
    ({"partner_id": "P1", "period": "2027-Q1", 7: 1}, ["fact names must be strings, not 7"]),
    ({"partner_id": 1.5, "period": "2027-Q1"}, ["partner_id must be a string, not float 1.5"]),
])
def test_normalize_record_problems(record: dict[Any, Any], problems: list[str]) -> None:
    with pytest.raises(RecordError) as caught:
        normalize_record(record)
    assert list(caught.value.problems) == problems
    assert isinstance(caught.value, ValueError)


def test_record_error_carries_the_ids() -> None:
    with pytest.raises(RecordError) as caught:
        normalize_record({"partner_id": "P9", "period": "2027-Q1", "x": "nan"})
    assert (caught.value.partner_id, caught.value.period) == ("P9", "2027-Q1")
    assert str(caught.value) == "x: 'nan' is not a number"


def test_fact_row_never_raises() -> None:
    row = fact_row(["not", "a", "mapping"], line=7)  # type: ignore[arg-type]
    assert (row.line, row.partner_id, row.facts) == (7, "", {})
    assert row.problems == ["a record must be a mapping, not list"]
    row = fact_row({"partner_id": "P1", "period": "2027-Q1", "x": "NaN", "y": 1})
    assert row.facts == {"partner_id": "P1", "period": "2027-Q1", "y": D(1)}
    assert row.problems == ["x: 'NaN' is not a number"]


# -- the range of numbers ---------------------------------------------------------------------

RANGE = "is outside the supported range (at most 40 significant digits, exponent within ±100)"


@pytest.mark.parametrize("text, value", [
    ("1" * 40, D("1" * 40)),  # 40 significant digits
    ("0" * 60 + "1" * 40, D("1" * 40)),  # leading zeros are not significant
    ("1" * 39 + ".5", D("1" * 39 + ".5")),
    ("9.999e100", D("9.999E+100")),  # the largest exponent
    ("-1e-100", D("-1E-100")),  # the smallest
    ("0." + "0" * 99 + "1", D("1E-100")),
    ("0." + "0" * 139, D("0E-139")),  # a zero with as many places as a number in range can have
    ("0e100", D("0E+100")),
    ("1.500", D("1.500")),
])
def test_numbers_at_the_edges_of_the_range_are_read(text: str, value: D) -> None:
    row = fact_row({"partner_id": "P1", "period": "2027-Q1", "x": text})
    assert (row.problems, row.facts["x"], str(row.facts["x"])) == ([], value, str(value))


@pytest.mark.parametrize("text", [
    "1" * 41, "1" * 40 + "0", "1" * 20 + "." + "1" * 21, "1" + "0" * 39 + ".0",  # 41 digits: trailing zeros count
    "1e101", "-9.99e100" + "9", "1e-101", "0." + "0" * 100 + "1", "0." + "0" * 140, "0e101", "-0e-140",
    "1e999999999999999999", "1e-999999999", "1e99999999999999999999999",
])
def test_numbers_past_the_edges_of_the_range_are_problems(text: str) -> None:
    row = fact_row({"partner_id": "P1", "period": "2027-Q1", "x": text})
    shown = repr(text) if len(text) <= 40 else f"{text[:20] + '…'!r} ({len(text):,} characters)"
    assert (row.problems, "x" in row.facts) == ([f"x: {shown} {RANGE}"], False)


@pytest.mark.parametrize("value, shown", [
    (10**40, "10000000000000000000… (41 characters)"), (-(10**40), "-1000000000000000000… (42 characters)"),
    (D("1E+101"), "1E+101"), (D("-1E-101"), "-1E-101"), (D("1" * 41), "11111111111111111111… (41 characters)"),
    (D("0E-140"), "0E-140"), (1e101, "1E+101"), (1e-101, "1E-101"),
])
def test_api_numbers_past_the_range_are_problems(value: Any, shown: str) -> None:
    row = fact_row({"partner_id": "P1", "period": "2027-Q1", "x": value, "y": [1, value]})
    assert row.problems == [f"x: {shown} {RANGE}", f"y: {shown} {RANGE}"]


def test_api_numbers_in_range_are_kept_exactly() -> None:
    row = fact_row({"partner_id": "P1", "period": "2027-Q1", "a": 10**40 - 1, "b": D("-1E-100"), "c": 1e100,
                    "d": D("1." + "0" * 39)})
    assert row.problems == []
    assert [str(row.facts[name]) for name in "abcd"] == ["9" * 40, "-1E-100", "1E+100", "1." + "0" * 39]


def test_jsonl_numbers_past_the_range_are_problems_of_their_record(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.jsonl", '{"partner_id": "P1", "period": "2027-Q1", "a": 1e-101, "b": 1E+101, '
                                          '"c": 1e999999999999999999999, "d": 1e100, "e": ' + "1" * 41 + "}\n")
    [row] = rows(path)
    assert row.facts == {"partner_id": "P1", "period": "2027-Q1", "d": D("1E+100")}
    assert row.problems == [f"a: 1E-101 {RANGE}", f"b: 1E+101 {RANGE}", f"c: 1e999999999999999999999 {RANGE}",
                            f"e: 11111111111111111111… (41 characters) {RANGE}"]


# -- lone surrogates -------------------------------------------------------------------------

SURROGATE = "holds \\ud800, a lone surrogate, which is not valid Unicode text"


@pytest.mark.parametrize("line, column", [
    ('{"partner_id": "P1", "period": "2027-Q1", "x": "a\\ud800"}', 50),
    ('{"partner_id": "P1", "period": "2027-Q1", "x": "\\\\\\ud800"}', 51),  # an escaped backslash, then one
    ('{"partner_id": "P1", "period": "2027-Q1", "x": ["\\ud800\\ud800"]}', 50),  # two highs are no pair
])
def test_jsonl_lone_surrogates_fail_the_file(tmp_path: Path, line: str, column: int) -> None:
    error = input_error(write(tmp_path, "facts.jsonl", '{"partner_id": "P0", "period": "2027-Q1"}\n' + line + "\n"))
    assert (error.line, error.problem.message) == (
        2, f"the line holds \\ud800 (column {column}), a lone surrogate, which is not valid Unicode text")


def test_jsonl_escapes_that_make_no_lone_surrogate_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.jsonl", '{"partner_id": "P1", "period": "2027-Q1", "a": "\\\\ud800", '
                                          '"b": "\\uD83D\\uDE00", "c": "\\u00e9\\ud7ff\\ue000"}\n')
    [row] = rows(path)
    assert (row.problems, row.facts["a"], row.facts["b"], row.facts["c"]) == (
        [], "\\ud800", "\U0001f600", "\u00e9\ud7ff\ue000")


def test_api_identifiers_with_lone_surrogates_are_kept_escaped() -> None:
    row = fact_row({"partner_id": " P\ud800 ", "period": "2027\udfff", "x": 1})
    assert (row.partner_id, row.period) == ("P\\ud800", "2027\\udfff")
    assert row.problems == [f"partner_id: the text {SURROGATE}",
                            "period: the text holds \\udfff, a lone surrogate, which is not valid Unicode text"]
    claim = normalize_claim({"claim_id": "C\ud800", "partner_id": "P1", "period": "2027-Q1", "activity": "event",
                             "amount": 5, "activity_end": "2027-01-10", "submitted_on": "2027-01-20",
                             "preapproved": True, "program_id": "mdf\ud800"})
    assert (claim.claim_id, claim.program_id) == ("C\\ud800", "mdf\\ud800")
    assert claim.problems == (f"claim_id: the text {SURROGATE}", f"program_id: the text {SURROGATE}")


# -- claims ---------------------------------------------------------------------------------

CLAIMS_HEADER = "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved,notes\n"


def test_read_claims_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "claims.csv", CLAIMS_HEADER + (
        "C1,P1,2027-Q1,event,1200.00,2027-02-10,2027-03-01,true,kept out\n"
        "C2,P1,2027-Q1,webinar,,2027-02-30,,maybe,\n"
        "C3,P2,2027-Q1,digital,-5,2027-01-31,2027-02-01,,\n"
        "C4,P2,2027-Q1,,NaN,2027/01/31,2027-02-01,FALSE,\n"
    ))
    c1, c2, c3, c4 = read_claims(path)
    assert c1 == Claim("C1", "P1", "2027-Q1", "event", D("1200.00"), date(2027, 2, 10), date(2027, 3, 1),
                       True, None, 2, ())
    assert c2.line == 3 and c2.amount is None and c2.activity_end is None and c2.preapproved is False
    assert c2.problems == ("missing amount", "activity_end: '2027-02-30' is not a valid date",
                           "missing submitted_on", "preapproved: 'maybe' is not true or false")
    # a negative amount is read as is: the MDF calculator rejects it; an empty preapproved is "no"
    assert (c3.amount, c3.preapproved, c3.problems) == (D(-5), False, ())
    assert c4.problems == ("missing activity", "amount: 'NaN' is not a number",
                           "activity_end: '2027/01/31' is not a YYYY-MM-DD date")


def test_read_claims_with_program_id(tmp_path: Path) -> None:
    path = write(tmp_path, "claims.csv", CLAIMS_HEADER.rstrip("\n") + ",program_id\n"
                 "C1,P1,2027-Q1,event,10,2027-02-10,2027-03-01,true,,mdf_fund\n"
                 "C2,P1,2027-Q1,event,10,2027-02-10,2027-03-01,true,,\n")
    first, second = read_claims(path)
    assert (first.program_id, second.program_id) == ("mdf_fund", None)


def test_read_claims_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "claims.csv", "claim_id,partner_id,period,activity,amount\nC1,P1,2027-Q1,event,1\n")
    error = input_error(path, read_claims)
    assert error.line == 1
    assert "missing required column(s) activity_end, submitted_on, preapproved" in str(error)


def test_read_claims_flags_duplicate_ids(tmp_path: Path) -> None:
    line = "C1,P1,2027-Q1,event,10,2027-02-10,2027-03-01,true,\n"
    claims = read_claims(write(tmp_path, "claims.csv", CLAIMS_HEADER + line + line.replace("P1", "P2")
                               + line.replace("C1", "C2")))
    assert [claim.problems for claim in claims] == [("claim_id 'C1' occurs 2 times",)] * 2 + [()]


def test_read_claims_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "claims.jsonl", (
        '{"claim_id": 7, "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": 1200.5,'
        ' "activity_end": "2027-02-10", "submitted_on": "2027-03-01", "preapproved": true, "program_id": "mdf"}\n'
        '{"claim_id": "C8", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "1e2"}\n'
    ))
    first, second = read_claims(path)
    assert first == Claim("7", "P1", "2027-Q1", "event", D("1200.5"), date(2027, 2, 10), date(2027, 3, 1),
                          True, "mdf", 1, ())
    assert second.amount == D(100) and second.preapproved is False
    assert second.problems == ("missing activity_end", "missing submitted_on")


def test_read_claims_bad_jsonl_line(tmp_path: Path) -> None:
    assert input_error(write(tmp_path, "claims.jsonl", "{}\n{oops}\n"), read_claims).line == 2


@pytest.mark.parametrize("field, value, problem", [
    ("amount", True, "amount: True is not a number"),
    ("amount", "12,00", "amount: '12,00' is not a number"),
    ("amount", float("inf"), "amount: Infinity is not a number"),
    ("amount", [1], "amount: [1] is not a number"),
    ("activity_end", datetime(2027, 2, 10, 12),
     "activity_end: datetime.datetime(2027, 2, 10, 12, 0) is not a YYYY-MM-DD date"),
    ("activity_end", "20270210", "activity_end: '20270210' is not a YYYY-MM-DD date"),
    ("preapproved", 1, "preapproved: 1 is not true or false"),
    ("claim_id", None, "missing claim_id"),
])
def test_normalize_claim_problems(field: str, value: Any, problem: str) -> None:
    claim = normalize_claim({**API_CLAIM, field: value})
    assert claim.problems == (problem,)


API_CLAIM = {"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event",
             "amount": 1200, "activity_end": date(2027, 2, 10), "submitted_on": "2027-03-01",
             "preapproved": "True", "extra": "ignored"}


def test_normalize_claim_api_values() -> None:
    claim = normalize_claim({**API_CLAIM, "amount": 0.1}, line=None)
    assert claim == Claim("C1", "P1", "2027-Q1", "event", D("0.1"), date(2027, 2, 10), date(2027, 3, 1),
                          True, None, None, ())


def test_normalize_claim_never_raises() -> None:
    claim = normalize_claim("C1")  # type: ignore[arg-type]
    assert claim.problems == ("a claim must be a mapping, not str",)


def test_claim_with_problem_and_flag_duplicates() -> None:
    claim = normalize_claim(API_CLAIM)
    flagged = claim.with_problem("no facts record")
    assert flagged.problems == ("no facts record",) and claim.problems == ()
    other = normalize_claim({**API_CLAIM, "claim_id": "C2"})
    assert flag_duplicate_claims([claim, other, claim])[0].problems == ("claim_id 'C1' occurs 2 times",)
    assert flag_duplicate_claims([claim, other])[1] is other
    twice = flag_duplicate_claims(flag_duplicate_claims([claim, other, claim]))
    assert [c.problems for c in twice] == [("claim_id 'C1' occurs 2 times",), (), ("claim_id 'C1' occurs 2 times",)]
