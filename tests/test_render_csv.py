"""payouts.csv and lines.csv rows written without csv.writer are exactly what csv.writer writes."""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from incentives.export import csv_line, line_row, payout_row, result_rows
from incentives.money import _fixed, _plain, plain_amount
from incentives.results import new_line, new_result


def _written(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


# Every character csv quoting could care about, with plain letters and non-ASCII text around them.
texts = st.text(alphabet=st.sampled_from(list(',"\r\n\t \x00\\\'abc:;×é€\u2028')), max_size=12)
amounts = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([D("1E+3"), D("-0"), D("-0.00"), D("0E-7"), D("1E-30"), D("123456789012345678901234567.8"),
                     D("5"), D("-5.5"), D("0.005")]),
)


def _line(n: int, kind: str, rule_id: str, description: str, basis, rate, amount, formula: str):
    return new_line({"n": n, "kind": kind, "rule_id": rule_id, "description": description, "basis": basis,
                     "rate": rate, "amount": amount, "formula": formula, "inputs": {}})


def _result(ids, version, status, tier, attainment, total, currency, places, lines):
    details = {} if places is None else {"places": places}
    return new_result({"partner_id": ids[0], "period": ids[1], "program_id": ids[2], "program_version": version,
                       "currency": currency, "status": status, "tier": tier, "next_tier": None,
                       "attainment": attainment, "lines": lines, "total": total, "reasons": [], "errors": [],
                       "details": details})


lines = st.builds(_line, st.integers(1, 10**6), st.sampled_from(["base", "cap", "budget"]), texts, texts,
                  st.none() | amounts, st.none() | amounts, amounts, texts)
attainments = st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**6, max_value=10**6) | st.sampled_from(
    [D("1E+3"), D("-0"), D("0.8433433736139436698658270686")])
results = st.builds(_result, st.tuples(texts, texts, texts), st.none() | st.integers(0, 10**6),
                    st.sampled_from(["ok", "ineligible", "error"]), st.none() | texts, st.none() | attainments, amounts,
                    st.none() | texts, st.none() | st.integers(0, 6), st.lists(lines, max_size=3))


@settings(max_examples=400, deadline=None)
@given(results)
def test_rows_are_csv_writer_rows(result):
    places = result.details.get("places", 2)
    head = (result.partner_id, result.period, result.program_id)
    assert result_rows(result) == (_written([payout_row(result)]),
                                   _written([line_row(head, line, places) for line in result.lines]))


@settings(max_examples=400, deadline=None)
@given(st.lists(texts, min_size=1, max_size=12))
def test_csv_line_is_csv_writer(cells):
    assert csv_line(cells) == _written([cells])


@settings(max_examples=1000, deadline=None)
@given(amounts, st.integers(0, 8))
def test_plain_amount_shortcut_gives_the_general_text(amount, places):
    assert plain_amount(amount, places) == _fixed(_plain(amount), places)


def test_cells_that_need_quotes():
    result = _result(('P,1', 'Q"1', "x\ny"), 3, "ok", "Gold, inc", D("0.5"), D("12.50"), "E\rUR", 2,
                     [_line(1, "base", "r,1", 'say "hi"', D("1000"), D("0.050"), D("-0.00"), "1,000 × 5% = 50")])
    payout, lines = result_rows(result)
    assert payout == _written([payout_row(result)])
    assert lines == _written([line_row(("P,1", 'Q"1', "x\ny"), result.lines[0], 2)])
    assert payout.startswith('"P,1","Q""1","x\ny",3,ok,"Gold, inc",')


def test_rows_follow_csv_writer_when_its_quoting_is_not_the_known_one(monkeypatch):
    import incentives.export as export

    monkeypatch.setattr(export, "_CSV_QUOTING_KNOWN", False)
    result = _result(('P,1', 'Q"1', "x\ny"), None, "ok", None, None, D("12.50"), None, 2,
                     [_line(1, "base", "r\r1", "plain", None, D("0.050"), D("5.00"), "1,000 × 5% = 50")])
    assert result_rows(result) == (_written([payout_row(result)]),
                                   _written([line_row(("P,1", 'Q"1', "x\ny"), result.lines[0], 2)]))
    assert export.csv_cell('a"b') == '"a""b"' and export.csv_line(["", ""]) == ",\n"
