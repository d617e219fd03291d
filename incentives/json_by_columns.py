"""JSON texts by columns: the pieces of a ``results.jsonl`` line as pydantic writes them.

``output.files.result_json`` writes a result with pydantic's serializer: compact,
strings escaped as JSON requires and nothing more (``"`` and ``\\`` escaped, the
control characters U+0000..U+001F as ``\\n``, ``\\t``… or ``\\u00XX``; U+007F and
every non-ASCII character written as they are, in UTF-8), a ``Decimal`` as the
string ``str()`` gives it. The functions here give those texts over polars
expressions, so a row computed by columns writes the bytes the per-record result
writes:

* :func:`constant` — the JSON of a Python value, from pydantic itself (the program's ids, rates, texts);
* :func:`string` — the JSON of each row's text (escaped only on the rows that need it);
* :func:`decimal` — the JSON of a number given as minor units *and* the decimals the
  per-record ``Decimal`` is written with: unlike a CSV cell, ``str(Decimal)`` shows
  the exponent (``14010.00000``, ``0``, ``0.10``), so a number's JSON needs it;
* :func:`written` — those decimals for an expression, per row, by the rules of
  Python's decimal arithmetic: exact for ``+ - *`` (the closures compute in
  ``money.EXACT``: a sum keeps the most decimals of its terms, a product the sum
  of its factors'), and for ``/`` the ideal exponent of a quotient, or the
  context's significant digits of one that is rounded.

Where the per-record text cannot be known exactly by columns — an exponent
``str()`` writes in scientific notation (``1E-7``), a negative zero, an
expression whose exponent is not followed — the rows are reported, for the
caller to send through the per-record path.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, Sequence

import polars as pl
import pydantic_core

from .rules.ast import Binary, Call, If, Name, Node, Unary
from .rules.closures import constant_value
from .rules.columns import (MAX_SCALE, MAX_UNITS, Column, ColumnExpression, Kind, QuotientByColumns, compile_columns,
                            quotient_by_columns)

__all__ = ["Written", "constant", "decimal", "json_object", "quotient_written", "ratio_written", "string", "written"]


def constant(value: Any) -> str:
    """The JSON text of ``value`` as pydantic writes it in a result (``str(Decimal)`` for a decimal)."""
    return pydantic_core.to_json(value).decode()


def json_object(members: Sequence[tuple[str, pl.Expr]]) -> pl.Expr:
    """The JSON object of the given keys (constants) and each row's JSON values, in their order."""
    parts: list[pl.Expr] = []
    for index, (key, value) in enumerate(members):
        parts += [pl.lit(("{" if index == 0 else ",") + constant(key) + ":"), value]
    return pl.concat_str([*parts, pl.lit("}")]) if parts else pl.lit("{}")


_MEMBER = "text"


def string(text: pl.Expr) -> pl.Expr:
    """The JSON string of each row's text, between its quotes (``null`` for a null text).

    polars' JSON writer escapes a string as pydantic's does (``tests/test_json_by_columns.py`` holds it to
    pydantic over every character): the text is written as the one member of an object, then cut out of it.
    It reads ``text`` once, which a formula built of many expressions needs (polars would build it again for
    each use)."""
    return (pl.struct(text.alias(_MEMBER)).struct.json_encode()
            .str.strip_prefix(f'{{"{_MEMBER}":').str.strip_suffix("}"))


#: ``str(Decimal)`` switches to scientific notation below this adjusted exponent (Python's rule: ``1E-7``)
_SMALLEST_PLAIN_ADJUSTED = -6


def decimal(units: pl.Expr, scale: int, decimals: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The JSON of ``str(Decimal)`` of each row's number, ``units`` at ``scale``, written with ``decimals``
    decimals (an integer expression up to ``scale`` + :data:`MAX_SCALE`; the digits of ``units`` beyond them
    are zeros, and beyond ``scale`` it has zeros; negative: a positive exponent): ``"1018405.61"``, ``"-5"``, and
    a zero in scientific notation as ``str()`` writes it (``"0E-7"``, ``"0E+10"``). And the rows whose text here
    is not the per-record one: a nonzero number ``str()`` writes in scientific notation (below 10**-6 in
    magnitude, or with a positive exponent), or with more decimals than the text here has room for (beyond
    ``scale`` + :data:`MAX_SCALE`: a quotient's zeros multiplied by another's)."""
    magnitude = units.cast(pl.Int128).abs()
    exponent_of_zero = pl.when((units == 0) & (decimals < 0)).then(
        pl.concat_str([pl.lit('"0E+'), (-decimals).cast(pl.String), pl.lit('"')])).when(
        (units == 0) & (decimals > -_SMALLEST_PLAIN_ADJUSTED)).then(
        pl.concat_str([pl.lit('"0E-'), decimals.cast(pl.String), pl.lit('"')]))
    shown = decimals.clip(0)
    sign = pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    zeros = pl.lit("0" * MAX_SCALE)
    if scale == 0:
        whole, fraction = magnitude.cast(pl.String), zeros.str.head(shown)
    else:
        unit = pl.lit(10**scale, pl.Int128)
        whole = (magnitude // unit).cast(pl.String)
        fraction = pl.concat_str([(magnitude % unit + unit).cast(pl.String).str.slice(1), zeros]).str.head(shown)
    digits = pl.concat_str([whole, pl.when(shown > 0).then(pl.concat_str([pl.lit("."), fraction]))
                            .otherwise(pl.lit(""))])
    scientific = (units != 0) & ((decimals < 0) | (decimals > scale + MAX_SCALE))
    if scale > -_SMALLEST_PLAIN_ADJUSTED:
        scientific = scientific | ((units != 0)
                                   & (magnitude < pl.lit(10 ** (scale + _SMALLEST_PLAIN_ADJUSTED), pl.Int128)))
    return exponent_of_zero.otherwise(pl.concat_str([pl.lit('"'), sign, digits, pl.lit('"')])), scientific


@dataclass(frozen=True)
class Written:
    """How the per-record ``Decimal`` of an expression is written, per row: its ``decimals`` (an integer
    expression), and the ``unknown`` rows (a Boolean expression), where its exponent or sign is not followed."""

    decimals: pl.Expr
    unknown: pl.Expr


def written(node: Node, columns: Mapping[str, Column], facts: Mapping[str, Written],
            values: Mapping[str, ColumnExpression] | None = None) -> Written | None:
    """The decimals of ``node``'s per-record value (metrics inlined), from each fact's (``facts``: a fact as
    read keeps its decimals; a computed value of ``values``, ``this.*``, as written); ``None``: the expression
    is not followed (its rows are not by columns).

    The closures compute ``+``, ``-``, ``*``, unary signs and ``abs`` exactly (``money.EXACT``): a sum or
    difference has the larger of its operands' decimals, a product their sum. A product is a negative zero
    where a factor is zero and the other negative (``str()`` writes ``-0``): those rows are unknown. A
    quotient (``/``, in the decimal context): :func:`quotient_written`.
    """
    is_constant, value = constant_value(node)
    if is_constant:
        if type(value) is not Decimal:
            return None
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or exponent > 0 or (value.is_signed() and not value):
            return None
        return Written(pl.lit(-exponent, pl.Int32), pl.lit(False))
    match node:
        case Name(name=name):
            return facts.get(name)
        case Unary(op="-" | "+", operand=operand) | Call(function="abs", args=(operand,)):
            return written(operand, columns, facts, values)
        case Binary(op="+" | "-" | "*", left=left, right=right):
            left_written, right_written = written(left, columns, facts, values), written(right, columns, facts, values)
            if left_written is None or right_written is None:
                return None
            unknown = left_written.unknown | right_written.unknown
            if node.op != "*":
                return Written(pl.max_horizontal(left_written.decimals, right_written.decimals), unknown)
            left_value = compile_columns(left, columns, values).value
            right_value = compile_columns(right, columns, values).value
            negative_zero = ((left_value == 0) | (right_value == 0)) & ((left_value < 0) | (right_value < 0))
            return Written(left_written.decimals + right_written.decimals, unknown | negative_zero.fill_null(True))
        case Binary(op="/", left=left, right=right):
            left_written, right_written = written(left, columns, facts, values), written(right, columns, facts, values)
            if left_written is None or right_written is None:
                return None
            quotient = quotient_by_columns(node, columns, values)
            if quotient.value.kind is not Kind.NUMBER:
                return None
            return quotient_written(quotient, left_written, right_written)
        case Call(function="min" | "max" as function, args=args) if args:
            # Python's min() and max() return the first of the extreme values as it is: its decimals
            args_written = [written(arg, columns, facts, values) for arg in args]
            if any(arg_written is None for arg_written in args_written):
                return None
            compiled = [compile_columns(arg, columns, values) for arg in args]
            common = max(value.scale for value in compiled)
            if any(value.bound * 10 ** (common - value.scale) > MAX_UNITS for value in compiled):
                return None
            scaled = [value.value.cast(pl.Int128) * pl.lit(10 ** (common - value.scale), pl.Int128)
                      for value in compiled]
            decimals, unknown, best = args_written[0].decimals, args_written[0].unknown, scaled[0]
            for arg_written, value in zip(args_written[1:], scaled[1:]):
                beats = value > best if function == "max" else value < best
                decimals = pl.when(beats).then(arg_written.decimals).otherwise(decimals)
                unknown = pl.when(beats).then(arg_written.unknown).otherwise(unknown)
                best = pl.when(beats).then(value).otherwise(best)
            return Written(decimals, unknown.fill_null(True))
        case If(condition=condition, then=then, otherwise=otherwise):
            # the closures return the chosen branch's value as it is (a condition that is not a boolean raises:
            # those rows are flagged where the expression is compiled)
            then_written = written(then, columns, facts, values)
            otherwise_written = written(otherwise, columns, facts, values)
            if then_written is None or otherwise_written is None:
                return None
            chosen = compile_columns(condition, columns, values).value
            return Written(pl.when(chosen).then(then_written.decimals).otherwise(otherwise_written.decimals),
                           pl.when(chosen).then(then_written.unknown).otherwise(otherwise_written.unknown)
                           .fill_null(True))
    return None


def quotient_written(quotient: QuotientByColumns, numerator: Written, denominator: Written) -> Written:
    """How ``str()`` writes each row's per-record quotient ``n / d``
    (:func:`~incentives.rules.columns.quotient_by_columns`; ``numerator`` and ``denominator``: how ``n`` and
    ``d`` are written), by the decimal module's division (the General Decimal Arithmetic's *divide*, in a
    context of ``p`` = ``quotient.digits`` significant digits that rounds half-even), whose exponent ``str()``
    shows. With ``E`` = exp(n) − exp(d), the *ideal exponent*:

    * ``n`` zero: the quotient is a zero with exponent ``E`` (``0.00 / 4`` is ``0.00``, ``0 / 0.5`` is
      ``0E+1``), signed when the operands' signs differ (``0 / -4`` is ``-0``: ``str()`` writes the sign,
      unknown);
    * an exact quotient (its digits, trailing zeros dropped, number at most ``p``; the division rounded nothing)
      has the exponent nearest ``E`` that holds its digits in ``p``: ``max(min(e, E), a − p + 1)``, ``e`` the
      exponent of its digits without trailing zeros, ``a`` its adjusted exponent (the power of ten of its first
      digit). Trailing zeros are dropped down to ``E`` but no further (``10.00 / 4`` is ``2.50``, ``5 / 0.5``
      is ``1E+1``, ``1 / 8`` is ``0.125``), and kept where ``p`` digits do not reach ``E``;
    * an inexact one is rounded to ``p`` digits, zeros included: its exponent is ``a − p + 1``, ``a`` the
      rounded quotient's adjusted exponent (``2 / 3`` is ``0.6666666666666666666666666667``).

    A quotient by columns is ``U`` minor units at a scale ``S`` (``U`` has ``L`` digits and ``z`` trailing
    zeros; an inexact one is flagged where its last digit is below ``10**-S``): ``a = L − 1 − S``, ``e = z − S``,
    so the decimals (−exponent) are ``min(max(S − z, −E), S + p − L)`` exact, ``S + p − L`` rounded. ``str()``
    writes some of them in scientific notation (a positive exponent, ``1E+1``; below ``10**-6``, ``1E-9``): those
    rows are reported by :func:`decimal`. Unknown: the rows where an operand's exponent is, and a negative zero.
    """
    # the quotient (a long division: a large plan) is read once, in a struct whose fields the rest is made of
    parts = pl.struct(quotient.value.value.cast(pl.Int128).abs().cast(pl.String).alias("digits"),
                      quotient.exact.alias("exact"), (quotient.numerator.value == 0).alias("zero"),
                      (numerator.decimals.cast(pl.Int32) - denominator.decimals.cast(pl.Int32)).alias("ideal"))
    length = pl.field("digits").str.len_chars().cast(pl.Int32)
    parts = parts.struct.with_fields(
        rounded=quotient.value.scale + quotient.digits - length,
        own=quotient.value.scale - length + pl.field("digits").str.strip_chars_end("0").str.len_chars().cast(pl.Int32))
    decimals = parts.struct.with_fields(decimals=pl.when(pl.field("zero")).then(pl.field("ideal"))
                                        .when(pl.field("exact")).then(
                                            pl.min_horizontal(pl.max_horizontal(pl.field("own"), pl.field("ideal")),
                                                              pl.field("rounded")))
                                        .otherwise(pl.field("rounded"))).struct.field("decimals")
    negative_zero = (quotient.numerator.value == 0) & (quotient.denominator.value < 0)
    unknown = numerator.unknown | denominator.unknown | negative_zero
    return Written(decimals, unknown.fill_null(True))


def ratio_written(units: pl.Expr, places: int, exact: pl.Expr, numerator_decimals: pl.Expr,
                  denominator_decimals: pl.Expr) -> Written:
    """How :func:`incentives.money.ratio` writes each row's quotient, ``units`` at ``places`` (``ratio_by_columns``):
    rounded (``exact`` false), with ``places`` decimals; exact, as the division writes it: its own decimals, and
    at least the numerator's less the denominator's (``Decimal``'s ideal exponent; a zero has exactly those).
    Unknown: an exact quotient the division would write with a positive exponent (``2E+2``) or with more than
    ``places`` + :data:`MAX_SCALE` decimals."""
    if places:
        unit = pl.lit(10**places, pl.Int128)
        magnitude = units.cast(pl.Int128).abs()
        own = (magnitude % unit + unit).cast(pl.String).str.slice(1).str.strip_chars_end("0").str.len_chars()
    else:
        own = pl.lit(0)
    ideal = numerator_decimals.cast(pl.Int32) - denominator_decimals.cast(pl.Int32)
    exact_decimals = pl.when(units == 0).then(ideal).otherwise(pl.max_horizontal(own.cast(pl.Int32), ideal))
    decimals = pl.when(exact).then(exact_decimals).otherwise(pl.lit(places, pl.Int32))
    # a positive exponent: a zero is written with it (decimal() writes it); a multiple of ten is written with
    # one when the ideal exponent is positive (2.0E+2), which is not followed
    multiple_of_ten = units.cast(pl.Int128) % pl.lit(10 ** (places + 1), pl.Int128) == 0
    unknown = exact & (((units != 0) & (ideal < 0) & multiple_of_ten) | (exact_decimals > places + MAX_SCALE))
    return Written(decimals.clip(upper_bound=places + MAX_SCALE), unknown.fill_null(True))
