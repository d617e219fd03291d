"""Goal programs: weighted attainment against targets, a payout curve (SPEC "Goal programs").

With ``payout.per_goal: true`` (SPEC "Program language additions") the curve
applies to each goal's own attainment instead, and each goal pays its own base
line: ``on`` × weight × factor(goal attainment).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Annotated, Literal, Mapping, Sequence

from pydantic import Field
from typing_extensions import NotRequired, TypedDict

from .. import fields, own_outcome
from ..errors import EvaluationError
from ..fields import ExpressionField, Identifier, Rate, StrictModel
from ..money import (exact_multiply, exact_multiply_add, exact_subtract, exact_sum, format_amount, format_rate,
                     format_ratio, ratio)
from ..rules.backend import Condition
from ..rules.expressions import Expression
from ..yamlsource import Path
from .base import ONE, ZERO, Compile, Evaluation, Evaluator, Kind, number


class CurvePoint(StrictModel):
    attainment: Annotated[Rate, Field(ge=0)]
    factor: Annotated[Rate, Field(ge=0, le=10)]


class GoalTarget(StrictModel):
    id: Identifier
    metric: ExpressionField
    target: ExpressionField
    weight: Annotated[Rate, Field(gt=0, le=1)]
    # Per-goal payouts only (``payout.per_goal: true``): below ``threshold`` this goal's factor is 0;
    # ``cap`` replaces ``attainment_cap`` for this goal; ``curve`` replaces the payout curve for it.
    threshold: Annotated[Rate, Field(ge=0)] | None = None
    cap: Annotated[Rate, Field(gt=0)] | None = None
    curve: list[CurvePoint] | None = Field(None, min_length=1)


class GoalPayout(StrictModel):
    on: ExpressionField
    interpolation: Literal["linear", "step"] = "linear"
    curve: list[CurvePoint] = Field(min_length=1)
    #: the curve applies to each goal's own attainment, one base line per goal
    per_goal: bool = Field(False, strict=True)


class Goals(StrictModel):
    targets: list[GoalTarget] = Field(min_length=1)
    attainment_cap: Annotated[Rate, Field(gt=0)] | None = None
    payout: GoalPayout


class GoalDetail(TypedDict):
    id: str
    metric: Decimal
    target: Decimal
    attainment: Decimal
    weight: Decimal
    factor: NotRequired[Decimal]  # per-goal payouts: the factor of this goal's own attainment


class GoalDetails(TypedDict, total=False):
    """What a goal program's result carries: each goal's numbers, and the factor of the weighted attainment."""

    goals: list[GoalDetail]
    factor: Decimal


def explain_goals(details: Mapping[str, Any], places: int) -> list[str]:
    """One line per goal: metric of target = attainment (weight, and the goal's own factor per goal)."""
    out = []
    for goal in details.get("goals", []):
        factor = f", factor {format_ratio(goal['factor'])}" if "factor" in goal else ""  # per-goal payouts
        out.append(f"  goal {goal['id']}: {format_amount(goal['metric'], 0)} of "
                   f"{format_amount(goal['target'], 0)} = {format_ratio(goal['attainment'])}"
                   f" (weight {format_rate(goal['weight'])}{factor})")
    return out


def check_goals(goals: Goals, rounding: fields.Rounding) -> list[tuple[Path, str]]:
    found = []
    total = exact_sum(target.weight for target in goals.targets)
    if total != 1:
        found.append((("goals", "targets"), f"goal weights must sum to 100%, they sum to {format_rate(total)}"))
    ids = [target.id for target in goals.targets]
    for index, goal_id in enumerate(ids):
        if goal_id in ids[:index]:
            found.append((("goals", "targets", index, "id"), f"duplicate goal id '{goal_id}'"))
    found += _check_curve(goals.payout.curve, ("goals", "payout", "curve"))
    for index, target in enumerate(goals.targets):
        found += _check_per_goal_target(target, index, goals)
    return found


def _check_curve(curve: list[CurvePoint], path: Path) -> list[tuple[Path, str]]:
    return [((*path, index, "attainment"), "curve points must have strictly ascending 'attainment'")
            for index in range(1, len(curve)) if curve[index].attainment <= curve[index - 1].attainment]


def _check_per_goal_target(target: GoalTarget, index: int, goals: Goals) -> list[tuple[Path, str]]:
    """A target's own ``threshold``, ``cap`` and ``curve``: only in a per-goal payout, and consistent."""
    path: Path = ("goals", "targets", index)
    if not goals.payout.per_goal:
        return [((*path, key), f"goal '{target.id}': '{key}' applies to per-goal payouts only; "
                               "set 'per_goal: true' under 'goals.payout' to pay each goal on its own curve")
                for key in ("threshold", "cap", "curve") if getattr(target, key) is not None]
    found = [] if target.curve is None else _check_curve(target.curve, (*path, "curve"))
    cap = target.cap if target.cap is not None else goals.attainment_cap
    if target.threshold is not None and cap is not None and target.threshold > cap:
        whose = "its cap" if target.cap is not None else "the program's attainment_cap"
        found.append(((*path, "threshold"), f"goal '{target.id}': threshold {format_rate(target.threshold)} is "
                                            f"above {whose} {format_rate(cap)}, so the goal could never pay"))
    return found


class Curve:
    """A payout curve: attainment -> factor, ``linear`` or ``step`` between its ascending points."""

    __slots__ = ("_first", "_last", "_segments", "_step", "_places")

    def __init__(self, points: Sequence[CurvePoint], step: bool, places: int):
        pairs = [(point.attainment, point.factor) for point in points]
        self._first = pairs[0][0]
        self._last = pairs[-1]
        # each segment between neighbouring points with what its interpolation needs, computed once:
        # (low, high, low_factor, rise = high_factor - low_factor, width = high - low, low_factor × width)
        self._segments = tuple(
            (low, high, low_factor, exact_subtract(high_factor, low_factor), exact_subtract(high, low),
             exact_multiply(low_factor, exact_subtract(high, low)))
            for (low, low_factor), (high, high_factor) in zip(pairs, pairs[1:]))
        self._step = step
        self._places = places

    def factor(self, attainment: Decimal) -> Decimal:
        """The factor at ``attainment``: 0 below the first point, flat after the last.

        An interpolated factor is a computed ratio: rounded half-even to ``ratio_places``.
        """
        if attainment < self._first:
            return ZERO
        if attainment >= self._last[0]:
            return self._last[1]
        for low, high, low_factor, rise, width, low_factor_by_width in self._segments:
            if low <= attainment < high:
                if self._step or attainment == low:
                    return low_factor
                # low_factor + rise × (attainment - low) / width, as one division
                numerator = exact_multiply_add(rise, exact_subtract(attainment, low), low_factor_by_width)
                return ratio(numerator, width, self._places)
        raise AssertionError("unreachable: the curve covers every attainment")


@dataclass(frozen=True, slots=True)
class _Goal:
    id: str
    metric: Expression
    target: Expression
    metric_value: Evaluator
    target_value: Evaluator
    weight: Decimal
    metric_what: str
    target_what: str
    #: the attainment cap of this goal: its own ``cap``, else the program's ``attainment_cap`` (None: no cap)
    cap: Decimal | None
    #: per-goal payouts only: below it the factor is 0 (None: no threshold), and the goal's curve
    threshold: Decimal | None
    curve: Curve


class GoalCalculator:
    def __init__(self, goals: Goals, rounding: fields.Rounding, compile: Compile):
        payout = goals.payout
        step = payout.interpolation == "step"
        self._places = rounding.ratio_places
        self._curve = Curve(payout.curve, step, self._places)
        self._per_goal = payout.per_goal
        self._goals = tuple(
            _Goal(t.id, t.metric, t.target, compile(t.metric), compile(t.target), t.weight,
                  f"goal '{t.id}' metric ({t.metric.text})", f"goal '{t.id}' target ({t.target.text})",
                  t.cap if t.cap is not None else goals.attainment_cap, t.threshold,
                  Curve(t.curve, step, self._places) if t.curve is not None else self._curve)
            for t in goals.targets)
        self._on_what = f"payout basis ({payout.on.text})"
        self._described = f"{payout.on.text} at factor "
        self._on = payout.on
        self._on_value = compile(payout.on)

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
        places = self._places
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
                target = exact_multiply(target, fraction)
            attainment = ratio(actual, target, places)
            if goal.cap is not None and attainment > goal.cap:
                attainment = goal.cap
            weighted = exact_multiply_add(goal.weight, attainment, weighted)
            breakdown.append({"id": goal.id, "metric": actual, "target": target,
                              "attainment": attainment, "weight": goal.weight})
            attainments[goal.id] = attainment
        evaluation.attainment = weighted
        evaluation.details["goals"] = breakdown
        basis = self._on_value(facts)
        if type(basis) is not Decimal:
            number(basis, self._on_what)
        if fraction != ONE:
            basis = exact_multiply(basis, fraction)
        if self._per_goal:
            self._pay_each_goal(evaluation, basis, breakdown)
            return
        factor = self._curve.factor(weighted)
        evaluation.details["factor"] = factor
        money_places = evaluation.rounding.places
        amount = evaluation.rounding.round(exact_multiply(basis, factor))
        factor_text = format_ratio(factor)
        evaluation.line(
            "base", "goal:payout",
            f"{self._described}{factor_text} for weighted attainment {format_ratio(weighted)}",
            amount, f"{format_amount(basis, money_places)} × {factor_text} = {format_amount(amount, money_places)}",
            basis, factor, attainments)

    def _pay_each_goal(self, evaluation: Evaluation, basis: Decimal, breakdown: list[dict]) -> None:
        """One base line per goal: ``basis`` × weight × factor(the goal's own attainment)."""
        money_places = evaluation.rounding.places
        basis_text = format_amount(basis, money_places)
        for goal, detail in zip(self._goals, breakdown):
            attainment = detail["attainment"]
            below_threshold = goal.threshold is not None and attainment < goal.threshold
            factor = ZERO if below_threshold else goal.curve.factor(attainment)
            detail["factor"] = factor
            rate = exact_multiply(goal.weight, factor)
            amount = evaluation.rounding.round(exact_multiply(basis, rate))
            factor_text = format_ratio(factor)
            why = (f"below its threshold {format_rate(goal.threshold)}"  # type: ignore[arg-type]
                   if below_threshold else f"for attainment {format_ratio(attainment)}")
            evaluation.line(
                "base", f"goal:{goal.id}",
                f"goal '{goal.id}' at factor {factor_text} {why}, weight {format_rate(goal.weight)}",
                amount,
                f"{basis_text} × weight {format_rate(goal.weight)} × factor {factor_text} "
                f"(attainment {format_ratio(attainment)}) = {format_amount(amount, money_places)}",
                basis, rate, {goal.id: attainment})


GOAL = Kind(name="goal", section="goals", model=Goals, calculator=GoalCalculator, check=check_goals,
            base_line_kinds=frozenset({"base"}), number_keys=frozenset({"metric", "target", "on"}),
            own_names=frozenset({own_outcome.ATTAINMENT}), details=GoalDetails, explain_details=explain_goals,
            by_columns="incentives.kinds.goal_by_columns:GoalByColumns")
