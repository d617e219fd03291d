"""payouts.csv and lines.csv cells: one quoting rule (RFC 4180), text cells neutralised against spreadsheet
formulas (OWASP), and the fast row writer (``result_rows``) pinned to the general one (``payout_row``/``line_row``
through ``csv_line``)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from incentives.money import _fixed, _plain, plain_amount
from incentives.output.files import csv_cell, csv_line, csv_text, line_row, payout_row, result_rows, text_cell
from incentives.result_parts import new_line
from incentives.results import new_result


def _oracle(rows: list[list[str]]) -> str:
    r"""What csv.writer writes with "\r\n" line ends (it then quotes \r and \n in cells), with "\n" line ends."""
    text = []
    for row in rows:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(row)
        text.append(buffer.getvalue()[:-2] + "\n")
    return "".join(text)


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


def _neutral(text: str) -> str:
    """The test's own statement of the rule: text starting = + - @ TAB or CR gets a leading '."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# Every character quoting or neutralising could care about, with plain letters and non-ASCII text around them;
# texts often start with a formula character or an apostrophe.
_special = st.text(alphabet=st.sampled_from(list(',"\r\n\t \x00\\\'=+-@abc:;×é€\u2028')), max_size=12)
_unicode = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8)
texts = st.builds(lambda start, rest: start + rest, st.sampled_from(["", "", "=", "+", "-", "@", "\t", "\r", "'"]),
                  _special | _unicode)
amounts = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([D("1E+3"), D("-0"), D("-0.00"), D("0E-7"), D("1E-30"), D("123456789012345678901234567.8"),
                     D("5"), D("-5.5"), D("0.005"), D("-200.00")]),
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


lines = st.builds(_line, st.integers(1, 10**6), st.sampled_from(["base", "cap", "budget"]) | texts, texts, texts,
                  st.none() | amounts, st.none() | amounts, amounts, texts)
attainments = st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**6, max_value=10**6) | st.sampled_from(
    [D("1E+3"), D("-0"), D("0.8433433736139436698658270686")])
results = st.builds(_result, st.tuples(texts, texts, texts), st.none() | st.integers(0, 10**6),
                    st.sampled_from(["ok", "ineligible", "error"]) | texts, st.none() | texts,
                    st.none() | attainments, amounts, st.none() | texts, st.none() | st.integers(0, 6),
                    st.lists(lines, max_size=3))


@settings(max_examples=400, deadline=None)
@given(results)
def test_the_fast_rows_are_the_general_rows_and_read_back_as_their_cells(result):
    places = result.details.get("places", 2)
    head = (result.partner_id, result.period, result.program_id)
    payout_cells = payout_row(result)
    line_cells = [line_row(head, line, places) for line in result.lines]
    payout, lines_text = result_rows(result)
    assert (payout, lines_text) == (csv_line(payout_cells), "".join(csv_line(cells) for cells in line_cells))
    assert _read(payout) == [payout_cells]
    assert _read(lines_text) == line_cells


@settings(max_examples=400, deadline=None)
@given(results)
def test_text_cells_are_neutralised_and_number_cells_are_not(result):
    places = result.details.get("places", 2)
    attainment = "" if result.attainment is None else f"{result.attainment.quantize(D('1E-6')):f}"
    version = "" if result.program_version is None else str(result.program_version)
    assert payout_row(result) == [
        _neutral(result.partner_id), _neutral(result.period), _neutral(result.program_id), version,
        _neutral(result.status), _neutral(result.tier or ""), attainment, plain_amount(result.total, places),
        _neutral(result.currency or "")]
    head = (result.partner_id, result.period, result.program_id)
    for line in result.lines:
        assert line_row(head, line, places) == [
            _neutral(result.partner_id), _neutral(result.period), _neutral(result.program_id), str(line.n),
            _neutral(line.kind), _neutral(line.rule_id), _neutral(line.description),
            "" if line.basis is None else plain_amount(line.basis, places),
            "" if line.rate is None else f"{line.rate.normalize():f}", plain_amount(line.amount, places),
            _neutral(line.formula)]


@settings(max_examples=400, deadline=None)
@given(st.lists(texts, min_size=1, max_size=12))
def test_csv_line_quotes_as_csv_writer_does_with_crlf_line_ends_and_reads_back(cells):
    assert csv_line(cells) == _oracle([cells])
    assert _read(csv_line(cells)) == [cells]


@settings(max_examples=400, deadline=None)
@given(texts)
def test_csv_text_is_the_neutralised_cell_quoted(text):
    assert csv_text(text) == csv_cell(text_cell(text)) == csv_cell(_neutral(text))


@settings(max_examples=1000, deadline=None)
@given(amounts, st.integers(0, 8))
def test_plain_amount_shortcut_gives_the_general_text(amount, places):
    assert plain_amount(amount, places) == _fixed(_plain(amount), places)


def test_the_cell_rule_by_hand():
    assert text_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert [text_cell(text) for text in ("+1", "-P", "@SUM(A1)", "\tX", "\rX")] == ["'+1", "'-P", "'@SUM(A1)",
                                                                                      "'\tX", "'\rX"]
    assert [text_cell(text) for text in ("", "P=1", "'=x", " =x", "-")] == ["", "P=1", "'=x", " =x", "'-"]
    assert [csv_cell(cell) for cell in ("P\r1", "P\n1", "a,b", 'a"b', "a\tb", "")] == [
        '"P\r1"', '"P\n1"', '"a,b"', '"a""b"', "a\tb", ""]
    assert csv_text("\rX") == "\"'\rX\"" and csv_text('=A1+"x"') == '"\'=A1+""x"""'
    assert csv_line(["", ""]) == ",\n" and csv_line([""]) == '""\n'


def test_cells_that_need_quotes_or_a_prefix_by_hand():
    result = _result(('P,1', 'Q"1', "x\ny"), 3, "ok", "Gold, inc", D("0.5"), D("12.50"), "E\rUR", 2,
                     [_line(1, "base", "r,1", 'say "hi"', D("1000"), D("0.050"), D("-0.00"), "1,000 × 5% = 50"),
                      _line(2, "cap", "cap", "=cap", D("-200"), None, D("-6.00"), "-200.00 × 3% = -6.00")])
    payout, lines = result_rows(result)
    assert payout == '"P,1","Q""1","x\ny",3,ok,"Gold, inc",0.500000,12.50,"E\rUR"\n'
    assert lines == ('"P,1","Q""1","x\ny",1,base,"r,1","say ""hi""",1000.00,0.05,0.00,"1,000 × 5% = 50"\n'
                     '"P,1","Q""1","x\ny",2,cap,cap,\'=cap,-200.00,,-6.00,\'-200.00 × 3% = -6.00\n')
    carriage = _result(("P\r1", "2027-Q1", "p"), 1, "ok", "@Gold", None, D("-5.00"), "USD", 2, [])
    assert result_rows(carriage) == ('"P\r1",2027-Q1,p,1,ok,\'@Gold,,-5.00,USD\n', "")
    assert _read(result_rows(carriage)[0]) == [["P\r1", "2027-Q1", "p", "1", "ok", "'@Gold", "", "-5.00", "USD"]]
