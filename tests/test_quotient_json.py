"""A quotient's exponent in results.jsonl by columns (``json_by_columns.written`` of ``/``): the decimals
``str()`` writes the closures' quotient with, held to the closures themselves, by hand and over quotients of many
shapes."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Sequence

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from incentives import json_by_columns
from incentives.money import EXACT
from incentives.rules.closures import compile_expression
from incentives.rules.columns import Column, compile_columns
from incentives.rules.expressions import parse_expression

D = Decimal
#: what a row comes to: the JSON text by columns, or a flag (the row goes per record)
FLAGGED = "flagged"  # json_by_columns flags it: its text is not the per-record one
COMPUTED_PER_RECORD = "per record"  # rules.columns flags it: a division by zero, a quotient that does not fit


def _by_columns(text: str, rows: Sequence[tuple[Decimal, Decimal]], *, tight: bool = True) -> list[str]:
    """``text`` (over the facts ``n`` and ``d``) by columns for each row: the JSON of its value as written, or
    why it is not. Each column's scale is its cells' most decimals and, ``tight``, its bound their largest
    minor units (as a block of facts gives them); a cell keeps its own decimals, as read."""
    scales = {name: max(max(0, -row[index].as_tuple().exponent) for row in rows)
              for index, name in enumerate("nd")}
    # scaled exactly: a test may run in a context of fewer digits
    units = {name: [int(row[index].scaleb(scales[name], EXACT)) for row in rows] for index, name in enumerate("nd")}
    columns = {name: Column.number(scales[name], max(max(map(abs, units[name])), 1) if tight else 2**63)
               for name in "nd"}
    facts = {name: json_by_columns.Written(pl.col(f"{name}:decimals"), pl.lit(False)) for name in "nd"}
    node = parse_expression(text).node
    value = compile_columns(node, columns)
    written = json_by_columns.written(node, columns, facts)
    assert written is not None
    # the units and decimals computed once, as BlockEvaluation.decimal_json does (decimal() reads them often)
    json, scientific = json_by_columns.decimal(pl.col("units"), value.scale, pl.col("decimals"))
    frame = pl.DataFrame({
        **{name: pl.Series(units[name], dtype=pl.Int64) for name in "nd"},
        **{f"{name}:decimals": pl.Series([max(0, -row[index].as_tuple().exponent) for row in rows], dtype=pl.Int32)
           for index, name in enumerate("nd")}})
    got = (frame.lazy().with_columns(value.value.alias("units"), written.decimals.alias("decimals"))
           .select(json.alias("json"), (written.unknown | scientific).alias("unknown"),
                   value.needs_record.alias("per_record")).collect())
    return [COMPUTED_PER_RECORD if per_record else FLAGGED if unknown else json
            for json, unknown, per_record in got.iter_rows()]


def _per_record(text: str, rows: Sequence[tuple[Decimal, Decimal]]) -> list[Decimal | None]:
    """The closures' value of ``text`` for each row (None: they raise)."""
    evaluate = compile_expression(parse_expression(text).node)
    values: list[Decimal | None] = []
    for numerator, denominator in rows:
        try:
            values.append(evaluate({"n": numerator, "d": denominator}))
        except Exception:
            values.append(None)
    return values


def _flagged_per_record(value: Decimal) -> bool:
    """Whether ``str(value)`` is a text by columns does not write: scientific notation or a negative zero."""
    return ("E" in str(value) and not value.is_zero()) or (value.is_zero() and value.is_signed())


def test_quotients_by_hand() -> None:
    rows = [
        (D("10.00"), D(4)),       # ideal exponent −2 − 0 = −2; exact 2.5 keeps its zero down to it: 2.50
        (D("1000.00"), D(4)),     # exact 250 (1 trailing zero of its own), at the ideal exponent −2: 250.00
        (D(1), D(8)),             # ideal 0, exact 0.125 needs −3: 0.125
        (D("9.5"), D("0.5")),     # ideal −1 − (−1) = 0: 19
        (D(2), D(3)),             # inexact: 28 digits, 0.666…667 (adjusted exponent −1: 28 decimals)
        (D("0.00"), D(4)),        # a zero has the ideal exponent −2: 0.00
        (D(0), D("0.5")),         # ideal 0 − (−1) = 1: 0E+1, as str() writes it
        (D(5), D("0.5")),         # exact 10 at the ideal exponent 1: 1E+1, scientific: flagged
        (D(0), D(-4)),            # 0 / −4 is a negative zero, −0: flagged
        (D(1), D(1000000000)),    # 1E-9, below 10**−6: scientific, flagged
        (D(1), D(0)),             # a division by zero: per record (an error row)
        (D(-7), D("0.25")),       # exact −28: ideal 0 − (−2) = 2, but 28 needs exponent 0: −28
    ]
    expected = ['"2.50"', '"250.00"', '"0.125"', '"19"', '"0.6666666666666666666666666667"', '"0.00"', '"0E+1"',
                FLAGGED, FLAGGED, FLAGGED, COMPUTED_PER_RECORD, '"-28"']
    assert _by_columns("n / d", rows) == expected
    # the closures' own texts
    assert [json_by_columns.constant(value) for value in _per_record("n / d", rows) if value is not None] == [
        '"2.50"', '"250.00"', '"0.125"', '"19"', '"0.6666666666666666666666666667"', '"0.00"', '"0E+1"', '"1E+1"',
        '"-0"', '"1E-9"', '"-28"']
    # 176366.84142857142857142857142857…: 6 digits before the point, 22 after
    assert _by_columns("n / d", [(D("1234567.89"), D(7))]) == ['"176366.8414285714285714285714"']


def test_an_inexact_quotient_keeps_its_trailing_zeros() -> None:
    # 999999999999999 / 1000000000000001 = 0.999999999999998000000000000001999…: rounded to 28 digits,
    # 0.9999999999999980000000000000 (28 decimals, zeros kept). max(d, 10**15) is at least 10**15, which keeps
    # the quotients below 1 and leaves the scale room for 28 digits below the point
    assert _by_columns("n / max(d, 1000000000000000)", [(D(999999999999999), D(1000000000000001))]) == [
        '"0.9999999999999980000000000000"']


def test_a_constant_divisor_by_hand() -> None:
    # n / 1000 is n × 0.001 by columns: 1234.50 / 1000 (ideal −2) is exactly 1.2345 (−4): 1.2345;
    # 3000.00 / 1000 is 3 at the ideal exponent −2: 3.00; 7 / 8 (ideal 0) is 0.875
    assert _by_columns("n / 1000", [(D("1234.50"), D(1)), (D("3000.00"), D(1))]) == ['"1.2345"', '"3.00"']
    assert _by_columns("n / 8", [(D(7), D(1))]) == ['"0.875"']


def test_a_quotient_in_an_expression_by_hand() -> None:
    # max(d, 1) is d's 4.00 (ideal −1 − (−2) = 1 with n = 10.5): 10.5 / 4.00 is exactly 2.625 (−3): 2.625;
    # times 100 (no decimals) 262.500; plus 0.5: 263.000
    assert _by_columns("n / max(d, 1) * 100 + 0.5", [(D("10.5"), D("4.00"))]) == ['"263.000"']
    # 10 / 4 = 2.5, minus 2.5 is 0.0; 0 / 5 is 0 (the ideal exponent 0), minus 2.5 is −2.5
    assert _by_columns("n / d - 2.5", [(D(10), D(4)), (D(0), D(5))]) == ['"0.0"', '"-2.5"']
    # a negative zero quotient makes what reads it unknown: 0 / −5 + 1 is 1, flagged (conservative)
    assert _by_columns("n / d + 1", [(D(0), D(-5))]) == [FLAGGED]


def test_another_context_precision_by_hand() -> None:
    # in a context of 5 digits: 2 / 3 is 0.66667, 10.00 / 4 is 2.50 (exact), 123456 / 1 is 1.2346E+5 (rounded,
    # scientific: flagged), 100000 / 2 is exact but 50000 has 5 digits at the ideal exponent 0: 50000
    with localcontext() as context:
        context.prec = 5
        rows = [(D(2), D(3)), (D("10.00"), D(4)), (D(123456), D(1)), (D(100000), D(2))]
        assert _by_columns("n / d", rows) == ['"0.66667"', '"2.50"', FLAGGED, '"50000"']
        assert [str(value) for value in _per_record("n / d", rows)] == ["0.66667", "2.50", "1.2346E+5", "50000"]


def _number(decimals: int, magnitude: int) -> st.SearchStrategy[Decimal]:
    """A number with ``decimals`` decimals, below ``10**magnitude``: its digits of every length, trailing zeros
    and the ends of the range."""
    limit = 10 ** (magnitude + decimals) - 1
    coefficients = st.one_of(st.integers(-limit, limit), st.integers(-999, 999),
                             st.integers(1, 9).flatmap(lambda zeros: st.integers(-99, 99).map(
                                 lambda digits: max(-limit, min(limit, digits * 10**zeros)))),
                             st.sampled_from([0, 1, -1, limit, -limit]))
    return coefficients.map(lambda coefficient: D(coefficient).scaleb(-decimals))


def _any_number(most_decimals: int) -> st.SearchStrategy[Decimal]:
    # up to 10**15 whole; 18 digits in all keeps a cell's minor units within Int64 at the column's scale
    return st.integers(0, most_decimals).flatmap(lambda decimals: _number(decimals, 18 - most_decimals))


def _terminating_divisor(most_decimals: int) -> st.SearchStrategy[Decimal]:
    """A divisor whose reciprocal ends: ±2**a × 5**b, at most ``most_decimals`` decimals."""
    return st.tuples(st.integers(0, 20), st.integers(0, 12), st.booleans(), st.integers(0, most_decimals)).map(
        lambda parts: D((-1 if parts[2] else 1) * 2 ** parts[0] * 5 ** parts[1]).scaleb(-parts[3]))


@st.composite
def _rows(draw: st.DrawFn) -> list[tuple[Decimal, Decimal]]:
    numerator_decimals, denominator_decimals = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    numerators, denominators = _any_number(numerator_decimals), _any_number(denominator_decimals)
    # an exact quotient: a numerator that is the divisor times a short quotient (trailing zeros included)
    exact = st.tuples(denominators, st.integers(-10**4, 10**4), st.integers(0, 3)).map(
        lambda parts: (parts[0] * parts[1] * 10 ** parts[2], parts[0]))
    pairs = st.one_of(st.tuples(numerators, denominators),
                      st.tuples(numerators, _terminating_divisor(denominator_decimals)), exact,
                      st.tuples(st.just(D(0)), denominators),
                      st.tuples(st.sampled_from([D(1), D(-1), D(7)]), st.sampled_from([D(10**9), D(10**15), D(3)])))
    # a negative zero cell (-0) is not a block's (per record, with its sign): the positive zero instead
    rows = [tuple(cell.copy_abs() if cell.is_zero() else cell for cell in row)
            for row in draw(st.lists(pairs, min_size=1, max_size=8))]
    # a cell beyond Int64 at its column's scale is not the block's (per record): left out here
    scale_of = {index: max(max(0, -row[index].as_tuple().exponent) for row in rows) for index in (0, 1)}
    kept = [row for row in rows if all(abs(row[index].scaleb(scale_of[index], EXACT)) < 2**63 for index in (0, 1))]
    return kept or [(D(1), D(3))]


@settings(max_examples=200, deadline=None)
@given(rows=_rows(), tight=st.booleans(),
       text=st.sampled_from(["n / d", "n / d", "n / max(d, 1)", "n / max(d, 1000000000000000)", "n / 1000",
                             "n / 8", "n / -0.25", "n / 3", "1 / d", "0 / d"]))
@example(rows=[(D(999999999999999), D(1000000000000001))], tight=True, text="n / max(d, 1000000000000000)")
@example(rows=[(D(1), D(10**9)), (D("0.000001"), D(1))], tight=True, text="n / d")
def test_a_quotient_is_written_as_str_writes_the_closures_quotient(rows, tight, text) -> None:
    """Numerators and denominators of 0 to 6 decimals up to 10**15 (negative, zero, exact and inexact quotients,
    quotients with trailing zeros, tiny quotients), at the columns' tight bounds or Int64's whole range: each
    row's text by columns is ``str()`` of the closures' quotient, and a row is flagged exactly where ``str()``
    writes it in scientific notation or as a negative zero."""
    for got, value in zip(_by_columns(text, rows, tight=tight), _per_record(text, rows)):
        if got == COMPUTED_PER_RECORD:
            continue  # rules.columns decides these (tests/test_columns.py): a division by zero, a long quotient
        assert value is not None
        if _flagged_per_record(value):
            assert got == FLAGGED, (value, rows)
        else:
            assert got == json_by_columns.constant(value), (value, rows)


@settings(max_examples=60, deadline=None)
@given(rows=_rows(), precision=st.sampled_from([1, 2, 9, 16, 28, 36]))
def test_a_quotient_in_any_context_precision_is_written_as_str_writes_it(rows, precision) -> None:
    """The same in a decimal context of another precision (the closures divide in the current context, and the
    columns follow its digits)."""
    with localcontext() as context:
        context.prec = precision
        for got, value in zip(_by_columns("n / d", rows), _per_record("n / d", rows)):
            if got == COMPUTED_PER_RECORD:
                continue
            assert value is not None
            if _flagged_per_record(value):
                assert got == FLAGGED, (value, rows)
            else:
                assert got == json_by_columns.constant(value), (value, rows)
