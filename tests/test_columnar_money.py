"""Money by columns (``incentives.money_by_columns``) against the per-record functions of ``incentives.money``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Callable, Sequence

import polars as pl
import pytest
from hypothesis import example, given, settings, strategies as st

from incentives import money
from incentives.money_by_columns import (apportion_units, format_amount, format_rate, format_ratio, plain_amount,
                                        round_units)
from incentives.money import EXACT, Rounding
from incentives.rules.columns import MAX_UNITS

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MODES = ("half_up", "half_even", "down", "up")


def _column(expression: Callable[[pl.Expr], pl.Expr], units: Sequence[int | None], dtype: type = pl.Int64) -> list:
    """``expression`` over a column of ``units``, as Python values."""
    frame = pl.DataFrame({"units": pl.Series(units, dtype=dtype)})
    return frame.select(expression(pl.col("units")).alias("out"))["out"].to_list()


def _number(units: int, scale: int) -> Decimal:
    return Decimal(units).scaleb(-scale, EXACT)


# --- rounding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # at scale 3 to 2 places: -0.025, -0.019, -0.015, -0.011, -0.005, 0.005, 0.011, 0.015, 0.019, 0.025
        # half_up: a half goes away from zero; -0.019 and 0.011 are nearer to -0.02 and 0.01
        ("half_up", [-3, -2, -2, -1, -1, 1, 1, 2, 2, 3]),
        # half_even: -0.025 → -0.02 (2 is even), -0.015 → -0.02, -0.005 → 0.00, 0.005 → 0.00, 0.015 → 0.02
        ("half_even", [-2, -2, -2, -1, 0, 0, 1, 2, 2, 2]),
        # down: toward zero, whatever the digit
        ("down", [-2, -1, -1, -1, 0, 0, 1, 1, 1, 2]),
        # up: away from zero, whatever the digit
        ("up", [-3, -2, -2, -2, -1, 1, 2, 2, 2, 3]),
    ],
)
def test_round_units_every_mode_both_signs(mode, expected):
    units = [-25, -19, -15, -11, -5, 5, 11, 15, 19, 25]
    assert _column(lambda u: round_units(u, 3, Rounding(2, mode)), units) == expected
    assert expected == [int(Rounding(2, mode).round(_number(u, 3)).scaleb(2)) for u in units]


def test_round_units_to_zero_is_zero_and_null_stays_null():
    # -0.004 half_up, -0.009 down, 0.0 up: all 0.00 (Rounding.round gives the positive zero)
    assert _column(lambda u: round_units(u, 3, Rounding(2, "half_up")), [-4, 0, None]) == [0, 0, None]
    assert _column(lambda u: round_units(u, 3, Rounding(2, "down")), [-9]) == [0]


def test_round_units_many_places_at_once():
    # 1234.5678 (scale 4) to 0 places: half_up 1235, down 1234; -1234.5 (scale 1): half_even -1234, up -1235
    assert _column(lambda u: round_units(u, 4, Rounding(0, "half_up")), [12345678]) == [1235]
    assert _column(lambda u: round_units(u, 4, Rounding(0, "down")), [12345678]) == [1234]
    assert _column(lambda u: round_units(u, 1, Rounding(0, "half_even")), [-12345]) == [-1234]
    assert _column(lambda u: round_units(u, 1, Rounding(0, "up")), [-12345]) == [-1235]
    # 0.000000000005 (scale 12) to 2 places: 5 units, far below a half of 10**10 units → 0, up → 0.01
    assert _column(lambda u: round_units(u, 12, Rounding(2, "half_up")), [5]) == [0]
    assert _column(lambda u: round_units(u, 12, Rounding(2, "up")), [5]) == [1]


def test_round_units_at_int64_ends():
    # -9223372036854775808 at scale 2 is -92233720368547758.08: half_up → ...58, down → ...58, up → ...58,
    # and 9223372036854775807 at scale 2 (…58.07) half_up → …58, down → …58
    assert _column(lambda u: round_units(u, 2, Rounding(0, "half_up")), [INT64_MIN, INT64_MAX]) == [
        -92233720368547758, 92233720368547758]
    assert _column(lambda u: round_units(u, 2, Rounding(0, "up")), [INT64_MIN, INT64_MAX]) == [
        -92233720368547759, 92233720368547759]


def test_round_units_int128_and_a_divisor_beyond_int64():
    # 2**125 = 42535295865117307932921825928971026432; at scale 30 to 0 places: 42535295.865… → 42535296
    assert _column(lambda u: round_units(u, 30, Rounding(0, "half_up")), [MAX_UNITS, -MAX_UNITS], pl.Int128) == [
        42535296, -42535296]
    # an Int64 column at scale 19 to 0 places divides by 10**19 (beyond Int64): 0.922… → 1, down → 0
    assert _column(lambda u: round_units(u, 19, Rounding(0, "half_even")), [INT64_MAX, INT64_MIN]) == [1, -1]
    assert _column(lambda u: round_units(u, 19, Rounding(0, "down")), [INT64_MAX, INT64_MIN]) == [0, 0]


def test_round_units_to_more_places_multiplies_and_nulls_beyond_max_units():
    # 5 at scale 0 is 500 at 2 places; -12.3 (scale 1) is -12300 at 3 places
    assert _column(lambda u: round_units(u, 0, Rounding(2)), [5, None]) == [500, None]
    assert _column(lambda u: round_units(u, 1, Rounding(3, "down")), [-123]) == [-12300]
    # MAX_UNITS // 100 × 100 is within MAX_UNITS; one more unit × 100 is beyond it
    limit = MAX_UNITS // 100
    assert _column(lambda u: round_units(u, 0, Rounding(2)), [limit, limit + 1, -limit - 1], pl.Int128) == [
        limit * 100, None, None]


def test_round_units_same_scale_is_the_column():
    assert _column(lambda u: round_units(u, 2, Rounding(2, "up")), [-1, 7]) == [-1, 7]


# --- amounts --------------------------------------------------------------------------------------


def test_plain_amount_by_hand():
    # scale 2, places 2: 21437.50, -200.00, 0.00, -0.01, 0.07
    assert _column(lambda u: plain_amount(u, 2, 2), [2143750, -20000, 0, -1, 7]) == [
        "21437.50", "-200.00", "0.00", "-0.01", "0.07"]
    # scale 3, places 2: 1234.567 keeps its third decimal, 1234.500 drops a trailing zero, -0.001 keeps it
    assert _column(lambda u: plain_amount(u, 3, 2), [1234567, 1234500, -1, -10]) == [
        "1234.567", "1234.50", "-0.001", "-0.01"]
    # scale 0, places 0 and 4: 5 and -5; -5.0000
    assert _column(lambda u: plain_amount(u, 0, 0), [5, -5, 0]) == ["5", "-5", "0"]
    assert _column(lambda u: plain_amount(u, 0, 4), [-5]) == ["-5.0000"]
    # scale 12, places 0: 0.000000000001 and 3.000000000000 (all trailing zeros: no point)
    assert _column(lambda u: plain_amount(u, 12, 0), [1, 3 * 10**12]) == ["0.000000000001", "3"]


@pytest.mark.parametrize("scale", range(13))
@pytest.mark.parametrize(
    ("places", "plain", "grouped"),
    [
        # -1234.5 and 7: at least `places` decimals, the 5 kept at 0 places
        (0, ["-1234.5", "7"], ["-1,234.5", "7"]),
        (1, ["-1234.5", "7.0"], ["-1,234.5", "7.0"]),
        (2, ["-1234.50", "7.00"], ["-1,234.50", "7.00"]),
        (3, ["-1234.500", "7.000"], ["-1,234.500", "7.000"]),
        (4, ["-1234.5000", "7.0000"], ["-1,234.5000", "7.0000"]),
    ],
)
def test_amounts_at_every_scale_and_places(scale, places, plain, grouped):
    # -1234.5 is -12345 × 10**(scale - 1) units (at scale 0 it cannot be held: 7 only); 7 is 7 × 10**scale
    units = [-12345 * 10 ** (scale - 1), 7 * 10**scale] if scale else [7]
    expected_plain, expected_grouped = (plain, grouped) if scale else (plain[1:], grouped[1:])
    assert _column(lambda u: plain_amount(u, scale, places), units) == expected_plain
    assert _column(lambda u: format_amount(u, scale, places), units) == expected_grouped


def test_a_negative_zero_prints_as_the_columns_zero():
    # the per-record path can hold -0.00 (and Rounding.round(-0.004) gives 0.00); units have one zero
    assert money.plain_amount(Decimal("-0.00"), 2) == "0.00" == _column(lambda u: plain_amount(u, 2, 2), [0])[0]
    assert money.format_amount(Decimal("-0"), 2) == "0.00" == _column(lambda u: format_amount(u, 0, 2), [0])[0]
    assert money.format_rate(Decimal("-0.000")) == "0%" == _column(lambda u: format_rate(u, 3), [0])[0]
    assert money.format_ratio(Decimal("-0.0000001")) == "≈0%" == _column(lambda u: format_ratio(u, 7), [-1])[0]
    # -0.004 rounded half_up to 2 places: 0 units, printed 0.00 as Rounding.round's 0.00 is
    rounded = _column(lambda u: plain_amount(round_units(u, 3, Rounding(2)), 2, 2), [-4])[0]
    assert rounded == money.plain_amount(Rounding(2).round(Decimal("-0.004")), 2) == "0.00"


def test_plain_amount_at_the_ends_of_int64_and_int128():
    assert _column(lambda u: plain_amount(u, 2, 2), [INT64_MIN, INT64_MAX]) == [
        "-92233720368547758.08", "92233720368547758.07"]
    # 2**125 = 42535295865117307932921825928971026432
    assert _column(lambda u: plain_amount(u, 12, 2), [-MAX_UNITS], pl.Int128) == [
        "-42535295865117307932921825.928971026432"]
    assert _column(lambda u: plain_amount(u, 0, 0), [MAX_UNITS], pl.Int128) == [
        "42535295865117307932921825928971026432"]


def test_format_amount_by_hand():
    # 612500.00, -1000 (scale 0, places 0), 999.99, 1000.00, 0.00, -0.001 (scale 3)
    assert _column(lambda u: format_amount(u, 2, 2), [61250000, 99999, 100000, 0]) == [
        "612,500.00", "999.99", "1,000.00", "0.00"]
    assert _column(lambda u: format_amount(u, 0, 0), [-1000, -999, 1000000]) == ["-1,000", "-999", "1,000,000"]
    assert _column(lambda u: format_amount(u, 3, 2), [-1, 1234567]) == ["-0.001", "1,234.567"]
    # a group of zeros inside the number keeps its three digits: 1,000,001.5 at scale 1, places 2
    assert _column(lambda u: format_amount(u, 1, 2), [10000015]) == ["1,000,001.50"]


def test_format_amount_at_the_ends_of_int64_and_int128():
    assert _column(lambda u: format_amount(u, 0, 2), [INT64_MIN]) == ["-9,223,372,036,854,775,808.00"]
    assert _column(lambda u: format_amount(u, 0, 0), [MAX_UNITS], pl.Int128) == [
        "42,535,295,865,117,307,932,921,825,928,971,026,432"]


def test_format_amount_with_a_bound_builds_fewer_groups_for_the_same_texts():
    # below 10**7 units at scale 2: at most 99,999.99; one, two and no separator
    units = [9999999, -100000, 99]
    assert _column(lambda u: format_amount(u, 2, 2, bound=10**7), units) == ["99,999.99", "-1,000.00", "0.99"]
    assert _column(lambda u: format_amount(u, 2, 2, bound=0), [0]) == ["0.00"]


#: each amount text by columns, and the per-record function it follows
_AMOUNT_TEXTS = [(format_amount, money.format_amount), (plain_amount, money.plain_amount)]


@pytest.mark.parametrize("by_columns, per_record", _AMOUNT_TEXTS, ids=["format_amount", "plain_amount"])
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-INT64_MAX, INT64_MAX), st.integers(-1000, 1000)), min_size=1, max_size=20),
       st.integers(0, 12), st.integers(0, 4), st.sampled_from([pl.Int64, pl.Int128]))
@example([INT64_MAX, -INT64_MAX, 0], 0, 2, pl.Int64)
@example([INT64_MAX, -INT64_MAX, 10**18, -1], 12, 4, pl.Int128)
def test_an_amount_text_within_an_int64_bound_is_the_wide_path(by_columns, per_record, units, scale, places, dtype):
    # a bound that Int64 holds computes the digits in Int64 (faster); the texts are the Int128 path's
    bound = max(abs(value) for value in units)
    fast = _column(lambda u: by_columns(u, scale, places, bound=bound), units, dtype)
    assert fast == _column(lambda u: by_columns(u, scale, places), units, dtype)
    assert fast == [per_record(_number(value, scale), places) for value in units]


@pytest.mark.parametrize("bound", [-1, MAX_UNITS + 1])
@pytest.mark.parametrize("text", [format_amount, plain_amount])
def test_an_amount_text_refuses_a_bound_outside_the_columns(text, bound):
    with pytest.raises(ValueError, match="bound"):
        text(pl.col("units"), 2, 2, bound=bound)


# --- rates and ratios -----------------------------------------------------------------------------


def test_format_rate_by_hand():
    # 0.035 → 3.5%, 1.1 → 110%, 5 → 500%, 0 → 0%, -0.0125 → -1.25%, 0.00001 → 0.001%, 0.50 → 50%
    assert _column(lambda u: format_rate(u, 3), [35]) == ["3.5%"]
    assert _column(lambda u: format_rate(u, 1), [11, 0, -1]) == ["110%", "0%", "-10%"]
    assert _column(lambda u: format_rate(u, 0), [5, 0]) == ["500%", "0%"]
    assert _column(lambda u: format_rate(u, 4), [-125]) == ["-1.25%"]
    assert _column(lambda u: format_rate(u, 5), [1]) == ["0.001%"]
    assert _column(lambda u: format_rate(u, 2), [50, 100]) == ["50%", "100%"]


def test_format_ratio_by_hand():
    # 0.93 → 93% exactly; 0.123456 → 12.3456% exactly (4 decimals as a percent)
    assert _column(lambda u: format_ratio(u, 2), [93]) == ["93%"]
    assert _column(lambda u: format_ratio(u, 6), [123456]) == ["12.3456%"]
    # 1/3 at 10 places: 33.33333333% → ≈33.3333%; 2/3: 66.66666667% → ≈66.6667%
    assert _column(lambda u: format_ratio(u, 10), [3333333333, 6666666667]) == ["≈33.3333%", "≈66.6667%"]
    # halves: 12.34565% → 12.3456 (6 is even), 12.34575% → 12.3458, -12.34565% → -12.3456
    assert _column(lambda u: format_ratio(u, 7), [1234565, 1234575, -1234565]) == [
        "≈12.3456%", "≈12.3458%", "≈-12.3456%"]
    # 0.0000001 → 0.00001% rounds to 0: ≈0%, either sign (never a negative zero)
    assert _column(lambda u: format_ratio(u, 7), [1, -1]) == ["≈0%", "≈0%"]
    # 0.1000000000 → 10% exactly: the trailing zeros of the scale are not decimals
    assert _column(lambda u: format_ratio(u, 10), [1000000000]) == ["10%"]
    # two decimals instead of four: 1/3 → ≈33.33%
    assert _column(lambda u: format_ratio(u, 10, 2), [3333333333]) == ["≈33.33%"]


def test_format_ratio_is_null_where_the_per_record_function_raises():
    # the per-record function rounds in the 28-digit default context: a percent of 10**24 or more
    # (a ratio of 10**22) needs 29 digits at 4 decimals and raises; one unit less does not
    with pytest.raises(InvalidOperation):
        money.format_ratio(Decimal(10) ** 22)
    below = 10**22 - 1
    assert money.format_ratio(Decimal(below)) == f"{below}00%"
    assert _column(lambda u: format_ratio(u, 0), [10**22, -(10**22), below], pl.Int128) == [
        None, None, f"{below}00%"]
    # a percent just below 10**24 that rounds to it: 10**24 - 0.00005 (…999.99995%) → 10**24 at 4 decimals,
    # 25 + 4 = 29 digits: the per-record rounding raises; 10**24 - 0.00006 rounds to …999.9999% (28 digits)
    rounds_up = 10**29 - 5  # at scale 7: 10**22 - 0.0000005, a percent of 10**24 - 0.00005
    with pytest.raises(InvalidOperation):
        money.format_ratio(_number(rounds_up, 7))
    assert _column(lambda u: format_ratio(u, 7), [rounds_up, rounds_up - 1], pl.Int128) == [
        None, "≈" + "9" * 24 + ".9999%"]
    # 10**22 at scale 3: the limit is in the value, not in the units
    assert _column(lambda u: format_ratio(u, 3), [10**25, 10**25 - 1], pl.Int128) == [
        None, f"{(10**25 - 1) // 10}.9%"]


def test_a_zero_at_any_exponent_is_zero_percent():
    # the per-record rounding refuses a percent of 29 digits at 4 decimals, but not a zero of any exponent
    assert money.format_ratio(Decimal("0E+40")) == "0%"
    assert money.format_rate(Decimal("-0E+40")) == "0%"
    assert _column(lambda u: format_ratio(u, 0), [0]) == ["0%"]
    assert _column(lambda u: format_rate(u, 12), [0]) == ["0%"]


# --- nulls, arguments, scales ---------------------------------------------------------------------

TEXTS: dict[str, Callable[[pl.Expr, int], pl.Expr]] = {
    "plain_amount": lambda units, scale: plain_amount(units, scale, 2),
    "format_amount": lambda units, scale: format_amount(units, scale, 2),
    "format_rate": format_rate,
    "format_ratio": format_ratio,
    "round_units": lambda units, scale: round_units(units, scale, Rounding(1)),
}


@pytest.mark.parametrize("name", TEXTS)
def test_a_null_stays_null(name):
    # a null between values: each row is its own (0.05 at scale 2, then null, then -1.00)
    values = _column(lambda u: TEXTS[name](u, 2), [5, None, -100])
    assert values[1] is None and values[0] is not None and values[2] is not None


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("scale", [-1, 38, True])
def test_a_scale_outside_the_columns_is_refused(name, scale):
    with pytest.raises(ValueError, match="scale"):
        TEXTS[name](pl.col("units"), scale)


def test_places_and_decimals_outside_the_columns_are_refused():
    with pytest.raises(ValueError, match="places"):
        plain_amount(pl.col("units"), 2, 38)
    with pytest.raises(ValueError, match="places"):
        round_units(pl.col("units"), 2, Rounding(38))
    with pytest.raises(ValueError, match="decimals"):
        format_ratio(pl.col("units"), 2, -1)


# --- parity with the per-record functions ---------------------------------------------------------

units_64 = st.integers(INT64_MIN, INT64_MAX)
units_128 = st.integers(-MAX_UNITS, MAX_UNITS)
# small values too, where halves, zeros and leading zeros of the fraction are
some_units = st.lists(st.one_of(units_64, st.integers(-1000, 1000), st.sampled_from([0, 5, -5, 50, -50])),
                      min_size=1, max_size=20)
# and values about the largest a ratio's text can have: 10**(28 - decimals) as a percent
wide_units = st.lists(st.one_of(units_128, st.integers(-1000, 1000),
                                st.builds(lambda power, offset, sign: sign * (10**power + offset),
                                          st.integers(19, 37), st.integers(-1, 1), st.sampled_from([1, -1]))),
                      min_size=1, max_size=20)


def _same_values(number: Decimal) -> list[Decimal]:
    """``number`` at its own exponent, without trailing zeros, and with four more of them."""
    return [number, number.normalize(EXACT), number.quantize(Decimal(1).scaleb(number.as_tuple().exponent - 4),
                                                              context=EXACT)]


def _per_record_ratio(number: Decimal, decimals: int) -> str | None:
    """The per-record ratio text, or None (the column's null) where it raises."""
    try:
        return money.format_ratio(number, decimals)
    except InvalidOperation:
        return None


def _check_parity(units: list[int], scale: int, places: int, mode: str, decimals: int, dtype: type) -> None:
    rounding = Rounding(places, mode)
    frame = pl.DataFrame({"units": pl.Series(units, dtype=dtype)})
    column = pl.col("units")
    got = frame.select(
        rounded=round_units(column, scale, rounding),
        plain=plain_amount(column, scale, places),
        grouped=format_amount(column, scale, places),
        rate=format_rate(column, scale),
        ratio=format_ratio(column, scale, decimals),
    ).rows(named=True)
    for value, row in zip(units, got):
        number = _number(value, scale)
        rounded = int(rounding.round(number).scaleb(places, EXACT))
        # more places than the scale multiplies: beyond MAX_UNITS a row is not by columns
        assert row["rounded"] == (rounded if abs(rounded) <= MAX_UNITS else None), (value, scale, rounding)
        # the per-record texts of one value are the same at every exponent: the column's must be them
        for same in _same_values(number):
            assert row["plain"] == money.plain_amount(same, places), (value, scale, places)
            assert row["grouped"] == money.format_amount(same, places), (value, scale, places)
            assert row["rate"] == money.format_rate(same), (value, scale)
            assert row["ratio"] == _per_record_ratio(same, decimals), (value, scale, decimals)


@settings(max_examples=300, deadline=None)
@given(some_units, st.integers(0, 12), st.integers(0, 4), st.sampled_from(MODES), st.integers(0, 6))
@example([INT64_MIN, INT64_MAX, 0, -5, 5], 2, 0, "half_even", 4)
@example([-5, -15, 5, 15, 25], 1, 0, "half_up", 0)
def test_int64_columns_match_the_per_record_functions(units, scale, places, mode, decimals):
    _check_parity(units, scale, places, mode, decimals, pl.Int64)


@settings(max_examples=200, deadline=None)
@given(wide_units, st.integers(0, 12), st.integers(0, 4), st.sampled_from(MODES), st.integers(0, 6))
@example([MAX_UNITS, -MAX_UNITS, 10**20 - 1, -(10**20)], 12, 4, "up", 4)
@example([99_999_999_999_999_999_999_999_999_995], 3, 0, "half_up", 0)
def test_int128_columns_match_the_per_record_functions(units, scale, places, mode, decimals):
    _check_parity(units, scale, places, mode, decimals, pl.Int128)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=10), st.integers(0, 10),
       st.integers(1, 12), st.integers(0, 4))
def test_a_value_gives_the_same_text_at_every_scale(units, scale, more, places):
    # u at scale s and u × 10**k at scale s + k are one number
    def texts(scale_: int, factor: int) -> list[tuple]:
        frame = pl.DataFrame({"units": pl.Series([value * factor for value in units], dtype=pl.Int128)})
        column = pl.col("units")
        return frame.select(plain_amount(column, scale_, places), format_amount(column, scale_, places).alias("g"),
                            format_rate(column, scale_).alias("r"), format_ratio(column, scale_).alias("q")).rows()

    assert texts(scale, 1) == texts(scale + more, 10**more)


# --- apportion_units: money.apportion by columns ---------------------------------------------------------


def test_apportion_units_gives_the_cent_to_the_largest_remainder() -> None:
    # 10.00 over 10/20/30 (units at one scale): 1000 × 10/60 = 166.66.., 333.33.., 500 → floors 166, 333, 500
    # sum to 999; the one missing cent goes to p1 (remainder 40 of 60, p2's 20, p3's 0)
    new = apportion_units(pl.Series([10, 20, 30]), pl.Series(["p1", "p2", "p3"]), 1000)
    assert new is not None and new.to_list() == [167, 333, 500] and new.dtype == pl.Int128


def test_apportion_units_breaks_ties_by_key_then_position() -> None:
    # 100.00 over three equal amounts: 3333 each, one cent left, all remainders equal: the smallest key, "A"
    new = apportion_units(pl.Series([100, 100, 100]), pl.Series(["C", "A", "B"]), 10000)
    assert new is not None and new.to_list() == [3333, 3334, 3333]
    # equal keys: the first position
    new = apportion_units(pl.Series([1, 1, 1]), pl.Series(["a", "a", "a"]), 2)
    assert new is not None and new.to_list() == [1, 1, 0]


def test_apportion_units_leaves_to_decimals_what_could_leave_int128() -> None:
    assert apportion_units(pl.Series([2**100], dtype=pl.Int128), pl.Series(["a"]), 2**30) is None
    assert apportion_units(pl.Series([0, 0]), pl.Series(["a", "b"]), 0) is None  # a zero total
    assert apportion_units(pl.Series([], dtype=pl.Int64), pl.Series([], dtype=pl.String), 5) is None


@settings(max_examples=300, deadline=None)
@given(amounts=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]),
                                  st.integers(min_value=0, max_value=10**15)), min_size=1, max_size=30),
       target=st.integers(min_value=0, max_value=10**12), scale=st.integers(min_value=0, max_value=4))
def test_apportion_units_is_money_apportion(amounts, target, scale) -> None:
    keys = [key for key, _ in amounts]
    units = [value for _, value in amounts]
    new = apportion_units(pl.Series(units, dtype=pl.Int128), pl.Series(keys), target)
    if sum(units) == 0:
        assert new is None
        return
    # the amounts at ``scale`` decimals, the target at two places
    expected = money.apportion([(key, Decimal(value).scaleb(-scale)) for key, value in amounts],
                         Decimal(target).scaleb(-2), 2)
    assert new is not None
    assert [Decimal(value).scaleb(-2) for value in new.to_list()] == expected


def test_plain_units_read_a_plain_decimal_at_a_scale():
    from incentives.money_by_columns import plain_units

    texts = pl.Series(["1234.5", "-7", ".25", "+3.", "1e3", "12.345", "", " 1", "1" * 31])
    # 1e3 has an exponent, 12.345 more decimals than the scale, " 1" a space, the last 31 digits: none
    assert pl.select(plain_units(pl.lit(texts), 2)).to_series().to_list() == [
        123450, -700, 25, 300, None, None, None, None, None]
