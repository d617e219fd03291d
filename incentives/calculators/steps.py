"""The steps every program kind shares, in the SPEC's order of calculation.

Eligibility and the per-record adjustments (multipliers, additive bonuses,
cap, minimum payout) are compiled once per program version; budget proration
runs over a whole run's results.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from ..errors import EvaluationError
from ..models import Program
from ..money import apportion, format_amount, format_rate
from ..results import PayoutLine, PayoutResult, Reason
from ..rules.backend import Condition
from ..rules.expressions import Expression
from .base import ONE, ZERO, Compile, Evaluation, Evaluator, inputs_of, number


def eligibility_id(rule_id: str) -> str:
    return f"eligibility:{rule_id}"


def bonus_id(rule_id: str) -> str:
    return f"bonus:{rule_id}"


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    condition_id: str
    when: Expression
    description: str | None


class Eligibility:
    def __init__(self, program: Program):
        self._rules = tuple(_Rule(rule.id, eligibility_id(rule.id), rule.when, rule.description)
                            for rule in program.eligibility)

    def conditions(self) -> list[Condition]:
        return [Condition(rule.condition_id, rule.when) for rule in self._rules]

    def failed(self, fired: frozenset[str], facts: dict[str, Any]) -> list[Reason]:
        """Every rule that does not hold, with the values it saw."""
        return [Reason.model_construct(rule_id=rule.id, description=rule.description, when=rule.when.text,
                                       values=inputs_of(rule.when, facts))
                for rule in self._rules if rule.condition_id not in fired]


@dataclass(frozen=True, slots=True)
class _Multiplier:
    id: str
    condition_id: str
    factor: Decimal
    description: str


@dataclass(frozen=True, slots=True)
class _AdditiveBonus:
    id: str
    condition_id: str
    amount: Expression
    value: Evaluator
    description: str


class Adjustments:
    """Multipliers, additive bonuses, cap and minimum payout of one program version."""

    def __init__(self, program: Program, compile: Compile):
        self._multipliers = tuple(
            _Multiplier(b.id, bonus_id(b.id), b.multiplier, b.description or f"{b.id} ({b.when.text})")
            for b in program.bonuses if b.multiplier is not None)
        self._bonuses = tuple(
            _AdditiveBonus(b.id, bonus_id(b.id), b.amount, compile(b.amount), b.description or f"{b.id} ({b.when.text})")
            for b in program.bonuses if b.amount is not None)
        self._conditions = [Condition(bonus_id(b.id), b.when) for b in program.bonuses]
        self._cap = program.cap
        self._minimum = program.min_payout

    def conditions(self) -> list[Condition]:
        return list(self._conditions)

    def names(self) -> set[str]:
        names: set[str] = set()
        for bonus in self._bonuses:
            names |= bonus.amount.names
        return names

    def apply(self, evaluation: Evaluation) -> None:
        fired = evaluation.fired
        rounding = evaluation.rounding
        places = rounding.places
        for multiplier in self._multipliers:
            if multiplier.condition_id in fired:
                subtotal = evaluation.subtotal()
                extra = multiplier.factor - ONE
                amount = rounding.round(subtotal * extra)
                evaluation.add_line(
                    "multiplier", multiplier.id, multiplier.description, amount,
                    f"{format_amount(subtotal, places)} × ({format_rate(multiplier.factor)} − 100%) = "
                    f"{format_amount(amount, places)}", basis=subtotal, rate=extra)
        for bonus in self._bonuses:
            if bonus.condition_id in fired:
                raw = number(bonus.value(evaluation.facts), f"bonus '{bonus.id}' amount ({bonus.amount.text})")
                if raw < ZERO:
                    raise EvaluationError(f"bonus '{bonus.id}' amount ({bonus.amount.text}) is negative: {raw}")
                amount = rounding.round(raw)
                evaluation.add_line("bonus", bonus.id, bonus.description, amount,
                                    f"{bonus.amount.text} = {format_amount(amount, places)}",
                                    basis=raw, inputs=inputs_of(bonus.amount, evaluation.facts))
        if self._cap is not None:
            self._apply_cap(evaluation)
        if self._minimum is not None:
            self._apply_minimum(evaluation)

    def _apply_cap(self, evaluation: Evaluation) -> None:
        rounding = evaluation.rounding
        places = rounding.places
        cap = rounding.round(self._cap * evaluation.fraction)
        subtotal = evaluation.subtotal()
        if subtotal > cap:
            prorated = "" if evaluation.fraction == ONE else f" (cap {format_amount(self._cap, places)} × active fraction)"
            evaluation.add_line("cap", "cap", f"cap of {format_amount(cap, places)} per partner and period{prorated}",
                                cap - subtotal,
                                f"{format_amount(cap, places)} − {format_amount(subtotal, places)} = "
                                f"{format_amount(cap - subtotal, places)}", basis=subtotal, inputs={"cap": cap})

    def _apply_minimum(self, evaluation: Evaluation) -> None:
        places = evaluation.rounding.places
        subtotal = evaluation.subtotal()
        if ZERO < subtotal < self._minimum:
            evaluation.add_line("minimum", "min_payout",
                                f"below the minimum payout of {format_amount(self._minimum, places)}",
                                -subtotal, f"{format_amount(subtotal, places)} < "
                                f"{format_amount(self._minimum, places)}: pays 0.00 = {format_amount(-subtotal, places)}",
                                basis=subtotal, inputs={"min_payout": self._minimum})


def apply_budget(results: Sequence[PayoutResult], budget: Decimal, places: int) -> Decimal | None:
    """Scale ``results`` (one program, one period) down to ``budget`` if their total exceeds it.

    Returns the scale factor applied, or ``None`` when the budget holds. Cents
    are apportioned by largest remainder, ties broken by partner_id, so the
    new totals add up to the budget exactly.
    """
    paying = [result for result in results if result.status == "ok" and result.total > ZERO]
    total = sum((result.total for result in paying), ZERO)
    if total <= budget:
        return None
    ordered = sorted(paying, key=lambda result: result.partner_id)
    scaled = apportion([(result.partner_id, result.total) for result in ordered], budget, places)
    factor = budget / total
    for result, new_total in zip(ordered, scaled):
        adjustment = new_total - result.total
        result.lines.append(PayoutLine.model_construct(
            n=len(result.lines) + 1, kind="budget", rule_id="budget",
            description=f"program budget {format_amount(budget, places)} over {format_amount(total, places)} "
                        f"requested: scaled by {format_rate(factor.quantize(Decimal('1E-6')))}",
            basis=result.total, rate=factor, amount=adjustment,
            formula=f"{format_amount(result.total, places)} × {format_amount(budget, places)} / "
                    f"{format_amount(total, places)} → {format_amount(new_total, places)} "
                    f"(largest remainder) = {format_amount(adjustment, places)}",
            inputs={"budget": budget, "requested": total}))
        result.total = new_total
    return factor
