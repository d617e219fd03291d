"""The steps every program kind shares, in the SPEC's order of calculation.

Eligibility and the per-record adjustments (multipliers, additive bonuses,
cap, minimum payout) are compiled once per program version; budget proration
runs over a whole run's results.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from operator import attrgetter
from typing import Any, Sequence

from ..errors import EvaluationError
from ..models import Program
from ..money import (EXACT, apportion, exact_multiply, exact_negate, exact_subtract, exact_sum, format_amount,
                     format_rate)
from ..results import PayoutResult, Reason, new_line, new_reason
from ..rules.backend import Condition
from ..rules.expressions import Expression
from .base import ONE, ZERO, Compile, Evaluation, Evaluator, input_names, inputs_from, number


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
    inputs: tuple[str, ...] = ()


class Eligibility:
    def __init__(self, program: Program):
        self._rules = tuple(_Rule(rule.id, eligibility_id(rule.id), rule.when, rule.description,
                                  input_names(rule.when))
                            for rule in program.eligibility)
        #: The condition ids that must all fire for a record to be eligible.
        self.condition_ids = frozenset(rule.condition_id for rule in self._rules)

    def conditions(self) -> list[Condition]:
        return [Condition(rule.condition_id, rule.when) for rule in self._rules]

    def failed(self, fired: frozenset[str], facts: dict[str, Any]) -> list[Reason]:
        """Every rule that does not hold, with the values it saw."""
        return [new_reason({"rule_id": rule.id, "description": rule.description, "when": rule.when.text,
                            "values": inputs_from(rule.inputs, facts)})
                for rule in self._rules if rule.condition_id not in fired]


@dataclass(frozen=True, slots=True)
class _Multiplier:
    id: str
    condition_id: str
    factor: Decimal
    description: str
    extra: Decimal
    shown: str


@dataclass(frozen=True, slots=True)
class _AdditiveBonus:
    id: str
    condition_id: str
    amount: Expression
    value: Evaluator
    description: str
    inputs: tuple[str, ...] = ()
    what: str = ""


class Adjustments:
    """Multipliers, additive bonuses, the floor at zero, cap and minimum payout of one program version."""

    def __init__(self, program: Program, compile: Compile):
        self._multipliers = tuple(
            _Multiplier(b.id, bonus_id(b.id), b.multiplier, b.description or f"{b.id} ({b.when.text})",
                        b.multiplier - ONE, f" × ({format_rate(b.multiplier)} − 100%) = ")
            for b in program.bonuses if b.multiplier is not None)
        self._bonuses = tuple(
            _AdditiveBonus(b.id, bonus_id(b.id), b.amount, compile(b.amount), b.description or f"{b.id} ({b.when.text})",
                           input_names(b.amount), f"bonus '{b.id}' amount ({b.amount.text})")
            for b in program.bonuses if b.amount is not None)
        self._conditions = [Condition(bonus_id(b.id), b.when) for b in program.bonuses]
        self._bonus_rules = tuple(_Rule(b.id, bonus_id(b.id), b.when, b.description, input_names(b.when))
                                  for b in program.bonuses)
        self._cap = program.cap
        self._minimum = program.min_payout
        places = program.rounding.places
        self._quantum = Decimal(1).scaleb(-places)
        self._full_cap = None if self._cap is None else self._cap.quantize(self._quantum, rounding=ROUND_DOWN)
        self._minimum_text = None if self._minimum is None else format_amount(self._minimum, places)
        self._floor = not program.allow_negative
        #: Whether :meth:`apply` can change anything: a program that allows negative totals and has no
        #: bonuses, cap or minimum skips it.
        self.any = bool(self._multipliers or self._bonuses or self._floor or self._cap is not None
                        or self._minimum is not None)

    def conditions(self) -> list[Condition]:
        return list(self._conditions)

    def not_fired(self, fired: frozenset[str], facts: dict[str, Any]) -> list[Reason]:
        """Every bonus whose condition does not hold, with the values it saw (for ``explain``)."""
        return [new_reason({"rule_id": rule.id, "description": rule.description, "when": rule.when.text,
                            "values": inputs_from(rule.inputs, facts)})
                for rule in self._bonus_rules if rule.condition_id not in fired]

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
                subtotal = evaluation.total
                extra = multiplier.extra
                amount = rounding.round(exact_multiply(subtotal, extra))
                evaluation.line(
                    "multiplier", multiplier.id, multiplier.description, amount,
                    f"{format_amount(subtotal, places)}{multiplier.shown}{format_amount(amount, places)}",
                    subtotal, extra, {})
        for bonus in self._bonuses:
            if bonus.condition_id in fired:
                raw = bonus.value(evaluation.facts)
                if type(raw) is not Decimal:
                    number(raw, bonus.what)
                if raw < ZERO:
                    raise EvaluationError(f"bonus '{bonus.id}' amount ({bonus.amount.text}) is negative: {raw}")
                amount = rounding.round(raw)
                evaluation.line("bonus", bonus.id, bonus.description, amount,
                                f"{bonus.amount.text} = {format_amount(amount, places)}",
                                raw, None, inputs_from(bonus.inputs, evaluation.facts))
        if self._floor and evaluation.total < ZERO:
            self._apply_floor(evaluation)
        cap = self._full_cap
        if cap is not None:
            fraction = evaluation.fraction
            if fraction != ONE:
                # A maximum is never exceeded: a prorated cap is rounded down to the program's places.
                cap = exact_multiply(self._cap, fraction).quantize(self._quantum, ROUND_DOWN, EXACT)
            if evaluation.total > cap:
                self._apply_cap(evaluation, cap)
        minimum = self._minimum
        if minimum is not None and ZERO < evaluation.total < minimum:
            self._apply_minimum(evaluation)

    @staticmethod
    def _apply_floor(evaluation: Evaluation) -> None:
        """A negative subtotal (a negative base, say net sales after returns) pays 0, unless the program
        allows negative totals (``allow_negative: true``, a clawback)."""
        places = evaluation.rounding.places
        subtotal = evaluation.total
        raised = exact_negate(subtotal)
        evaluation.add_line("floor", "floor", "a payout is never negative (the program does not allow_negative)",
                            raised, f"{format_amount(subtotal, places)} < 0: pays {format_amount(ZERO, places)} = "
                            f"{format_amount(raised, places)}", basis=subtotal)

    def _apply_cap(self, evaluation: Evaluation, cap: Decimal) -> None:
        places = evaluation.rounding.places
        subtotal = evaluation.total
        prorated = "" if evaluation.fraction == ONE else f" (cap {format_amount(self._cap, places)} × active fraction)"
        lowered = exact_subtract(cap, subtotal)
        evaluation.add_line("cap", "cap", f"cap of {format_amount(cap, places)} per partner and period{prorated}",
                            lowered,
                            f"{format_amount(cap, places)} − {format_amount(subtotal, places)} = "
                            f"{format_amount(lowered, places)}", basis=subtotal, inputs={"cap": cap})

    def _apply_minimum(self, evaluation: Evaluation) -> None:
        places = evaluation.rounding.places
        subtotal = evaluation.total
        minimum = self._minimum_text
        lowered = exact_negate(subtotal)
        evaluation.add_line("minimum", "min_payout",
                            f"below the minimum payout of {minimum}",
                            lowered, f"{format_amount(subtotal, places)} < "
                            f"{minimum}: pays {format_amount(ZERO, places)} = {format_amount(lowered, places)}",
                            basis=subtotal, inputs={"min_payout": self._minimum})


@dataclass(frozen=True, slots=True)
class BudgetScale:
    """How one program's totals for one period are scaled down to its budget (SPEC "Budget").

    Shared by :func:`apply_budget` (results in memory) and the streaming run
    (compact totals), so both write the same budget line to the character.
    """

    budget: Decimal
    requested: Decimal
    factor: Decimal
    places: int
    description: str
    budget_text: str
    requested_text: str

    @classmethod
    def of(cls, budget: Decimal, requested: Decimal, places: int) -> "BudgetScale":
        factor = budget / requested
        budget_text, requested_text = format_amount(budget, places), format_amount(requested, places)
        return cls(budget, requested, factor, places,
                   f"program budget {budget_text} over {requested_text} "
                   f"requested: scaled by {format_rate(factor.quantize(Decimal('1E-6')))}",
                   budget_text, requested_text)

    def line(self, n: int, total: Decimal, new_total: Decimal) -> dict[str, Any]:
        """The fields of the budget line that takes a result from ``total`` to ``new_total``."""
        adjustment = exact_subtract(new_total, total)
        return {"n": n, "kind": "budget", "rule_id": "budget", "description": self.description,
                "basis": total, "rate": self.factor, "amount": adjustment,
                "formula": self.formula(total, new_total, adjustment),
                "inputs": {"budget": self.budget, "requested": self.requested}}

    def formula(self, total: Decimal, new_total: Decimal, adjustment: Decimal) -> str:
        places = self.places
        return (f"{format_amount(total, places)} × {self.budget_text} / {self.requested_text} → "
                f"{format_amount(new_total, places)} (largest remainder) = {format_amount(adjustment, places)}")


def scale_to_budget(totals: Sequence[tuple[str, Decimal]], budget: Decimal,
                    places: int) -> tuple[BudgetScale, list[Decimal]] | None:
    """The budget scale and new totals for paying ``(partner_id, total)`` pairs sorted by partner_id.

    ``None`` when their sum is within ``budget``.
    """
    requested = exact_sum(total for _, total in totals)
    if requested <= budget:
        return None
    return BudgetScale.of(budget, requested, places), apportion(totals, budget, places)


_partner_id = attrgetter("partner_id")


def apply_budget(results: Sequence[PayoutResult], budget: Decimal, places: int) -> BudgetScale | None:
    """Scale ``results`` (one program, one period) down to ``budget`` if their total exceeds it.

    Returns the scale applied (its ``factor``, and the ``requested`` total that
    now sums to ``budget``), or ``None`` when the budget holds. Cents are
    apportioned by largest remainder, ties broken by partner_id, so the new
    totals add up to the budget exactly.
    """
    paying = [result for result in results if result.status == "ok" and result.total > ZERO]
    ordered = sorted(paying, key=_partner_id)
    scaled = scale_to_budget([(result.partner_id, result.total) for result in ordered], budget, places)
    if scaled is None:
        return None
    scale, new_totals = scaled
    for result, new_total in zip(ordered, new_totals):
        result.lines.append(new_line(scale.line(len(result.lines) + 1, result.total, new_total)))
        # what ``result.total = new_total`` does for a model without validate_assignment, minus its lookups
        result.__dict__["total"] = new_total
        result.__pydantic_fields_set__.add("total")
    return scale
