"""Tier programs: the achieved level, its base lines, and the next level up (SPEC "Tier programs")."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field

from .. import fields, own_outcome
from ..fields import ExpressionField, NonNegativeAmount, Percent0To100, StrictModel
from ..money import exact_multiply, exact_subtract, format_amount, format_rate
from ..result_parts import NextTier, new_next_tier
from ..rules.backend import Condition
from ..yamlsource import Path
from .base import ZERO, Compile, Evaluation, Evaluator, Kind, input_names, inputs_from, number


class TierLevel(StrictModel):
    name: str = Field(min_length=1)
    from_: NonNegativeAmount = Field(alias="from")
    rate: Percent0To100
    requires: ExpressionField | None = None


class Tiers(StrictModel):
    qualify_on: ExpressionField
    pay_on: ExpressionField | None = None
    mode: Literal["retroactive", "incremental"] = "retroactive"
    levels: list[TierLevel] = Field(min_length=1)


def check_tiers(tiers: Tiers, rounding: fields.Rounding) -> list[tuple[Path, str]]:
    found = []
    for index in range(1, len(tiers.levels)):
        previous, level = tiers.levels[index - 1], tiers.levels[index]
        if level.from_ <= previous.from_:
            found.append((("tiers", "levels", index, "from"),
                          f"tier levels must have strictly ascending 'from': {level.name} ({level.from_}) "
                          f"is not above {previous.name} ({previous.from_})"))
    names = [level.name for level in tiers.levels]
    for index, name in enumerate(names):
        if name in names[:index]:
            found.append((("tiers", "levels", index, "name"), f"duplicate tier name '{name}'"))
    pays_on_other = tiers.pay_on is not None and tiers.pay_on.text.strip() != tiers.qualify_on.text.strip()
    if tiers.mode == "incremental" and pays_on_other:
        found.append((("tiers", "pay_on"), "incremental mode pays each band on its own width, so 'pay_on' "
                                           f"must equal 'qualify_on' ('{tiers.qualify_on.text}')"))
    return found


@dataclass(frozen=True, slots=True)
class _Level:
    name: str
    start: Decimal
    rate: Decimal
    rate_text: str
    condition_id: str | None
    requires_text: str | None
    rule_id: str = ""
    description: str = ""


def requires_id(level: TierLevel) -> str:
    return f"requires:{level.name}"


class TierCalculator:
    def __init__(self, tiers: Tiers, rounding: fields.Rounding, compile: Compile):
        self._tiers = tiers
        self._qualify_on = tiers.qualify_on
        self._pay_on = tiers.pay_on or tiers.qualify_on
        self._qualify = compile(self._qualify_on)
        self._pay: Evaluator = self._qualify if tiers.pay_on is None else compile(tiers.pay_on)
        self._incremental = tiers.mode == "incremental"
        self._pay_inputs = input_names(self._pay_on)
        self._qualify_inputs = input_names(self._qualify_on)
        self._pay_what = f"pay_on ({self._pay_on.text})"
        self._qualify_what = f"qualify_on ({self._qualify_on.text})"
        self._pay_description = f" tier rate on {self._pay_on.text}"
        self._levels = tuple(
            _Level(level.name, level.from_, level.rate, format_rate(level.rate),
                   requires_id(level) if level.requires is not None else None,
                   level.requires.text if level.requires is not None else None,
                   f"tier:{level.name}", f"{level.name} tier rate on {self._pay_on.text}")
            for level in tiers.levels)
        self._thresholds = tuple((level.start, level.condition_id) for level in self._levels)

    def conditions(self) -> list[Condition]:
        return [Condition(requires_id(level), level.requires) for level in self._tiers.levels
                if level.requires is not None]

    def names(self) -> set[str]:
        return set(self._qualify_on.names | self._pay_on.names)

    def base(self, evaluation: Evaluation) -> None:
        facts = evaluation.facts
        qualify = self._qualify(facts)
        if type(qualify) is not Decimal:
            number(qualify, self._qualify_what)
        fired = evaluation.fired
        achieved = -1
        index = 0
        for start, condition_id in self._thresholds:
            if start <= qualify and (condition_id is None or condition_id in fired):
                achieved = index
            index += 1
        evaluation.next_tier = self._next_tier(achieved, qualify, fired)
        if achieved < 0:
            return
        evaluation.tier = self._levels[achieved].name
        if self._incremental:
            self._bands(evaluation, achieved, qualify)
        else:
            self._retroactive(evaluation, achieved)

    def _retroactive(self, evaluation: Evaluation, achieved: int) -> None:
        level = self._levels[achieved]
        places = evaluation.rounding.places
        basis = self._pay(evaluation.facts)
        if type(basis) is not Decimal:
            number(basis, self._pay_what)
        amount = evaluation.rounding.round(exact_multiply(basis, level.rate))
        evaluation.line(
            "base", level.rule_id, level.description, amount,
            f"{format_amount(basis, places)} × {level.rate_text} = {format_amount(amount, places)}",
            basis, level.rate, inputs_from(self._pay_inputs, evaluation.facts))

    def _bands(self, evaluation: Evaluation, achieved: int, qualify: Decimal) -> None:
        places = evaluation.rounding.places
        inputs = inputs_from(self._qualify_inputs, evaluation.facts)
        for index in range(achieved + 1):
            level = self._levels[index]
            top = self._levels[index + 1].start if index < achieved else qualify
            width = exact_subtract(top, level.start)
            if level.rate == ZERO or width <= ZERO:
                continue
            amount = evaluation.rounding.round(exact_multiply(width, level.rate))
            upper = format_amount(top, places) if index < achieved else f"{format_amount(qualify, places)} achieved"
            evaluation.add_line(
                "band", f"band:{level.name}",
                f"{level.name} band {format_amount(level.start, places)}–{upper}", amount,
                f"{format_amount(width, places)} × {level.rate_text} = {format_amount(amount, places)}",
                basis=width, rate=level.rate, inputs=inputs)

    def _next_tier(self, achieved: int, qualify: Decimal, fired: frozenset[str]) -> NextTier | None:
        if achieved + 1 >= len(self._levels):
            return None
        level = self._levels[achieved + 1]
        gap = max(exact_subtract(level.start, qualify), ZERO)
        unmet = [level.requires_text] if level.condition_id is not None and level.condition_id not in fired else []
        return new_next_tier({"name": level.name, "gap": gap, "unmet": unmet})


def _level_names(tiers: Tiers) -> list[str]:
    return [level.name for level in tiers.levels]


TIER = Kind(name="tier", section="tiers", model=Tiers, calculator=TierCalculator, check=check_tiers,
            base_line_kinds=frozenset({"base", "band"}), number_keys=frozenset({"qualify_on", "pay_on"}),
            condition_keys=frozenset({"requires"}), own_names=frozenset({own_outcome.TIER}), tiers=_level_names,
            by_columns="incentives.kinds.tier_by_columns:TierByColumns")
