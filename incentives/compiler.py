"""Compile a validated program version once into the plan the engine runs per record.

The per-record path (:meth:`CompiledProgram.evaluate`) touches only plain
data and prepared closures: no validation, no parsing, no logging.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Mapping, Sequence

from .errors import EvaluationError
from .history import history_names
from .inputs import normalize_record
from .kinds import KINDS
from .kinds.base import ONE, ZERO, Calculator, Evaluation
from .kinds.steps import Adjustments, Eligibility
from .loading import LoadedProgram
from .money import Rounding
from .periods import Period, active_fraction
from .result_parts import Reason, new_reason
from .results import PayoutResult, new_result
from .rules.backend import Matcher, RuleBackend
from .rules.closures import compile_expression


class CompiledProgram:
    """One program version, ready to evaluate records."""

    def __init__(self, loaded: LoadedProgram, backend: RuleBackend, ruleset_name: str):
        program = loaded.program
        self.loaded = loaded
        self.program = program
        self.id = program.id
        self.version = program.version
        self.currency = program.currency
        self.rounding = Rounding(program.rounding.places, program.rounding.mode)
        self._places = program.rounding.places
        self._ratio_places = program.rounding.ratio_places
        self.defaults: dict[str, Any] = _flat_defaults(program.defaults)
        self.metrics = tuple((name, compile_expression(expression.node))
                             for name, expression in program.metrics.items())
        self.eligibility = Eligibility(program)
        self.calculator: Calculator = KINDS[program.kind].calculator(program.section, program.rounding, _compile)
        self.adjustments = Adjustments(
            program, _compile,
            lambda step_conditions, step: backend.compile(step_conditions, ruleset_name=f"{ruleset_name}:{step}"))
        conditions = self.eligibility.conditions() + self.calculator.conditions() + self.adjustments.conditions()
        self.matcher: Matcher = backend.compile(conditions, ruleset_name=ruleset_name)
        names_read = self._names_read(conditions)
        self.required = self._required_names(names_read)
        self._required_keys = frozenset(self.required)
        #: ``(name, prefix, fact)`` of each ``prior.X`` / ``year_ago.X`` the program reads (see incentives.history)
        self.history_names = history_names(names_read)
        self.uses = tuple(program.uses)
        #: What each used program's result gives this one's rules: ``(program_id, tier, total, eligible)`` names.
        self.used_names = tuple((program_id, f"{program_id}.tier", f"{program_id}.total", f"{program_id}.eligible")
                                for program_id in self.uses)
        self.budget = program.budget
        self.prorate_by = program.prorate_by
        # Per-record shortcuts, decided once: which steps can be skipped or answered from a set test.
        self._eligibility_ids = self.eligibility.condition_ids
        self._adjusts = self.adjustments.any
        self._base = self.calculator.base
        self._matching = self.matcher.matching

    def _names_read(self, conditions: Sequence[Any]) -> set[str]:
        names: set[str] = set(self.calculator.names()) | self.adjustments.names()
        for condition in conditions:
            names |= condition.expression.names
        for expression in self.program.metrics.values():
            names |= expression.names
        return names

    def _required_names(self, names: set[str]) -> tuple[str, ...]:
        provided = set(self.program.metrics) | set(self.defaults)
        used = tuple(f"{program_id}." for program_id in self.program.uses)
        return tuple(sorted(name for name in names if name not in provided and not name.startswith(used)))

    def covers(self, period: Period) -> bool:
        effective = self.program.effective
        return effective.from_ <= period.start and (effective.to is None or period.start <= effective.to)

    def evaluate(self, partner_id: str, period: Period, facts: Mapping[str, Any],
                 used: Mapping[str, Any], claims: Sequence[Any] = ()) -> PayoutResult:
        """The result of this program for one partner record (never raises for bad data).

        ``used``: the values this program's rules read of the programs it uses,
        by name (``partner_tier.tier``, ...; see :attr:`used_names`).
        """
        # One merge: faster than dict(defaults) then update(facts); used values win over facts.
        env = {**self.defaults, **facts, **used} if used else {**self.defaults, **facts}
        if not self._required_keys <= env.keys():
            missing = [name for name in self.required if name not in env]
            return self.error(partner_id, period.label, f"missing facts: {', '.join(missing)}")
        try:
            for name, metric in self.metrics:
                env[name] = metric(env)
            if self.prorate_by is None:
                fraction = ONE
                details = {"places": self._places}
            else:
                fraction = self._fraction(period, env)
                details = {"places": self._places, "proration": fraction}
            fired = self._matching(env)
            if not fraction or not self._eligibility_ids <= fired:
                reasons = self.eligibility.failed(fired, env)
                if not fraction:
                    reasons.insert(0, self._inactive(period, env))
                return new_result({
                    "partner_id": partner_id, "period": period.label, "program_id": self.id,
                    "program_version": self.version, "currency": self.currency, "status": "ineligible",
                    "tier": None, "next_tier": None, "attainment": None, "lines": [], "total": ZERO,
                    "reasons": reasons, "errors": [], "details": details})
            evaluation = Evaluation(env, fired, period, fraction, self.rounding, claims, [], None, None, None,
                                    details)
            self._base(evaluation)
            if self._adjusts:
                self.adjustments.apply(evaluation)
        except EvaluationError as error:
            return self.error(partner_id, period.label, str(error))
        except ArithmeticError as error:
            return self.error(partner_id, period.label,
                              f"arithmetic error ({type(error).__name__}): a number is too large or has too "
                              "many digits to compute exactly")
        return new_result({
            "partner_id": partner_id, "period": period.label, "program_id": self.id,
            "program_version": self.version, "currency": self.currency, "status": "ok", "tier": evaluation.tier,
            "next_tier": evaluation.next_tier, "attainment": evaluation.attainment, "lines": evaluation.lines,
            "total": evaluation.total, "reasons": [], "errors": [], "details": evaluation.details})

    def not_fired(self, facts: Mapping[str, Any], used: Mapping[str, Any], result: PayoutResult) -> list[Reason]:
        """The bonuses and conditional deductions that did not fire for a record this program found eligible
        (``result``), with the values their conditions saw. Computed again on request (``explain``), so a run
        pays nothing for it; the result's lines say which fired."""
        env = {**self.defaults, **facts, **used}
        for name, metric in self.metrics:
            env[name] = metric(env)
        return self.adjustments.not_fired(result, env)

    def _fraction(self, period: Period, env: Mapping[str, Any]) -> Decimal:
        if self.prorate_by is None:
            return ONE
        joined = env.get(self.prorate_by)
        if joined is None:
            return ONE
        if not isinstance(joined, date):
            raise EvaluationError(f"prorate_by fact '{self.prorate_by}' must be a date (YYYY-MM-DD), "
                                  f"found {joined!r}")
        return active_fraction(period, joined, self._ratio_places)

    def _inactive(self, period: Period, env: Mapping[str, Any]) -> Reason:
        """Why a partner who joined after the period (active fraction 0) is paid nothing for it."""
        assert self.prorate_by is not None
        return new_reason({
            "rule_id": "prorate_by",
            "description": f"joined after the period ended ({period.end.isoformat()}): active for none of it",
            "when": f"{self.prorate_by} <= {period.end.isoformat()}",
            "values": {self.prorate_by: env[self.prorate_by]}})

    def error(self, partner_id: str, period: str, *messages: str) -> PayoutResult:
        return error_result(partner_id, period, self.id, list(messages), self.version, self.currency)

    def close(self) -> None:
        self.matcher.close()
        self.adjustments.close()


def error_result(partner_id: str, period: str, program_id: str, errors: list[str],
                 version: int | None = None, currency: str | None = None) -> PayoutResult:
    return new_result({
        "partner_id": partner_id, "period": period, "program_id": program_id, "program_version": version,
        "currency": currency, "status": "error", "tier": None, "next_tier": None, "attainment": None, "lines": [],
        "total": ZERO, "reasons": [], "errors": errors, "details": {}})


def _compile(expression):  # type: ignore[no-untyped-def]
    return compile_expression(expression.node)


def _flat_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    normalized = normalize_record({"partner_id": "-", "period": "-", **defaults})
    normalized.pop("partner_id")
    normalized.pop("period")
    return normalized
