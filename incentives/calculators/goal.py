"""Goal programs: weighted attainment against targets, a payout curve (SPEC "Goal programs")."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..errors import EvaluationError
from ..models import Program
from ..money import exact_multiply, format_amount, format_ratio
from ..rules.backend import Condition
from ..rules.expressions import Expression
from .base import ONE, ZERO, Compile, Evaluation, Evaluator, number


@dataclass(frozen=True, slots=True)
class _Goal:
    id: str
    metric: Expression
    target: Expression
    metric_value: Evaluator
    target_value: Evaluator
    weight: Decimal
    metric_what: str = ""
    target_what: str = ""


class GoalCalculator:
    def __init__(self, program: Program, compile: Compile):
        goals = program.goals
        assert goals is not None
        self._goals = tuple(_Goal(t.id, t.metric, t.target, compile(t.metric), compile(t.target), t.weight,
                                  f"goal '{t.id}' metric ({t.metric.text})", f"goal '{t.id}' target ({t.target.text})")
                            for t in goals.targets)
        self._on_what = f"payout basis ({goals.payout.on.text})"
        self._described = f"{goals.payout.on.text} at factor "
        self._cap = goals.attainment_cap
        self._on = goals.payout.on
        self._on_value = compile(goals.payout.on)
        self._step = goals.payout.interpolation == "step"
        self._curve = tuple((point.attainment, point.factor) for point in goals.payout.curve)
        self._segments = tuple(zip(self._curve, self._curve[1:]))  # neighbouring points, paired once

    def conditions(self) -> list[Condition]:
        return []

    def names(self) -> set[str]:
        names = set(self._on.names)
        for goal in self._goals:
            names |= goal.metric.names | goal.target.names
        return names

    def base(self, evaluation: Evaluation) -> None:
        facts = evaluation.facts
        fraction = evaluation.fraction
        weighted = ZERO
        breakdown = []
        attainments: dict[str, Decimal] = {}  # the base line's inputs, filled in the same loop as the breakdown
        for goal in self._goals:
            actual = goal.metric_value(facts)
            if type(actual) is not Decimal:
                number(actual, goal.metric_what)
            target = goal.target_value(facts)
            if type(target) is not Decimal:
                number(target, goal.target_what)
            if target == ZERO:
                raise EvaluationError(f"goal '{goal.id}' has a target of zero ({goal.target.text})")
            if fraction != ONE:
                target *= fraction
            attainment = actual / target
            if self._cap is not None and attainment > self._cap:
                attainment = self._cap
            weighted += goal.weight * attainment
            breakdown.append({"id": goal.id, "metric": actual, "target": target,
                              "attainment": attainment, "weight": goal.weight})
            attainments[goal.id] = attainment
        factor = self.factor(weighted)
        evaluation.attainment = weighted
        evaluation.details["goals"] = breakdown
        evaluation.details["factor"] = factor
        basis = self._on_value(facts)
        if type(basis) is not Decimal:
            number(basis, self._on_what)
        if fraction != ONE:
            basis *= fraction
        places = evaluation.rounding.places
        amount = evaluation.rounding.round(exact_multiply(basis, factor))
        factor_text = format_ratio(factor)
        evaluation.line(
            "base", "goal:payout",
            f"{self._described}{factor_text} for weighted attainment {format_ratio(weighted)}",
            amount, f"{format_amount(basis, places)} × {factor_text} = {format_amount(amount, places)}",
            basis, factor, attainments)

    def factor(self, weighted: Decimal) -> Decimal:
        """The curve's factor at ``weighted`` attainment: 0 below the first point, flat after the last."""
        curve = self._curve
        if weighted < curve[0][0]:
            return ZERO
        if weighted >= curve[-1][0]:
            return curve[-1][1]
        for (low, low_factor), (high, high_factor) in self._segments:
            if low <= weighted < high:
                if self._step:
                    return low_factor
                return low_factor + (high_factor - low_factor) * (weighted - low) / (high - low)
        raise AssertionError("unreachable: the curve covers every attainment")
