"""Goal programs: weighted attainment against targets, a payout curve (SPEC "Goal programs")."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..errors import EvaluationError
from ..models import Program
from ..money import format_amount, format_ratio
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


class GoalCalculator:
    def __init__(self, program: Program, compile: Compile):
        goals = program.goals
        assert goals is not None
        self._goals = tuple(_Goal(t.id, t.metric, t.target, compile(t.metric), compile(t.target), t.weight)
                            for t in goals.targets)
        self._cap = goals.attainment_cap
        self._on = goals.payout.on
        self._on_value = compile(goals.payout.on)
        self._step = goals.payout.interpolation == "step"
        self._curve = tuple((point.attainment, point.factor) for point in goals.payout.curve)

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
        for goal in self._goals:
            actual = number(goal.metric_value(facts), f"goal '{goal.id}' metric ({goal.metric.text})")
            target = number(goal.target_value(facts), f"goal '{goal.id}' target ({goal.target.text})")
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
        factor = self.factor(weighted)
        evaluation.attainment = weighted
        evaluation.details["goals"] = breakdown
        evaluation.details["factor"] = factor
        basis = number(self._on_value(facts), f"payout basis ({self._on.text})")
        if fraction != ONE:
            basis *= fraction
        places = evaluation.rounding.places
        amount = evaluation.rounding.round(basis * factor)
        evaluation.add_line(
            "base", "goal:payout",
            f"{self._on.text} at factor {format_ratio(factor)} for weighted attainment {format_ratio(weighted)}",
            amount, f"{format_amount(basis, places)} × {format_ratio(factor)} = {format_amount(amount, places)}",
            basis=basis, rate=factor, inputs={goal["id"]: goal["attainment"] for goal in breakdown})

    def factor(self, weighted: Decimal) -> Decimal:
        """The curve's factor at ``weighted`` attainment: 0 below the first point, flat after the last."""
        curve = self._curve
        if weighted < curve[0][0]:
            return ZERO
        if weighted >= curve[-1][0]:
            return curve[-1][1]
        for (low, low_factor), (high, high_factor) in zip(curve, curve[1:]):
            if low <= weighted < high:
                if self._step:
                    return low_factor
                return low_factor + (high_factor - low_factor) * (weighted - low) / (high - low)
        raise AssertionError("unreachable: the curve covers every attainment")
