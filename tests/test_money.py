"""Rounding modes, audit-text formatting and largest-remainder apportionment (hand-computed values)."""

from __future__ import annotations

import dataclasses
import math
import random
from decimal import Decimal as D, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from incentives.money import Rounding, apportion, format_amount, format_rate, format_ratio, plain_amount, ratio


# -- Rounding -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, amount, expected", [
    # half_up: a half goes away from zero, on both sides of zero
    ("half_up", "0.005", "0.01"), ("half_up", "0.015", "0.02"), ("half_up", "0.025", "0.03"),
    ("half_up", "-0.005", "-0.01"), ("half_up", "-0.015", "-0.02"), ("half_up", "1.004", "1.00"),
    ("half_up", "21437.495", "21437.50"),
    # half_even: a half goes to the even cent
    ("half_even", "0.005", "0.00"), ("half_even", "0.015", "0.02"), ("half_even", "0.025", "0.02"),
    ("half_even", "-0.015", "-0.02"), ("half_even", "-0.025", "-0.02"), ("half_even", "0.0251", "0.03"),
    # down: toward zero
    ("down", "0.019", "0.01"), ("down", "-0.019", "-0.01"), ("down", "0.005", "0.00"),
    # up: away from zero
    ("up", "0.011", "0.02"), ("up", "-0.011", "-0.02"), ("up", "0.010", "0.01"),
])
def test_round_each_mode_on_half_cents(mode: str, amount: str, expected: str) -> None:
    result = Rounding(2, mode).round(D(amount))  # type: ignore[arg-type]
    assert str(result) == expected


def test_round_pads_to_places() -> None:
    assert str(Rounding().round(D("5"))) == "5.00"
    assert str(Rounding().round(D("1E+3"))) == "1000.00"


def test_round_other_places() -> None:
    assert str(Rounding(0, "half_up").round(D("2.5"))) == "3"
    assert str(Rounding(0, "half_even").round(D("2.5"))) == "2"
    assert str(Rounding(3, "half_up").round(D("0.0125"))) == "0.013"


@pytest.mark.parametrize("mode, amount", [
    ("half_up", "-0.004"), ("half_even", "-0.005"), ("down", "-0.009"), ("half_up", "-0"),
])
def test_round_never_returns_negative_zero(mode: str, amount: str) -> None:
    result = Rounding(2, mode).round(D(amount))  # type: ignore[arg-type]
    assert str(result) == "0.00"
    assert not result.is_signed()


def test_rounding_defaults_equality_and_immutability() -> None:
    assert Rounding() == Rounding(2, "half_up")
    assert hash(Rounding()) == hash(Rounding(2, "half_up"))
    assert Rounding(2, "down") != Rounding(2, "up")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Rounding().places = 3  # type: ignore[misc]


@pytest.mark.parametrize("places, mode", [(-1, "half_up"), (2, "nearest"), (True, "half_up"), (2.0, "up")])
def test_rounding_rejects_bad_settings(places: object, mode: str) -> None:
    with pytest.raises(ValueError):
        Rounding(places, mode)  # type: ignore[arg-type]


# -- formatting -----------------------------------------------------------------------------

@pytest.mark.parametrize("amount, places, expected", [
    ("612500", 2, "612,500.00"),
    ("21437.5", 2, "21,437.50"),
    ("21437.50", 2, "21,437.50"),
    ("999.99", 2, "999.99"),
    ("-1234567.891", 2, "-1,234,567.891"),  # never hides a digit
    ("1234.5000", 2, "1,234.50"),  # trailing zeros beyond places go
    ("1E+2", 2, "100.00"),
    ("1.5E+6", 2, "1,500,000.00"),
    ("0E-8", 2, "0.00"),
    ("-0.00", 2, "0.00"),
    ("0.001", 2, "0.001"),
    ("12.00", 0, "12"),
    ("12.50", 0, "12.5"),
    ("1000", 0, "1,000"),
    ("7", 3, "7.000"),
    ("-123.5", 2, "-123.50"),
    ("-1234", 2, "-1,234.00"),
    ("-0.5", 2, "-0.50"),
    ("1234567890123456789012345678901234.5", 2, "1,234,567,890,123,456,789,012,345,678,901,234.50"),
    ("1.23E-7", 2, "0.000000123"),
])
def test_format_amount(amount: str, places: int, expected: str) -> None:
    assert format_amount(D(amount), places) == expected


@pytest.mark.parametrize("amount, places, expected", [
    ("21437.5", 2, "21437.50"),
    ("612500", 2, "612500.00"),
    ("1E+6", 2, "1000000.00"),
    ("-5", 2, "-5.00"),
    ("-0", 2, "0.00"),
    ("0E-8", 2, "0.00"),
    ("3.14159", 2, "3.14159"),
    ("1234", 0, "1234"),
])
def test_plain_amount(amount: str, places: int, expected: str) -> None:
    assert plain_amount(D(amount), places) == expected


@pytest.mark.parametrize("rate, expected", [
    ("0.035", "3.5%"),
    ("0.02", "2%"),
    ("1.1", "110%"),
    ("1", "100%"),
    ("0.5000", "50%"),
    ("1E+2", "10000%"),
    ("0E-8", "0%"),
    ("-0", "0%"),
    ("-0.05", "-5%"),
    ("0.00001", "0.001%"),
    ("0.3333333333333333333333333333", "33.33333333333333333333333333%"),
])
def test_format_rate(rate: str, expected: str) -> None:
    assert format_rate(D(rate)) == expected


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_formatting_refuses_non_finite_values(value: str) -> None:
    for formatter in (lambda d: format_amount(d, 2), lambda d: plain_amount(d, 2), format_rate):
        with pytest.raises(ValueError, match="not an amount"):
            formatter(D(value))


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**12, max_value=10**12, places=6)
       | st.builds(lambda n, e: D(n).scaleb(e), st.integers(-10**30, 10**30), st.integers(-40, 40)))
def test_formatting_never_uses_exponents_and_round_trips(value: D) -> None:
    grouped = format_amount(value, 2)
    for text in (plain_amount(value, 2), grouped, format_rate(value)):
        assert "E" not in text and "e" not in text
        assert text.startswith("-") == (value < 0)  # and never a negative zero
    assert grouped.replace(",", "") == plain_amount(value, 2)
    assert D(plain_amount(value, 2)) == value
    assert D(format_rate(value)[:-1]) == value.scaleb(2)


# -- apportion ------------------------------------------------------------------------------

def texts(values: list[D]) -> list[str]:
    return [str(value) for value in values]


def test_apportion_largest_remainder_gets_the_cent() -> None:
    # shares of 10.00 over 10/20/30: 1.666.., 3.333.., 5 -> floors sum to 9.99; p1 has the largest remainder
    result = apportion([("p1", D("10")), ("p2", D("20")), ("p3", D("30"))], D("10.00"), 2)
    assert texts(result) == ["1.67", "3.33", "5.00"]


def test_apportion_ties_go_to_the_smallest_key_not_the_first_position() -> None:
    result = apportion([("C", D("100")), ("A", D("100")), ("B", D("100"))], D("100.00"), 2)
    assert texts(result) == ["33.33", "33.34", "33.33"]


def test_apportion_two_missing_cents_with_ties() -> None:
    # 2 / 3 each = 0.666..: floors 0, two units left for the two smallest keys
    result = apportion([("b", D("1")), ("c", D("1")), ("a", D("1"))], D("2"), 0)
    assert texts(result) == ["1", "0", "1"]


def test_apportion_exact_shares_are_untouched() -> None:
    result = apportion([("a", D("50.00")), ("b", D("150.00"))], D("100.00"), 2)
    assert texts(result) == ["25.00", "75.00"]


def test_apportion_same_total_returns_the_amounts() -> None:
    amounts = [("a", D("12.34")), ("b", D("0.01")), ("c", D("987.65"))]
    assert apportion(amounts, D("1000.00"), 2) == [D("12.34"), D("0.01"), D("987.65")]


def test_apportion_scales_up_by_the_same_rule() -> None:
    # 10 over 1/2: 3.333.., 6.666.. -> b's remainder is larger
    assert texts(apportion([("a", D("1")), ("b", D("2"))], D("10.00"), 2)) == ["3.33", "6.67"]


def test_apportion_amounts_finer_than_places() -> None:
    result = apportion([("b", D("0.005")), ("a", D("0.005"))], D("0.01"), 2)
    assert texts(result) == ["0.00", "0.01"]


def test_apportion_remainders_are_compared_exactly() -> None:
    # 1/3 and 1/3 + 10**-30 differ only beyond 28 significant digits: exact arithmetic still sees it
    a, b, c = D("1." + "0" * 29 + "1"), D("1." + "0" * 29 + "2"), D("0." + "9" * 29 + "7")
    result = apportion([("a", a), ("b", b), ("c", c)], D("1.00"), 2)
    assert texts(result) == ["0.33", "0.34", "0.33"]


def test_apportion_zero_total() -> None:
    assert texts(apportion([("a", D("0")), ("b", D("0.00"))], D("0"), 2)) == ["0.00", "0.00"]
    assert apportion([], D("0.00"), 2) == []
    with pytest.raises(ValueError, match="total 0"):
        apportion([("a", D("0"))], D("5.00"), 2)
    with pytest.raises(ValueError):
        apportion([], D("1"), 2)


def test_apportion_to_zero_target() -> None:
    assert texts(apportion([("a", D("3")), ("b", D("7"))], D("0"), 2)) == ["0.00", "0.00"]


@pytest.mark.parametrize("amounts, target, places", [
    ([("a", D("-1")), ("b", D("2"))], D("1"), 2),
    ([("a", D("NaN"))], D("1"), 2),
    ([("a", D("1"))], D("-1"), 2),
    ([("a", D("1"))], D("0.005"), 2),
    ([("a", D("1"))], D("Infinity"), 2),
    ([("a", D("1"))], D("1"), -1),
])
def test_apportion_rejects_bad_input(amounts: list[tuple[str, D]], target: D, places: int) -> None:
    with pytest.raises(ValueError):
        apportion(amounts, target, places)


amounts_strategy = st.lists(
    st.tuples(st.text(alphabet="ABCDEF0123", min_size=1, max_size=4),
              st.integers(min_value=0, max_value=10**9).map(lambda cents: D(cents).scaleb(-2))),
    min_size=1, max_size=40)


@given(amounts_strategy, st.data())
def test_apportion_sums_to_the_target_exactly(amounts: list[tuple[str, D]], data: st.DataObject) -> None:
    total_cents = int(sum(amount for _, amount in amounts) * 100)
    target = D(data.draw(st.integers(min_value=0, max_value=total_cents))).scaleb(-2)
    if total_cents == 0:
        assert all(value == 0 for value in apportion(amounts, target, 2))
        return
    result = apportion(amounts, target, 2)
    assert sum(result) == target
    for (_, amount), value in zip(amounts, result):
        exact_share = amount * target / (D(total_cents) / 100)
        assert value >= 0
        assert value.as_tuple().exponent == -2
        assert abs(value - exact_share) < D("0.01")  # floor or floor + one cent


@given(amounts_strategy, st.randoms(use_true_random=False))
def test_apportion_does_not_depend_on_input_order(amounts: list[tuple[str, D]], rnd: random.Random) -> None:
    distinct = list({key: amount for key, amount in amounts}.items())
    total = sum(amount for _, amount in distinct)
    if total == 0:
        return
    target = (total / 3).quantize(D("0.01"), rounding="ROUND_DOWN")
    by_key = dict(zip((key for key, _ in distinct), apportion(distinct, target, 2)))
    shuffled = distinct[:]
    rnd.shuffle(shuffled)
    assert dict(zip((key for key, _ in shuffled), apportion(shuffled, target, 2))) == by_key


def reference_apportion(amounts: list[tuple[str, D]], target: D, places: int) -> list[D]:
    """The method as the SPEC states it, with fractions and a full sort: slow but obviously right."""
    unit = Fraction(1, 10**places)
    total = sum(Fraction(amount) for _, amount in amounts)
    shares = [Fraction(amount) * Fraction(target) / total / unit for _, amount in amounts]
    floors = [math.floor(share) for share in shares]
    missing = int(Fraction(target) / unit) - sum(floors)
    order = sorted(range(len(amounts)), key=lambda i: (-(shares[i] - floors[i]), amounts[i][0], i))
    for i in order[:missing]:
        floors[i] += 1
    return [D(units).scaleb(-places) for units in floors]


@given(st.lists(st.tuples(st.sampled_from("ABCD"), st.integers(0, 12).map(D)), min_size=1, max_size=12),
       st.integers(0, 3), st.integers(0, 5000))
def test_apportion_matches_the_reference_method(amounts: list[tuple[str, D]], places: int, target_units: int) -> None:
    # small amounts and few keys: many equal remainders and repeated keys
    if sum(amount for _, amount in amounts) == 0:
        return
    target = D(target_units).scaleb(-places)
    assert apportion(amounts, target, places) == reference_apportion(amounts, target, places)


@pytest.mark.parametrize("ratio, shown", [
    ("0.93", "93%"), ("1", "100%"), ("0.825", "82.5%"), ("0.123456", "12.3456%"),
    ("1.026361559420289855072463768", "≈102.6362%"), ("0.3333333333333333333333333333", "≈33.3333%"),
    ("0.12345650", "≈12.3456%"),  # half-even on the fifth decimal
])
def test_format_ratio_is_exact_when_short_and_marked_when_rounded(ratio, shown):
    assert format_ratio(D(ratio)) == shown


# --- ratio: a computed ratio rounded half-even to ratio places ----------------------------------


@pytest.mark.parametrize(("numerator", "denominator", "places", "expected"), [
    ("1", "3", 10, "0.3333333333"),
    ("2", "3", 10, "0.6666666667"),
    ("-2", "3", 10, "-0.6666666667"),   # away from zero past the half, as a positive one
    ("2", "-3", 10, "-0.6666666667"),
    ("1", "8", 2, "0.12"),              # 0.125: a tie goes to the even neighbour
    ("3", "8", 2, "0.38"),              # 0.375 → 0.38 (even)
    ("-1", "8", 2, "-0.12"),
    ("45", "90", 10, "0.5"),            # exact: no trailing zeros
    ("1.5", "0.5", 10, "3"),
    ("2000", "1", 10, "2000"),          # never the exponent form 2E+3
    ("1018405.61", "934000", 10, "1.0903700321"),
    # just past a half, beyond the 40 digits the division keeps: rounded away from the half, not to even
    ("1250000000000000000000000000000000000000001", "1E+43", 2, "0.13"),
    ("-1250000000000000000000000000000000000000001", "1E+43", 2, "-0.13"),
    ("1E+40", "3", 2, "3333333333333333333333333333333333333333.33"),  # a quotient too long for 40 digits
])
def test_ratio_rounds_half_even_to_places(numerator, denominator, places, expected):
    assert str(ratio(D(numerator), D(denominator), places)) == expected


@given(st.integers(-10**30, 10**30), st.integers(1, 10**12), st.integers(-6, 6), st.integers(0, 28))
def test_ratio_is_the_exact_quotient_rounded_whatever_the_context(numerator, denominator, exponent, places):
    a, b = D(f"{numerator}E{exponent}"), D(denominator)
    exact = Fraction(numerator) * Fraction(10) ** exponent / denominator * 10**places
    floor = math.floor(exact)
    rest = exact - floor
    units = floor + 1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2) else floor
    with localcontext() as context:
        context.prec = 3  # a narrow thread context changes nothing
        found = ratio(a, b, places)
    assert found == D(f"{units}E-{places}")
