"""JSON texts by columns (incentives.json_by_columns): strings, decimals and ratios as pydantic writes them in
results.jsonl, held to pydantic itself."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import json_by_columns
from incentives.rules.columns import Column, compile_columns
from incentives.rules.expressions import parse_expression


def _column(expression: pl.Expr, frame: pl.DataFrame | None = None) -> list:
    return (frame if frame is not None else pl.DataFrame()).select(expression.alias("x"))["x"].to_list()


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(max_size=8) | st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "é€😀",
                                                             'a"b\\c\n\t\r\b\f']), min_size=1, max_size=20))
def test_strings_are_escaped_as_pydantic_escapes_them(texts: list[str]) -> None:
    frame = pl.DataFrame({"text": pl.Series(texts, dtype=pl.String)})
    assert _column(json_by_columns.string(pl.col("text")), frame) == [json_by_columns.constant(text)
                                                                      for text in texts]


def test_a_few_strings_by_hand() -> None:
    frame = pl.DataFrame({"text": ['a"b', "c\\d", "e\nf\x01", "€"]})
    # quote and backslash escaped, \n short, U+0001 as \u0001, the euro sign as it is
    assert _column(json_by_columns.string(pl.col("text")), frame) == ['"a\\"b"', '"c\\\\d"', '"e\\nf\\u0001"',
                                                                      '"€"']


@settings(max_examples=300, deadline=None)
@given(numbers=st.lists(st.tuples(st.integers(-10**12, 10**12) | st.just(0), st.integers(-3, 9)),
                        min_size=1, max_size=20),
       extra_scale=st.integers(0, 3))
def test_decimals_are_written_as_str_writes_them(numbers: list[tuple[int, int]], extra_scale: int) -> None:
    """A number given as units at a scale and its decimals reads as ``Decimal(coefficient).scaleb(-decimals)``:
    each row's text is pydantic's, but for the nonzero numbers str() writes in scientific notation, reported."""
    scale = max(0, max(decimals for _, decimals in numbers)) + extra_scale
    # a positive exponent is kept for zeros only (the text of another such number is not built)
    rows = [(coefficient, decimals) for coefficient, decimals in numbers if decimals >= 0 or coefficient == 0]
    if not rows:
        return
    frame = pl.DataFrame({
        "units": pl.Series([coefficient * 10 ** (scale - decimals) if coefficient else 0
                            for coefficient, decimals in rows], dtype=pl.Int128),
        "decimals": pl.Series([decimals for _, decimals in rows], dtype=pl.Int32)})
    text, scientific = json_by_columns.decimal(pl.col("units"), scale, pl.col("decimals"))
    texts, flagged = _column(text, frame), _column(scientific, frame)
    for (coefficient, decimals), got, unknown in zip(rows, texts, flagged):
        expected = json_by_columns.constant(Decimal(coefficient).scaleb(-decimals))
        assert unknown == ("E" in expected and coefficient != 0)
        if not unknown:
            assert got == expected


def test_decimals_by_hand() -> None:
    # units at scale 4: 0.1500 with 3 decimals; zeros with 2, 7 (str: 0E-7) and -10 (an exponent of 10: 0E+10)
    # decimals; -5.0000 with none; 0.0001 (1E-4 is still plain: str() switches below 10**-6); 12345.6789
    frame = pl.DataFrame({"units": pl.Series([1500, 0, 0, 0, -50000, 1, 123456789], dtype=pl.Int128),
                          "decimals": pl.Series([3, 2, 7, -10, 0, 4, 4], dtype=pl.Int32)})
    text, scientific = json_by_columns.decimal(pl.col("units"), 4, pl.col("decimals"))
    assert _column(text, frame) == ['"0.150"', '"0.00"', '"0E-7"', '"0E+10"', '"-5"', '"0.0001"', '"12345.6789"']
    assert _column(scientific, frame) == [False] * 7
    # 0.0000001 (1E-7) at scale 8, a nonzero number str() writes in scientific notation: reported
    tiny = pl.DataFrame({"units": pl.Series([10], dtype=pl.Int128), "decimals": pl.Series([7], dtype=pl.Int32)})
    assert _column(json_by_columns.decimal(pl.col("units"), 8, pl.col("decimals"))[1], tiny) == [True]


def test_written_decimals_follow_exact_arithmetic() -> None:
    """``a * b + 1.5`` over facts written 2.5 and 4.00: the product has 1 + 2 = 3 decimals, the sum
    max(3, 1) = 3: 2.5 × 4.00 + 1.5 = 11.500; with a = -2.5, b = 0 the product is a negative zero: unknown."""
    node = parse_expression("a * b + 1.5").node
    columns = {"a": Column.number(1, 25), "b": Column.number(2, 400)}
    facts = {"a": json_by_columns.Written(pl.col("a_decimals"), pl.lit(False)),
             "b": json_by_columns.Written(pl.col("b_decimals"), pl.lit(False))}
    frame = pl.DataFrame({"a": pl.Series([25, -25], dtype=pl.Int64), "b": pl.Series([400, 0], dtype=pl.Int64),
                          "a_decimals": [1, 1], "b_decimals": [2, 2]})
    written = json_by_columns.written(node, columns, facts)
    assert written is not None
    value = compile_columns(node, columns)
    text, _ = json_by_columns.decimal(value.value, value.scale, written.decimals)
    assert _column(written.decimals, frame) == [3, 3]
    assert _column(text, frame)[0] == '"11.500"'
    assert _column(written.unknown, frame) == [False, True]
    # min() and max() return the first extreme argument as it is: 2.5 against 4.00 and -2.5 against 0 (b: 0.00)
    smallest = json_by_columns.written(parse_expression("min(a, b)").node, columns, facts)
    largest = json_by_columns.written(parse_expression("max(a, b, 4)").node, columns, facts)
    assert smallest is not None and largest is not None
    assert _column(smallest.decimals, frame) == [1, 1]  # 2.5 < 4.00; -2.5 < 0.00
    # 4.00 > 2.5, and the constant 4 (no decimals) is not greater: b's 4.00; 4 > 0.00 > -2.5: the constant's 0
    assert _column(largest.decimals, frame) == [2, 0]
    # if() returns the branch it chooses as it is
    chosen = json_by_columns.written(parse_expression("if(a > 0, a, b)").node, columns, facts)
    assert chosen is not None and _column(chosen.decimals, frame) == [1, 2]


def test_ratio_written_by_hand() -> None:
    """money.ratio at 4 places: 1 / 5 is exact, 0.2 (ideal exponent 0, one decimal of its own); 10.0 / 5 is
    exact, 2.0 (the ideal keeps one decimal); 2 / 3 is rounded, 0.6667; 0 / 0.5 is exact, 0E+1; 100 / 0.5 is
    200 with the ideal exponent 1: 2.0E+2, unknown."""
    frame = pl.DataFrame({"units": pl.Series([2000, 20000, 6667, 0, 2000000], dtype=pl.Int128),
                          "exact": [True, True, False, True, True],
                          "numerator": [0, 1, 0, 0, 0], "denominator": [0, 0, 0, 1, 1]})
    written = json_by_columns.ratio_written(pl.col("units"), 4, pl.col("exact"), pl.col("numerator"),
                                            pl.col("denominator"))
    text, _ = json_by_columns.decimal(pl.col("units"), 4, written.decimals)
    assert _column(text, frame)[:4] == ['"0.2"', '"2.0"', '"0.6667"', '"0E+1"']
    assert _column(written.unknown, frame) == [False, False, False, False, True]


def test_every_character_is_escaped_as_pydantic_escapes_it() -> None:
    """polars' JSON writer, which string() uses, against pydantic's over every Unicode scalar value."""
    characters = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    frame = pl.DataFrame({"text": pl.Series(characters, dtype=pl.String)})
    written = _column(json_by_columns.string(pl.col("text")), frame)
    assert [text for text, json in zip(characters, written) if json != json_by_columns.constant(text)] == []
