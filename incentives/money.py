"""Money: rounding payout lines, formatting numbers for audit text, apportioning a budget.

Everything here is exact ``decimal.Decimal`` arithmetic; no binary float is ever
involved. ``Rounding.round`` and the formatters run once per payout line, so
they avoid per-call context managers and keep allocations to the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_05UP,
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    InvalidOperation,
)
from typing import Iterable, Literal, Sequence

RoundingMode = Literal["half_up", "half_even", "down", "up"]

_DECIMAL_ROUNDING: dict[str, str] = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
}

#: The context of money arithmetic that must never round: sums, differences and products of
#: amounts, rescaling by powers of ten, rounding to places. Its precision is the largest the
#: decimal module has, so a result keeps every digit it has (inputs are bounded: see inputs.py).
#: Never used for a division, whose exact result may have no end.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

#: ``a + b``, ``a - b``, ``a × b`` and ``-a`` without rounding (Python's operators use the thread's
#: context: 28 significant digits by default, where a sum of large amounts silently loses cents).
exact_add = EXACT.add
exact_subtract = EXACT.subtract
exact_multiply = EXACT.multiply
exact_negate = EXACT.minus
#: ``a × b + c`` without rounding, in one call
exact_multiply_add = EXACT.fma


#: Decimals a computed ratio keeps unless a program says otherwise (``rounding.ratio_places``).
DEFAULT_RATIO_PLACES = 10


def ratio(numerator: Decimal, denominator: Decimal, places: int) -> Decimal:
    """``numerator / denominator`` rounded half-even to ``places`` decimals, whatever the decimal context.

    SPEC "Bulk runs": a computed ratio (attainment, active fraction, curve factor)
    is rounded when it is computed, so every reader gets the same digits. An exact
    quotient with at most ``places`` decimals is returned as a division gives it
    (``45 / 90`` is ``0.5``); any other is rounded to exactly ``places`` decimals.
    ``denominator`` must not be 0.
    """
    # Divided to _RATIO_DIGITS significant digits with ROUND_05UP, then rounded once to ``places``:
    # 05UP keeps an inexact quotient off a final digit 0 or 5, so the second rounding sees a half only
    # when the quotient is exactly a half (no double rounding), as long as a digit beyond ``places`` is kept.
    quotient = _sticky_divide(numerator, denominator)
    try:
        # in a context one digit narrower than the division: a quotient with no digit beyond ``places``
        # does not fit, and is divided the slow way
        rounded = _quantize_half_even(quotient, _QUANTA[places] if places < len(_QUANTA)
                                      else Decimal(1).scaleb(-places))
    except InvalidOperation:
        return _ratio_by_integers(numerator, denominator, places)
    # equal: the quotient is exact with at most ``places`` decimals (an inexact one ends in a digit
    # other than 0 beyond them); it keeps the digits the division gave it
    return quotient if rounded == quotient else rounded


def _ratio_by_integers(numerator: Decimal, denominator: Decimal, places: int) -> Decimal:
    """:func:`ratio` by an exact integer division with remainder: for quotients of any size."""
    quotient, remainder = EXACT.divmod(numerator.scaleb(places, EXACT), denominator)
    if remainder:
        # divmod truncates toward zero: a remainder of more than half the divisor (or exactly half,
        # with an odd quotient) moves the quotient one unit away from zero
        twice, divisor = EXACT.add(remainder, remainder).copy_abs(), denominator.copy_abs()
        if twice > divisor or (twice == divisor and quotient % 2):
            quotient = EXACT.add(quotient, _ONE if (numerator < 0) == (denominator < 0) else _MINUS_ONE)
    return quotient.scaleb(-places, EXACT)


_RATIO_DIGITS = 40
# bound once: a context's method looked up on each call costs more than the division itself
_sticky_divide = Context(prec=_RATIO_DIGITS, rounding=ROUND_05UP, Emax=MAX_EMAX, Emin=MIN_EMIN).divide
_quantize_half_even = Context(prec=_RATIO_DIGITS - 1, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN).quantize
_QUANTA = tuple(Decimal(1).scaleb(-places) for places in range(29))
_ONE = Decimal(1)
_MINUS_ONE = Decimal(-1)


def exact_sum(amounts: Iterable[Decimal], start: Decimal = Decimal(0)) -> Decimal:
    """The sum of ``amounts`` with every digit kept, whatever their size and number."""
    total = start
    for amount in amounts:
        total = exact_add(total, amount)
    return total


@dataclass(frozen=True, slots=True)
class Rounding:
    """How payout lines are rounded: ``places`` decimals with ``mode``.

    Decimal semantics apply to negative amounts: ``half_up`` rounds a half away
    from zero (-0.005 -> -0.01), ``down`` rounds toward zero (-0.019 -> -0.01)
    and ``up`` away from zero (-0.011 -> -0.02). A result that rounds to zero is
    always the positive zero, so ``-0.00`` never reaches an output file.

    ``round`` keeps every digit left of the rounding place, however many there
    are (it rounds in :data:`EXACT`, never in the thread's 28-digit context).
    """

    places: int = 2
    mode: RoundingMode = "half_up"
    _quantum: Decimal = field(init=False, repr=False, compare=False)
    _decimal_rounding: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.places) is not int or self.places < 0:
            raise ValueError(f"rounding places must be a non-negative integer, not {self.places!r}")
        if self.mode not in _DECIMAL_ROUNDING:
            raise ValueError(
                f"unknown rounding mode {self.mode!r}: expected one of {', '.join(_DECIMAL_ROUNDING)}"
            )
        # Frozen dataclass: the precomputed quantum has to be set past __setattr__.
        object.__setattr__(self, "_quantum", Decimal(1).scaleb(-self.places))
        object.__setattr__(self, "_decimal_rounding", _DECIMAL_ROUNDING[self.mode])

    def round(self, amount: Decimal) -> Decimal:
        # Positional arguments: the C decimal parses keywords several times slower.
        rounded = amount.quantize(self._quantum, self._decimal_rounding, EXACT)
        if rounded or not rounded.is_signed():
            return rounded
        return rounded.copy_abs()


def decimal_of(units: int, exponent: int) -> Decimal:
    """The Decimal ``units`` × 10^``exponent`` with that exponent, exactly (no context rounds it): an amount
    kept as integer minor units, as :meth:`Decimal.as_tuple` gives its digits and exponent."""
    return Decimal(f"{units}E{exponent}")


def format_amount(d: Decimal, places: int) -> str:
    """``d`` with thousands separators and at least ``places`` decimals: ``612,500.00``.

    Never rounds: digits beyond ``places`` that are not trailing zeros are kept
    (``1234.567`` with 2 places is ``1,234.567``), so audit text shows the exact
    number that was used. No exponent notation, no negative zero.
    """
    if not d.is_finite():
        raise ValueError(f"{d} is not an amount")
    text = format(d, "z,f")
    point = text.find(".")
    if point >= 0 and len(text) - point - 1 == places:  # a rounded amount: already as shown
        return text
    return _fixed(text, places)


def plain_amount(d: Decimal, places: int) -> str:
    """Like :func:`format_amount` without thousands separators, for CSV: ``21437.50``."""
    text = str(d)
    # the usual amount, rounded to ``places`` and not a negative zero, is its own text
    if places and text[-places - 1:-places] == "." and "E" not in text and (text[0] != "-" or d):
        return text
    return _fixed(_plain(d), places)


def format_rate(d: Decimal) -> str:
    """A rate shown as a percent with no trailing zeros: ``0.035`` -> ``3.5%``, ``1.1`` -> ``110%``."""
    return _percent_text(d.scaleb(2, EXACT))


def format_ratio(d: Decimal, decimals: int = 4) -> str:
    """A computed ratio (attainment, curve factor) as a percent for people to read.

    Shown exactly when it has at most ``decimals`` decimals as a percent
    (``0.93`` -> ``93%``); otherwise rounded half-even and marked ``≈``
    (``1/3`` -> ``≈33.3333%``). The exact value stays in the data.
    """
    percent = d.scaleb(2, EXACT)
    quantum = _RATIO_QUANTA.get(decimals) or Decimal(1).scaleb(-decimals)
    rounded = percent.quantize(quantum, ROUND_HALF_EVEN)
    if rounded == percent:
        return _percent_text(percent)
    return "≈" + _percent_text(rounded)


_RATIO_QUANTA = {4: Decimal("1E-4")}


def _percent_text(percent: Decimal) -> str:
    """A number already scaled to percent, with no trailing zeros: what :func:`format_rate` shows."""
    text = _plain(percent)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


def _plain(d: Decimal) -> str:
    """``d`` in fixed-point notation with every digit it has, never ``-0``."""
    # str() is several times faster than format() (which the grouped form needs
    # anyway); it only switches to exponent notation for positive exponents or
    # very small numbers, which format() handles.
    if not d.is_finite():
        raise ValueError(f"{d} is not an amount")
    text = str(d)
    if "E" in text:
        return format(d, "zf")
    if text[0] == "-" and not d:
        return text[1:]
    return text


def _fixed(text: str, places: int) -> str:
    """Pad or trim the fixed-point ``text`` to ``places`` decimals, dropping only trailing zeros."""
    point = text.find(".")
    if point < 0:
        return f"{text}.{'0' * places}" if places else text
    decimals = len(text) - point - 1
    if decimals == places:
        return text
    if decimals < places:
        return text + "0" * (places - decimals)
    keep = max(places, len(text.rstrip("0")) - point - 1)
    return text[: point + 1 + keep] if keep else text[:point]


def apportion(amounts: Sequence[tuple[str, Decimal]], target_total: Decimal, places: int) -> list[Decimal]:
    """Scale ``amounts`` to sum to ``target_total`` exactly, by the largest-remainder method.

    ``amounts`` are ``(key, amount)`` pairs (the key is the partner_id); the
    result is in the same order. Each amount is scaled by target / total as an
    exact rational, floored to ``places``, and the units of ``10**-places`` still
    missing go one each to the largest remainders, ties broken by key ascending
    (then by position). Amounts must be finite and non-negative; ``target_total``
    must be non-negative and have at most ``places`` decimals. A zero total (or
    no amounts) can only be apportioned to a zero target: every result is 0.
    A target above the total scales up by the same rule.
    """
    if type(places) is not int or places < 0:
        raise ValueError(f"places must be a non-negative integer, not {places!r}")
    target_units = _units(target_total, places)
    scaled = _as_integers([amount for _, amount in amounts])
    total = sum(scaled)
    if total == 0:
        if target_units:
            raise ValueError(f"cannot apportion {target_total} over amounts that total 0")
        return [Decimal(0).scaleb(-places)] * len(scaled)
    # share_i = scaled_i * target_units / total; the remainders share the denominator
    # ``total``, so comparing them as integers compares the fractions exactly.
    floors: list[int] = []
    remainders: list[int] = []
    for value in scaled:
        whole, rest = divmod(value * target_units, total)
        floors.append(whole)
        remainders.append(rest)
    missing = target_units - sum(floors)
    if missing:
        for index in _largest_remainders(remainders, missing, [key for key, _ in amounts]):
            floors[index] += 1
    return [Decimal(units).scaleb(-places, EXACT) for units in floors]


def _largest_remainders(remainders: list[int], count: int, keys: list[str]) -> list[int]:
    """Indices of the ``count`` largest remainders; at the cut-off value, the smallest keys win."""
    # Sorting plain ints and breaking ties only at the cut-off is far cheaper than
    # sorting (remainder, key) tuples for every partner.
    cutoff = sorted(remainders, reverse=True)[count - 1]
    above = [index for index, rest in enumerate(remainders) if rest > cutoff]
    tied = [index for index, rest in enumerate(remainders) if rest == cutoff]
    tied.sort(key=keys.__getitem__)  # stable: equal keys keep their positions
    return above + tied[: count - len(above)]


def _units(target: Decimal, places: int) -> int:
    """``target`` as an integer count of ``10**-places``; it must be exact and non-negative."""
    if not target.is_finite() or target < 0:
        raise ValueError(f"target total must be a finite non-negative amount, not {target}")
    units = target.scaleb(places, EXACT)
    if units != units.to_integral_value():
        raise ValueError(f"target total {target} has more than {places} decimal places")
    return int(units)


def _as_integers(amounts: list[Decimal]) -> list[int]:
    """Every amount times one common factor, so that all of them are exact integers."""
    try:
        ratios = [amount.as_integer_ratio() for amount in amounts]
    except (ValueError, OverflowError):  # NaN, Infinity
        raise ValueError("amounts to apportion must be finite") from None
    if any(numerator < 0 for numerator, _ in ratios):
        raise ValueError("amounts to apportion must be non-negative")
    # Denominators are products of powers of 2 and 5, and only a handful are distinct.
    common = math.lcm(*{denominator for _, denominator in ratios})
    return [numerator * (common // denominator) for numerator, denominator in ratios]
