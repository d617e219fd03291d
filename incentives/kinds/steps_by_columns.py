"""The steps every program kind shares, by columns: :mod:`incentives.kinds.steps` over a block of partners.

Multipliers, additive bonuses, deductions, the floor at zero, cap and minimum
payout, in the SPEC's order, each a line slot of a
:class:`~incentives.kinds.block.BlockEvaluation` with the per-record step's
texts. A module of its own beside the per-record steps, not a class in it: the
per-record path stays free of polars, and each step here reads the per-record
step's keys (``SharedKeys``) and texts, so the two are read side by side.

The program's own outcome (``this.*``) is read as per record: a condition that
reads it is matched at its step (multipliers, additive bonuses, deductions), once
the subtotal before that step is known (``BlockEvaluation.own``), and the other
conditions up front; an amount, cap or minimum reads the subtotal before its step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Mapping

import polars as pl

from .. import json_by_columns, own_outcome
from ..money import EXACT, format_amount, format_rate
from ..rules.backend import Condition
from ..rules.columns import MAX_UNITS, ColumnExpression, NotByColumns
from ..rules.columns import Kind as ColumnKind
from ..rules.expressions import Expression
from .base import ONE, ZERO, input_names
from .block import TOTAL, BlockEvaluation, compare, compare_constant, units_of
from .steps import BudgetScale, SharedKeys, adjustment_expressions, bonus_id, deduction_id


class AdjustmentsByColumns:
    """:class:`incentives.kinds.steps.Adjustments` by columns, for one program version (see the module)."""

    def __init__(self, program: SharedKeys):
        self._program = program
        multipliers = [Condition(bonus_id(bonus.id), bonus.when) for bonus in program.bonuses
                       if bonus.multiplier is not None]
        additive = [Condition(bonus_id(bonus.id), bonus.when) for bonus in program.bonuses if bonus.amount is not None]
        deductions = [Condition(deduction_id(deduction.id), deduction.when) for deduction in program.deductions
                      if deduction.when is not None]
        self._conditions = [condition for condition in multipliers + additive + deductions
                            if not _reads_own(condition.expression)]
        #: the conditions that read this.*, by step: matched there, as the per-record step matchers match them
        self._multiplier_conditions, self._bonus_conditions, self._deduction_conditions = (
            [condition for condition in step if _reads_own(condition.expression)]
            for step in (multipliers, additive, deductions))
        self._reads_own = any(_reads_own(expression) for expression in adjustment_expressions(program))

    def conditions(self) -> list[Condition]:
        """The conditions matched up front: those of the bonuses and conditional deductions that read no
        ``this.*`` name."""
        return list(self._conditions)

    def apply(self, block: BlockEvaluation, fired: Mapping[str, pl.Expr]) -> None:
        program = self._program
        fired = dict(fired)
        if self._reads_own:
            block.own_subtotal(own_outcome.BASE, own_outcome.SUBTOTAL)
            _match(block, self._multiplier_conditions, fired)
        for bonus in program.bonuses:
            if bonus.multiplier is not None:
                self._multiplier(block, fired[bonus_id(bonus.id)], bonus.id,
                                 bonus.description or f"{bonus.id} ({bonus.when.text})", bonus.multiplier)
        if self._reads_own:
            block.own_subtotal(own_outcome.SUBTOTAL)
            _match(block, self._bonus_conditions, fired)
        for bonus in program.bonuses:
            if bonus.amount is not None:
                self._amount(block, fired[bonus_id(bonus.id)], "bonus", bonus.id,
                             bonus.description or f"{bonus.id} ({bonus.when.text})", bonus.amount)
        if program.deductions and self._reads_own:
            block.own_subtotal(own_outcome.SUBTOTAL)
            _match(block, self._deduction_conditions, fired)
        for deduction in program.deductions:
            fires = pl.lit(True) if deduction.when is None else fired[deduction_id(deduction.id)]
            self._amount(block, fires, "deduction", deduction.id, deduction.description, deduction.amount)
        if not program.allow_negative:
            self._floor(block)
        if self._reads_own:
            block.own_subtotal(own_outcome.SUBTOTAL)
        if program.cap is not None:
            self._cap(block, program.cap)
        if program.min_payout is not None:
            if self._reads_own and isinstance(program.min_payout, Expression):
                block.own_subtotal(own_outcome.SUBTOTAL)
            self._minimum(block, program.min_payout)

    @staticmethod
    def _multiplier(block: BlockEvaluation, fires: pl.Expr, rule_id: str, description: str,
                    multiplier: Decimal) -> None:
        extra = multiplier - ONE
        extra_units, extra_scale = units_of(extra)
        subtotal_bound = block.total_bound
        if subtotal_bound * abs(extra_units) > MAX_UNITS:
            raise NotByColumns("a multiplied subtotal too large for 128-bit minor units")
        subtotal = block.subtotal()
        amount, bound = block.rounded(subtotal * pl.lit(extra_units, pl.Int128), block.places + extra_scale,
                                      subtotal_bound * abs(extra_units))
        subtotal_text = block.amount_text(subtotal, subtotal_bound)
        shown = f" × ({format_rate(multiplier)} − 100%) = "
        block.add_line(fires, "multiplier", pl.lit(rule_id), pl.lit(description), amount, bound,
                       lambda units: pl.concat_str([subtotal_text, pl.lit(shown), block.amount_text(units, bound)]),
                       basis=block.plain_text(subtotal), rate=pl.lit(f"{extra.normalize():f}"),
                       basis_json=block.subtotal_json(), rate_json=pl.lit(json_by_columns.constant(extra)))

    @staticmethod
    def _amount(block: BlockEvaluation, fires: pl.Expr, kind: str, rule_id: str, description: str,
                expression: Expression) -> None:
        """An additive bonus (``kind`` ``bonus``) or a deduction: the rounded amount, a deduction's negated."""
        raw = block.compile(expression.node)
        if raw.kind is not ColumnKind.NUMBER:
            block.flag(fires)  # per record: "... must be a number"
            return
        # per record a negative amount raises: those rows go per record
        block.flag(fires & (raw.needs_record | (raw.value < 0)))
        amount, bound = block.rounded(raw.value, raw.scale, raw.bound)
        if kind == "bonus":
            head = f"{expression.text} = "
        else:
            amount = pl.lit(0, pl.Int128) - amount.cast(pl.Int128)
            head = f"−({expression.text}) = "
        block.add_line(fires, kind, pl.lit(rule_id), pl.lit(description), amount, bound,
                       lambda units: pl.concat_str([pl.lit(head), block.amount_text(units, bound)]),
                       basis=block.plain_text(raw.value, raw.scale, raw.bound),
                       basis_json=block.value_json(expression.node, fires),
                       inputs_json=block.inputs_json(input_names(expression), fires))

    @staticmethod
    def _floor(block: BlockEvaluation) -> None:
        subtotal, bound = block.subtotal(), block.total_bound
        subtotal_text = block.amount_text(subtotal, bound)
        zero = format_amount(ZERO, block.places)
        block.add_line(subtotal < 0, "floor", pl.lit("floor"),
                       pl.lit("a payout is never negative (the program does not allow_negative)"),
                       pl.lit(0, pl.Int128) - subtotal, bound,
                       lambda units: pl.concat_str([subtotal_text, pl.lit(f" < 0: pays {zero} = "),
                                                    block.amount_text(units, bound)]),
                       basis=block.plain_text(subtotal), basis_json=block.subtotal_json())

    @staticmethod
    def _cap(block: BlockEvaluation, cap: Decimal | Expression) -> None:
        places = block.places
        if isinstance(cap, Expression):
            limit = _limit(block, cap, "cap")
            if limit is None:
                return
            # a maximum is never exceeded: the cap is rounded down to the program's places, as per record
            cap_units, cap_bound = block.rounded(limit.value, limit.scale, limit.bound, mode="down")
            cap_name = block.column(cap_units.cast(pl.Int128), "cap")
            cap_column, written = pl.col(cap_name), pl.lit(f" ({cap.text})")
            cap_text = block.amount_text(cap_column, cap_bound)
        elif block.fraction is not None:
            # prorated: the cap × the active fraction, rounded down to the program's places, as per record
            fraction = block.fraction
            cap_units, cap_scale = units_of(cap)
            cap_units_prorated, cap_bound = block.rounded(pl.lit(cap_units, pl.Int128) * fraction.value,
                                                          cap_scale + fraction.scale, abs(cap_units) * fraction.bound,
                                                          mode="down")
            cap_column = pl.col(block.column(cap_units_prorated.cast(pl.Int128), "cap"))
            cap_text = block.amount_text(cap_column, cap_bound)
            written = pl.when(fraction.value == 10 ** fraction.scale).then(pl.lit("")).otherwise(
                pl.lit(f" (cap {format_amount(cap, places)} × active fraction)"))
        else:
            full_cap = cap.quantize(Decimal(1).scaleb(-places), ROUND_DOWN, EXACT)
            cap_bound = int(full_cap.scaleb(places, EXACT))
            cap_column, written = pl.lit(cap_bound, pl.Int128), pl.lit("")
            cap_text = pl.lit(format_amount(full_cap, places))
        subtotal, bound = block.subtotal(), block.total_bound + cap_bound
        subtotal_text = block.amount_text(subtotal, block.total_bound)
        fires = subtotal > cap_column
        # the cap as applied (rounded down to the places), then what its expression read
        inputs = block.inputs_json(input_names(cap) if isinstance(cap, Expression) else (), fires,
                                   {"cap": block.amount_json(cap_column)})
        block.add_line(fires, "cap", pl.lit("cap"),
                       pl.concat_str([pl.lit("cap of "), cap_text, pl.lit(" per partner and period"),
                                      written]),
                       cap_column - subtotal, bound,
                       lambda units: pl.concat_str([cap_text, pl.lit(" − "), subtotal_text, pl.lit(" = "),
                                                    block.amount_text(units, bound)]),
                       basis=block.plain_text(subtotal), basis_json=block.subtotal_json(), inputs_json=inputs)

    @staticmethod
    def _minimum(block: BlockEvaluation, minimum: Decimal | Expression) -> None:
        places = block.places
        zero = format_amount(ZERO, places)
        subtotal, bound = block.subtotal(), block.total_bound
        total = ColumnExpression(subtotal, pl.lit(False), ColumnKind.NUMBER, places, bound, wide=True)
        if isinstance(minimum, Expression):
            limit = _limit(block, minimum, "min_payout")
            if limit is None:
                return
            below = compare(total, "<", limit)
            minimum_text = block.amount_text(limit.value, limit.bound, limit.scale)
            written = f" ({minimum.text})"
            fires = (subtotal > 0) & below
            # the minimum as computed, then what its expression read
            inputs = block.inputs_json(input_names(minimum), fires,
                                       {"min_payout": block.value_json(minimum.node, fires)})
        else:
            below = compare_constant(total, "<", minimum)
            minimum_text, written = pl.lit(format_amount(minimum, places)), ""
            fires = (subtotal > 0) & below
            inputs = pl.lit(f'{{"min_payout":{json_by_columns.constant(minimum)}}}')
        subtotal_text = block.amount_text(subtotal, bound)
        block.add_line(fires, "minimum", pl.lit("min_payout"),
                       pl.concat_str([pl.lit("below the minimum payout of "), minimum_text, pl.lit(written)]),
                       pl.lit(0, pl.Int128) - subtotal, bound,
                       lambda units: pl.concat_str([subtotal_text, pl.lit(" < "), minimum_text,
                                                    pl.lit(f": pays {zero} = "), block.amount_text(units, bound)]),
                       basis=block.plain_text(subtotal), basis_json=block.subtotal_json(), inputs_json=inputs)


@dataclass(frozen=True)
class BudgetByColumns:
    """A budget that scales one program version's results of one period (``steps.BudgetScale``), and each
    scaled partner's new total: ``new_totals`` has ``partner_id`` and ``budget_total`` (``Int128`` minor units
    at the program's places)."""

    scale: BudgetScale
    new_totals: pl.DataFrame


BUDGET_TOTAL = "budget_total"


def apply_budget_by_columns(block: BlockEvaluation, budget: BudgetByColumns) -> None:
    """``steps.apply_budget``'s line on the rows of the partners ``budget`` scales, the last line of their
    results: from the total to the new one, with the per-record texts."""
    scale = budget.scale
    # the left rows in their order: the block's rows are read by position
    block.frame = block.frame.join(budget.new_totals.lazy(), on="partner_id", how="left", maintain_order="left")
    before = pl.col(block.column(pl.col(TOTAL), "before_budget"))
    new_total = pl.col(BUDGET_TOTAL)
    bound = block.total_bound
    fires = new_total.is_not_null()

    def formula(amount: pl.Expr) -> pl.Expr:
        return pl.concat_str([block.amount_text(before, bound),
                              pl.lit(f" × {scale.budget_text} / {scale.requested_text} → "),
                              block.amount_text(new_total, bound), pl.lit(" (largest remainder) = "),
                              block.amount_text(amount, bound)])

    block.add_line(fires, "budget", pl.lit("budget"), pl.lit(scale.description), new_total - before, bound, formula,
                   basis=block.plain_text(before), rate=pl.lit(f"{scale.factor.normalize():f}"),
                   basis_json=block.amount_json(before), rate_json=pl.lit(json_by_columns.constant(scale.factor)),
                   inputs_json=pl.lit(json_by_columns.constant({"budget": scale.budget,
                                                                "requested": scale.requested})))


def _reads_own(expression: Expression) -> bool:
    return bool(own_outcome.own_names(expression.names))


def _match(block: BlockEvaluation, conditions: list[Condition], fired: dict[str, pl.Expr]) -> None:
    """The ``conditions`` of one step that read ``this.*``, matched on the computing rows now (into ``fired``);
    the rows where one raises per record (a missing value, no boolean) are flagged."""
    for condition in conditions:
        holds = block.compile(condition.expression.node)
        if holds.kind is not ColumnKind.BOOLEAN:
            block.flag(pl.lit(True))
            fired[condition.rule_id] = pl.lit(False)
            continue
        block.flag(holds.needs_record)
        fired[condition.rule_id] = pl.col(block.column(holds.value.fill_null(False), "fired"))


def _limit(block: BlockEvaluation, expression: Expression, key: str) -> ColumnExpression | None:
    """A ``cap`` / ``min_payout`` expression's value on the computing rows (each of them evaluates it); the rows
    where the per-record path raises (no number, a negative one) are flagged. ``None``: it is never a number."""
    value = block.compile(expression.node)
    if value.kind is not ColumnKind.NUMBER:
        block.flag(pl.lit(True))
        return None
    block.flag(value.needs_record | (value.value < 0))
    return value
