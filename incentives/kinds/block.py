"""One program version over a block of partners, by columns: :class:`Evaluation`'s counterpart.

The columnar engine computes a block of partners at once (``incentives/columnar``).
A kind's calculator by columns and the shared steps by columns
(:mod:`incentives.kinds.steps_by_columns`) add their lines to a
:class:`BlockEvaluation`, which keeps, per row, the running total (integer minor
units at the program's places, ``Int128``), how many lines fired, and a flag: the
rows the columns cannot compute exactly, which the engine sends through the
per-record path. It lives apart from :mod:`incentives.kinds.base` so that the
per-record path never imports polars' expressions it does not use.

Every line is one "slot": a Boolean column says on which rows it fires, and its
cells (description, basis, rate, amount, formula) are String expressions, so a
row's lines are the slots that fire on it, numbered in slot order.

A slot also holds its ``results.jsonl`` texts that the CSV cells do not give:
the basis, rate and inputs as JSON (``str(Decimal)`` shows a number's exponent,
which a CSV cell does not), made with :mod:`incentives.json_by_columns`; the
kind sets the result's own JSON (``next_tier``, ``attainment``, its details).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Callable, Mapping, Sequence

import polars as pl

from .. import json_by_columns
from ..json_by_columns import Written
from ..claims_by_columns import ClaimsByColumns
from ..money_by_columns import format_amount, plain_amount, round_units
from ..money import EXACT, Rounding
from ..rules.ast import Name, Node
from ..rules.columns import MAX_UNITS, ColumnExpression, Kind, NotByColumns
from .base import MAX_COPIED_TEXT

#: The column of the running total (minor units at the program's places) and of the per-record flag.
TOTAL = "total"
NEEDS_RECORD = "needs_record"
#: The rows the steps compute: eligible and (so far) not flagged.
COMPUTING = "computing"
LINES_SO_FAR = "lines_so_far"


@dataclass(frozen=True, slots=True)
class LineSlot:
    """One line that fires on some rows of a block: ``fires`` names a Boolean column; the cells are String
    expressions (as :func:`incentives.output.files.line_row` reads them, before the CSV rule), ``n`` an
    integer expression, ``amount`` a column of minor units at the program's places; ``basis_json``,
    ``rate_json`` and ``inputs_json`` the line's JSON values (``null`` where it has none)."""

    fires: str
    n: str
    kind: str
    rule_id: pl.Expr
    description: pl.Expr
    basis: pl.Expr | None
    rate: pl.Expr | None
    amount: str
    formula: pl.Expr
    basis_json: pl.Expr
    rate_json: pl.Expr
    inputs_json: pl.Expr


@dataclass
class BlockEvaluation:
    """The state of one program version over a block while its steps run (see the module docstring).

    ``frame`` grows a column per step (lazy: polars computes each once); ``compile`` compiles an expression
    of the program (metrics and defaults resolved) over the block's columns, and ``written`` gives how its
    per-record value is written (:func:`incentives.json_by_columns.written`).
    """

    frame: pl.LazyFrame
    compile: Callable[[Node], ColumnExpression]
    written: Callable[[Node], Written | None]
    rounding: Rounding
    lines: list[LineSlot] = field(default_factory=list)
    #: The largest |total| any row can reach, in minor units: sizes the texts and keeps products in Int128.
    total_bound: int = 0
    #: The ``attainment`` cell of the payouts.csv row, a String expression a kind that has one sets (goal)
    attainment_text: pl.Expr | None = None
    #: The active fraction of a prorated program (``prorate_by``), a ratio at the ratio places per row (None:
    #: the program does not prorate); the rows of a fraction 0 are flagged (ineligible per record)
    fraction: ColumnExpression | None = None
    #: The program's own outcome (``this.tier``, ``this.base``, ...) as the step being added sees it: ``compile``
    #: reads these names from here (the base sets the tier and attainment, the steps the subtotals)
    own: dict[str, ColumnExpression] = field(default_factory=dict)
    #: how each of those values is written per record (a line's inputs show them in results.jsonl)
    own_written: dict[str, Written] = field(default_factory=dict)
    #: the decimals ``str()`` writes the fraction with per row (``1``: none; ``money.ratio``'s)
    fraction_decimals: pl.Expr | None = None
    #: The result's ``next_tier`` and ``attainment`` as JSON, String expressions a kind that has them sets
    #: (``null`` otherwise), and the kind's keys of its ``details`` (each ``,"key":value``)
    next_tier_json: pl.Expr | None = None
    attainment_json: pl.Expr | None = None
    details_json: pl.Expr | None = None
    #: The claims of the block's partners for the period (an MDF program's; None: none given)
    claims: ClaimsByColumns | None = None
    _columns: int = 0

    @property
    def places(self) -> int:
        return self.rounding.places

    def copy(self) -> BlockEvaluation:
        """A copy whose further steps leave this one as it is (its lines and outcomes are its own)."""
        return replace(self, lines=list(self.lines), own=dict(self.own), own_written=dict(self.own_written))

    def column(self, expression: pl.Expr, stem: str) -> str:
        """``expression`` computed once as a column of the frame; its (fresh) name."""
        self._columns += 1
        name = f"{stem}#{self._columns}"
        self.frame = self.frame.with_columns(expression.alias(name))
        return name

    def subtotal(self) -> pl.Expr:
        """The running total as it is now, kept in a column of its own (a line's texts are built after the
        last step, when :data:`TOTAL` has moved on)."""
        return pl.col(self.column(pl.col(TOTAL), "subtotal"))

    def subtotal_value(self) -> ColumnExpression:
        """:meth:`subtotal` as a number an expression reads (``this.subtotal``, ``this.base``)."""
        return ColumnExpression(self.subtotal(), pl.lit(False), Kind.NUMBER, self.places, self.total_bound, wide=True)

    def own_subtotal(self, *names: str) -> None:
        """``names`` (``this.subtotal``, ``this.base``) read the running total as it is now: its value, and how
        it is written per record (``Decimal(0)`` before any line, the places' decimals after)."""
        value = self.subtotal_value()
        decimals = pl.col(self.column(pl.when(pl.col(LINES_SO_FAR) == 0).then(pl.lit(0, pl.Int32))
                                      .otherwise(pl.lit(self.places, pl.Int32)), "subtotal_decimals"))
        for name in names:
            self.own[name] = value
            self.own_written[name] = Written(decimals, pl.lit(False))

    def flag(self, rows: pl.Expr) -> None:
        """The computing rows among ``rows`` need the per-record path (the per-record steps raise there)."""
        flagged = pl.col(COMPUTING) & rows.fill_null(True)
        self.frame = self.frame.with_columns((pl.col(NEEDS_RECORD) | flagged).alias(NEEDS_RECORD),
                                             (pl.col(COMPUTING) & ~flagged).alias(COMPUTING))

    def flag_unwritten(self, rows: pl.Expr) -> None:
        """``rows`` go per record, whether the steps compute them or not: their ``results.jsonl`` text is not
        known exactly by columns (an ineligible row's reasons included)."""
        flagged = rows.fill_null(True)
        self.frame = self.frame.with_columns((pl.col(NEEDS_RECORD) | flagged).alias(NEEDS_RECORD),
                                             (pl.col(COMPUTING) & ~flagged).alias(COMPUTING))

    def number(self, expression: ColumnExpression) -> ColumnExpression | None:
        """``expression`` where the per-record path needs a number: ``None`` (and every computing row flagged,
        as the per-record ``number()`` raises there) when it is no number."""
        if expression.kind is not Kind.NUMBER:
            self.flag(pl.lit(True))
            return None
        return expression

    def add_line(self, fires: pl.Expr, kind: str, rule_id: pl.Expr, description: pl.Expr, amount: pl.Expr,
                 amount_bound: int, formula: Callable[[pl.Expr], pl.Expr], *, basis: pl.Expr | None = None,
                 rate: pl.Expr | None = None, basis_json: pl.Expr | None = None, rate_json: pl.Expr | None = None,
                 inputs_json: pl.Expr | None = None) -> None:
        """A line on the computing rows where ``fires``: ``amount`` in minor units at the places (its bound
        ``amount_bound``), ``formula`` made from the amount's column. Adds it to the running total.
        ``basis_json``, ``rate_json``, ``inputs_json``: its JSON values (``null``, ``null``, ``{}`` if not given)."""
        fires_name = self.column(pl.col(COMPUTING) & fires.fill_null(False), "fires")
        amount_name = self.column(pl.when(pl.col(fires_name)).then(amount.cast(pl.Int128))
                                  .otherwise(pl.lit(0, pl.Int128)), "amount")
        n_name = self.column(pl.col(LINES_SO_FAR) + 1, "n")
        self.frame = self.frame.with_columns(
            (pl.col(TOTAL) + pl.col(amount_name)).alias(TOTAL),
            (pl.col(LINES_SO_FAR) + pl.col(fires_name).cast(pl.Int64)).alias(LINES_SO_FAR))
        self.total_bound += amount_bound
        if self.total_bound > MAX_UNITS:
            raise NotByColumns("amounts too large for 128-bit minor units")
        self.lines.append(LineSlot(fires_name, n_name, kind, rule_id, description, basis, rate, amount_name,
                                   formula(pl.col(amount_name)), _NULL if basis_json is None else basis_json,
                                   _NULL if rate_json is None else rate_json,
                                   pl.lit("{}") if inputs_json is None else inputs_json))

    # --- JSON texts of results.jsonl -------------------------------------------------------------

    def value_json(self, node: Node, rows: pl.Expr) -> pl.Expr:
        """The JSON of ``node``'s per-record value (a fact as read, a metric as computed) on ``rows``, which
        are flagged where it is not known exactly by columns: a number whose exponent is not followed or that
        ``str()`` writes in scientific notation, a text a result would copy cut (``kinds.base.copied``), a date
        before the year 1000. ``null`` where the value is missing."""
        value = self.compile(node)
        if value.kind is Kind.NUMBER:
            written = self.written(node)
            if written is None:
                self.flag_unwritten(rows)
                return _NULL
            self.flag_unwritten(rows & written.unknown)
            text = self.decimal_json(value.value, value.scale, written.decimals, rows)
        elif value.kind is Kind.BOOLEAN:
            text = pl.when(value.value).then(pl.lit("true")).otherwise(pl.lit("false"))
        elif value.kind is Kind.TEXT:
            text = json_by_columns.string(value.value)
            # a missing text (or a used tier that is None) is written null: nothing to cut
            self.flag_unwritten(rows & (value.value.str.len_chars() > MAX_COPIED_TEXT).fill_null(False))
        elif value.kind is Kind.DATE:
            text = pl.concat_str([pl.lit('"'), value.value.dt.to_string("%Y-%m-%d"), pl.lit('"')])
            self.flag_unwritten(rows & (value.value.dt.year() < 1000).fill_null(False))
        else:  # a name the block lacks: missing on every row
            return _NULL
        return pl.when(value.value.is_null()).then(_NULL).otherwise(text)

    def decimal_json(self, units: pl.Expr, scale: int, decimals: pl.Expr, rows: pl.Expr) -> pl.Expr:
        """:func:`incentives.json_by_columns.decimal` of ``units`` (at ``scale``, written with ``decimals``), both
        computed once as columns (the text reads them several times); ``rows`` where a nonzero number would be
        written in scientific notation are flagged."""
        text, scientific = json_by_columns.decimal(pl.col(self.column(units, "json_units")), scale,
                                                   pl.col(self.column(decimals, "json_decimals")))
        self.flag_unwritten(rows & scientific)
        return text

    def inputs_json(self, names: Sequence[str], rows: pl.Expr, first: Mapping[str, pl.Expr] | None = None) -> pl.Expr:
        """The JSON object of a line's or reason's inputs on ``rows``: ``first`` (computed values, in their
        order), then each of ``names`` read (``kinds.base.inputs_from``); a name in both keeps its place in
        ``first`` and takes the value read, as a dict update does."""
        values = dict(first or {})
        for name in names:
            values[name] = self.value_json(Name(name), rows)
        return json_by_columns.json_object(list(values.items()))

    def amount_json(self, units: pl.Expr) -> pl.Expr:
        """The JSON of an amount or a total at the program's places (a rounded amount: never a negative
        zero)."""
        return pl.concat_str([pl.lit('"'), self.plain_text(units), pl.lit('"')])

    def subtotal_json(self) -> pl.Expr:
        """The JSON of the running total as it is now: ``"0"`` before any line (the per-record total starts at
        ``Decimal(0)``), else an amount at the places."""
        return pl.col(self.column(pl.when(pl.col(LINES_SO_FAR) == 0).then(pl.lit('"0"'))
                                  .otherwise(self.amount_json(pl.col(TOTAL))), "subtotal_json"))

    # --- money texts at the program's places ---------------------------------------------------

    def amount_text(self, units: pl.Expr, bound: int, scale: int | None = None) -> pl.Expr:
        """``format_amount`` of ``units`` (at ``scale``, the places by default), for formulas."""
        return format_amount(units, self.places if scale is None else scale, self.places,
                             bound=min(bound, MAX_UNITS))

    def plain_text(self, units: pl.Expr, scale: int | None = None, bound: int | None = None) -> pl.Expr:
        """``plain_amount`` of ``units``, for a CSV cell: a number at ``scale`` whose |units| are at most
        ``bound``, or, by default, an amount or a total at the places (within :attr:`total_bound`, every line's
        amount and every total so far being within it)."""
        if scale is None:
            return plain_amount(units, self.places, self.places, bound=self.total_bound)
        return plain_amount(units, scale, self.places, bound=MAX_UNITS if bound is None else min(bound, MAX_UNITS))

    def rounded(self, units: pl.Expr, scale: int, bound: int, *, mode: str | None = None) -> tuple[pl.Expr, int]:
        """``rounding.round`` of ``units`` at ``scale`` (in ``mode`` if given): units at the places, and their
        bound."""
        places = self.places
        rounding = self.rounding if mode is None else Rounding(places, mode)  # type: ignore[arg-type]
        if scale > places:
            return round_units(units, scale, rounding), bound // 10 ** (scale - places) + 1
        factor = 10 ** (places - scale)
        if bound * factor > MAX_UNITS:
            raise NotByColumns("amounts too large for 128-bit minor units")
        return round_units(units, scale, rounding), bound * factor


_NULL = pl.lit("null")


def units_of(value: Decimal) -> tuple[int, int]:
    """A constant's minor units and scale (its decimals, at least 0): ``0.035`` → ``(35, 3)``."""
    scale = max(0, -int(value.as_tuple().exponent))
    return int(value.scaleb(scale, EXACT)), scale


def times_constant(number: ColumnExpression, factor: Decimal) -> tuple[pl.Expr, int, int]:
    """``number × factor`` exactly: Int128 units, their scale and bound (refused past :data:`MAX_UNITS`)."""
    units, scale = units_of(factor)
    bound = number.bound * abs(units)
    if bound > MAX_UNITS:
        raise NotByColumns("a product too large for 128-bit minor units")
    return number.value.cast(pl.Int128) * pl.lit(units, pl.Int128), number.scale + scale, bound


def compare(left: ColumnExpression, op: str, right: ColumnExpression) -> pl.Expr:
    """``left <op> right`` exactly (``op``: ``<``, ``<=``, ``>``, ``>=``), at the larger of their scales."""
    common = max(left.scale, right.scale)
    if left.bound * 10 ** (common - left.scale) > MAX_UNITS or right.bound * 10 ** (common - right.scale) > MAX_UNITS:
        raise NotByColumns("a comparison too large for 128-bit minor units")
    a = left.value.cast(pl.Int128) * pl.lit(10 ** (common - left.scale), pl.Int128)
    b = right.value.cast(pl.Int128) * pl.lit(10 ** (common - right.scale), pl.Int128)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def compare_constant(number: ColumnExpression, op: str, constant: Decimal) -> pl.Expr:
    """``number <op> constant`` exactly (``op``: ``<``, ``<=``, ``>``, ``>=``), at the larger of their scales."""
    units, scale = units_of(constant)
    common = max(scale, number.scale)
    left = number.value.cast(pl.Int128) * pl.lit(10 ** (common - number.scale), pl.Int128)
    right = pl.lit(units * 10 ** (common - scale), pl.Int128)
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
