"""Tier programs by columns: :class:`TierByColumns`, the tier kind's calculator for a block of partners.

Apart from :mod:`incentives.kinds.tier` so that the per-record path (``import incentives``) imports no polars:
the kind names it by its dotted path (``Kind.by_columns``), which the columnar engine loads on first use.
"""

from __future__ import annotations

from typing import Callable

import polars as pl

from .. import fields, json_by_columns
from ..money import exact_multiply, exact_subtract, format_amount, format_rate, plain_amount
from ..rules.backend import Condition
from ..rules.columns import ColumnExpression
from ..rules.columns import Kind as ColumnKind
from .base import ZERO, input_names
from .block import BlockEvaluation, compare_constant, times_constant, units_of
from .tier import TierLevel, Tiers, requires_id


class TierByColumns:
    """:class:`TierCalculator` by columns: the achieved level and its base or band lines for a block.

    Each row's level is the highest whose ``from`` its ``qualify_on`` reaches and whose ``requires`` fired,
    as per record; the lines are one slot per level (its rate on ``pay_on``, or its band).
    """

    def __init__(self, tiers: Tiers, rounding: fields.Rounding):
        self._tiers = tiers
        self._pay_on = tiers.pay_on or tiers.qualify_on
        self._incremental = tiers.mode == "incremental"
        self._places = rounding.places

    def conditions(self) -> list[Condition]:
        return [Condition(requires_id(level), level.requires) for level in self._tiers.levels
                if level.requires is not None]

    def base(self, block: BlockEvaluation, fired: dict[str, pl.Expr]) -> pl.Expr:
        """Adds the base lines to ``block``; the tier's name per row (null: none reached)."""
        qualify = block.number(block.compile(self._tiers.qualify_on.node))
        if qualify is None:
            return pl.lit(None, pl.String)
        block.flag(qualify.needs_record)
        levels = self._tiers.levels
        achieved_expr: pl.Expr = pl.lit(-1)
        for index, level in enumerate(levels):
            reached = compare_constant(qualify, ">=", level.from_)
            if level.requires is not None:
                reached = reached & fired[requires_id(level)]
            achieved_expr = pl.when(reached).then(pl.lit(index)).otherwise(achieved_expr)
        achieved = pl.col(block.column(achieved_expr, "achieved"))
        tier = pl.lit(None, pl.String)
        for index, level in reversed(list(enumerate(levels))):
            tier = pl.when(achieved == index).then(pl.lit(level.name)).otherwise(tier)
        block.next_tier_json = self._next_tier_json(block, achieved, qualify, fired)
        if self._incremental:
            self._bands(block, achieved, qualify)
        else:
            self._retroactive(block, achieved)
        return tier

    def _next_tier_json(self, block: BlockEvaluation, achieved: pl.Expr, qualify: ColumnExpression,
                        fired: dict[str, pl.Expr]) -> pl.Expr:
        """The JSON of :meth:`TierCalculator._next_tier` per row: the level above the achieved one, the gap of
        ``qualify_on`` to it (``exact_subtract``: the larger of their decimals; ``0`` once it is passed), and
        its ``requires`` when that did not hold; ``null`` above the last level."""
        levels = self._tiers.levels
        below_last = achieved < len(levels) - 1
        written = block.written(self._tiers.qualify_on.node)
        if written is None:
            block.flag(below_last)
            return pl.lit("null")
        block.flag(below_last & written.unknown)
        chosen = pl.lit("null")
        for index, level in reversed(list(enumerate(levels))):
            start_units, start_scale = units_of(level.from_)
            scale = max(start_scale, qualify.scale)
            gap = pl.col(block.column(
                pl.lit(start_units * 10 ** (scale - start_scale), pl.Int128)
                - qualify.value.cast(pl.Int128) * pl.lit(10 ** (scale - qualify.scale), pl.Int128), "gap"))
            gap_text = block.decimal_json(gap, scale, pl.max_horizontal(written.decimals, pl.lit(start_scale)),
                                          (achieved == index - 1) & (gap >= 0))
            name = f'{{"name":{json_by_columns.constant(level.name)},"gap":'
            unmet = pl.lit(",\"unmet\":[]}")
            if level.requires is not None:
                unmet = pl.when(fired[requires_id(level)]).then(unmet).otherwise(
                    pl.lit(f',"unmet":[{json_by_columns.constant(level.requires.text)}]}}'))
            text = pl.concat_str([pl.lit(name), pl.when(gap < 0).then(pl.lit('"0"')).otherwise(gap_text), unmet])
            chosen = pl.when(achieved == index - 1).then(text).otherwise(chosen)
        return chosen

    def _retroactive(self, block: BlockEvaluation, achieved: pl.Expr) -> None:
        pay = self._pay_on
        basis = block.compile(pay.node)
        reached = achieved >= 0
        if basis.kind is not ColumnKind.NUMBER:
            block.flag(reached)
            return
        block.flag(reached & basis.needs_record)
        amounts = []
        bound = 0
        for index, level in enumerate(self._tiers.levels):
            product, scale, product_bound = times_constant(basis, level.rate)
            amount, amount_bound = block.rounded(product, scale, product_bound)
            amounts.append((index, level, amount))
            bound = max(bound, amount_bound)

        def by_level(value: Callable[[int, TierLevel, pl.Expr], pl.Expr]) -> pl.Expr:
            chosen: pl.Expr = pl.lit(None)
            for index, level, amount in amounts:
                chosen = pl.when(achieved == index).then(value(index, level, amount)).otherwise(chosen)
            return chosen

        basis_text = block.amount_text(basis.value, basis.bound, basis.scale)
        block.add_line(
            reached, "base", by_level(lambda _, level, __: pl.lit(f"tier:{level.name}")),
            by_level(lambda _, level, __: pl.lit(f"{level.name} tier rate on {pay.text}")),
            by_level(lambda _, __, amount: amount), bound,
            lambda amount: pl.concat_str([basis_text, by_level(lambda _, level, __: pl.lit(
                f" × {format_rate(level.rate)} = ")), block.amount_text(amount, bound)]),
            basis=block.plain_text(basis.value, basis.scale, basis.bound),
            rate=by_level(lambda _, level, __: pl.lit(f"{level.rate.normalize():f}")),
            basis_json=block.value_json(pay.node, reached),
            rate_json=by_level(lambda _, level, __: pl.lit(json_by_columns.constant(level.rate))),
            inputs_json=block.inputs_json(input_names(pay), reached))

    def _bands(self, block: BlockEvaluation, achieved: pl.Expr, qualify: ColumnExpression) -> None:
        places = self._places
        levels = self._tiers.levels
        qualify_text = block.amount_text(qualify.value, qualify.bound, qualify.scale)
        qualify_written = block.written(self._tiers.qualify_on.node)
        if qualify_written is None:  # the basis of the band a row ends in is not known: every band row
            block.flag(achieved >= 0)
            return
        for index, level in enumerate(levels):
            if level.rate == ZERO:
                continue
            rate_text = format_rate(level.rate)
            start_text = format_amount(level.from_, places)
            # the band the qualifying value ends in: from the level's start to that value
            start_units, start_scale = units_of(level.from_)
            scale = max(start_scale, qualify.scale)
            width_name = block.column(
                qualify.value.cast(pl.Int128) * pl.lit(10 ** (scale - qualify.scale), pl.Int128)
                - pl.lit(start_units * 10 ** (scale - start_scale), pl.Int128), "width")
            width_bound = qualify.bound * 10 ** (scale - qualify.scale) + start_units * 10 ** (scale - start_scale)
            width = ColumnExpression(pl.col(width_name), pl.lit(False), ColumnKind.NUMBER, scale, width_bound,
                                     wide=True)
            product, product_scale, product_bound = times_constant(width, level.rate)
            amount, bound = block.rounded(product, product_scale, product_bound)
            description = pl.concat_str([pl.lit(f"{level.name} band {start_text}–"), qualify_text,
                                         pl.lit(" achieved")])
            basis = block.plain_text(pl.col(width_name), scale)
            fires = (achieved == index) & (pl.col(width_name) > 0)
            # qualify_on − from, exactly: the larger of their decimals
            block.flag(fires & qualify_written.unknown)
            basis_json = block.decimal_json(pl.col(width_name), scale,
                                            pl.max_horizontal(qualify_written.decimals, pl.lit(start_scale)), fires)
            passed: pl.Expr | None = None
            whole_formula = ""
            if index + 1 < len(levels):
                # a band passed whole (a higher level reached): its cells are the program's constants
                top = levels[index + 1].from_
                whole_width = exact_subtract(top, level.from_)
                whole_amount = block.rounding.round(exact_multiply(whole_width, level.rate))
                whole_units, whole_scale = units_of(whole_amount)
                whole_units *= 10 ** (places - whole_scale)
                passed = achieved > index
                fires = fires | passed
                bound = max(bound, abs(whole_units))
                amount = pl.when(passed).then(pl.lit(whole_units, pl.Int128)).otherwise(amount)
                description = pl.when(passed).then(
                    pl.lit(f"{level.name} band {start_text}–{format_amount(top, places)}")).otherwise(description)
                basis = pl.when(passed).then(pl.lit(plain_amount(whole_width, places))).otherwise(basis)
                basis_json = pl.when(passed).then(pl.lit(json_by_columns.constant(whole_width))).otherwise(basis_json)
                whole_formula = (f"{format_amount(whole_width, places)} × {rate_text} = "
                                 f"{format_amount(whole_amount, places)}")
            width_text = block.amount_text(pl.col(width_name), width_bound, scale)

            def formula(amount_units: pl.Expr, width_text: pl.Expr = width_text, rate_text: str = rate_text,
                        bound: int = bound, passed: pl.Expr | None = passed,
                        whole_formula: str = whole_formula) -> pl.Expr:
                reached = pl.concat_str([width_text, pl.lit(f" × {rate_text} = "),
                                         block.amount_text(amount_units, bound)])
                return reached if passed is None else pl.when(passed).then(pl.lit(whole_formula)).otherwise(reached)

            block.add_line(fires, "band", pl.lit(f"band:{level.name}"), description, amount, bound, formula,
                           basis=basis, rate=pl.lit(f"{level.rate.normalize():f}"), basis_json=basis_json,
                           rate_json=pl.lit(json_by_columns.constant(level.rate)),
                           inputs_json=block.inputs_json(input_names(self._tiers.qualify_on), fires))


__all__ = ["TierByColumns"]
