"""Money by columns: rounding, and the texts of amounts, rates and ratios, as :mod:`incentives.money` gives them.

The columnar engine holds a number as an integer count of minor units at a fixed
scale (``rules/columns.py``): ``1234.50`` at scale 2 is ``123450``, Int64 or
Int128. Each function here takes a polars expression of such units and its
scale (a plain int, the same for every row), and gives what the per-record
function of :mod:`incentives.money` gives for the number ``units × 10**-scale``:

* :func:`round_units` — ``Rounding.round``, as units at the rounding's places;
* :func:`plain_amount`, :func:`format_amount`, :func:`format_rate`,
  :func:`format_ratio` — the functions of the same names, as polars String
  expressions equal to the per-record text character for character.

**By value, not by exponent.** Every per-record text depends on a ``Decimal``'s
value only: digits beyond ``places`` are shown only when they are not trailing
zeros, a percent drops its trailing zeros, a negative zero prints as zero, and
``str()``'s exponent notation is turned back into plain digits. So ``5``,
``5.00`` and ``5E+0`` print alike, and a column gives the same text whatever
scale it holds a number at (``5`` at scale 0, ``500`` at scale 2): no exponent is
needed as an input. Where the per-record path fails is by value too:
:func:`incentives.money.format_ratio` rounds in the thread's decimal context
(28 digits; the library never changes it), which raises ``InvalidOperation``
for a percent of 10**(28 − decimals) or more in magnitude once rounded to
``decimals`` (a zero never raises, whatever its exponent). By columns those
rows are null.

A null in ``units`` gives a null result; no result is ever a float.
"""

from __future__ import annotations

import polars as pl

from .money import Rounding
from .rules.columns import MAX_SCALE, MAX_UNITS

__all__ = ["MAX_PLAIN_DIGITS", "PLAIN_DECIMAL", "apportion_units", "format_amount", "format_rate", "format_ratio",
           "plain_amount", "plain_decimals", "plain_units", "round_units"]

#: A plain decimal's text: a sign, digits, one point (``-1234.50``, ``.5``, ``7.``); no exponent, no spaces.
PLAIN_DECIMAL = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
#: A plain decimal's digits at most, for :func:`plain_units` (its units at a scale of up to 12 fit Int128 with
#: room for a sum of billions of them).
MAX_PLAIN_DIGITS = 30

_INT64_MAX = 2**63 - 1
_INT128_MAX = 2**127 - 1
#: The significant digits of Python's default decimal context, which the per-record
#: ``format_ratio`` rounds in: a ratio that needs more makes it raise.
_DEFAULT_CONTEXT_DIGITS = 28
#: ``,000`` … ``,999``, looked up by a three-digit group's value: building the thousands
#: separators from integer groups is several times faster than slicing or matching the digits' text.
_SEPARATED_GROUPS = pl.Series([f",{group:03d}" for group in range(1000)], dtype=pl.String)


def round_units(units: pl.Expr, scale: int, rounding: Rounding) -> pl.Expr:
    """``rounding.round`` by columns: ``units`` at ``scale`` → units at ``rounding.places``.

    The modes are the Decimal ones, negative values included: ``half_up`` rounds
    a half away from zero, ``half_even`` to the even neighbour, ``down`` toward
    zero and ``up`` away from zero (-0.005, -0.019 and -0.011 to two places are
    -0.01, -0.01 and -0.02). Integers have no negative zero, so neither has the
    result (``Rounding.round`` gives the positive zero too).

    Fewer places than ``scale``: a floor division and its remainder, in ``units``'
    dtype (Int128 when 10**(scale − places) exceeds Int64). More places: ``units``
    × 10**(places − scale) in Int128, and a row beyond :data:`MAX_UNITS` is null
    (not by columns: the per-record path keeps every digit).
    """
    places = rounding.places
    _check_scale("scale", scale)
    _check_scale("places", places)
    if places >= scale:
        factor = 10 ** (places - scale)
        if factor == 1:
            return units
        wide = units.cast(pl.Int128)
        limit = _integer(MAX_UNITS // factor)
        return pl.when((wide >= -limit) & (wide <= limit)).then(wide * _integer(factor))
    divisor = _integer(10 ** (scale - places))
    floor = units // divisor
    remainder = units % divisor  # polars' remainder has the divisor's sign: 0 <= remainder < divisor
    # The floor is the rounded value, or one unit below it.
    if rounding.mode == "down":
        one_up = (remainder != 0) & (units < 0)
    elif rounding.mode == "up":
        one_up = (remainder != 0) & (units > 0)
    else:
        # twice a remainder below 10**37 stays below Int128's largest value (about 1.7 × 10**38)
        twice = remainder * 2
        # exactly a half: half_up goes away from zero (up for a positive value, the floor for a
        # negative one), half_even to the even of the floor and the floor + 1
        on_half = (units > 0) if rounding.mode == "half_up" else (floor % 2 != 0)
        one_up = (twice > divisor) | ((twice == divisor) & on_half)
    return floor + one_up.cast(pl.Int64)


def plain_amount(units: pl.Expr, scale: int, places: int, *, bound: int = MAX_UNITS) -> pl.Expr:
    """:func:`incentives.money.plain_amount` by columns, for CSV: ``21437.50``, ``-200.00``.

    At least ``places`` decimals; the digits of ``scale`` beyond them are shown
    when they are not trailing zeros (``1234.567`` at two places is ``1234.567``);
    no negative zero. ``bound``: the largest |units| the column holds (a promise, as for
    :func:`format_amount`): within Int64, the digits are found in Int64, three times faster.
    """
    _check_scale("scale", scale)
    _check_scale("places", places)
    _check_bound(bound)
    whole, fraction = _unsigned_parts(units, scale, bound)
    return _signed_fixed_point(units, whole.cast(pl.String), fraction, scale, places)


def plain_units(text: pl.Expr, scale: int) -> pl.Expr:
    """The inverse of :func:`plain_amount`: a plain decimal's minor units at ``scale`` (Int128), null where the
    text is not one, has more than :data:`MAX_PLAIN_DIGITS` digits or more decimals than ``scale``: its digits
    without the point, times ten to the decimals it lacks."""
    decimals = plain_decimals(text)
    digits = text.str.replace(".", "", literal=True)
    fits = (digits.str.strip_chars_start("+-").str.len_bytes() <= MAX_PLAIN_DIGITS) & (decimals <= scale)
    powers = pl.lit(pl.Series([10**exponent for exponent in range(scale + 1)], dtype=pl.Int128))
    return pl.when(text.str.contains(PLAIN_DECIMAL) & fits).then(
        digits.cast(pl.Int128, strict=False) * powers.gather((pl.lit(scale, pl.Int64) - decimals).clip(0, scale)))


def plain_decimals(text: pl.Expr) -> pl.Expr:
    """How many digits a plain decimal has after its point (Int64)."""
    point = text.str.find(".", literal=True)
    return pl.when(point.is_null()).then(pl.lit(0, pl.Int64)).otherwise(text.str.len_bytes().cast(pl.Int64) - point - 1)


def format_amount(units: pl.Expr, scale: int, places: int, *, bound: int = MAX_UNITS) -> pl.Expr:
    """:func:`incentives.money.format_amount` by columns, for audit formulas: ``612,500.00``.

    :func:`plain_amount` with thousands separators. ``bound`` is the largest
    |units| the column holds (a promise, as ``rules.columns.Column.bound``): the
    separators are built per group of three digits the bound allows, so a
    smaller bound is faster; a value beyond it would miss its leftmost separators.
    """
    _check_scale("scale", scale)
    _check_scale("places", places)
    _check_bound(bound)
    whole, fraction = _unsigned_parts(units, scale, bound)
    return _signed_fixed_point(units, _grouped(whole, bound // 10**scale), fraction, scale, places)


def format_rate(units: pl.Expr, scale: int) -> pl.Expr:
    """:func:`incentives.money.format_rate` by columns: a percent with no trailing zeros (``0.035`` → ``3.5%``)."""
    _check_scale("scale", scale)
    return pl.concat_str([_percent_digits(units, scale - 2), pl.lit("%")])


def format_ratio(units: pl.Expr, scale: int, decimals: int = 4) -> pl.Expr:
    """:func:`incentives.money.format_ratio` by columns: ``93%`` exactly, or ``≈33.3333%`` rounded half-even.

    A percent with at most ``decimals`` decimals is shown as :func:`format_rate`
    shows it; any other is rounded half-even to ``decimals`` and marked ``≈``.
    Null where the per-record function raises: a percent that is 10**(28 − decimals)
    or more in magnitude once rounded (see the module's docstring).
    """
    _check_scale("scale", scale)
    _check_scale("decimals", decimals)
    percent_scale = scale - 2
    if percent_scale <= decimals:
        shown, shown_scale = units, percent_scale
        text = pl.concat_str([_percent_digits(units, percent_scale), pl.lit("%")])
    else:
        shown, shown_scale = round_units(units, percent_scale, Rounding(decimals, "half_even")), decimals
        exact = units % _integer(10 ** (percent_scale - decimals)) == 0
        mark = pl.when(exact).then(pl.lit("")).otherwise(pl.lit("≈"))
        text = pl.concat_str([mark, _percent_digits(shown, decimals), pl.lit("%")])
    # the per-record rounding raises where the percent at ``decimals`` places, once rounded, has more
    # digits than the context: |shown| >= 10**(28 - decimals) as a number, 10**(28 - decimals + shown_scale)
    # in units (every nonzero value when that is below one unit)
    limit = 10 ** max(_DEFAULT_CONTEXT_DIGITS - decimals + shown_scale, 0)
    if limit > _INT128_MAX:
        return text
    return pl.when((shown < _integer(limit)) & (shown > -_integer(limit))).then(text)


def apportion_units(units: pl.Series, keys: pl.Series, target_units: int) -> pl.Series | None:
    """:func:`incentives.money.apportion` by columns: ``units`` (non-negative integers at one scale, in order,
    their ``keys`` beside them) scaled to sum to ``target_units`` (integers at the places) by the largest
    remainder, ties broken by key and then by position; an Int128 Series of units at the places.

    Each share is ``units × target_units / total``, floored; the units still missing go one each to the largest
    remainders (which share the denominator ``total``, so they compare as integers). ``None`` where a product
    or the sum could leave Int128 (the caller apportions with Decimals), or the units total 0.
    """
    if units.is_empty() or target_units < 0 or (units.min() or 0) < 0:
        return None
    largest = int(units.max() or 0)
    if largest * max(target_units, units.len()) >= 2**126:
        return None
    total = int(units.cast(pl.Int128).sum())
    if total == 0:
        return None
    product = pl.col("units").cast(pl.Int128) * pl.lit(target_units, pl.Int128)
    shares = pl.DataFrame({"units": units, "key": keys}).with_row_index("at").with_columns(
        (product // pl.lit(total, pl.Int128)).alias("floor"), (product % pl.lit(total, pl.Int128)).alias("rest"))
    missing = target_units - int(shares["floor"].sum())
    # the first ``missing`` by remainder (largest first), then key, then position, get one unit more
    chosen = shares.sort(["rest", "key", "at"], descending=[True, False, False]).head(missing)["at"]
    return shares.select(pl.col("floor") + pl.col("at").is_in(chosen.implode()).cast(pl.Int128)).to_series()


# --- building blocks ---------------------------------------------------------------------------


def _check_scale(name: str, value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_SCALE:
        raise ValueError(f"{name} is an integer from 0 to {MAX_SCALE}, not {value!r}")


def _check_bound(bound: int) -> None:
    if not 0 <= bound <= MAX_UNITS:
        raise ValueError(f"a bound of units is between 0 and MAX_UNITS, not {bound}")


def _integer(value: int) -> pl.Expr:
    """An integer literal in the narrowest of Int64 and Int128 that holds it."""
    return pl.lit(value, pl.Int64 if -_INT64_MAX <= value <= _INT64_MAX else pl.Int128)


def _unsigned_parts(units: pl.Expr, scale: int, bound: int = MAX_UNITS) -> tuple[pl.Expr, pl.Expr | None]:
    """|units| at ``scale``: the whole part and the fraction's ``scale`` digits as text (None at scale 0).

    In Int64 where ``bound`` (the largest |units|, a promise) fits it: Int128 division is about three times
    slower. Else in Int128, where no value by columns wraps on abs() (Int64's smallest does in Int64).
    """
    magnitude = units.cast(pl.Int64 if bound <= _INT64_MAX else pl.Int128).abs()
    if not scale:
        return magnitude, None
    unit = _integer(10**scale)
    # leading zeros kept: 10**scale + the fraction has exactly scale + 1 digits, the first a 1
    return magnitude // unit, (magnitude % unit + unit).cast(pl.String).str.slice(1)


def _grouped(whole: pl.Expr, bound: int) -> pl.Expr:
    """The non-negative integer ``whole`` (at most ``bound``) with a comma between groups of three digits."""
    count = (len(str(bound)) + 2) // 3
    # the first group, as many digits as it has: the number over the largest power of 1000 not above it
    first = whole
    if count > 1:
        chain = pl.when(whole < 1000).then(whole)
        for power in range(1, count - 1):
            chain = chain.when(whole < _integer(1000 ** (power + 1))).then(whole // _integer(1000**power))
        first = chain.otherwise(whole // _integer(1000 ** (count - 1)))
    # each later group with its separator, looked up; null (left out by concat_str) above the first
    later = [
        pl.when(whole >= _integer(1000 ** (power + 1))).then(
            pl.lit(_SEPARATED_GROUPS).gather(whole // _integer(1000**power) % 1000))
        for power in reversed(range(count - 1))
    ]
    return pl.concat_str([first.cast(pl.String), *later], ignore_nulls=True)


def _signed_fixed_point(units: pl.Expr, whole: pl.Expr, fraction: pl.Expr | None, scale: int, places: int) -> pl.Expr:
    """The per-record ``_fixed(_plain(d), places)``: ``fraction`` (``scale`` digits) padded, or trimmed of
    trailing zeros, to ``places`` decimals, after the sign and ``whole``."""
    # null for a null row, which makes the whole text null (the digits may be "" there: see _grouped)
    sign = pl.when(units < 0).then(pl.lit("-")).when(units >= 0).then(pl.lit(""))
    if fraction is None:
        shown = pl.lit("0" * places)
    elif scale < places:
        shown = pl.concat_str([fraction, pl.lit("0" * (places - scale))])
    elif scale == places:
        shown = fraction
    else:
        shown = fraction.str.strip_chars_end("0").str.pad_end(places, "0")
    if places:
        return pl.concat_str([sign, whole, pl.lit("."), shown])
    if fraction is None:
        return pl.concat_str([sign, whole])
    # the fraction may be all trailing zeros: then the point goes too
    return pl.concat_str([sign, whole, pl.lit("."), shown]).str.strip_suffix(".")


def _percent_digits(units: pl.Expr, scale: int) -> pl.Expr:
    """The per-record ``_percent_text`` without its ``%``: the number, no trailing zeros, no negative zero."""
    if scale >= 0:
        whole, fraction = _unsigned_parts(units, scale)
        return _signed_fixed_point(units, whole.cast(pl.String), fraction, scale, 0)
    # a number at scale 0 or 1 as a percent: its digits and one or two zeros (never "000" for a zero),
    # as text, since the units times 100 could leave Int128
    digits = units.cast(pl.Int128).abs().cast(pl.String)
    whole = pl.when(units != 0).then(pl.concat_str([digits, pl.lit("0" * -scale)])).otherwise(digits)
    return _signed_fixed_point(units, whole, None, scale, 0)
