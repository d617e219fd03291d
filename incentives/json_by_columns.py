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
  Python's exact decimal arithmetic (the closures compute in ``money.EXACT``): a
  sum keeps the most decimals of its terms, a product the sum of its factors'.

Where the per-record text cannot be known exactly by columns — an exponent
``str()`` writes in scientific notation (``1E-7``), a negative zero, an
expression whose exponent is not followed (``min``, ``if``...) — the rows are
reported, for the caller to send through the per-record path.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

import polars as pl
import pydantic_core

from .rules.ast import Binary, Call, Name, Node, Unary
from .rules.closures import constant_value
from .rules.columns import Column, compile_columns

__all__ = ["Written", "constant", "decimal", "string", "written"]


def constant(value: Any) -> str:
    """The JSON text of ``value`` as pydantic writes it in a result (``str(Decimal)`` for a decimal)."""
    return pydantic_core.to_json(value).decode()


#: What pydantic escapes in a string: each character and its escape, the backslash first (the escapes add some)
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), *((chr(code), constant(chr(code))[1:-1]) for code in range(32)))
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def string(text: pl.Expr) -> pl.Expr:
    """The JSON string of each row's text, between its quotes (null for a null text)."""
    escaped = text
    for character, escape in _ESCAPES:
        escaped = escaped.str.replace_all(character, escape, literal=True)
    return pl.concat_str([pl.lit('"'), pl.when(text.str.contains(_NEEDS_ESCAPE)).then(escaped).otherwise(text),
                          pl.lit('"')])


#: ``str(Decimal)`` switches to scientific notation below this adjusted exponent (Python's rule: ``1E-7``)
_SMALLEST_PLAIN_ADJUSTED = -6


def decimal(units: pl.Expr, scale: int, decimals: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The JSON of ``str(Decimal)`` of each row's number, ``units`` at ``scale``, written with ``decimals``
    decimals (an integer expression, ``0 <= decimals <= scale``; the digits of ``units`` beyond them are zeros):
    ``"1018405.61"``, ``"-5"``. And the rows ``str()`` writes in scientific notation (a zero with more than six
    decimals, a nonzero number below 10**-6 in magnitude), whose text here is not the per-record one."""
    magnitude = units.cast(pl.Int128).abs()
    sign = pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if scale == 0:
        digits = magnitude.cast(pl.String)
    else:
        unit = pl.lit(10**scale, pl.Int128)
        fraction = (magnitude % unit + unit).cast(pl.String).str.slice(1).str.head(decimals)
        digits = pl.concat_str([(magnitude // unit).cast(pl.String),
                                pl.when(decimals > 0).then(pl.concat_str([pl.lit("."), fraction]))
                                .otherwise(pl.lit(""))])
    scientific = (units == 0) & (decimals > -_SMALLEST_PLAIN_ADJUSTED)
    if scale > -_SMALLEST_PLAIN_ADJUSTED:
        scientific = scientific | ((units != 0)
                                   & (magnitude < pl.lit(10 ** (scale + _SMALLEST_PLAIN_ADJUSTED), pl.Int128)))
    return pl.concat_str([pl.lit('"'), sign, digits, pl.lit('"')]), scientific


@dataclass(frozen=True)
class Written:
    """How the per-record ``Decimal`` of an expression is written, per row: its ``decimals`` (an integer
    expression), and the ``unknown`` rows (a Boolean expression), where its exponent or sign is not followed."""

    decimals: pl.Expr
    unknown: pl.Expr


def written(node: Node, columns: Mapping[str, Column], facts: Mapping[str, Written]) -> Written | None:
    """The decimals of ``node``'s per-record value (metrics inlined), from each fact's (``facts``: a fact as
    read keeps its decimals); ``None``: the expression is not followed (its rows are not by columns).

    The closures compute ``+``, ``-``, ``*``, unary signs and ``abs`` exactly (``money.EXACT``): a sum or
    difference has the larger of its operands' decimals, a product their sum. A product is a negative zero
    where a factor is zero and the other negative (``str()`` writes ``-0``): those rows are unknown.
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
            return written(operand, columns, facts)
        case Binary(op="+" | "-" | "*", left=left, right=right):
            left_written, right_written = written(left, columns, facts), written(right, columns, facts)
            if left_written is None or right_written is None:
                return None
            unknown = left_written.unknown | right_written.unknown
            if node.op != "*":
                return Written(pl.max_horizontal(left_written.decimals, right_written.decimals), unknown)
            left_value, right_value = compile_columns(left, columns).value, compile_columns(right, columns).value
            negative_zero = ((left_value == 0) | (right_value == 0)) & ((left_value < 0) | (right_value < 0))
            return Written(left_written.decimals + right_written.decimals, unknown | negative_zero.fill_null(True))
    return None
