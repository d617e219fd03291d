"""The expression language by columns: AST → one polars expression over a block of facts.

The columnar engine and the measures compute an expression for a whole block of
partners at once. :func:`compile_columns` turns an AST (``rules/ast.py``) into a
:class:`ColumnExpression`: a polars expression of the value, a polars expression
of a per-row "needs the per-record path" flag, and what the value is (its kind;
for a number, its scale).

Representation:

* a number is an integer count of minor units at a fixed scale (decimals):
  ``1234.50`` at scale 2 is ``123450``. A fact column is ``Int64``; a computed
  number is ``Int64`` while its static bound fits, else ``Int128``. Never a
  float, never a polars ``Decimal`` (its rounding and division are not ours);
* text is ``String``, a boolean ``Boolean``, a date ``Date``;
* a null in a fact column means "not here by columns": the fact is missing, or
  the record holds a value of another kind than the column's. Reading it flags
  the row, so the per-record path decides (an error, or a value of that kind).
  Except in a column or value that holds ``None`` (``none``: a used program's
  tier, ``this.tier``): there a null is the value ``None``, which ``==``,
  ``!=`` and ``in`` a list compare as the closures do (unequal to any value but
  ``None``); anything else that reads it flags the row (the closures raise).

Semantics are the closures' (``rules/closures.py``) for every row that is not
flagged, and a row is flagged exactly when the closures raise on it, with two
documented exceptions: a number whose minor units would exceed :data:`MAX_UNITS`
(about 4.25e37) flags its row instead of wrapping, although the closures'
exact arithmetic has no such limit; and a quotient whose significant digits do
not fit its expression's scale (see :func:`_long_quotient`). Only the branch an
``if()``, ``and``, ``or`` or comparison chain actually takes can flag a row.

``/`` is the closures' quotient, rounded half-even to the decimal context's
precision (28 significant digits by default), computed with integers: a
constant divisor whose reciprocal ends is a product with it; any other divisor
a long division in Int128 (:func:`_long_quotient`). A division by zero flags
its row.

Values are equal as numbers: the value of a flagged-free row, read back as
``Decimal(units).scaleb(-scale)``, equals the closures' ``Decimal``, but its
exponent is the expression's scale (``5`` in a scale-2 ``if()`` is ``5.00``).

Refused (:class:`NotByColumns`, with the reason and where): ``/`` in a decimal
context that does not round half-even, traps inexact results or keeps more than
36 digits (constant quotients such as ``1/3`` are folded first, as the closures
fold them), ``if()`` whose branches have different kinds, lists anywhere but on the right of ``in`` / ``not in``,
literals and scales beyond :data:`MAX_UNITS` / :data:`MAX_SCALE`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, Rounded, getcontext
from typing import Mapping, Sequence

import polars as pl

from ..money import EXACT
from .ast import BoolOp, Binary, Call, Compare, If, ListLiteral, Literal, Name, Node, Unary
from .closures import constant_value

__all__ = [
    "MAX_SCALE",
    "MAX_UNITS",
    "QUOTIENT_SCALE",
    "Column",
    "ColumnExpression",
    "Kind",
    "NotByColumns",
    "QuotientByColumns",
    "compile_columns",
    "quotient_by_columns",
    "ratio_by_columns",
    "ratio_is_exact",
]

#: The largest magnitude, in minor units, a number by columns may take: two of them add up without
#: wrapping Int128 (whose largest value is 2**127 - 1), so a sum can be checked after it is made.
MAX_UNITS = 2**125
#: The most decimals a number by columns may have: 10**MAX_SCALE (a rescaling factor) stays below MAX_UNITS.
MAX_SCALE = 37

_INT64_MAX = 2**63 - 1


class Kind(enum.Enum):
    NUMBER = "number"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATE = "date"
    #: no value at all: evaluating it raises on every row (a name the block lacks, ``'a' + 1``)
    FAILS = "fails"


_DTYPES = {Kind.TEXT: pl.String, Kind.BOOLEAN: pl.Boolean, Kind.DATE: pl.Date}


@dataclass(frozen=True, slots=True)
class Column:
    """One fact column of a block: its kind; for a number, its scale and the largest |minor units| it holds.

    ``bound`` defaults to Int64's whole range; an engine that knows its inputs are
    smaller says so, and the arithmetic on them stays in Int64 for longer. It is a
    promise: a larger value must not be in the column (null it, so that its row
    goes the per-record way), since the arithmetic sized by it could wrap.
    """

    kind: Kind
    scale: int = 0
    bound: int = 2**63
    #: a null cell is the value ``None`` (a used program's missing tier), not a missing fact
    none: bool = False

    def __post_init__(self) -> None:
        if self.kind is Kind.FAILS:
            raise ValueError("a fact column has a value kind, not 'fails'")
        if self.none and self.kind is not Kind.TEXT:
            raise ValueError("only a text column holds None")
        if self.kind is Kind.NUMBER and not (0 <= self.scale <= MAX_SCALE and 0 <= self.bound <= 2**63):
            raise ValueError(f"a number column needs 0 <= scale <= {MAX_SCALE} and 0 <= bound <= 2**63")

    @classmethod
    def number(cls, scale: int, bound: int = 2**63) -> "Column":
        return cls(Kind.NUMBER, scale, bound)

    @classmethod
    def text(cls, *, none: bool = False) -> "Column":
        return cls(Kind.TEXT, none=none)

    @classmethod
    def boolean(cls) -> "Column":
        return cls(Kind.BOOLEAN)

    @classmethod
    def date(cls) -> "Column":
        return cls(Kind.DATE)

    @property
    def dtype(self) -> pl.DataType:
        """The polars type the block's column has: Int64 minor units for a number."""
        return pl.Int64() if self.kind is Kind.NUMBER else _DTYPES[self.kind]()


@dataclass(frozen=True, slots=True)
class ColumnExpression:
    """An expression by columns: its value, the rows that need the per-record path, and what the value is.

    ``value`` is meaningless on a flagged row (null or 0). ``needs_record`` is a
    Boolean that is never null. For a number, ``scale`` is its decimals and
    ``bound`` the largest |minor units| it takes on a row that is not flagged;
    its dtype is Int64 or Int128 (:attr:`dtype`). Either expression may be a
    literal (a constant, a name the block lacks): use them in ``with_columns``
    or beside a column, where a literal is broadcast to the block's rows.
    """

    value: pl.Expr
    needs_record: pl.Expr
    kind: Kind
    scale: int = 0
    bound: int = 0
    wide: bool = False
    #: a null value is ``None`` (see the module): only a comparison reads it as such
    none: bool = False

    @property
    def dtype(self) -> pl.DataType:
        if self.kind is Kind.NUMBER:
            return pl.Int128() if self.wide else pl.Int64()
        if self.kind is Kind.FAILS:
            return pl.Null()
        return _DTYPES[self.kind]()


class NotByColumns(Exception):
    """An expression (or a part of it) that cannot be computed exactly by columns; ``reason`` says why."""

    def __init__(self, reason: str, offset: int = 0):
        self.reason = reason
        self.offset = offset
        super().__init__(f"{reason} (at offset {offset})")


def compile_columns(node: Node, columns: Mapping[str, Column],
                    values: Mapping[str, ColumnExpression] | None = None) -> ColumnExpression:
    """``node`` over a block whose fact columns are ``columns`` (name → :class:`Column`).

    A name that ``columns`` lacks is a missing fact on every row: it flags each
    row that evaluates it. ``values``: names that are computed, not read from a
    column (a program's own outcome, ``this.*``), as expressions; they win over
    columns of the same names. Raises :class:`NotByColumns` for what cannot be
    computed by columns exactly.
    """
    value = _Compiler(columns, values or {}).compile(node)
    if isinstance(value, _Items):
        raise NotByColumns("a list is a value only on the right of 'in' / 'not in'", node.offset)
    return _without_none(value)


@dataclass(frozen=True, slots=True)
class QuotientByColumns:
    """A ``/`` of an expression by columns, as :func:`quotient_by_columns` gives it: its operands and its
    ``value`` (as :func:`compile_columns` computes them), ``exact`` (a Boolean expression: the rows where the
    closures' division did not round, meaningful where ``value`` is not flagged) and ``digits``, the significant
    digits it keeps (the decimal context's precision)."""

    numerator: ColumnExpression
    denominator: ColumnExpression
    value: ColumnExpression
    exact: pl.Expr
    digits: int


def quotient_by_columns(node: Binary, columns: Mapping[str, Column],
                        values: Mapping[str, ColumnExpression] | None = None) -> QuotientByColumns:
    """The quotient ``node`` (a ``/`` that reads a name) over a block, as :func:`compile_columns` computes it, and
    the rows where it is exact: what tells how ``str()`` writes the closures' quotient (its exponent). Operands
    that are not both numbers give a ``value`` of kind ``FAILS``."""
    if node.op != "/":
        raise ValueError(f"not a quotient: '{node.op}'")
    compiler = _Compiler(columns, values or {})
    digits = _division_digits(node.offset)
    numerator, denominator = compiler.value(node.left), compiler.value(node.right)
    if numerator.kind is not Kind.NUMBER or denominator.kind is not Kind.NUMBER:
        return QuotientByColumns(numerator, denominator, _fails(), _FALSE, digits)
    value, exact = _quotient(numerator, denominator, node, digits)
    return QuotientByColumns(numerator, denominator, value, exact, digits)


def ratio_by_columns(numerator: ColumnExpression, denominator: ColumnExpression, places: int) -> ColumnExpression:
    """:func:`incentives.money.ratio` by columns: ``numerator / denominator`` rounded half-even to ``places``.

    Exact integer arithmetic: the quotient of the minor units (floor division),
    then half-even on the remainder. The result is a number at scale ``places``;
    a row whose denominator is 0 (or that either operand flags) is flagged.
    """
    if numerator.kind is not Kind.NUMBER or denominator.kind is not Kind.NUMBER:
        raise NotByColumns("a ratio needs two numbers")
    if not 0 <= places <= MAX_SCALE:
        raise NotByColumns(f"a ratio keeps 0 to {MAX_SCALE} decimals, not {places}")
    # n / d × 10**places = (N / 10**sn) / (D / 10**sd) × 10**places = N × 10**shift / D
    shift = places + denominator.scale - numerator.scale
    top = _at_scale(numerator, numerator.scale + shift) if shift >= 0 else numerator
    bottom = _at_scale(denominator, denominator.scale - shift) if shift < 0 else denominator
    dividend, divisor = _wide(top.value), _wide(bottom.value)
    # a positive divisor: floor division and its remainder then round like the true quotient
    negative = divisor < 0
    dividend = pl.when(negative).then(0 - dividend).otherwise(dividend)
    divisor = pl.when(negative).then(0 - divisor).otherwise(divisor)
    zero = (divisor == 0).fill_null(False)
    safe_divisor = pl.when(zero).then(pl.lit(1, pl.Int128)).otherwise(divisor)
    quotient = dividend // safe_divisor
    twice_remainder = 2 * (dividend % safe_divisor)
    away = (twice_remainder > safe_divisor) | ((twice_remainder == safe_divisor) & (quotient % 2 != 0))
    rounded = quotient + away.cast(pl.Int128)
    # |round(M / D)| <= |M| for an integer D >= 1
    return _number(rounded, top.needs_record | bottom.needs_record | zero, places, top.bound, wide=True)


def ratio_is_exact(numerator: ColumnExpression, denominator: ColumnExpression, places: int,
                   quotient: pl.Expr) -> pl.Expr:
    """The rows where :func:`ratio_by_columns` did not round: ``quotient`` (its value) times the denominator is
    the numerator, at ``places`` (``money.ratio`` then keeps the quotient as the division writes it, with an
    exponent of its own). A product, not a second division: the rounded quotient is within half a divisor of
    the exact one, so the product stays within Int128 where the operands are within :data:`MAX_UNITS`."""
    shift = places + denominator.scale - numerator.scale
    top = _at_scale(numerator, numerator.scale + shift) if shift >= 0 else numerator
    bottom = _at_scale(denominator, denominator.scale - shift) if shift < 0 else denominator
    return _wide(quotient) * _wide(bottom.value) == _wide(top.value)


# --- building blocks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Items:
    """A list literal on the right of ``in``: its items, each evaluated whenever the list is."""

    items: tuple[ColumnExpression, ...]
    needs_record: pl.Expr


_TRUE = pl.lit(True)
_FALSE = pl.lit(False)
_MAX_UNITS = pl.lit(MAX_UNITS, pl.Int128)
_ZERO = Decimal(0)
_ONE = Decimal(1)


def _wide(value: pl.Expr) -> pl.Expr:
    return value.cast(pl.Int128)


def _int128(value: int) -> pl.Expr:
    return pl.lit(value, pl.Int128)


def _number(value: pl.Expr, needs_record: pl.Expr, scale: int, bound: int, *, wide: bool) -> ColumnExpression:
    """A number; its dtype is Int128 when asked or when ``bound`` does not fit Int64."""
    if scale > MAX_SCALE:
        raise NotByColumns(f"a number with more than {MAX_SCALE} decimals")
    if wide or bound > _INT64_MAX:
        return ColumnExpression(_wide(value), needs_record, Kind.NUMBER, scale, bound, wide=True)
    return ColumnExpression(value, needs_record, Kind.NUMBER, scale, bound)


def _without_none(value: ColumnExpression) -> ColumnExpression:
    """``value`` where only a comparison can read ``None``: the rows holding it are flagged (the closures raise
    wherever else a ``None`` is read)."""
    if not value.none:
        return value
    return ColumnExpression(value.value, value.needs_record | value.value.is_null(), value.kind)


def _none_flags(*values: ColumnExpression | _Items) -> pl.Expr:
    """The rows where one of ``values`` is ``None``: where an ordering or a text search raises."""
    return _any([value.value.is_null() for value in values if isinstance(value, ColumnExpression) and value.none])


def _fails() -> ColumnExpression:
    return ColumnExpression(pl.lit(None), _TRUE, Kind.FAILS)


def _guarded(value: pl.Expr, needs_record: pl.Expr, scale: int, bound: int, wide: bool) -> ColumnExpression:
    """``value`` as a number; a row beyond :data:`MAX_UNITS` is flagged (and zeroed) when ``bound`` allows one."""
    if bound <= MAX_UNITS:
        return _number(value, needs_record, scale, bound, wide=wide)
    too_large = (value.abs() > _MAX_UNITS).fill_null(False)
    return _number(pl.when(too_large).then(0).otherwise(value), needs_record | too_large, scale, MAX_UNITS,
                   wide=True)


def _times_constant(number: ColumnExpression, factor: int, *, scale: int) -> ColumnExpression:
    """``number``'s minor units × ``factor`` (a power of ten), read at ``scale``."""
    if factor == 1:
        return number
    wide = factor > _INT64_MAX
    constant = _number(pl.lit(factor, pl.Int128 if wide else pl.Int64), _FALSE, 0, factor, wide=wide)
    return _product(number, constant, scale=scale)


def _product(a: ColumnExpression, b: ColumnExpression, *, scale: int) -> ColumnExpression:
    bound = a.bound * b.bound
    needs_record = a.needs_record | b.needs_record
    wide = a.wide or b.wide or bound > _INT64_MAX
    if bound <= MAX_UNITS:
        left, right = (_wide(a.value), _wide(b.value)) if wide else (a.value, b.value)
        return _number(left * right, needs_record, scale, bound, wide=wide)
    left, right = _wide(a.value), _wide(b.value)
    # checked before multiplying, since a product beyond Int128 wraps: |a × b| <= M  <=>  |b| <= M // |a|
    too_large = (right.abs() > _MAX_UNITS // pl.max_horizontal(left.abs(), pl.lit(1, pl.Int128))).fill_null(False)
    return _number(pl.when(too_large).then(0).otherwise(left * right), needs_record | too_large, scale, MAX_UNITS,
                   wide=True)


def _at_scale(number: ColumnExpression, scale: int) -> ColumnExpression:
    return _times_constant(number, 10 ** (scale - number.scale), scale=scale)


def _aligned(numbers: Sequence[ColumnExpression]) -> list[ColumnExpression]:
    """The numbers at their largest scale, all of one dtype."""
    scale = max(number.scale for number in numbers)
    rescaled = [_at_scale(number, scale) for number in numbers]
    if any(number.wide for number in rescaled):
        return [_number(number.value, number.needs_record, scale, number.bound, wide=True) for number in rescaled]
    return rescaled


def _literal_number(value: Decimal, offset: int) -> ColumnExpression:
    if not value.is_finite():
        raise NotByColumns(f"the number {value} has no minor units", offset)
    scale = max(0, -int(value.as_tuple().exponent))  # a finite number's exponent is an int
    if scale > MAX_SCALE:
        raise NotByColumns(f"the number {value} has more than {MAX_SCALE} decimals", offset)
    units = int(value.scaleb(scale, EXACT))
    if abs(units) > MAX_UNITS:
        raise NotByColumns(f"the number {value} is too large for 128-bit minor units", offset)
    dtype = pl.Int128 if abs(units) > _INT64_MAX else pl.Int64
    return _number(pl.lit(units, dtype), _FALSE, scale, abs(units), wide=dtype is pl.Int128)


def _constant(value: object, offset: int) -> ColumnExpression | _Items:
    if type(value) is Decimal:
        return _literal_number(value, offset)
    if type(value) is str:
        return ColumnExpression(pl.lit(value, pl.String), _FALSE, Kind.TEXT)
    if type(value) is bool:
        return ColumnExpression(pl.lit(value, pl.Boolean), _FALSE, Kind.BOOLEAN)
    if type(value) is tuple:
        items = []
        for item in value:
            compiled = _constant(item, offset)
            if isinstance(compiled, _Items):
                raise NotByColumns("a list inside a list", offset)
            items.append(compiled)
        return _Items(tuple(items), _FALSE)
    raise NotByColumns(f"a constant {type(value).__name__} is not computed by columns", offset)


def _reads_no_name(node: Node) -> bool:
    match node:
        case Name():
            return False
        case ListLiteral(items=parts) | BoolOp(operands=parts) | Call(args=parts):
            return all(map(_reads_no_name, parts))
        case Unary(operand=operand):
            return _reads_no_name(operand)
        case Binary(left=left, right=right):
            return _reads_no_name(left) and _reads_no_name(right)
        case Compare(left=left, comparators=comparators):
            return _reads_no_name(left) and all(map(_reads_no_name, comparators))
        case If(condition=condition, then=then, otherwise=otherwise):
            return all(map(_reads_no_name, (condition, then, otherwise)))
    return True


# --- division ----------------------------------------------------------------------------------

#: The most decimals a quotient by columns has: the rest of MAX_SCALE is left for a product with a rate or a
#: percentage (``win_rate * 2.5%``, ``0.0125 * mix``), whose scale is the sum of its operands'.
QUOTIENT_SCALE = MAX_SCALE - 5
#: The largest |divisor| in minor units the long division takes: a remainder below it, times 10**9, fits Int128.
_LONG_DIVISOR = 10**29
_INT128_MAX = 2**127 - 1


def _division_digits(offset: int) -> int:
    """The significant digits the closures' ``/`` keeps: the current decimal context's precision.

    Only a context that rounds half-even and traps neither ``Inexact`` nor ``Rounded`` (the default's rules)
    is emulated, with at most 36 digits (10**prec stays below MAX_UNITS).
    """
    context = getcontext()
    if context.rounding != ROUND_HALF_EVEN or context.traps[Inexact] or context.traps[Rounded]:
        raise NotByColumns("'/' by columns follows a decimal context that rounds half-even and traps no "
                           "inexact quotient", offset)
    if not 1 <= context.prec <= 36:
        raise NotByColumns(f"'/' by columns keeps 1 to 36 significant digits, not the context's {context.prec}",
                           offset)
    return context.prec


def _quotient(a: ColumnExpression, b: ColumnExpression, node: Binary,
              digits: int) -> tuple[ColumnExpression, pl.Expr]:
    """``a / b`` as the closures divide: the quotient rounded half-even to ``digits`` significant digits (the
    context's); and the rows where it is exact (no digit rounded off), meaningful where it is not flagged.

    A constant divisor whose reciprocal ends (``/ 1000``, ``/ 8``) is a product with that reciprocal, exact
    at ``a``'s scale plus the reciprocal's; a row is flagged where the product has more significant digits
    than the context keeps (so every other row is exact). Any other divisor: :func:`_long_quotient`. A row
    dividing by 0 is flagged (the closures raise).
    """
    known, divisor = constant_value(node.right) if _reads_no_name(node.right) else (False, None)
    if known and type(divisor) is Decimal and divisor.is_finite() and divisor and _reciprocal_ends(divisor):
        reciprocal = _literal_number(EXACT.divide(_ONE, divisor), node.offset)
        if a.scale + reciprocal.scale > MAX_SCALE:
            raise NotByColumns(f"a quotient with more than {MAX_SCALE} decimals", node.offset)
        product = _product(a, reciprocal, scale=a.scale + reciprocal.scale)
        if product.bound < 10**digits:
            return product, _TRUE
        rounded_per_record = (_wide(product.value).abs() >= pl.lit(10**digits, pl.Int128)).fill_null(False)
        return _number(product.value, product.needs_record | rounded_per_record, product.scale,
                       min(product.bound, 10**digits), wide=product.wide), _TRUE
    return _long_quotient(a, b, digits, _positive_floor(node.right))


def _reciprocal_ends(divisor: Decimal) -> bool:
    """Whether ``1 / divisor`` has finitely many decimals: its coefficient has no prime factor but 2 and 5."""
    coefficient = int(divisor.scaleb(-int(divisor.as_tuple().exponent), EXACT).copy_abs())
    for prime in (2, 5):
        while coefficient % prime == 0:
            coefficient //= prime
    return coefficient == 1


def _positive_floor(node: Node) -> Decimal:
    """A number the value of ``node`` is known to reach at least, when that is positive (else 0):
    ``max(deals, 1)`` is at least 1, which bounds the quotients it divides."""
    if _reads_no_name(node):
        known, value = constant_value(node)
        return value if known and type(value) is Decimal and value.is_finite() and value > 0 else _ZERO
    if isinstance(node, Call) and node.function in ("min", "max") and node.args:
        floors = [_positive_floor(arg) for arg in node.args]
        return max(floors) if node.function == "max" else min(floors)
    return _ZERO


def _long_quotient(a: ColumnExpression, b: ColumnExpression, digits: int,
                   divisor_floor: Decimal) -> tuple[ColumnExpression, pl.Expr]:
    """``a / b`` to ``digits`` significant digits, half-even, by integers, at one scale for the whole column; and
    the rows where it is exact (nothing rounded off: no remainder, and no digit of ``W`` beyond ``digits``).

    The scale ``S`` is the largest (up to :data:`QUOTIENT_SCALE`) at which the quotients the bounds allow stay
    within MAX_UNITS. Each row divides ``|A| × 10**z`` by ``|B|`` (``z`` aligns the scales to ``S``) in steps
    that keep the remainder × 10**m within Int128 (long division), giving the quotient's integer part ``W`` at
    ``S`` and a remainder. Where ``W`` has at least ``digits`` digits, the quotient's last kept digit is at or
    above ``10**-S``: ``W`` is rounded half-even to ``digits`` significant digits (the remainder breaks a tie).
    Where it has fewer, the quotient keeps digits below ``10**-S``: exact (no remainder) it is ``W``, else the
    row is flagged. Flagged too: a divisor of 0, beyond :data:`_LONG_DIVISOR` units, or a quotient beyond
    MAX_UNITS at ``S``. Each intermediate value is referred to a few times only: polars plans an expression
    as a tree, so a value used twice at every step would double the plan at every step.
    """
    divisor_units_floor = max(1, math.ceil(divisor_floor.scaleb(b.scale, EXACT)))
    # z = S + b.scale - a.scale <= 37 keeps 10**z below Int128's largest value
    scale = max(0, min(QUOTIENT_SCALE, 37 + a.scale - b.scale))
    while scale > 0 and a.bound * 10 ** max(0, scale + b.scale - a.scale) > MAX_UNITS * divisor_units_floor:
        scale -= 1
    shift = scale + b.scale - a.scale  # |A| × 10**shift / |B| is the quotient's minor units at ``scale``
    dividend, divisor = _wide(a.value).abs(), _wide(b.value).abs()
    divisor_bound = max(1, b.bound)
    flagged = a.needs_record | b.needs_record | (divisor == 0).fill_null(False)
    if divisor_bound > _LONG_DIVISOR:
        too_long = divisor > _int128(_LONG_DIVISOR)
        flagged = flagged | too_long.fill_null(False)
        divisor = pl.when(too_long).then(_int128(1)).otherwise(divisor)
        divisor_bound = _LONG_DIVISOR
    if shift < 0:
        if divisor_bound * 10**-shift > _LONG_DIVISOR:
            raise NotByColumns("a quotient whose divisor is too large for 128-bit minor units at its scale")
        divisor, divisor_bound, shift = divisor * _int128(10**-shift), divisor_bound * 10**-shift, 0
    divisor = pl.when(divisor == 0).then(_int128(1)).otherwise(divisor)
    # W < (|A| // |B| + 1) × 10**z: below this limit on |A| // |B| no step wraps; at or above it W is beyond
    # MAX_UNITS, and the row (its dividend zeroed) is flagged
    limit = _INT128_MAX // 10**shift
    too_large = (dividend // divisor >= _int128(limit)).fill_null(False)
    dividend = pl.when(too_large).then(_int128(0)).otherwise(dividend)
    whole, remainder = dividend // divisor, dividend % divisor
    step = len(str(_INT128_MAX // divisor_bound)) - 1  # remainder × 10**step stays within Int128
    while shift > 0:
        places = min(step, shift)
        widened = remainder * _int128(10**places)
        whole, remainder = whole * _int128(10**places) + widened // divisor, widened % divisor
        shift -= places
    # the digits of W beyond ``digits`` significant ones, as a power of ten (1 when it has no more)
    length = whole.cast(pl.String).str.len_chars()
    beyond_digits = range(digits + 1, len(str(_INT128_MAX)) + 1)
    dropped = length.replace_strict(
        pl.Series(list(beyond_digits), dtype=pl.UInt32),
        pl.Series([10 ** (extra - digits) for extra in beyond_digits], dtype=pl.Int128),
        default=_int128(1), return_dtype=pl.Int128)
    kept, beyond = whole // dropped, whole % dropped
    inexact = remainder != 0
    away = pl.when(dropped == 1).then(
        (2 * remainder > divisor) | ((2 * remainder == divisor) & (kept % 2 != 0))
    ).otherwise((2 * beyond > dropped) | ((2 * beyond == dropped) & (inexact | (kept % 2 != 0))))
    magnitude = (kept + away.cast(pl.Int128)) * dropped
    # fewer digits than kept at ``scale`` (W = 0 has none): the quotient's last digit lies below 10**-scale
    # unless it is exact
    unrepresentable = ((length < digits) | (whole == 0)) & inexact
    # W beyond MAX_UNITS is flagged before its rounding is read: rounding up near Int128's end would wrap
    too_large = too_large | (whole > _MAX_UNITS) | (magnitude > _MAX_UNITS)
    negative = (_wide(a.value) < 0) != (_wide(b.value) < 0)
    value = pl.when(negative).then(0 - magnitude).otherwise(magnitude)
    bound = min(MAX_UNITS, a.bound * 10 ** max(0, scale + b.scale - a.scale) // divisor_units_floor + 1)
    bound += bound // 10 ** (digits - 1)  # rounding up to ``digits`` digits adds at most one in their last place
    exact = (remainder == 0) & (beyond == 0)
    return _number(value, flagged | (unrepresentable | too_large).fill_null(False), scale, min(bound, MAX_UNITS),
                   wide=True), exact


# --- comparisons -------------------------------------------------------------------------------

_ORDERINGS = {"<": pl.Expr.__lt__, "<=": pl.Expr.__le__, ">": pl.Expr.__gt__, ">=": pl.Expr.__ge__}
_ORDERED_KINDS = frozenset({Kind.NUMBER, Kind.TEXT, Kind.DATE})


def _equal(a: ColumnExpression, b: ColumnExpression) -> tuple[pl.Expr, pl.Expr]:
    """``a == b`` as the closures see it (values of different kinds are unequal), and the rows it flags."""
    if a.kind is not b.kind or a.kind is Kind.FAILS:
        return _FALSE, _FALSE
    if a.none or b.none:
        return a.value.eq_missing(b.value), _FALSE  # None equals None only
    if a.kind is Kind.NUMBER:
        left, right = _aligned([a, b])
        return left.value == right.value, left.needs_record | right.needs_record
    return a.value == b.value, _FALSE


def _check(op: str, a: ColumnExpression | _Items, b: ColumnExpression | _Items, offset: int) -> tuple[pl.Expr, pl.Expr]:
    """One comparison of a chain: whether it holds, and the rows where it raises or is flagged."""
    if isinstance(a, _Items):
        raise NotByColumns("a list on the left of a comparison", offset)
    if op in ("in", "not in"):
        holds, flagged = _contains(a, b, offset)
        return (~holds if op == "not in" else holds), flagged
    if isinstance(b, _Items):
        raise NotByColumns(f"a list compared with '{op}'", offset)
    if op in ("==", "!="):
        equal, flagged = _equal(a, b)
        return (~equal if op == "!=" else equal), flagged
    if a.kind is not b.kind or a.kind not in _ORDERED_KINDS:
        return _FALSE, _TRUE  # the closures raise: only two numbers, two texts or two dates are ordered
    if a.kind is Kind.NUMBER:
        left, right = _aligned([a, b])
        return _ORDERINGS[op](left.value, right.value), left.needs_record | right.needs_record
    return _ORDERINGS[op](a.value, b.value).fill_null(False), _none_flags(a, b)


def _contains(a: ColumnExpression, b: ColumnExpression | _Items, offset: int) -> tuple[pl.Expr, pl.Expr]:
    if isinstance(b, _Items):
        checks = [_equal(a, item) for item in b.items]
        if not checks:
            return _FALSE, _FALSE
        return (pl.any_horizontal([equal for equal, _ in checks]),
                pl.any_horizontal([flagged for _, flagged in checks]))
    if b.kind is Kind.TEXT and a.kind is Kind.TEXT:
        return b.value.str.contains(a.value, literal=True).fill_null(False), _none_flags(a, b)
    return _FALSE, _TRUE  # the closures raise: only text is found in text, and lists are looked in


# --- the compiler ------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, columns: Mapping[str, Column], values: Mapping[str, ColumnExpression]):
        self.columns = columns
        self.values = values

    def compile(self, node: Node) -> ColumnExpression | _Items:
        if not isinstance(node, (Literal, ListLiteral)) and _reads_no_name(node):
            # folded as the closures fold it, so a constant quotient like 1/3 has their digits
            known, value = constant_value(node)
            return _constant(value, node.offset) if known else _fails()
        match node:
            case Literal(value=value):
                return _constant(value, node.offset)
            case ListLiteral(items=items):
                parts = [self.value(item) for item in items]
                return _Items(tuple(parts), _any([part.needs_record for part in parts]))
            case Name(name=name):
                return self.name(name)
            case Unary():
                return self.unary(node)
            case Binary():
                return self.binary(node)
            case BoolOp():
                return self.boolean(node)
            case Compare():
                return self.compare(node)
            case Call():
                return self.call(node)
            case If():
                return self.choose(node)
        raise TypeError(f"not an expression node: {node!r}")

    def value(self, node: Node) -> ColumnExpression:
        """A node that must be a single value, not a list (nor ``None``: only a comparison reads it)."""
        compiled = self.compile(node)
        if isinstance(compiled, _Items):
            raise NotByColumns("a list is a value only on the right of 'in' / 'not in'", node.offset)
        return _without_none(compiled)

    def name(self, name: str) -> ColumnExpression:
        value = self.values.get(name)
        if value is not None:
            return value
        column = self.columns.get(name)
        if column is None:
            return _fails()
        value, missing = pl.col(name), pl.col(name).is_null()
        if column.kind is Kind.NUMBER:
            return _number(value, missing, column.scale, column.bound, wide=False)
        if column.none:
            return ColumnExpression(value, _FALSE, column.kind, none=True)
        return ColumnExpression(value, missing, column.kind)

    def unary(self, node: Unary) -> ColumnExpression:
        operand = self.value(node.operand)
        if node.op == "not":
            if operand.kind is not Kind.BOOLEAN:
                return _fails()
            return ColumnExpression(~operand.value, operand.needs_record, Kind.BOOLEAN)
        if operand.kind is not Kind.NUMBER:
            return _fails()
        if node.op == "+":
            return operand
        # 0 - x: polars has no negation of Int128. -(-2**63) fits: a bound beyond Int64 is always Int128
        return _number(0 - operand.value, operand.needs_record, operand.scale, operand.bound, wide=operand.wide)

    def binary(self, node: Binary) -> ColumnExpression:
        # a context the columns cannot divide in is refused whatever the operands, so when a program is compiled
        digits = _division_digits(node.offset) if node.op == "/" else 0
        a, b = self.value(node.left), self.value(node.right)
        if a.kind is not Kind.NUMBER or b.kind is not Kind.NUMBER:
            return _fails()
        if node.op == "/":
            quotient, _ = _quotient(a, b, node, digits)
            return quotient
        if node.op == "*":
            if a.scale + b.scale > MAX_SCALE:
                raise NotByColumns(f"a product with more than {MAX_SCALE} decimals", node.offset)
            return _product(a, b, scale=a.scale + b.scale)
        left, right = _aligned([a, b])
        bound = left.bound + right.bound
        wide = left.wide or bound > _INT64_MAX
        x, y = (_wide(left.value), _wide(right.value)) if wide else (left.value, right.value)
        total = x + y if node.op == "+" else x - y
        return _guarded(total, left.needs_record | right.needs_record, left.scale, bound, wide)

    def boolean(self, node: BoolOp) -> ColumnExpression:
        # 'and' goes on while operands are true, 'or' while they are false; an operand is only
        # evaluated (and can only raise) on the rows that reach it
        go_on_while = node.op == "and"
        reached: pl.Expr = _TRUE
        flagged: pl.Expr = _FALSE
        for part in node.operands:
            operand = self.value(part)
            if operand.kind is not Kind.BOOLEAN:
                # every row that reaches it raises; one that stopped before has the value it stopped at
                return ColumnExpression(pl.lit(not go_on_while), flagged | reached, Kind.BOOLEAN)
            flagged = flagged | (reached & operand.needs_record)
            reached = reached & (operand.value if go_on_while else ~operand.value)
        return ColumnExpression(reached if go_on_while else ~reached, flagged, Kind.BOOLEAN)

    def compare(self, node: Compare) -> ColumnExpression:
        # Python's chain: a < b < c is a < b and b < c, each operand evaluated once, c only when a < b
        left = self.compile(node.left)
        flagged = left.needs_record
        reached: pl.Expr = _TRUE
        for op, part in zip(node.ops, node.comparators, strict=True):
            right = self.compile(part)
            holds, check_flags = _check(op, left, right, node.offset)
            flagged = flagged | (reached & (right.needs_record | check_flags))
            reached = reached & holds
            left = right
        return ColumnExpression(reached, flagged, Kind.BOOLEAN)

    def call(self, node: Call) -> ColumnExpression:
        args = [self.value(arg) for arg in node.args]
        if node.function == "abs" and len(args) != 1 or not args:
            raise NotByColumns(f"{node.function}() with {len(args)} arguments", node.offset)
        if any(arg.kind is not Kind.NUMBER for arg in args):
            return _fails()
        if node.function == "abs":
            (number,) = args
            return _number(number.value.abs(), number.needs_record, number.scale, number.bound, wide=number.wide)
        aligned = _aligned(args)
        pick = pl.min_horizontal if node.function == "min" else pl.max_horizontal
        return _number(pick([number.value for number in aligned]), _any([n.needs_record for n in aligned]),
                       aligned[0].scale, max(number.bound for number in aligned), wide=aligned[0].wide)

    def choose(self, node: If) -> ColumnExpression:
        if _reads_no_name(node.condition):
            # a constant condition takes one branch on every row: the other is never evaluated
            known, chosen = constant_value(node.condition)
            if known and type(chosen) is bool:
                return self.value(node.then if chosen else node.otherwise)
            return _fails()
        condition = self.value(node.condition)
        if condition.kind is not Kind.BOOLEAN:
            return _fails()
        then, otherwise = self.value(node.then), self.value(node.otherwise)
        if then.kind is Kind.FAILS or otherwise.kind is Kind.FAILS:
            kind = otherwise.kind if then.kind is Kind.FAILS else then.kind
        elif then.kind is not otherwise.kind:
            raise NotByColumns(f"if() gives a {then.kind.value} or a {otherwise.kind.value}: "
                               "a column has one kind", node.offset)
        else:
            kind = then.kind
        if kind is Kind.NUMBER and then.kind is otherwise.kind:
            then, otherwise = _aligned([then, otherwise])
        taken = condition.value
        flagged = condition.needs_record | (taken & then.needs_record) | (~taken & otherwise.needs_record)
        value = pl.when(taken).then(then.value).otherwise(otherwise.value)
        if kind is Kind.NUMBER:
            number = then if then.kind is Kind.NUMBER else otherwise
            bound = max(branch.bound for branch in (then, otherwise) if branch.kind is Kind.NUMBER)
            return _number(value, flagged, number.scale, bound, wide=number.wide)
        return ColumnExpression(value, flagged, kind)


def _any(flags: Sequence[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal(flags) if flags else _FALSE
