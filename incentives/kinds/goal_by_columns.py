"""Goal programs by columns: :class:`GoalByColumns`, the goal kind's calculator for a block of partners.

Apart from :mod:`incentives.kinds.goal` so that the per-record path (``import incentives``) imports no polars:
the kind names it by its dotted path (``Kind.by_columns``), which the columnar engine loads on first use.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Mapping, Sequence

import polars as pl

from .. import fields, money_by_columns, own_outcome
from ..money import Rounding, exact_multiply, exact_subtract, format_rate
from ..rules.backend import Condition
from ..rules.columns import MAX_UNITS, ColumnExpression, NotByColumns, ratio_by_columns
from ..rules.columns import Kind as ColumnKind
from .block import BlockEvaluation, units_of
from .goal import CurvePoint, Goals


#: The decimals of the payouts.csv ``attainment`` cell (``output.files.ATTAINMENT_PLACES``), rounded half-even
#: as ``Decimal.quantize`` rounds in the default context.
_ATTAINMENT_CELL_PLACES = 6


def _at(units: int, scale: int, to: int) -> int:
    """Constant minor units at ``scale`` as units at the larger scale ``to``."""
    return units * 10 ** (to - scale)


def _constant_at(value: Decimal, to: int) -> int:
    units, scale = units_of(value)
    return _at(units, scale, to)


def _checked(bound: int) -> int:
    if bound > MAX_UNITS:
        raise NotByColumns("goal attainments or payouts too large for 128-bit minor units")
    return bound


def _number(value: pl.Expr, scale: int, bound: int) -> ColumnExpression:
    """A computed number no row flags (its rows are flagged before, where their inputs are)."""
    return ColumnExpression(value, pl.lit(False), ColumnKind.NUMBER, scale, _checked(bound), wide=True)


class _CurveByColumns:
    """:class:`Curve` by columns: the factor of a column of attainments (Int128 units at ``scale``) as units at
    ``factor_scale``; an interpolated factor is :func:`ratio_by_columns` of the same one division."""

    def __init__(self, points: Sequence[CurvePoint], step: bool, places: int, scale: int, factor_scale: int):
        self._points = [(_constant_at(point.attainment, scale), point.factor) for point in points]
        self._step = step
        self._places = places
        self._scale = scale
        self._factor_scale = factor_scale
        #: the largest factor, in units at ``factor_scale`` (a factor is never above the curve's largest)
        self.bound = max(_constant_at(point.factor, factor_scale) for point in points)

    def factor(self, attainment: pl.Expr) -> pl.Expr:
        factor_scale = self._factor_scale
        first, last = self._points[0][0], self._points[-1]
        segments = list(zip(self._points, self._points[1:]))

        def by_segment(value: Callable[[int, Decimal, int, Decimal], int]) -> pl.Expr:
            """A constant of each row's segment (the last segment's past its end: those rows do not read it)."""
            chosen = pl.lit(value(*segments[-1][0], *segments[-1][1]), pl.Int128)
            for (low, low_factor), (high, high_factor) in reversed(segments[:-1]):
                chosen = pl.when(attainment < high).then(
                    pl.lit(value(low, low_factor, high, high_factor), pl.Int128)).otherwise(chosen)
            return chosen

        chosen = pl.when(attainment < first).then(pl.lit(0, pl.Int128)).when(attainment >= last[0]).then(
            pl.lit(_constant_at(last[1], factor_scale), pl.Int128))
        if not segments:  # a curve of one point: every attainment is below it or at or above it
            return chosen
        low_factor = by_segment(lambda low, low_factor, high, high_factor: _constant_at(low_factor, factor_scale))
        if self._step:
            return chosen.otherwise(low_factor)
        low = by_segment(lambda low, low_factor, high, high_factor: low)
        return chosen.when(attainment == low).then(low_factor).otherwise(self._interpolated(attainment, low,
                                                                                            by_segment))

    def _interpolated(self, attainment: pl.Expr, low: pl.Expr,
                      by_segment: Callable[[Callable[[int, Decimal, int, Decimal], int]], pl.Expr]) -> pl.Expr:
        """low_factor + rise × (attainment − low) / width, as one division (per record too), with each row's
        segment's constants: one division for every row, whatever the number of segments."""
        places, scale = self._places, self._scale
        first, last = self._points[0][0], self._points[-1][0]
        segments = list(zip(self._points, self._points[1:]))
        rises = [units_of(exact_subtract(high_factor, low_factor)) for (_, low_factor), (_, high_factor) in segments]
        widths = [units_of(Decimal(high - low).scaleb(-scale)) for (low, _), (high, _) in segments]
        starts = [units_of(exact_multiply(low_factor, Decimal(high - low).scaleb(-scale)))
                  for (low, low_factor), (high, _) in segments]
        rise_scale = max(scale for _, scale in rises)
        width_scale = max(scale for _, scale in widths)
        start_scale = max(scale for _, scale in starts)
        numerator_scale = max(rise_scale + scale, start_scale)
        index = {low: position for position, ((low, _), _) in enumerate(segments)}
        rise = by_segment(lambda low, *_: _at(*rises[index[low]], rise_scale))
        width = by_segment(lambda low, *_: _at(*widths[index[low]], width_scale))
        start = by_segment(lambda low, *_: _at(*starts[index[low]], numerator_scale))
        # held between the first and last points, so the products stay within their bounds on every row
        held = attainment.clip(first, last).cast(pl.Int128)
        numerator = rise * (held - low) * pl.lit(10 ** (numerator_scale - rise_scale - scale), pl.Int128) + start
        bound = (max(abs(_at(*value, rise_scale)) for value in rises) * (last - first)
                 * 10 ** (numerator_scale - rise_scale - scale)
                 + max(abs(_at(*value, numerator_scale)) for value in starts))
        quotient = ratio_by_columns(_number(numerator, numerator_scale, bound),
                                    _number(width, width_scale, max(_at(*value, width_scale) for value in widths)),
                                    places)
        return quotient.value * pl.lit(10 ** (self._factor_scale - places), pl.Int128)


class GoalByColumns:
    """:class:`GoalCalculator` by columns: each goal's attainment (a ratio by integers), the weighted
    attainment, the curve's factor and the base line(s), for a block.

    Attainments are Int128 units at one scale for the whole program (the ratio places, or more when a cap,
    threshold or curve point has more decimals), factors likewise. A row whose metric, target or basis is no
    number, or whose target is zero, is flagged (the per-record path raises there).
    """

    def __init__(self, goals: Goals, rounding: fields.Rounding):
        self._goals = goals
        self._places = rounding.ratio_places
        payout = goals.payout
        curves = [payout.curve] + [target.curve for target in goals.targets if target.curve is not None]
        limits = [target.cap for target in goals.targets if target.cap is not None]
        limits += [target.threshold for target in goals.targets if target.threshold is not None]
        if goals.attainment_cap is not None:
            limits.append(goals.attainment_cap)
        points = [point for curve in curves for point in curve]
        self._scale = max([self._places] + [units_of(value)[1] for value in limits]
                          + [units_of(point.attainment)[1] for point in points])
        self._factor_scale = max([self._places] + [units_of(point.factor)[1] for point in points])
        self._weight_scale = max(units_of(target.weight)[1] for target in goals.targets)
        step = payout.interpolation == "step"
        #: per-goal payouts: each goal's curve over its own attainment
        self._curves = [_CurveByColumns(target.curve or payout.curve, step, self._places, self._scale,
                                        self._factor_scale) for target in goals.targets]

    def conditions(self) -> list[Condition]:
        return []

    def base(self, block: BlockEvaluation, fired: Mapping[str, pl.Expr]) -> pl.Expr:
        """Adds the base line(s) to ``block`` and sets its attainment cell; a goal program has no tier."""
        scale, weight_scale = self._scale, self._weight_scale
        attainments: list[ColumnExpression] = []
        weighted, weighted_bound = pl.lit(0, pl.Int128), 0
        for target in self._goals.targets:
            metric = block.number(block.compile(target.metric.node))
            goal_target = block.number(block.compile(target.target.node))
            if metric is None or goal_target is None:
                return pl.lit(None, pl.String)
            # a target of zero is flagged (per record it raises), before proration, as per record
            block.flag(goal_target.needs_record | (goal_target.value == 0))
            attainment = ratio_by_columns(metric, _prorated(goal_target, block.fraction), self._places)
            block.flag(attainment.needs_record)
            rescale = 10 ** (scale - self._places)
            value = attainment.value * pl.lit(rescale, pl.Int128)
            bound = _checked(attainment.bound * rescale)
            cap = target.cap if target.cap is not None else self._goals.attainment_cap
            if cap is not None:
                value = pl.min_horizontal(value, pl.lit(_constant_at(cap, scale), pl.Int128))
            attainments.append(_number(pl.col(block.column(value, f"attainment:{target.id}")), scale, bound))
            weight = _constant_at(target.weight, weight_scale)
            weighted = weighted + pl.lit(weight, pl.Int128) * attainments[-1].value
            weighted_bound = _checked(weighted_bound + weight * bound)
        weighted_scale = scale + weight_scale
        weighted_column = pl.col(block.column(weighted, "weighted"))
        block.attainment_text = _attainment_cell(weighted_column, weighted_scale)
        block.own[own_outcome.ATTAINMENT] = _number(weighted_column, weighted_scale, weighted_bound)
        basis = block.number(block.compile(self._goals.payout.on.node))
        if basis is None:
            return pl.lit(None, pl.String)
        block.flag(basis.needs_record)
        basis = _prorated(basis, block.fraction)
        if self._goals.payout.per_goal:
            self._pay_each_goal(block, basis, attainments)
        else:
            self._pay(block, basis, _number(weighted_column, weighted_scale, weighted_bound))
        return pl.lit(None, pl.String)

    def _pay(self, block: BlockEvaluation, basis: ColumnExpression, weighted: ColumnExpression) -> None:
        factor_scale = self._factor_scale
        # the curve reads the weighted attainment at the program's attainment scale: it has the weights'
        # decimals more, and a point compares exactly once raised to them
        curve = _CurveByColumns(self._goals.payout.curve, self._goals.payout.interpolation == "step",
                                self._places, weighted.scale, factor_scale)
        factor = pl.col(block.column(curve.factor(weighted.value), "factor"))
        factor_text = money_by_columns.format_ratio(factor, factor_scale)
        description = pl.concat_str([pl.lit(f"{self._goals.payout.on.text} at factor "), factor_text,
                                     pl.lit(" for weighted attainment "),
                                     money_by_columns.format_ratio(weighted.value, weighted.scale)])
        block.flag(description.is_null())  # a percent the per-record text cannot round (see money_by_columns)
        product_scale = basis.scale + factor_scale
        amount, bound = block.rounded(basis.value.cast(pl.Int128) * factor, product_scale,
                                      _checked(basis.bound * curve.bound))
        basis_text = block.amount_text(basis.value, basis.bound, basis.scale)
        block.add_line(pl.lit(True), "base", pl.lit("goal:payout"), description, amount, bound,
                       lambda units: pl.concat_str([basis_text, pl.lit(" × "), factor_text, pl.lit(" = "),
                                                    block.amount_text(units, bound)]),
                       basis=block.plain_text(basis.value, basis.scale),
                       rate=money_by_columns.plain_amount(factor, factor_scale, 0))

    def _pay_each_goal(self, block: BlockEvaluation, basis: ColumnExpression,
                       attainments: list[ColumnExpression]) -> None:
        """One base line per goal: ``basis`` × weight × factor(the goal's own attainment), as per record."""
        factor_scale = self._factor_scale
        basis_text = block.amount_text(basis.value, basis.bound, basis.scale)
        for target, curve, attainment in zip(self._goals.targets, self._curves, attainments):
            factor = curve.factor(attainment.value)
            attainment_text = money_by_columns.format_ratio(attainment.value, attainment.scale)
            if target.threshold is not None:
                below = attainment.value < _constant_at(target.threshold, attainment.scale)
                factor = pl.when(below).then(pl.lit(0, pl.Int128)).otherwise(factor)
                why = pl.when(below).then(pl.lit(f"below its threshold {format_rate(target.threshold)}")) \
                    .otherwise(pl.concat_str([pl.lit("for attainment "), attainment_text]))
            else:
                why = pl.concat_str([pl.lit("for attainment "), attainment_text])
            factor = pl.col(block.column(factor, f"factor:{target.id}"))
            factor_text = money_by_columns.format_ratio(factor, factor_scale)
            weight, weight_scale = units_of(target.weight)
            rate = factor * pl.lit(weight, pl.Int128)
            rate_scale = factor_scale + weight_scale
            description = pl.concat_str([pl.lit(f"goal '{target.id}' at factor "), factor_text, pl.lit(" "), why,
                                         pl.lit(f", weight {format_rate(target.weight)}")])
            block.flag(description.is_null())
            amount, bound = block.rounded(basis.value.cast(pl.Int128) * rate, basis.scale + rate_scale,
                                          _checked(basis.bound * curve.bound * weight))
            shown_weight = f" × weight {format_rate(target.weight)} × factor "

            def formula(units: pl.Expr, factor_text: pl.Expr = factor_text, attainment_text: pl.Expr = attainment_text,
                        shown_weight: str = shown_weight, bound: int = bound) -> pl.Expr:
                return pl.concat_str([basis_text, pl.lit(shown_weight), factor_text, pl.lit(" (attainment "),
                                      attainment_text, pl.lit(") = "), block.amount_text(units, bound)])

            block.add_line(pl.lit(True), "base", pl.lit(f"goal:{target.id}"), description, amount, bound, formula,
                           basis=block.plain_text(basis.value, basis.scale),
                           rate=money_by_columns.plain_amount(rate, rate_scale, 0))


def _prorated(number: ColumnExpression, fraction: ColumnExpression | None) -> ColumnExpression:
    """``number`` × the active fraction, exactly (per record a target and the basis are scaled by it)."""
    if fraction is None:
        return number
    return _number(number.value.cast(pl.Int128) * fraction.value, number.scale + fraction.scale,
                   number.bound * fraction.bound)


def _attainment_cell(weighted: pl.Expr, scale: int) -> pl.Expr:
    """``format(attainment.quantize(ATTAINMENT_PLACES), "f")``: half-even to six decimals, and ``-0.000000``
    for a negative attainment that rounds to zero (a Decimal keeps its sign)."""
    places = _ATTAINMENT_CELL_PLACES
    if scale > places:
        rounded = money_by_columns.round_units(weighted, scale, Rounding(places, "half_even"))
    else:
        rounded = weighted * pl.lit(10 ** (places - scale), pl.Int128)
    text = money_by_columns.plain_amount(rounded, places, places)
    return pl.when((weighted < 0) & (rounded == 0)).then(pl.concat_str([pl.lit("-"), text])).otherwise(text)


__all__ = ["GoalByColumns"]
