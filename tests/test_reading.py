"""The fast paths of the facts and claims readers agree with the general typing rules, cell by cell.

``inputs.type_text``, the CSV readers, ``fact_row`` and ``normalize_claim`` take
shortcuts for the usual cells and values (a cache, a plain-decimal test, a
claim whose cells all have their usual shape, a claim built without its frozen
``__init__``); these properties compare them with the general path they must
never differ from: same value of the same type written the same way, or the
same problem.
"""

from __future__ import annotations

import csv
import json
from dataclasses import fields
from datetime import date
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from incentives import inputs
from incentives.errors import InputError
from incentives.inputs import (
    CLAIM_COLUMNS,
    Claim,
    FactRow,
    fact_row,
    flag_duplicate_claims,
    normalize_claim,
    read_claims,
    read_facts,
    type_text,
)

UNUSUAL_CELLS = [
    "", " ", "\t", "0", "00", "007", "-0", "+1", "-12.50", ".5", "5.", ".", "..", "1.2.3", "1e3", "1E-3", "1e", "e3",
    " 12 ", "12\n", "\u00a012", "1_000", "1,000", "3.5%", "0x10", "NaN", "nan", "-NaN", "sNaN", "NaN12", "Infinity",
    "-inf", "Inf", "١٢", "١٢.٥", "²", "½", "٣e2", "true", "false", "TRUE", "False", " true ", "yes", "2027-01-23",
    "2027-02-30", "20270123", "2027-1-23", "2027-01-23T00:00", " 2027-01-23", "٢٠٢٧-٠١-٢٣", "+2027-01-23", "Gold",
    # at and past the edges of the range of numbers (the fast paths stop at 40 characters)
    "1" * 40, "1" * 41, "1" * 39 + ".5", "1" * 40 + ".5", "." + "1" * 40, "0" * 41, "0." + "0" * 139, "0." + "0" * 140,
    "1e100", "1e101", "1e-100", "1e-101", "0e-140", "1e999999999999999999", "1e-999999999", "1e99999999999999999999999",
]

number_like = st.from_regex(r"\A[ \t]?[+-]?[0-9١٢_]{0,4}\.?[0-9²]{0,3}(?:[eE][+-]?[0-9]{1,2})?[ \t]?\Z")
long_number_like = st.from_regex(  # around 40 digits, with and without a point, and exponents around ±100
    r"\A[+-]?0{0,2}[0-9]{0,3}[1-9][0-9]{34,40}\.?[0-9]{0,3}(?:[eE][+-]?(?:9[0-9]|1[0-9]{2}|[0-9]{19,25}))?\Z"
    r"|\A0?\.0{95,105}[0-9]{1,3}\Z")
date_like = st.one_of(st.dates().map(date.isoformat), st.from_regex(r"\A\s?\d{4}-?\d{2}-?\d{2}\s?\Z"))
bool_like = st.sampled_from(["true", "false"]).flatmap(
    lambda word: st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if up else c for c, up in zip(word, upper))))
cells = st.one_of(st.sampled_from(UNUSUAL_CELLS), number_like, long_number_like, date_like, bool_like,
                  st.text(max_size=12), st.sampled_from(["a\ud800", "\udfff", " \ud83d\ude00 "]))


def outcome(typing: Callable[[str], Any], text: str) -> tuple[Any, ...]:
    """What typing ``text`` gives, exactly: the value's type and repr (``1E+3`` is not ``1000``), or the error."""
    try:
        value = typing(text)
    except ValueError as error:
        return ("error", type(error), str(error))
    return (type(value), repr(value))


@given(cells)
@settings(max_examples=600, deadline=None)
def test_type_text_fast_paths_agree_with_the_general_rules(text: str) -> None:
    expected = outcome(inputs._type_text_general, text)
    assert outcome(inputs._type_new_text, text) == expected  # not cached yet (or again)
    assert outcome(type_text, text) == expected
    assert outcome(type_text, text) == expected  # now from the cache


def test_the_typed_texts_cache_stays_bounded() -> None:
    for number in range(inputs._TYPED_TEXTS_LIMIT + 10):
        type_text(f"{number}.5")
    assert 0 < len(inputs._TYPED_TEXTS) <= inputs._TYPED_TEXTS_LIMIT
    assert type_text("0.5") == Decimal("0.5")


# -- CSV facts rows ------------------------------------------------------------------------------


def general_csv_fact_row(line: int, cells: list[str], partner_at: int, period_at: int,
                         columns: list[tuple[int, str]]) -> FactRow:
    """A CSV row typed cell by cell with the general rules (the reader as it was before its fast paths)."""
    problems: list[str] = []
    facts: dict[str, Any] = {}
    partner_id = inputs._identifier(cells[partner_at], "partner_id", problems)
    period = inputs._identifier(cells[period_at], "period", problems)
    if partner_id:
        facts["partner_id"] = partner_id
    if period:
        facts["period"] = period
    for at, name in columns:
        try:
            value = inputs._type_text_general(cells[at])
        except ValueError as error:
            problems.append(f"{name}: {error}")
            continue
        if value is not None:
            facts[name] = value
    return FactRow(line, partner_id, period, facts, problems)


def exact(row: FactRow) -> tuple[Any, ...]:
    """A facts row with its values' types and reprs, and the facts' order."""
    facts = [(name, type(value), repr(value)) for name, value in row.facts.items()]
    return (row.line, row.partner_id, row.period, facts, row.problems)


@given(st.lists(cells, min_size=4, max_size=4), st.sampled_from(["P1", " P1 ", "", " ", "00123"]),
       st.sampled_from(["2027-Q1", "", "\t2027-Q1"]))
@settings(max_examples=300, deadline=None)
@example(["380486.37", "", "2027-01-23", "true"], "P1", "2027-Q1")
@example(["NaN", "2027-02-30", "١٢", " "], "", "")
def test_csv_fact_rows_agree_with_typing_cell_by_cell(values: list[str], partner: str, period: str) -> None:
    row = [values[0], partner, values[1], period, values[2], values[3]]
    columns = [(0, "revenue"), (2, "joined_on"), (4, "nps"), (5, "active")]
    assert exact(inputs._csv_fact_row(7, row, 1, 3, columns)) == exact(general_csv_fact_row(7, row, 1, 3, columns))


def test_read_facts_types_a_file_as_the_general_rules_do(tmp_path: Path) -> None:
    header = ["partner_id", "period", *(f"c{at}" for at in range(len(UNUSUAL_CELLS)))]
    rows = [[f"P{shift}", "2027-Q1", *UNUSUAL_CELLS[shift:], *UNUSUAL_CELLS[:shift]] for shift in range(3)]
    path = tmp_path / "facts.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([header, *rows])
    columns = [(at, name) for at, name in enumerate(header) if at > 1]
    read = list(read_facts(path))
    assert [exact(row) for row in read] == [
        exact(general_csv_fact_row(row.line, cells, 0, 1, columns)) for row, cells in zip(read, rows)]
    assert len(read) == 3


# -- JSON and API records --------------------------------------------------------------------------


def general_fact_row(record: dict[str, Any], line: int | None = None) -> FactRow:
    """``fact_row`` with every fact going through ``_put`` (the reader as it was before its fast loop)."""
    problems: list[str] = []
    partner_id = inputs._identifier(record.get("partner_id"), "partner_id", problems)
    period = inputs._identifier(record.get("period"), "period", problems)
    facts: dict[str, Any] = {}
    if partner_id:
        facts["partner_id"] = partner_id
    if period:
        facts["period"] = period
    for name, value in record.items():
        if name != "partner_id" and name != "period":
            inputs._put(facts, problems, name, value)
    return FactRow(line, partner_id, period, facts, problems)


json_values = st.one_of(
    cells, st.decimals(allow_nan=True, allow_infinity=True), st.booleans(), st.none(), st.integers(),
    st.dates(), st.sampled_from([Decimal("NaN"), Decimal("-Infinity"), Decimal("1E+3"), 1.5, True, False]),
    st.sampled_from([Decimal("1E+100"), Decimal("1E+101"), Decimal("-1E-100"), Decimal("1E-101"), Decimal("9" * 40),
                     Decimal("9" * 41), Decimal("0E-139"), Decimal("0E-140"), Decimal("1E+999999999999999999"),
                     10**40 - 1, 10**40, -(10**5000), 1e100, 1e101, 5e-324,
                     inputs._json_number("1e99999999999999999999")]),  # too big for Decimal: a stand-in
    st.integers(min_value=-(10**45), max_value=10**45), st.floats(allow_nan=False, allow_infinity=False),
)
json_names = st.sampled_from(["revenue", "a.b", "a", "flag", "partner_id", "period", "x.y.z", "n\udc00"])
json_records = st.dictionaries(
    json_names, st.one_of(json_values, st.dictionaries(st.sampled_from(["b", "y", "z"]), json_values, max_size=2)),
    max_size=6)


@given(json_records)
@settings(max_examples=500, deadline=None)
@example({"a": {"b": "1"}, "a.b": Decimal(2)})
@example({"a.b": Decimal(2), "a": {"b": Decimal("NaN")}})
@example({"revenue": Decimal("1E+101"), "a": Decimal("9" * 41), "flag": Decimal("1E+100")})
@example({"n\udc00": Decimal(1)})
def test_fact_rows_of_records_agree_with_putting_each_fact(record: dict[str, Any]) -> None:
    assert exact(fact_row(record, 3)) == exact(general_fact_row(record, 3))


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *strings_in(item))]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


json_texts = st.text(alphabet=st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00", "\\",
                                               "u", "d", "8", "0", "a", '"', "é", "\U0001f600"]), max_size=6)


@given(st.dictionaries(json_texts, st.one_of(json_texts, st.lists(json_texts, max_size=3), st.integers()),
                       max_size=3), st.booleans())
@settings(max_examples=500, deadline=None)
@example({"x": "\ud83d\ude00"}, False)  # two code points that JSON writes as a pair and reads back as one
@example({"x": "\\ud800"}, False)  # a backslash and text
def test_a_json_line_is_refused_exactly_when_it_decodes_to_a_surrogate(record: dict[str, Any], upper: bool) -> None:
    line = json.dumps({"partner_id": "P1", "period": "2027-Q1", **record})  # surrogates written as \ud800
    if upper:
        line = line.replace("\\ud", "\\uD")
    lone = any(inputs._SURROGATE(text) for text in strings_in(json.loads(line)))
    try:
        list(inputs._json_objects([line + "\n"], "facts.jsonl", 0))
    except InputError as error:
        assert lone and error.line == 1 and "a lone surrogate, which is not valid Unicode text" in error.problem.message
    else:
        assert not lone


# -- claims ----------------------------------------------------------------------------------------


def claim_fields(claim: Claim) -> list[tuple[str, type, str]]:
    return [(field.name, type(getattr(claim, field.name)), repr(getattr(claim, field.name))) for field in fields(Claim)]


def test_problem_free_claims_set_every_field_of_claim() -> None:
    assert Claim.__slots__ == tuple(field.name for field in fields(Claim))
    values = ("C1", "P1", "2027-Q1", "event", Decimal("914.39"), date(2027, 1, 23), date(2027, 2, 14), True, "mdf", 9)
    built = inputs._problem_free_claim(*values)
    assert claim_fields(built) == claim_fields(Claim(*values))
    assert built == Claim(*values) and hash(built) == hash(Claim(*values))


claim_cells = st.fixed_dictionaries({
    "claim_id": st.sampled_from(["C1", " C1 ", "", " ", "7"]),
    "partner_id": st.sampled_from(["P1", "", "\tP1"]),
    "period": st.sampled_from(["2027-Q1", ""]),
    "activity": st.sampled_from(["event", "", " webinar "]),
    "amount": cells,
    "activity_end": cells,
    "submitted_on": st.one_of(date_like, st.sampled_from(["2027-02-14", "", "2027-02-30", "true"])),
    "preapproved": st.one_of(bool_like, st.sampled_from(["", " ", "yes", "1", " true"])),
    "program_id": st.sampled_from(["co_marketing_mdf", "", " mdf ", None]),
})


@given(claim_cells)
@settings(max_examples=400, deadline=None)
@example({"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "914.39",
          "activity_end": "2027-01-23", "submitted_on": "2027-02-14", "preapproved": "true", "program_id": None})
@example({"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "0",
          "activity_end": "2027-01-23", "submitted_on": "2027-02-14", "preapproved": " true",
          "program_id": "co_marketing_mdf"})  # found in CI: the general path strips the flag
def test_usual_csv_claims_are_the_claims_normalize_claim_makes(row: dict[str, str | None]) -> None:
    header = [*CLAIM_COLUMNS, *(["program_id"] if row["program_id"] is not None else [])]
    cells = [row[name] for name in header]
    program_at = header.index("program_id") if "program_id" in header else None
    fast = inputs._usual_csv_claim(4, cells, itemgetter(*range(len(CLAIM_COLUMNS))), program_at)
    general = normalize_claim({name: row[name] for name in header}, 4)
    if fast is not None:
        assert claim_fields(fast) == claim_fields(general)
    else:
        # The fast path declines a flag that is not literally true / false (" true"), and rows with problems.
        assert general.problems or row["preapproved"] not in ("true", "false")


def general_normalize_claim(record: dict[str, Any], line: int | None = None) -> Claim:
    """``normalize_claim`` by its field checks alone and ``Claim(...)`` (as it was before its fast paths)."""
    problems: list[str] = []
    claim_id = inputs._identifier(record.get("claim_id"), "claim_id", problems)
    partner_id = inputs._identifier(record.get("partner_id"), "partner_id", problems)
    period = inputs._identifier(record.get("period"), "period", problems)
    activity = inputs._identifier(record.get("activity"), "activity", problems)
    amount = inputs._claim_amount(record.get("amount"), problems)
    activity_end = inputs._claim_date(record.get("activity_end"), "activity_end", problems)
    submitted_on = inputs._claim_date(record.get("submitted_on"), "submitted_on", problems)
    preapproved = inputs._claim_flag(record.get("preapproved"), problems)
    program_id = inputs._optional_identifier(record.get("program_id"), "program_id", problems)
    return Claim(claim_id, partner_id, period, activity, amount, activity_end, submitted_on, preapproved, program_id,
                 line, tuple(problems))


typed_claim_values = st.one_of(
    cells, st.none(), st.booleans(), st.integers(), st.dates(), st.datetimes(),
    st.decimals(allow_nan=True, allow_infinity=True), st.sampled_from([Decimal("914.39"), 12.5, float("nan")]))


@given(st.fixed_dictionaries({}, optional={
    "claim_id": st.one_of(typed_claim_values, st.just("C1")),
    "partner_id": st.one_of(typed_claim_values, st.just("P1")),
    "period": st.one_of(typed_claim_values, st.just("2027-Q1")),
    "activity": st.one_of(typed_claim_values, st.just("event")),
    "amount": typed_claim_values, "activity_end": typed_claim_values, "submitted_on": typed_claim_values,
    "preapproved": typed_claim_values, "program_id": typed_claim_values,
}))
@settings(max_examples=400, deadline=None)
@example({"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": Decimal("914.39"),
          "activity_end": "2027-01-23", "submitted_on": date(2027, 2, 14), "preapproved": True})
@example({"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": Decimal("1"),
          "activity_end": " 2027-01-23", "submitted_on": "2027-02-30", "preapproved": "TRUE"})
def test_normalize_claim_agrees_with_its_field_checks(record: dict[str, Any]) -> None:
    assert claim_fields(normalize_claim(record, 5)) == claim_fields(general_normalize_claim(record, 5))


@given(typed_claim_values)
@settings(max_examples=400, deadline=None)
def test_usual_dates_are_the_dates_claim_date_gives(value: Any) -> None:
    problems: list[str] = []
    general = inputs._claim_date(value, "activity_end", problems)
    usual = inputs._usual_date(value)
    assert usual is None or (type(usual) is date and usual == general and not problems)


def test_the_usual_claim_takes_the_fast_path() -> None:
    cells = ["C1", "P1", "2027-Q1", "event", "914.39", "2027-01-23", "2027-02-14", "false"]
    claim = inputs._usual_csv_claim(2, cells, itemgetter(*range(8)), None)
    assert claim == Claim("C1", "P1", "2027-Q1", "event", Decimal("914.39"), date(2027, 1, 23), date(2027, 2, 14),
                          False, None, 2)


def test_read_claims_mixes_fast_and_general_claims_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text(
        "claim_id,note,partner_id,period,activity,amount,activity_end,submitted_on,preapproved,program_id\n"
        "C1,x,P1,2027-Q1,event,914.39,2027-01-23,2027-02-14,true,\n"
        "C2,x,P1,2027-Q1,event,NaN,2027-01-23,2027-02-14,TRUE,mdf\n"
        "C1,x,P2,2027-Q1,event,10,2027-02-30,2027-02-14,false, mdf \n"
        ",x,P2,2027-Q1,event,10,2027-01-23,2027-02-14,false,mdf\n",
        encoding="utf-8")
    claims = read_claims(path)
    records = [dict(zip(["claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on",
                         "preapproved", "program_id"], values)) for values in (
        ["C1", "P1", "2027-Q1", "event", "914.39", "2027-01-23", "2027-02-14", "true", ""],
        ["C2", "P1", "2027-Q1", "event", "NaN", "2027-01-23", "2027-02-14", "TRUE", "mdf"],
        ["C1", "P2", "2027-Q1", "event", "10", "2027-02-30", "2027-02-14", "false", " mdf "],
        ["", "P2", "2027-Q1", "event", "10", "2027-01-23", "2027-02-14", "false", "mdf"],
    )]
    expected = flag_duplicate_claims(normalize_claim(record, line) for line, record in enumerate(records, 2))
    assert [claim_fields(claim) for claim in claims] == [claim_fields(claim) for claim in expected]
    assert claims[0].problems == ("claim_id 'C1' occurs 2 times",)
    assert claims[1].problems == ("amount: 'NaN' is not a number",)
    assert claims[3].problems == ("missing claim_id",)


def test_the_example_claims_read_as_normalize_claim_reads_them() -> None:
    path = Path(__file__).parent.parent / "examples" / "claims_2027Q1.csv"
    with path.open(encoding="utf-8", newline="") as stream:
        records = list(csv.DictReader(stream))
    expected = flag_duplicate_claims(normalize_claim(record, line) for line, record in enumerate(records, 2))
    assert [claim_fields(claim) for claim in read_claims(path)] == [claim_fields(claim) for claim in expected]


@given(st.lists(st.sampled_from(["C1", "C2", "C3", ""]), max_size=8))
def test_duplicate_claim_ids_are_flagged_once_each_and_blank_ids_never(claim_ids: list[str]) -> None:
    claims = [Claim(claim_id, "P1", "2027-Q1", "event", Decimal(1), None, None, False) for claim_id in claim_ids]
    flagged = flag_duplicate_claims(claims)
    for claim, result in zip(claims, flagged):
        count = claim_ids.count(claim.claim_id)
        expected = (f"claim_id {claim.claim_id!r} occurs {count} times",) if claim.claim_id and count > 1 else ()
        assert result.problems == expected
    assert flag_duplicate_claims(flagged) == flagged
