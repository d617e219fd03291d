"""Goal programs by columns: :class:`GoalByColumns`, the goal kind's calculator for a block of partners.

Apart from :mod:`incentives.kinds.goal` so that the per-record path (``import incentives``) imports no polars:
the kind names it by its dotted path (``Kind.by_columns``), which the columnar engine loads on first use.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Mapping, Sequence

import polars as pl

from .. import fields, json_by_columns, money_by_columns, own_outcome
from ..json_by_columns import Written
from ..money import Rounding, exact_multiply, exact_subtract, format_rate
from ..rules.ast import Node
from ..rules.backend import Condition
from ..rules.columns import MAX_UNITS, ColumnExpression, NotByColumns, ratio_by_columns, ratio_is_exact
from ..rules.columns import Kind as ColumnKind
from .block import COMPUTING, BlockEvaluation, units_of
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
        #: each point as the program wrote it, by its attainment's units: how the per-record texts are written
        self._decimal_points = [(_constant_at(point.attainment, scale), point.factor, point.attainment)
                                for point in points]
        self._step = step
        self._places = places
        self._scale = scale
        self._factor_scale = factor_scale
        #: the largest factor, in units at ``factor_scale`` (a factor is never above the curve's largest)
        self.bound = max(_constant_at(point.factor, factor_scale) for point in points)

    def factor(self, block: BlockEvaluation, attainment: pl.Expr,
               attainment_decimals: pl.Expr) -> tuple[pl.Expr, Written]:
        """The factor of each row's attainment, units at ``factor_scale``, and how the per-record
        :meth:`Curve.factor` writes it (``attainment_decimals``: how the attainment is): a point's factor as the
        program wrote it, ``0`` below the curve, an interpolated one as :func:`money.ratio` writes it. The
        interpolation's parts are columns of ``block`` (each is read several times)."""
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
        decimals = pl.when(attainment < first).then(pl.lit(0, pl.Int128)).when(attainment >= last[0]).then(
            pl.lit(_written_decimals(last[1]), pl.Int128))
        if not segments:  # a curve of one point: every attainment is below it or at or above it
            return chosen, _written_with(decimals.otherwise(pl.lit(0, pl.Int128)), pl.lit(False))
        low_factor = by_segment(lambda low, low_factor, high, high_factor: _constant_at(low_factor, factor_scale))
        low_decimals = by_segment(lambda low, low_factor, high, high_factor: _written_decimals(low_factor))
        if self._step:
            return chosen.otherwise(low_factor), _written_with(decimals.otherwise(low_decimals), pl.lit(False))
        low = by_segment(lambda low, low_factor, high, high_factor: low)
        interpolated, quotient, exact = self._interpolated(block, attainment, low, by_segment)
        # the division's operands as per record: (hf − lf) × (attainment − low) + lf × (high − low) over
        # (high − low), each exact, so each has the most decimals of its terms (a product, their sum)
        points = self._decimal_points
        widths = {low_units: max(_written_decimals(low_at), _written_decimals(high_at))
                  for (low_units, _, low_at), (_, _, high_at) in zip(points, points[1:])}
        rises = {low_units: max(_written_decimals(low_factor), _written_decimals(high_factor))
                 for (low_units, low_factor, _), (_, high_factor, _) in zip(points, points[1:])}
        lows = {low_units: _written_decimals(low_at) for low_units, _, low_at in points}
        width_decimals = by_segment(lambda low, *_: widths[low])
        numerator_decimals = pl.max_horizontal(
            by_segment(lambda low, *_: rises[low])
            + pl.max_horizontal(attainment_decimals.cast(pl.Int128), by_segment(lambda low, *_: lows[low])),
            by_segment(lambda low, low_factor, *_: _written_decimals(low_factor) + widths[low]))
        written = json_by_columns.ratio_written(quotient, self._places, exact, numerator_decimals, width_decimals)
        on_point = (attainment < first) | (attainment >= last[0]) | (attainment == low)
        return (chosen.when(attainment == low).then(low_factor).otherwise(interpolated),
                _written_with(decimals.when(attainment == low).then(low_decimals).otherwise(written.decimals),
                         ~on_point & written.unknown))

    def _interpolated(self, block: BlockEvaluation, attainment: pl.Expr, low: pl.Expr,
                      by_segment: Callable[[Callable[[int, Decimal, int, Decimal], int]], pl.Expr]
                      ) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
        """low_factor + rise × (attainment − low) / width, as one division (per record too), with each row's
        segment's constants: one division for every row, whatever the number of segments. Units at the factor
        scale, the quotient at the ratio places, and the rows where the division is exact."""
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
        numerator = pl.col(block.column(
            rise * (held - low) * pl.lit(10 ** (numerator_scale - rise_scale - scale), pl.Int128) + start,
            "numerator"))
        bound = (max(abs(_at(*value, rise_scale)) for value in rises) * (last - first)
                 * 10 ** (numerator_scale - rise_scale - scale)
                 + max(abs(_at(*value, numerator_scale)) for value in starts))
        dividend = _number(numerator, numerator_scale, bound)
        divisor = _number(width, width_scale, max(_at(*value, width_scale) for value in widths))
        quotient = pl.col(block.column(ratio_by_columns(dividend, divisor, places).value, "quotient"))
        return (quotient * pl.lit(10 ** (self._factor_scale - places), pl.Int128), quotient,
                ratio_is_exact(dividend, divisor, places, quotient))


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
        attainments_written: list[Written] = []
        goals_json: list[pl.Expr] = []
        weighted, weighted_bound = pl.lit(0, pl.Int128), 0
        # the weighted attainment is Decimal(0) plus each weight × attainment, exactly: the most decimals of each
        weighted_decimals: pl.Expr = pl.lit(0, pl.Int32)
        for target in self._goals.targets:
            metric = block.number(block.compile(target.metric.node))
            goal_target = block.number(block.compile(target.target.node))
            if metric is None or goal_target is None:
                return pl.lit(None, pl.String)
            # a target of zero is flagged (per record it raises), before proration, as per record
            block.flag(goal_target.needs_record | (goal_target.value == 0))
            prorated = _prorated(goal_target, block.fraction)
            # read by the ratio, its exactness and its JSON: computed once
            prorated = _number(pl.col(block.column(prorated.value, f"target:{target.id}")), prorated.scale,
                               prorated.bound)
            attainment = ratio_by_columns(metric, prorated, self._places)
            block.flag(attainment.needs_record)
            quotient_units = pl.col(block.column(attainment.value, f"quotient:{target.id}"))
            rescale = 10 ** (scale - self._places)
            value = quotient_units * pl.lit(rescale, pl.Int128)
            bound = _checked(attainment.bound * rescale)
            metric_written = self._written_of(block, target.metric.node)
            target_written = self._written_of(block, target.target.node, prorated=True)
            quotient = json_by_columns.ratio_written(quotient_units, self._places,
                                                     ratio_is_exact(metric, prorated, self._places, quotient_units),
                                                     metric_written.decimals, target_written.decimals)
            # a quotient of zero with the sign of a negative one (0 over a negative target, or a negative
            # quotient rounded to zero) is a negative zero per record: -0.00
            unknown = quotient.unknown | ((quotient_units == 0) & ((metric.value < 0) != (prorated.value < 0)))
            written = quotient
            cap = target.cap if target.cap is not None else self._goals.attainment_cap
            if cap is not None:
                capped = value > pl.lit(_constant_at(cap, scale), pl.Int128)
                unknown = unknown & ~capped  # the cap replaces the quotient: its text is the cap's
                value = pl.min_horizontal(value, pl.lit(_constant_at(cap, scale), pl.Int128))
                written = _written_with(
                    pl.when(capped).then(pl.lit(_written_decimals(cap))).otherwise(quotient.decimals), pl.lit(False))
            attainments.append(_number(pl.col(block.column(value, f"attainment:{target.id}")), scale, bound))
            block.flag(unknown)
            attainments_written.append(
                _written_with(pl.col(block.column(written.decimals, f"decimals:{target.id}")), pl.lit(False)))
            weight = _constant_at(target.weight, weight_scale)
            weighted = weighted + pl.lit(weight, pl.Int128) * attainments[-1].value
            weighted_bound = _checked(weighted_bound + weight * bound)
            weighted_decimals = pl.max_horizontal(
                weighted_decimals, attainments_written[-1].decimals + _written_decimals(target.weight))
            goals_json.append(pl.concat_str([
                pl.lit(f'{{"id":{json_by_columns.constant(target.id)},"metric":'),
                self._decimal_json(block, metric.value, metric.scale, metric_written.decimals),
                pl.lit(',"target":'),
                self._decimal_json(block, prorated.value, prorated.scale, target_written.decimals),
                pl.lit(',"attainment":'),
                self._decimal_json(block, attainments[-1].value, scale, attainments_written[-1].decimals),
                pl.lit(f',"weight":{json_by_columns.constant(target.weight)}')]))
        weighted_scale = scale + weight_scale
        weighted_column = pl.col(block.column(weighted, "weighted"))
        block.attainment_text = _attainment_cell(weighted_column, weighted_scale)
        block.attainment_json = self._decimal_json(block, weighted_column, weighted_scale, weighted_decimals)
        block.own[own_outcome.ATTAINMENT] = _number(weighted_column, weighted_scale, weighted_bound)
        block.own_written[own_outcome.ATTAINMENT] = _written_with(weighted_decimals, pl.lit(False))
        basis = block.number(block.compile(self._goals.payout.on.node))
        if basis is None:
            return pl.lit(None, pl.String)
        block.flag(basis.needs_record)
        basis = _prorated(basis, block.fraction)
        basis_json = self._decimal_json(block, basis.value, basis.scale,
                                        self._written_of(block, self._goals.payout.on.node, prorated=True).decimals)
        inputs = [(target.id, self._decimal_json(block, attainment.value, scale, written.decimals))
                  for target, attainment, written in zip(self._goals.targets, attainments, attainments_written)]
        if self._goals.payout.per_goal:
            factors = self._pay_each_goal(block, basis, attainments, attainments_written, basis_json, inputs)
            block.details_json = pl.concat_str([
                pl.lit(',"goals":['),
                pl.concat_str([pl.concat_str([goal, pl.lit(',"factor":'), factor, pl.lit("}")])
                               for goal, factor in zip(goals_json, factors)], separator=","), pl.lit("]")])
        else:
            factor = self._pay(block, basis, _number(weighted_column, weighted_scale, weighted_bound),
                               weighted_decimals, basis_json, inputs)
            block.details_json = pl.concat_str([
                pl.lit(',"goals":['), pl.concat_str([pl.concat_str([goal, pl.lit("}")]) for goal in goals_json],
                                                    separator=","),
                pl.lit('],"factor":'), factor])
        return pl.lit(None, pl.String)

    @staticmethod
    def _written_of(block: BlockEvaluation, node: Node, *, prorated: bool = False) -> Written:
        """How the per-record value of ``node`` is written (× the active fraction when ``prorated``, as
        ``exact_multiply``: their decimals add up); its unknown rows are flagged."""
        written = block.written(node)
        if written is None:
            block.flag(pl.lit(True))
            return _written_with(pl.lit(0), pl.lit(False))
        block.flag(written.unknown)
        if prorated and block.fraction_decimals is not None:
            return _written_with(written.decimals + block.fraction_decimals, pl.lit(False))
        return written

    @staticmethod
    def _decimal_json(block: BlockEvaluation, units: pl.Expr, scale: int, decimals: pl.Expr) -> pl.Expr:
        """The JSON of a number on the computing rows (its rows in scientific notation are flagged)."""
        return block.decimal_json(units, scale, decimals, pl.col(COMPUTING))

    def _pay(self, block: BlockEvaluation, basis: ColumnExpression, weighted: ColumnExpression,
             weighted_decimals: pl.Expr, basis_json: pl.Expr, inputs: list[tuple[str, pl.Expr]]) -> pl.Expr:
        """The base line; returns the factor's JSON (a key of the details)."""
        factor_scale = self._factor_scale
        # the curve reads the weighted attainment at the program's attainment scale: it has the weights'
        # decimals more, and a point compares exactly once raised to them
        curve = _CurveByColumns(self._goals.payout.curve, self._goals.payout.interpolation == "step",
                                self._places, weighted.scale, factor_scale)
        factor_units, factor_written = curve.factor(block, weighted.value, weighted_decimals)
        factor = pl.col(block.column(factor_units, "factor"))
        block.flag(factor_written.unknown)
        factor_json = pl.col(block.column(self._decimal_json(block, factor, factor_scale, factor_written.decimals),
                                          "factor_json"))
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
                       basis=block.plain_text(basis.value, basis.scale, basis.bound),
                       rate=money_by_columns.plain_amount(factor, factor_scale, 0), basis_json=basis_json,
                       rate_json=factor_json, inputs_json=json_by_columns.json_object(inputs))
        return factor_json

    def _pay_each_goal(self, block: BlockEvaluation, basis: ColumnExpression, attainments: list[ColumnExpression],
                       attainments_written: list[Written], basis_json: pl.Expr,
                       inputs: list[tuple[str, pl.Expr]]) -> list[pl.Expr]:
        """One base line per goal: ``basis`` × weight × factor(the goal's own attainment), as per record.
        Returns each goal's factor as JSON (a key of its details)."""
        factor_scale = self._factor_scale
        basis_text = block.amount_text(basis.value, basis.bound, basis.scale)
        factors_json = []
        for target, curve, attainment, written, goal_input in zip(self._goals.targets, self._curves, attainments,
                                                                  attainments_written, inputs):
            factor, factor_written = curve.factor(block, attainment.value, written.decimals)
            block.flag(factor_written.unknown)
            factor_decimals = factor_written.decimals
            attainment_text = money_by_columns.format_ratio(attainment.value, attainment.scale)
            if target.threshold is not None:
                below = attainment.value < _constant_at(target.threshold, attainment.scale)
                factor = pl.when(below).then(pl.lit(0, pl.Int128)).otherwise(factor)
                factor_decimals = pl.when(below).then(pl.lit(0, pl.Int32)).otherwise(factor_decimals)
                why = pl.when(below).then(pl.lit(f"below its threshold {format_rate(target.threshold)}")) \
                    .otherwise(pl.concat_str([pl.lit("for attainment "), attainment_text]))
            else:
                why = pl.concat_str([pl.lit("for attainment "), attainment_text])
            factor = pl.col(block.column(factor, f"factor:{target.id}"))
            factor_decimals = pl.col(block.column(factor_decimals, f"factor_decimals:{target.id}"))
            factors_json.append(self._decimal_json(block, factor, factor_scale, factor_decimals))
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

            # weight × factor, exactly: their decimals add up
            rate_json = self._decimal_json(block, rate, rate_scale, factor_decimals + _written_decimals(target.weight))
            block.add_line(pl.lit(True), "base", pl.lit(f"goal:{target.id}"), description, amount, bound, formula,
                           basis=block.plain_text(basis.value, basis.scale, basis.bound),
                           rate=money_by_columns.plain_amount(rate, rate_scale, 0), basis_json=basis_json,
                           rate_json=rate_json, inputs_json=json_by_columns.json_object([goal_input]))
        return factors_json


def _written_decimals(value: Decimal) -> int:
    """The decimals ``str()`` writes a constant of the program with (one written with a positive exponent,
    ``1E+1``, is refused)."""
    exponent = int(value.as_tuple().exponent)
    if exponent > 0:
        raise NotByColumns(f"a number of the goals written with an exponent ({value})")
    return -exponent


def _written_with(decimals: pl.Expr, unknown: pl.Expr) -> Written:
    """A :class:`Written` of ``decimals`` as the integers the texts take."""
    return Written(decimals.cast(pl.Int32), unknown)


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
