"""The expression language by columns (``incentives.rules.columns``) against the closures, its reference."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any, Mapping, Sequence

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from incentives.errors import EvaluationError
from incentives.money import EXACT, ratio
from incentives.rules.ast import BoolOp, Binary, Call, Compare, If, ListLiteral, Literal, Name, Node, Unary
from incentives.rules.columns import (
    MAX_UNITS,
    QUOTIENT_SCALE,
    Column,
    ColumnExpression,
    Kind,
    NotByColumns,
    compile_columns,
    ratio_by_columns,
)
from incentives.rules.closures import compile_expression, constant_value
from incentives.rules.expressions import parse_expression

RAISES = object()  # what the closures give for a row they raise on

COLUMNS = {
    "revenue": Column.number(2),
    "units": Column.number(0),
    "rate": Column.number(4),
    "region": Column.text(),
    "active": Column.boolean(),
    "signed": Column.date(),
    "renewed": Column.date(),
}


def _cell(column: Column, value: Any) -> Any:
    """A fact as the block holds it: a number as integer minor units at the column's scale."""
    if value is None or column.kind is not Kind.NUMBER:
        return value
    units = value.scaleb(column.scale, EXACT)
    assert units == units.to_integral_value(), f"{value} has more than {column.scale} decimals"
    return int(units)


def _block(columns: Mapping[str, Column], rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        {name: [_cell(column, row.get(name)) for row in rows] for name, column in columns.items()},
        schema={name: column.dtype for name, column in columns.items()},
    )


def _read_back(expression: ColumnExpression, value: Any) -> Any:
    if expression.kind is Kind.NUMBER and value is not None:
        return Decimal(value).scaleb(-expression.scale, EXACT)
    return value


def by_columns(node: Node, columns: Mapping[str, Column], rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, bool]]:
    """``(value, flagged)`` for each row; the value of a flagged row is None."""
    expression = compile_columns(node, columns)
    # lazy, as the columnar engine runs them (polars 2.1's eager with_columns fails on when(literal false)
    # .then(literal == column)); with_columns broadcasts an expression that reads no column to every row
    frame = (_block(columns, rows).lazy()
             .with_columns(expression.value.alias("value"), expression.needs_record.alias("flag")).collect())
    flags = frame["flag"].to_list()
    assert None not in flags, "the flag is never null"
    return [(None if flag else _read_back(expression, value), flag)
            for value, flag in zip(frame["value"].to_list(), flags)]


def by_closures(node: Node, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    evaluate = compile_expression(node)
    results = []
    for row in rows:
        try:
            results.append(evaluate({name: value for name, value in row.items() if value is not None}))
        except EvaluationError:
            results.append(RAISES)
    return results


def check(text: str, rows: Sequence[Mapping[str, Any]], expected: Sequence[Any]) -> ColumnExpression:
    """By columns, ``text`` gives ``expected`` per row (RAISES: flagged); the closures agree."""
    node = parse_expression(text).node
    got = [RAISES if flagged else value for value, flagged in by_columns(node, COLUMNS, rows)]
    assert got == list(expected)
    assert [type(value) for value in got] == [type(value) for value in expected]
    assert by_closures(node, rows) == list(expected)
    return compile_columns(node, COLUMNS)


D = Decimal


# --- hand-computed cases, one construct at a time ------------------------------------------------


def test_arithmetic_aligns_scales_and_a_product_adds_them():
    rows = [{"revenue": D("1234.50"), "units": D("3"), "rate": D("0.0350")},
            {"revenue": D("-0.01"), "units": D("0"), "rate": D("-1.0000")}]
    # 1234.50 + 3 = 1237.50; -0.01 + 0 = -0.01 (scale 2 = max(2, 0))
    assert check("revenue + units", rows, [D("1237.50"), D("-0.01")]).scale == 2
    # 1234.50 - 0.0350 = 1234.4650; -0.01 - -1 = 0.99 (scale 4)
    assert check("revenue - rate", rows, [D("1234.4650"), D("0.99")]).scale == 4
    # 1234.50 × 0.0350 = 43.207500 (scale 2 + 4 = 6); -0.01 × -1 = 0.01
    product = check("revenue * rate", rows, [D("43.2075"), D("0.01")])
    assert product.scale == 6 and product.kind is Kind.NUMBER
    # -(1234.50) and -(-0.01); +x is x
    check("-revenue", rows, [D("-1234.50"), D("0.01")])
    check("+units", rows, [D("3"), D("0")])


def test_literals_keep_their_own_scale_and_percent_literals_are_divided_by_100():
    rows = [{"revenue": D("200.00")}]
    # 3.5% = 0.035 (scale 3): 200.00 × 0.035 = 7.00000 (scale 5)
    assert check("revenue * 3.5%", rows, [D("7")]).scale == 5
    # 1.25 + 0.5 = 1.75, a constant at scale 2 that reads no fact
    assert check("1.25 + 0.5", rows, [D("1.75")]).scale == 2
    # 1/3 is folded as the closures fold it: 28 significant digits (scale 28); × 200.00 → scale 30
    third = D(1) / D(3)
    assert check("1/3 * revenue", rows, [third * D("200.00")]).scale == 30


def test_a_number_stays_int64_while_it_fits_and_becomes_int128_when_it_may_not():
    small = {"a": Column.number(2, bound=10**6), "b": Column.number(0, bound=10**6)}
    # 10**6 × 10**6 = 10**12 fits Int64
    assert compile_columns(parse_expression("a * b").node, small).dtype == pl.Int64()
    # a default column spans Int64: its sum with anything, or its negation (-(-2**63)), needs Int128
    assert compile_columns(parse_expression("revenue + units").node, COLUMNS).dtype == pl.Int128()
    rows = [{"units": D(-(2**63))}]
    assert by_columns(parse_expression("-units").node, COLUMNS, rows) == [(D(2**63), False)]
    assert by_columns(parse_expression("abs(units)").node, COLUMNS, rows) == [(D(2**63), False)]


def test_a_value_beyond_128_bit_minor_units_flags_its_row_and_never_wraps():
    big = D(2**62)
    rows = [{"units": big}, {"units": D(3)}]
    node = parse_expression("units * units * units").node
    # (2**62)**3 = 2**186 > MAX_UNITS = 2**125: flagged (the closures compute it: documented); 3**3 = 27
    assert by_columns(node, COLUMNS, rows) == [(None, True), (D(27), False)]
    # (2**62)**2 = 2**124 <= 2**125, + 2**124 = 2**125: still exact; + 1 more is flagged
    rows = [{"units": big, "active": False}, {"units": big, "active": True}]
    node = parse_expression("units * units + units * units + if(active, 1, 0)").node
    assert by_columns(node, COLUMNS, rows) == [(D(2**125), False), (None, True)]
    # only the branch taken counts: (-2**62)**3 is never computed where units > 0 is false
    node = parse_expression("if(units > 0, units * units * units, 0)").node
    assert by_columns(node, COLUMNS, [{"units": -big}, {"units": big}]) == [(D(0), False), (None, True)]


def test_comparisons_and_python_chains():
    rows = [{"revenue": D("100.00"), "units": D("100"), "rate": D("0.5")},
            {"revenue": D("99.99"), "units": D("100"), "rate": D("99.99")}]
    check("revenue == units", rows, [True, False])  # 100.00 == 100 as numbers
    check("revenue != units", rows, [False, True])
    check("revenue < units", rows, [False, True])
    check("revenue >= units", rows, [True, False])
    # 0.5 < 100.00 <= 100 / 99.99 < 99.99 is false, so the chain is
    check("rate < revenue <= units", rows, [True, False])
    # 100 > 100.00 is false / 100 > 99.99 >= 99.99
    check("units > revenue >= rate", rows, [False, True])


def test_a_chain_evaluates_its_next_operand_only_where_the_previous_comparison_held():
    # units > 5 is false on row 1, so the missing 'revenue' is never read there
    rows = [{"units": D(10)}, {"units": D(1)}]
    check("units > 5 < revenue", rows, [RAISES, False])


def test_comparisons_of_different_kinds():
    rows = [{"region": "EMEA", "units": D(1), "active": True}, {"region": "APAC", "units": D(2), "active": True}]
    # == and != never coerce: a text is not a number, a boolean not a number
    check("region == units", rows, [False, False])
    check("active != 1", rows, [True, True])
    check("region == 'EMEA'", rows, [True, False])
    check("region < 'B'", rows, [False, True])  # texts order by code point
    # U+FFFF < U+1F600 by code point, as by their UTF-8 bytes (EF.. < F0..); 'é' (U+E9) > 'z'
    check("region < '\U0001f600'", [{"region": "\uffff"}, {"region": "é"}], [True, True])
    check("region > 'z'", [{"region": "é"}], [True])
    # ordering a text and a number raises
    check("region < units", rows, [RAISES, RAISES])


def test_dates_are_compared_with_dates():
    rows = [{"signed": date(2027, 1, 5), "renewed": date(2027, 3, 1)},
            {"signed": date(2027, 3, 1), "renewed": date(2027, 3, 1)}]
    check("signed < renewed", rows, [True, False])
    check("signed == renewed", rows, [False, True])
    check("signed < 5", rows, [RAISES, RAISES])


def test_and_or_not_short_circuit_and_need_booleans():
    rows = [{"active": True, "units": D(3)}, {"active": False}, {"active": None, "units": D(3)}]
    # row 2: false and ... stops before the missing 'units'; row 3: the missing 'active' raises
    check("active and units > 2", rows, [True, False, RAISES])
    check("not active or units > 2", rows, [True, True, RAISES])
    check("not active", rows, [False, True, RAISES])
    # a number where a boolean is needed raises where it is reached
    check("active and units", rows, [RAISES, False, RAISES])
    check("not units", [{"units": D(1)}], [RAISES])


def test_if_evaluates_only_the_branch_it_takes():
    rows = [{"units": D(4), "revenue": D("10.00")}, {"units": D(0)}, {"revenue": D("1.00")}]
    # row 1: 10.00 × 4 = 40.00; row 2: the missing revenue is not read (units > 0 is false) → 0;
    # row 3: the condition reads the missing units
    node = check("if(units > 0, revenue * units, 0)", rows, [D("40.00"), D(0), RAISES])
    assert node.scale == 2  # the branches' common scale
    check("if(active, 1, 2)", [{"active": True}, {"units": D(1)}], [D(1), RAISES])
    # a condition that is not a boolean raises
    check("if(units, 1, 2)", [{"units": D(1)}], [RAISES])
    # a branch that always raises flags only the rows that take it
    check("if(units > 0, 'a' + 1, 7)", [{"units": D(1)}, {"units": D(0)}], [RAISES, D(7)])


def test_min_max_abs():
    rows = [{"revenue": D("-12.50"), "units": D(3), "rate": D("0.0001")}]
    check("min(revenue, units, rate)", rows, [D("-12.50")])
    check("max(revenue, units, rate)", rows, [D(3)])
    check("max([revenue, units])", rows, [D(3)])  # the list form is the same call
    check("abs(revenue)", rows, [D("12.50")])
    check("min(revenue, region)", [{"revenue": D(1), "region": "x"}], [RAISES])


def test_in_and_not_in():
    rows = [{"region": "EMEA", "units": D(2)}, {"region": "NA", "units": D("5")}, {"units": D(1)}]
    check("region in ['EMEA', 'APAC']", rows, [True, False, RAISES])
    check("region not in ['EMEA', 'APAC']", rows, [False, True, RAISES])
    # 2 == 2.0 as numbers; a text in the list never equals a number
    check("units in [2.0, 'x', units * 0 + 5]", rows, [True, True, False])
    check("units in []", rows, [False, False, False])
    # text in text is a substring test; a number in a text raises
    check("'M' in region", rows, [True, False, RAISES])
    check("units in region", rows, [RAISES, RAISES, RAISES])
    # a text, not a pattern: '.' and 'A*' are found only where they are written
    check("'.' in region", [{"region": "ab"}, {"region": "a.b"}], [False, True])
    check("'A*' in region", [{"region": "EMEA"}, {"region": "A*B"}], [False, True])
    # every item is evaluated: a missing item raises, whatever the left value
    check("units in [1, revenue]", [{"units": D(1)}], [RAISES])


def test_missing_facts_and_names_the_block_lacks_flag_only_the_rows_that_read_them():
    rows = [{"units": D(1)}, {"units": None}]
    check("units + 1", rows, [D(2), RAISES])
    # 'bonus' has no column at all: every row that reads it raises
    node = parse_expression("bonus + 1").node
    assert by_columns(node, COLUMNS, rows) == [(None, True), (None, True)]
    assert by_closures(node, rows) == [RAISES, RAISES]
    check("units > 0 or bonus", rows, [True, RAISES])


def test_constant_subtrees_are_folded_like_the_closures():
    check("1/0 + units", [{"units": D(1)}], [RAISES])
    check("if(true, 5, 1/0)", [{}], [D(5)])
    check("'a' + 1", [{}], [RAISES])


@pytest.mark.parametrize("text, reason", [
    ("if(active, 1, 'one')", "if() gives a number or a text"),
    ("region == ['EMEA']", "a list compared with '=='"),
    ("[1, 2]", "a list is a value only"),
    ("units * 1e40", "too large"),
    ("units * 0.00000000000000000000000000000000000001", "more than 37 decimals"),
    ("rate * 0.0000000000000000001 * 0.0000000000000000001", "a product with more than 37 decimals"),
])
def test_constructs_not_computed_by_columns_are_refused_with_a_reason(text, reason):
    with pytest.raises(NotByColumns) as refused:
        compile_columns(parse_expression(text).node, COLUMNS)
    assert reason in refused.value.reason


def test_a_column_describes_its_kind_and_scale():
    assert Column.number(2).dtype == pl.Int64()
    assert Column.text().dtype == pl.String() and Column.date().dtype == pl.Date()
    with pytest.raises(ValueError):
        Column.number(-1)
    with pytest.raises(ValueError):
        Column(Kind.FAILS)


# --- ratios rounded half-even to ratio_places ----------------------------------------------------


def _ratio_by_columns(numerator: Decimal | None, denominator: Decimal | None, places: int,
                      scales: tuple[int, int] = (2, 2)) -> tuple[Any, bool]:
    columns = {"n": Column.number(scales[0]), "d": Column.number(scales[1])}
    expression = ratio_by_columns(compile_columns(Name("n"), columns), compile_columns(Name("d"), columns), places)
    assert expression.scale == places
    frame = _block(columns, [{"n": numerator, "d": denominator}])
    value, flag = frame.select(expression.value.alias("value"), expression.needs_record.alias("flag")).row(0)
    return (None if flag else Decimal(value).scaleb(-places, EXACT)), flag


def test_ratio_rounds_half_even_at_its_places():
    # 2/3 = 0.666..., to 4 places 0.6667; 1/8 = 0.125 → 0.12 (half to even), 3/8 = 0.375 → 0.38
    assert _ratio_by_columns(D(2), D(3), 4) == (D("0.6667"), False)
    assert _ratio_by_columns(D(1), D(8), 2) == (D("0.12"), False)
    assert _ratio_by_columns(D(3), D(8), 2) == (D("0.38"), False)
    # negative: -1/8 = -0.125 → -0.12; 1/-8 the same
    assert _ratio_by_columns(D(-1), D(8), 2) == (D("-0.12"), False)
    assert _ratio_by_columns(D(1), D(-8), 2) == (D("-0.12"), False)
    # 366722.66 / 435000.00 = 0.84304059770... → 0.8430405977 at 10 places
    assert _ratio_by_columns(D("366722.66"), D("435000.00"), 10) == (D("0.8430405977"), False)
    # a denominator of 0 or a missing operand flags the row
    assert _ratio_by_columns(D(1), D(0), 2) == (None, True)
    assert _ratio_by_columns(None, D(2), 2) == (None, True)


def test_ratio_where_the_denominator_has_more_decimals_than_the_places_need():
    # 1.00 / 0.0003 = 3333.33..., at 0 places 3333; n at scale 2, d at scale 4: shift = 0 + 4 - 2 = 2
    assert _ratio_by_columns(D(1), D("0.0003"), 0, scales=(2, 4)) == (D(3333), False)
    # shift < 0: n at scale 6, d at scale 0, 2 places: 0.125000 / 1 → 0.12
    assert _ratio_by_columns(D("0.125"), D(1), 2, scales=(6, 0)) == (D("0.12"), False)


_units = st.integers(min_value=-(10**15), max_value=10**15)


@settings(max_examples=150, deadline=None)
@given(numerator=_units, denominator=_units, places=st.integers(0, 12), scales=st.tuples(st.integers(0, 4),
                                                                                          st.integers(0, 4)))
@example(numerator=1, denominator=8, places=2, scales=(0, 0))  # exactly a half, rounded to even
@example(numerator=-(2**63), denominator=1, places=12, scales=(0, 4))  # 2**63 × 10**16: Int128
def test_ratio_by_columns_equals_money_ratio(numerator, denominator, places, scales):
    n, d = D(numerator).scaleb(-scales[0]), D(denominator).scaleb(-scales[1])
    value, flag = _ratio_by_columns(n, d, places, scales)
    if denominator == 0:
        assert flag
    else:
        assert not flag and value == ratio(n, d, places)


# --- parity with the closures: random expressions over random facts ------------------------------

# numbers at three scales; a small bound keeps every product below MAX_UNITS, so that only the
# closures' own errors flag a row (the overflow flag is exercised by the large-values suite)
SMALL = 99
PARITY_COLUMNS = {
    "n0": Column.number(0, bound=SMALL),
    "n2": Column.number(2, bound=SMALL),
    "n3": Column.number(3, bound=SMALL),
    "t": Column.text(),
    "u": Column.text(),
    "f": Column.boolean(),
    "g": Column.boolean(),
}
WIDE_COLUMNS = {name: (Column.number(column.scale) if column.kind is Kind.NUMBER else column)
                for name, column in PARITY_COLUMNS.items()}
# code points beyond ASCII and beyond the BMP: polars orders UTF-8 bytes, the closures code points
TEXTS = ["", "a", "b", "ab", "ba", "é", "\uffff", "\U0001f600"]


def _decimals(bound: int) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda units, scale: D(units).scaleb(-scale), st.integers(-bound, bound), st.integers(0, 3))


def _leaves(kind: str) -> st.SearchStrategy[Node]:
    if kind == "number":
        return st.one_of(st.sampled_from([Name("n0"), Name("n2"), Name("n3")]),
                         _decimals(SMALL).map(Literal))
    if kind == "text":
        return st.one_of(st.sampled_from([Name("t"), Name("u")]), st.sampled_from(TEXTS).map(Literal))
    return st.one_of(st.sampled_from([Name("f"), Name("g")]), st.booleans().map(Literal))


# any kind where another is expected, and a name no column has: the closures' type errors
_STRAYS = st.one_of(_leaves("number"), _leaves("text"), _leaves("boolean"), st.just(Name("ghost")))


def _expressions(kind: str, depth: int) -> st.SearchStrategy[Node]:
    leaves = _leaves(kind)
    if depth == 0:
        return st.one_of(leaves, leaves, leaves, _STRAYS)
    number, boolean = _expressions("number", depth - 1), _expressions("boolean", depth - 1)
    same = _expressions(kind, depth - 1)
    choices = [leaves, st.builds(If, boolean, same, same)]
    if kind == "number":
        choices += [
            st.builds(Binary, st.sampled_from(["+", "-", "*"]), number, number),
            st.builds(Unary, st.sampled_from(["-", "+"]), number),
            st.builds(Call, st.sampled_from(["min", "max"]), st.lists(number, min_size=2, max_size=3).map(tuple)),
            st.builds(Call, st.just("abs"), st.tuples(number)),
        ]
    elif kind == "boolean":
        comparable = st.one_of(number, number, _expressions("text", depth - 1), _STRAYS)
        choices += [
            st.builds(Unary, st.just("not"), boolean),
            st.builds(BoolOp, st.sampled_from(["and", "or"]), st.lists(boolean, min_size=2, max_size=3).map(tuple)),
            st.builds(Compare, comparable,
                      st.lists(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), min_size=1, max_size=2).map(tuple),
                      st.lists(comparable, min_size=2, max_size=2).map(tuple))
              .map(lambda node: Compare(node.left, node.ops, node.comparators[:len(node.ops)])),
            st.builds(lambda left, op, items: Compare(left, (op,), (ListLiteral(tuple(items)),)),
                      comparable, st.sampled_from(["in", "not in"]), st.lists(comparable, max_size=3)),
            st.builds(lambda left, op, right: Compare(left, (op,), (right,)),
                      st.one_of(_expressions("text", depth - 1), _STRAYS), st.sampled_from(["in", "not in"]),
                      st.one_of(_expressions("text", depth - 1), _STRAYS)),
        ]
    return st.one_of(*choices)


_any_expression = st.one_of(_expressions("number", 3), _expressions("boolean", 3), _expressions("text", 2))


def _rows(number_units: st.SearchStrategy[int]) -> st.SearchStrategy[list[dict[str, Any]]]:
    def number(scale: int) -> st.SearchStrategy[Decimal | None]:
        value = number_units.map(lambda units: D(units).scaleb(-scale, EXACT))
        return st.one_of(value, value, value, st.none())  # a fact is missing one time in four

    row = st.fixed_dictionaries({
        "n0": number(0), "n2": number(2), "n3": number(3),
        "t": st.one_of(st.none(), st.sampled_from(TEXTS)), "u": st.one_of(st.none(), st.sampled_from(TEXTS)),
        "f": st.one_of(st.none(), st.booleans(), st.booleans()), "g": st.one_of(st.none(), st.booleans()),
    })
    return st.lists(row, min_size=1, max_size=6)


def _compiled_or_refused(node: Node, columns: Mapping[str, Column]) -> bool:
    """Whether ``node`` is computed by columns; the only refusal these expressions meet is a mixed if()."""
    try:
        compile_columns(node, columns)
    except NotByColumns as refused:
        assert refused.reason.startswith("if() gives a")
        return False
    return True


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=_any_expression, rows=_rows(st.integers(-SMALL, SMALL)))
@example(node=Compare(Name("n0"), (">", "<"), (Literal(D(0)), Name("n2"))), rows=[{"n0": D(1)}, {"n0": D(0)}])
@example(node=If(Name("f"), Name("n2"), Name("ghost")), rows=[{"f": True, "n2": D("0.5")}, {"f": False}])
# found: a rescaled number kept its old scale (min(0, -0.001) read as -1)
@example(node=Call("min", (Name("n0"), Unary("-", Name("n3")))), rows=[{"n0": D(0), "n3": D("0.001")}])
# found: eager polars rejected when(literal false).then('' == t); a constant condition now picks its branch
@example(node=If(Literal(False), If(Literal(False), Name("f"), Compare(Literal(""), ("in",), (ListLiteral((Name("t"),)),))),
                 Literal(False)),
         rows=[{}, {}])
def test_by_columns_equals_the_closures_and_flags_exactly_the_rows_they_raise_on(node, rows):
    if not _compiled_or_refused(node, PARITY_COLUMNS):
        return
    for (value, flagged), expected in zip(by_columns(node, PARITY_COLUMNS, rows), by_closures(node, rows)):
        assert flagged == (expected is RAISES)
        if not flagged:
            assert type(value) is type(expected) and value == expected


# the whole Int64 range, with large magnitudes often enough that products pass MAX_UNITS
_LARGE_UNITS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(2**40, 2**63 - 1),
                         st.integers(-(2**63), -(2**40)),
                         st.sampled_from([-(2**63), 2**63 - 1, 10**18, -(10**18), 2**31, 0, 1, -1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=st.one_of(_expressions("number", 3),
                      st.builds(Binary, st.just("*"), _expressions("number", 2), _expressions("number", 2))),
       rows=_rows(_LARGE_UNITS))
@example(node=Binary("*", Binary("*", Name("n0"), Name("n0")), Name("n3")),
         rows=[{"n0": D(-(2**63)), "n3": D("-9223372036854775.808")}])
def test_large_values_are_exact_or_flagged_never_wrapped(node, rows):
    """Int64's whole range: a row is exact, or flagged; flagged without a closure error only beyond MAX_UNITS."""
    if not _compiled_or_refused(node, WIDE_COLUMNS):
        return
    for (value, flagged), expected, row in zip(by_columns(node, WIDE_COLUMNS, rows), by_closures(node, rows), rows):
        if expected is RAISES:
            assert flagged
        elif flagged:
            assert _may_pass_max_units(node, row), "flagged, neither a closure error nor a value beyond MAX_UNITS"
        else:
            assert value == expected


def _parts(node: Node) -> list[Node]:
    """``node`` and every node inside it."""
    parts = [node]
    for field in fields(node):
        child = getattr(node, field.name)
        for item in child if isinstance(child, tuple) else (child,):
            if is_dataclass(item):
                parts += _parts(item)
    return parts


def _may_pass_max_units(node: Node, row: Mapping[str, Any]) -> bool:
    """Whether a number some part of ``node`` takes on ``row``, in minor units at the largest scale any part
    has by columns, exceeds MAX_UNITS: the one documented reason for a row flagged without a closure error."""
    facts = {name: value for name, value in row.items() if value is not None}
    scales, magnitudes = [0], [D(0)]
    for part in _parts(node):
        try:
            compiled = compile_columns(part, WIDE_COLUMNS)
        except NotByColumns:
            continue  # a list, or a mixed if() inside
        if compiled.kind is Kind.NUMBER:
            scales.append(compiled.scale)
        try:
            value = compile_expression(part)(facts)
        except EvaluationError:
            continue
        if type(value) is Decimal:
            magnitudes.append(abs(value))
    return max(magnitudes).scaleb(max(scales), EXACT) > MAX_UNITS


def test_computed_values_are_read_by_name_before_columns():
    # this.subtotal is a computed Int128 at scale 2 (12.34, 0.50); a column of the same name is not read
    values = {"this.subtotal": ColumnExpression(pl.lit(pl.Series([1234, 50], dtype=pl.Int128)), pl.lit(False),
                                                Kind.NUMBER, 2, 1234, wide=True)}
    columns = {"units": Column.number(0, 10), "this.subtotal": Column.number(0, 10)}
    expression = compile_columns(parse_expression("this.subtotal * units + 1").node, columns, values)
    block = pl.DataFrame({"units": [3, 10], "this.subtotal": [7, 7]})
    # 12.34 × 3 + 1 = 38.02; 0.50 × 10 + 1 = 6.00 (scale 2: 3802, 600)
    assert expression.scale == 2
    assert block.select(expression.value).to_series().to_list() == [3802, 600]
    assert block.select(expression.needs_record).to_series().to_list() == [False, False]


@pytest.mark.parametrize("text", [
    "tier == 'Gold'", "tier != 'Gold'", "'Gold' == tier", "tier == tier", "tier == other", "tier != other",
    "tier in ['Gold', 'Silver']", "tier not in ['Gold']", "tier < 'H'", "'o' in tier", "tier in 'Golden'",
    "tier == 1", "tier", "if(tier == 'Gold', 1, 2)", "tier == 'Gold' or tier < 'H'", "other == tier and tier > 'A'",
    "'Gold' in [tier]"])
def test_a_column_holding_none_reads_as_the_closures_read_none(text):
    # a used program's tier: None where it has none (equal to None only), unlike a missing fact
    node = parse_expression(text).node
    columns = {"tier": Column.text(none=True), "other": Column.text(none=True)}
    rows = [{"tier": "Gold", "other": "Gold"}, {"tier": None, "other": "Gold"}, {"tier": None, "other": None},
            {"tier": "Silver", "other": None}]
    compiled = compile_columns(node, columns)
    frame = pl.DataFrame(rows, schema={"tier": pl.String, "other": pl.String}).select(
        compiled.value.alias("value"), compiled.needs_record.alias("needs"))
    closure = compile_expression(node)
    for row, (value, needs) in zip(rows, frame.iter_rows()):
        try:
            expected = closure(row)
        except EvaluationError:
            expected = RAISES
        # where the columns flag a row, the per-record path decides: flagged only where the closures raise, or
        # where a None is read outside a comparison (the bare name, a list item: conservative, never wrong)
        if needs:
            assert expected is RAISES or text in ("tier", "'Gold' in [tier]")
        else:
            assert value == expected, (text, row)


# --- division: the closures' quotient to the context's 28 significant digits ---------------------

# bounds as a block of facts gives them (its largest magnitudes): they set a quotient's scale
DIVIDING = {
    "revenue": Column.number(2, bound=10**11),   # up to 1,000,000,000.00
    "units": Column.number(0, bound=10**6),
    "big": Column.number(0),                     # Int64's whole range
}


def divide(text: str, rows: Sequence[Mapping[str, Any]], expected: Sequence[Any],
           columns: Mapping[str, Column] = DIVIDING) -> ColumnExpression:
    """By columns, ``text`` gives ``expected`` per row (RAISES: flagged); the closures give the same where it
    is not RAISES (a flagged row's closure value is checked by the caller)."""
    node = parse_expression(text).node
    got = [RAISES if flagged else value for value, flagged in by_columns(node, columns, rows)]
    assert got == list(expected)
    for value, closure in zip(got, by_closures(node, rows)):
        if value is not RAISES:
            assert closure == value
    return compile_columns(node, columns)


def test_a_quotient_that_terminates_is_exact():
    # 10.00 / 4 = 2.5; 5 / -8 = -0.625; 0 / 7 = 0
    quotient = divide("revenue / units", [{"revenue": D("10.00"), "units": D(4)}, {"revenue": D(5), "units": D(-8)},
                                          {"revenue": D(0), "units": D(7)}],
                      [D("2.5"), D("-0.625"), D(0)])
    # the scale: the largest at which 10**11 units / 1 (the smallest non-zero divisor) stays within MAX_UNITS:
    # 10**11 × 10**(S + 0 - 2) <= 2**125 (about 4.25e37) gives S = 28
    assert quotient.scale == 28 and quotient.kind is Kind.NUMBER


def test_two_thirds_and_its_negative_keep_28_significant_digits():
    # 2 / 3 = 0.666…: 28 sixes, the last rounded up by the 29th (6 > 5)
    two_thirds = D("0." + "6" * 27 + "7")
    divide("revenue / units", [{"revenue": D(2), "units": D(3)}, {"revenue": D(-2), "units": D(3)},
                               {"revenue": D(2), "units": D(-3)}],
           [two_thirds, -two_thirds, -two_thirds])
    # 1,234,567.89 / 7 = 176366.84142857142857142857142857…: 6 digits before the point, 22 after
    divide("revenue / units", [{"revenue": D("1234567.89"), "units": D(7)}], [D("176366.8414285714285714285714")])


def test_a_tie_at_the_28th_digit_is_rounded_half_even():
    # 3000000000000000001 / 16384 = 183105468750000.00006103515625 exactly (× 5**14 / 10**14): 29 digits, the
    # last a 5 → to 28 digits the tie goes to the even 2; ...0003 / 16384 = ...00018310546875 → 7 goes up to 8
    divide("big / units", [{"big": D(3000000000000000001), "units": D(16384)},
                           {"big": D(3000000000000000003), "units": D(16384)},
                           {"big": D(-3000000000000000003), "units": D(16384)}],
           [D("183105468750000.0000610351562"), D("183105468750000.0001831054688"),
            D("-183105468750000.0001831054688")])


def test_a_huge_numerator():
    # Int64's extremes: (2**63 - 1) / 3 = 3074457345618258602.333… and -2**63 / 7 = -1317624576693539401.142857…,
    # 28 digits each (19 before the point, 9 after); the scale is 18 (2**63 × 10**18 <= 2**125 < … × 10**19)
    quotient = divide("big / units", [{"big": D(2**63 - 1), "units": D(3)}, {"big": D(-(2**63)), "units": D(7)}],
                      [D("3074457345618258602.333333333"), D("-1317624576693539401.142857143")])
    assert quotient.scale == 18


def test_division_by_zero_flags_the_row_the_closures_raise_on():
    divide("revenue / units", [{"revenue": D(1), "units": D(0)}, {"revenue": D(1)}, {"revenue": D(1), "units": D(2)}],
           [RAISES, RAISES, D("0.5")])
    divide("units / 0", [{"units": D(1)}], [RAISES])
    # if() never divides where the divisor is 0: neither do the columns
    divide("if(units > 0, revenue / units, 0)", [{"revenue": D(1), "units": D(0)}], [D(0)])


def test_a_constant_divisor_whose_reciprocal_ends_is_a_product():
    # revenue / 1000 = revenue × 0.001: scale 2 + 3 = 5; 1,234.56 / 1000 = 1.23456; / 8 = × 0.125
    assert divide("revenue / 1000", [{"revenue": D("1234.56")}], [D("1.23456")]).scale == 5
    assert divide("revenue / 8", [{"revenue": D("-0.01")}], [D("-0.00125")]).scale == 5
    # 9223372036854775807 (2**63 - 1) × 0.125 = 1152921504606846975.875: 22 digits, exact
    divide("big / 8", [{"big": D(2**63 - 1)}], [D("1152921504606846975.875")])
    # / 0.0000001 is × 10**7: 9223372036854775807 × 10**7 has 19 significant digits, exact
    divide("big / 0.0000001", [{"big": D(2**63 - 1)}], [D(92233720368547758070000000)])
    # / 2**-30 (0.000000000931322574615478515625) is × 2**30: (2**63 - 1) × 2**30 = 9903520314283042198119251968
    # has 28 digits, exact; / 2**-35 is × 2**35, and (2**63 - 1) × 2**35 = 316912650057057350339816062976 has
    # 30: the closures round it (to 3.169126500570573503398160630E+29), the row goes per record
    divide("big / 0.000000000931322574615478515625", [{"big": D(2**63 - 1)}], [D(9903520314283042198119251968)])
    divide("big / 0.00000000002910383045673370361328125", [{"big": D(2**63 - 1)}, {"big": D(2**20)}],
           [RAISES, D(2**55)])


def test_a_quotient_whose_digits_pass_the_scale_goes_per_record():
    # scale 28 keeps a quotient's 28 digits only from 0.1 up (10**27 units): 0.01 / 3 = 0.00333… keeps digits
    # down to 10**-30, so its row is flagged; an exact small quotient fits: 0.01 / 4 = 0.0025
    divide("revenue / units", [{"revenue": D("0.01"), "units": D(3)}, {"revenue": D("0.01"), "units": D(4)}],
           [RAISES, D("0.0025")])
    # max(revenue, 1) is at least 1.00 (100 units at scale 2), which bounds the quotient: 10**6 (units' bound)
    # × 10**(S + 2 - 0) <= 2**125 × 100 holds up to S = 31, against S = 29 with a divisor as small as 0.01
    assert QUOTIENT_SCALE == 32
    assert divide("units / max(revenue, 1)", [{"units": D(1), "revenue": D(3)}],
                  [D("0.3333333333333333333333333333")]).scale == 31
    assert divide("units / revenue", [{"units": D(1), "revenue": D(3)}],
                  [D("0.3333333333333333333333333333")]).scale == 29


def test_division_follows_the_decimal_context_and_refuses_rules_it_does_not_emulate():
    node = parse_expression("revenue / units").node
    with localcontext() as context:
        context.prec = 10
        # 2 / 3 to 10 digits
        assert by_columns(node, DIVIDING, [{"revenue": D(2), "units": D(3)}]) == [(D("0.6666666667"), False)]
        context.prec = 50
        with pytest.raises(NotByColumns, match="1 to 36 significant digits"):
            compile_columns(node, DIVIDING)
        context.prec = 28
        context.rounding = ROUND_HALF_UP
        with pytest.raises(NotByColumns, match="rounds half-even"):
            compile_columns(node, DIVIDING)


def _division_flags(text: str, columns: Mapping[str, Column], row: Mapping[str, Any], closure: Any) -> bool:
    """Whether the columns must flag ``row`` of ``text`` (a quotient of two leaves): the closures raise, or the
    quotient does not fit the expression's scale as the module documents it."""
    if closure is RAISES:
        return True
    node = parse_expression(text).node
    scale = compile_columns(node, columns).scale
    facts = {name: value for name, value in row.items() if value is not None}
    left, right = (compile_expression(part)(facts) for part in (node.left, node.right))
    if any(abs(value).scaleb(compile_columns(part, columns).scale, EXACT) > MAX_UNITS
           for value, part in ((left, node.left), (right, node.right))):
        return True  # an operand beyond 128-bit minor units (big * big)
    exact = abs(Fraction(left) / Fraction(right)) * 10**scale   # the exact quotient's units at the scale
    rounded = abs(closure).scaleb(scale, EXACT)                 # the closures' quotient's units
    known, divisor = constant_value(node.right)
    if known and _ends(divisor):
        return exact >= 10**28  # more digits than the context keeps: the closures round it
    too_small = exact < 10**27 and exact.denominator != 1      # digits below 10**-scale
    return too_small or exact > MAX_UNITS or rounded > MAX_UNITS


def _ends(divisor: Decimal) -> bool:
    """Whether 1 / ``divisor`` (not 0) has finitely many decimals: its reduced denominator is 2**i × 5**j."""
    reciprocal = 1 / Fraction(divisor)
    while reciprocal.denominator % 2 == 0:
        reciprocal *= 2
    while reciprocal.denominator % 5 == 0:
        reciprocal *= 5
    return reciprocal.denominator == 1


_DIVISION_LEAVES = st.one_of(st.sampled_from(["n0", "n2", "n3", "big", "max(n0, 1)", "max(n2, 0.5)", "big * big"]),
                             st.sampled_from(["3", "7", "8", "1000", "0.125", "-2.5", "0", "12345678901234567"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(left=_DIVISION_LEAVES, right=_DIVISION_LEAVES, wide=st.booleans(),
       rows=st.lists(st.fixed_dictionaries({
           "n0": st.one_of(st.none(), st.integers(-(10**6), 10**6).map(D)),
           "n2": st.one_of(st.none(), st.integers(-(10**6), 10**6).map(lambda units: D(units).scaleb(-2))),
           "n3": st.one_of(st.none(), st.integers(-(10**6), 10**6).map(lambda units: D(units).scaleb(-3))),
           "big": st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([-(2**63), 2**63 - 1, 1, -1, 0]))
                    .map(D),
       }), min_size=1, max_size=6))
@example(left="big", right="n0", wide=True, rows=[{"big": D(3000000000000000001), "n0": D(16384)}])
# Int128 operands: (2**62)**2 / 0.300 is beyond MAX_UNITS at any scale; / 0.999 too, by a little
@example(left="big * big", right="n3", wide=True, rows=[{"big": D(2**62), "n3": D("0.300")},
                                                        {"big": D(2**62), "n3": D("0.999")},
                                                        {"big": D(-(2**62)), "n3": D("-1.000")}])
def test_division_by_columns_equals_the_closures_where_it_fits(left, right, wide, rows):
    """Random quotients of facts (Int64's whole range, three scales) and constants: each row computed by
    columns has the closures' value, and a row is flagged exactly where the closures raise or the quotient's
    digits do not fit the expression's scale."""
    text = f"({left}) / ({right})"
    bound = 2**63 if wide else 10**6
    columns = {"n0": Column.number(0, bound), "n2": Column.number(2, bound), "n3": Column.number(3, bound),
               "big": Column.number(0)}
    node = parse_expression(text).node
    if _reads_no_name_text(left, right):
        return
    for row, (value, flagged), closure in zip(rows, by_columns(node, columns, rows), by_closures(node, rows)):
        assert flagged == _division_flags(text, columns, row, closure), row
        if not flagged:
            assert value == closure


def _reads_no_name_text(left: str, right: str) -> bool:
    return not any(name in text for text in (left, right) for name in ("n0", "n2", "n3", "big"))
