"""The steps every program kind shares, in the SPEC's order of calculation.

Eligibility and the per-record adjustments (multipliers, additive bonuses,
deductions, floor, cap, minimum payout) are compiled once per program version; budget proration
runs over a whole run's results.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from operator import attrgetter
from typing import Any, Callable, Protocol, Sequence

from .. import own_outcome
from ..errors import EvaluationError
from ..fields import Bonus, Deduction, Rounding, Rule
from ..money import (EXACT, apportion, exact_multiply, exact_negate, exact_subtract, exact_sum, format_amount,
                     format_rate)
from ..result_parts import PayoutLine, Reason, new_line, new_reason
from ..rules.backend import Condition, Matcher
from ..rules.expressions import Expression
from . import KINDS
from .base import ONE, ZERO, Compile, Evaluation, Evaluator, input_names, inputs_from, number


class SharedKeys(Protocol):
    """What the shared steps read of a program (an :class:`incentives.models.Program`)."""

    eligibility: list[Rule]
    bonuses: list[Bonus]
    deductions: list[Deduction]
    allow_negative: bool
    cap: Decimal | Expression | None
    min_payout: Decimal | Expression | None
    rounding: Rounding


class ComputedResult(Protocol):
    """What the steps read of a computed result (an :class:`incentives.results.PayoutResult`, which sits above
    the kinds: it carries their details)."""

    partner_id: str
    status: str
    tier: str | None
    attainment: Decimal | None
    lines: list[PayoutLine]
    total: Decimal


def eligibility_id(rule_id: str) -> str:
    return f"eligibility:{rule_id}"


def bonus_id(rule_id: str) -> str:
    return f"bonus:{rule_id}"


def deduction_id(rule_id: str) -> str:
    return f"deduction:{rule_id}"


def adjustment_expressions(program: SharedKeys) -> list[Expression]:
    """Every expression the steps after the base read (bonuses, deductions, cap, min_payout)."""
    found: list[Expression] = []
    for bonus in program.bonuses:
        found += [bonus.when] if bonus.amount is None else [bonus.when, bonus.amount]
    for deduction in program.deductions:
        found += [deduction.amount] if deduction.when is None else [deduction.when, deduction.amount]
    found += [value for value in (program.cap, program.min_payout) if isinstance(value, Expression)]
    return found


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    condition_id: str
    when: Expression
    description: str | None
    inputs: tuple[str, ...] = ()


class Eligibility:
    def __init__(self, program: SharedKeys):
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


@dataclass(frozen=True, slots=True)
class _Deduction:
    id: str
    #: ``None``: the deduction has no ``when`` and always applies.
    condition_id: str | None
    amount: Expression
    value: Evaluator
    description: str
    inputs: tuple[str, ...] = ()
    what: str = ""


@dataclass(frozen=True, slots=True)
class _Limit:
    """``cap`` or ``min_payout`` written as an expression, evaluated per record."""

    expression: Expression
    value: Evaluator
    inputs: tuple[str, ...]
    what: str


#: The line kinds of the subtotal before each step of :class:`Adjustments` (the base step's kinds first).
_BEFORE_MULTIPLIERS = frozenset(line_kind for kind in KINDS.values() for line_kind in kind.base_line_kinds)
_BEFORE_BONUSES = _BEFORE_MULTIPLIERS | {"multiplier"}
_BEFORE_DEDUCTIONS = _BEFORE_BONUSES | {"bonus"}
#: The condition id of the rule that added a line of each kind a bonus or deduction that fired adds.
_CONDITION_OF_LINE = {"multiplier": bonus_id, "bonus": bonus_id, "deduction": deduction_id}


MatcherFor = Callable[[Sequence[Condition], str], Matcher]
"""Compiles the conditions of one step into a matcher; the text names the step (for ruleset names)."""


def _reads_own(expression: Expression) -> bool:
    return bool(own_outcome.own_names(expression.names))


def _step_matcher(matcher_for: MatcherFor, step: str, conditions: list[Condition]) -> Matcher | None:
    """The matcher of the ``conditions`` of one step that read ``this.*``, or ``None`` when none does."""
    reading = [condition for condition in conditions if _reads_own(condition.expression)]
    return matcher_for(reading, step) if reading else None


class Adjustments:
    """Multipliers, additive bonuses, deductions, the floor at zero, cap and minimum payout of one program
    version.

    Conditions that read no ``this.*`` name are matched up front with the eligibility rules
    (:meth:`conditions`); those that read one are matched at their step, once the program's own outcome
    is known, by a matcher of their own, so a program that reads no ``this.*`` pays nothing for them.
    """

    def __init__(self, program: SharedKeys, compile: Compile, matcher_for: MatcherFor):
        self._multipliers = tuple(
            _Multiplier(b.id, bonus_id(b.id), b.multiplier, b.description or f"{b.id} ({b.when.text})",
                        b.multiplier - ONE, f" × ({format_rate(b.multiplier)} − 100%) = ")
            for b in program.bonuses if b.multiplier is not None)
        self._bonuses = tuple(
            _AdditiveBonus(b.id, bonus_id(b.id), b.amount, compile(b.amount), b.description or f"{b.id} ({b.when.text})",
                           input_names(b.amount), f"bonus '{b.id}' amount ({b.amount.text})")
            for b in program.bonuses if b.amount is not None)
        self._deductions = tuple(
            _Deduction(d.id, None if d.when is None else deduction_id(d.id), d.amount, compile(d.amount),
                       d.description, input_names(d.amount), f"deduction '{d.id}' amount ({d.amount.text})")
            for d in program.deductions)
        bonus_conditions = [Condition(bonus_id(b.id), b.when) for b in program.bonuses]
        deduction_conditions = [Condition(deduction_id(d.id), d.when) for d in program.deductions
                                if d.when is not None]
        self._conditions = [c for c in bonus_conditions + deduction_conditions if not _reads_own(c.expression)]
        #: The rules ``explain`` lists when they did not fire, each with the line kinds of the subtotal before
        #: its step (what ``this.subtotal`` was when its condition was matched).
        self._conditional_rules = tuple(
            [(_Rule(b.id, bonus_id(b.id), b.when, b.description, input_names(b.when)),
              _BEFORE_MULTIPLIERS if b.multiplier is not None else _BEFORE_BONUSES) for b in program.bonuses]
            + [(_Rule(d.id, deduction_id(d.id), d.when, d.description, input_names(d.when)), _BEFORE_DEDUCTIONS)
               for d in program.deductions if d.when is not None])
        multiplier_ids = {bonus_id(b.id) for b in program.bonuses if b.multiplier is not None}
        #: Matchers of the conditions that read ``this.*``, by step; ``None`` when a step has none.
        self._multiplier_matcher = _step_matcher(
            matcher_for, "multipliers", [c for c in bonus_conditions if c.rule_id in multiplier_ids])
        self._bonus_matcher = _step_matcher(
            matcher_for, "bonuses", [c for c in bonus_conditions if c.rule_id not in multiplier_ids])
        self._deduction_matcher = _step_matcher(matcher_for, "deductions", deduction_conditions)
        self._matchers = tuple(m for m in (self._multiplier_matcher, self._bonus_matcher, self._deduction_matcher)
                               if m is not None)
        self._cap, self._cap_limit = self._limit(program.cap, "cap", compile)
        self._minimum, self._minimum_limit = self._limit(program.min_payout, "min_payout", compile)
        places = program.rounding.places
        self._quantum = Decimal(1).scaleb(-places)
        self._full_cap = None if self._cap is None else self._cap.quantize(self._quantum, rounding=ROUND_DOWN)
        self._minimum_text = None if self._minimum is None else format_amount(self._minimum, places)
        self._floor = not program.allow_negative
        self._expressions = adjustment_expressions(program)
        #: Whether any expression of the steps reads ``this.*``: only then are those values put in the facts.
        self._reads_own = any(_reads_own(expression) for expression in self._expressions)
        #: Whether :meth:`apply` can change anything: a program that allows negative totals and has no
        #: bonuses, deductions, cap or minimum skips it.
        self.any = bool(self._multipliers or self._bonuses or self._deductions or self._floor
                        or program.cap is not None or program.min_payout is not None)

    @staticmethod
    def _limit(value: Decimal | Expression | None, key: str,
               compile: Compile) -> tuple[Decimal | None, _Limit | None]:
        """A fixed ``cap``/``min_payout`` amount, or the expression that computes it per record."""
        if isinstance(value, Expression):
            return None, _Limit(value, compile(value), input_names(value), f"{key} ({value.text})")
        return value, None

    def conditions(self) -> list[Condition]:
        """The conditions matched up front: those that read no ``this.*`` name."""
        return list(self._conditions)

    def not_fired(self, result: ComputedResult, facts: dict[str, Any]) -> list[Reason]:
        """Every bonus and conditional deduction that did not fire for ``result`` (an ``ok`` result of this
        program), with the values its condition saw (for ``explain``).

        Whether a rule fired is read from the result's lines; ``facts`` are the values the conditions read
        (facts, defaults, metrics), to which the program's own outcome (``this.*``) is added from ``result``
        as each step saw it.
        """
        fired = {_CONDITION_OF_LINE[line.kind](line.rule_id) for line in result.lines
                 if line.kind in _CONDITION_OF_LINE}
        reasons = []
        for rule, before in self._conditional_rules:
            if rule.condition_id in fired:
                continue
            seen = facts
            if self._reads_own:
                seen = {**facts, own_outcome.TIER: result.tier, own_outcome.ATTAINMENT: result.attainment,
                        own_outcome.BASE: exact_sum(line.amount for line in result.lines
                                                    if line.kind in _BEFORE_MULTIPLIERS),
                        own_outcome.SUBTOTAL: exact_sum(line.amount for line in result.lines if line.kind in before)}
            reasons.append(new_reason({"rule_id": rule.id, "description": rule.description, "when": rule.when.text,
                                       "values": inputs_from(rule.inputs, seen)}))
        return reasons

    def names(self) -> set[str]:
        """The facts the steps read (``this.*`` names are not facts)."""
        names: set[str] = set()
        for expression in self._expressions:
            names |= expression.names
        return {name for name in names if not own_outcome.is_own(name)}

    def close(self) -> None:
        for matcher in self._matchers:
            matcher.close()

    def apply(self, evaluation: Evaluation) -> None:
        fired = evaluation.fired
        rounding = evaluation.rounding
        places = rounding.places
        reads_own = self._reads_own
        if reads_own:
            facts = evaluation.facts
            facts[own_outcome.TIER] = evaluation.tier
            facts[own_outcome.ATTAINMENT] = evaluation.attainment
            facts[own_outcome.BASE] = evaluation.total
            facts[own_outcome.SUBTOTAL] = evaluation.total
            if self._multiplier_matcher is not None:
                fired = fired | self._multiplier_matcher.matching(facts)
        for multiplier in self._multipliers:
            if multiplier.condition_id in fired:
                subtotal = evaluation.total
                extra = multiplier.extra
                amount = rounding.round(exact_multiply(subtotal, extra))
                evaluation.line(
                    "multiplier", multiplier.id, multiplier.description, amount,
                    f"{format_amount(subtotal, places)}{multiplier.shown}{format_amount(amount, places)}",
                    subtotal, extra, {})
        if reads_own:
            fired = self._next_step(evaluation, fired, self._bonus_matcher)
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
        if self._deductions:
            if reads_own:
                fired = self._next_step(evaluation, fired, self._deduction_matcher)
            self._apply_deductions(evaluation, fired)
        if self._floor and evaluation.total < ZERO:
            self._apply_floor(evaluation)
        if reads_own:
            evaluation.facts[own_outcome.SUBTOTAL] = evaluation.total
        cap = self._full_cap
        if self._cap_limit is not None:
            cap = self._limit_value(self._cap_limit, evaluation).quantize(self._quantum, ROUND_DOWN, EXACT)
            if evaluation.total > cap:
                self._apply_cap(evaluation, cap, self._cap_limit)
        elif cap is not None:
            fraction = evaluation.fraction
            if fraction != ONE:
                # A maximum is never exceeded: a prorated cap is rounded down to the program's places.
                cap = exact_multiply(self._cap, fraction).quantize(self._quantum, ROUND_DOWN, EXACT)
            if evaluation.total > cap:
                self._apply_cap(evaluation, cap, None)
        minimum = self._minimum
        if self._minimum_limit is not None:
            if reads_own:
                evaluation.facts[own_outcome.SUBTOTAL] = evaluation.total
            minimum = self._limit_value(self._minimum_limit, evaluation)
        if minimum is not None and ZERO < evaluation.total < minimum:
            self._apply_minimum(evaluation, minimum, self._minimum_limit)

    @staticmethod
    def _next_step(evaluation: Evaluation, fired: frozenset[str], matcher: Matcher | None) -> frozenset[str]:
        """Before a step: ``this.subtotal`` becomes the subtotal so far; the step's own conditions are matched."""
        facts = evaluation.facts
        facts[own_outcome.SUBTOTAL] = evaluation.total
        return fired if matcher is None else fired | matcher.matching(facts)

    def _apply_deductions(self, evaluation: Evaluation, fired: frozenset[str]) -> None:
        rounding = evaluation.rounding
        places = rounding.places
        facts = evaluation.facts
        for deduction in self._deductions:
            if deduction.condition_id is None or deduction.condition_id in fired:
                raw = deduction.value(facts)
                if type(raw) is not Decimal:
                    number(raw, deduction.what)
                if raw < ZERO:
                    raise EvaluationError(f"deduction '{deduction.id}' amount ({deduction.amount.text}) is "
                                          f"negative: {raw}")
                amount = exact_negate(rounding.round(raw))
                evaluation.line("deduction", deduction.id, deduction.description, amount,
                                f"−({deduction.amount.text}) = {format_amount(amount, places)}",
                                raw, None, inputs_from(deduction.inputs, facts))

    @staticmethod
    def _limit_value(limit: _Limit, evaluation: Evaluation) -> Decimal:
        value = limit.value(evaluation.facts)
        if type(value) is not Decimal:
            number(value, limit.what)
        if value < ZERO:
            raise EvaluationError(f"{limit.what} is negative: {value}")
        return value

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

    def _apply_cap(self, evaluation: Evaluation, cap: Decimal, limit: _Limit | None) -> None:
        places = evaluation.rounding.places
        subtotal = evaluation.total
        if limit is not None:
            written = f" ({limit.expression.text})"
            inputs = {"cap": cap, **inputs_from(limit.inputs, evaluation.facts)}
        else:
            written = "" if evaluation.fraction == ONE else \
                f" (cap {format_amount(self._cap, places)} × active fraction)"  # type: ignore[arg-type]
            inputs = {"cap": cap}
        lowered = exact_subtract(cap, subtotal)
        evaluation.add_line("cap", "cap", f"cap of {format_amount(cap, places)} per partner and period{written}",
                            lowered,
                            f"{format_amount(cap, places)} − {format_amount(subtotal, places)} = "
                            f"{format_amount(lowered, places)}", basis=subtotal, inputs=inputs)

    def _apply_minimum(self, evaluation: Evaluation, minimum: Decimal, limit: _Limit | None) -> None:
        places = evaluation.rounding.places
        subtotal = evaluation.total
        if limit is not None:
            minimum_text = format_amount(minimum, places)
            written = f" ({limit.expression.text})"
            inputs = {"min_payout": minimum, **inputs_from(limit.inputs, evaluation.facts)}
        else:
            minimum_text = self._minimum_text  # type: ignore[assignment]
            written = ""
            inputs = {"min_payout": minimum}
        lowered = exact_negate(subtotal)
        evaluation.add_line("minimum", "min_payout",
                            f"below the minimum payout of {minimum_text}{written}",
                            lowered, f"{format_amount(subtotal, places)} < "
                            f"{minimum_text}: pays {format_amount(ZERO, places)} = {format_amount(lowered, places)}",
                            basis=subtotal, inputs=inputs)


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


def apply_budget(results: Sequence[ComputedResult], budget: Decimal, places: int) -> BudgetScale | None:
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
