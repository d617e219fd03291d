"""Result models: one :class:`PayoutResult` per partner, period and program, with its lines and reasons.

The engine builds them without validation (its values are already exact),
through trusted constructors equivalent to ``model_construct`` (``new_result``,
``new_line``...); reading one back from JSON (``model_validate_json``)
validates as usual.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Callable, Literal, Sequence

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from typing_extensions import NotRequired, TypedDict

from .inputs import type_text

from .money import format_amount, format_rate, format_ratio

LineKind = Literal["base", "band", "multiplier", "bonus", "deduction", "floor", "cap", "minimum", "budget",
                   "mdf_claim"]
Status = Literal["ok", "ineligible", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _typed_fact(value: Any) -> Any:
    """A fact value read back from JSON, typed as a facts file types its cells.

    JSON has no decimals or dates, so both are written as text; facts obey the
    input typing rules (text that reads as a number is a number), so typing the
    text again gives back exactly the value that was written.
    """
    if isinstance(value, str):
        return type_text(value)
    if isinstance(value, list):
        return tuple(_typed_fact(item) for item in value)
    return value


FactValue = Annotated[Any, BeforeValidator(_typed_fact)]
"""A value a rule read: Decimal, str, bool, date, None or a tuple of these."""


class GoalDetail(TypedDict):
    id: str
    metric: Decimal
    target: Decimal
    attainment: Decimal
    weight: Decimal
    factor: NotRequired[Decimal]  # per-goal payouts: the factor of this goal's own attainment


class RejectedClaim(TypedDict):
    claim_id: str
    reasons: list[str]


class Details(TypedDict, total=False):
    """What a result carries beyond its lines; each key is set by the step or calculator that owns it."""

    places: int
    proration: Decimal
    goals: list[GoalDetail]
    factor: Decimal
    opening: Decimal
    accrued: Decimal
    accrual_rate: Decimal
    accrual_rate_source: str
    accrual_formula: str
    accrual_inputs: dict[str, FactValue]
    available: Decimal
    paid: Decimal
    closing: Decimal
    rejected_claims: list[RejectedClaim]


class PayoutLine(_Model):
    """One rounded amount, with the rule that produced it and how."""

    n: int
    kind: LineKind
    rule_id: str
    description: str
    basis: Decimal | None = None
    rate: Decimal | None = None
    amount: Decimal
    formula: str
    inputs: dict[str, FactValue] = Field(default_factory=dict)


class NextTier(_Model):
    """The next level up: how far ``qualify_on`` is from it, and which requirements fail."""

    name: str
    gap: Decimal
    unmet: list[str] = Field(default_factory=list)


class Reason(_Model):
    """A failed eligibility rule, with the values it saw."""

    rule_id: str
    description: str | None = None
    when: str
    values: dict[str, FactValue] = Field(default_factory=dict)


class PayoutResult(_Model):
    partner_id: str
    period: str
    program_id: str
    program_version: int | None = None
    currency: str | None = None
    status: Status
    tier: str | None = None
    next_tier: NextTier | None = None
    attainment: Decimal | None = None
    lines: list[PayoutLine] = Field(default_factory=list)
    total: Decimal = Decimal(0)
    reasons: list[Reason] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    details: Details = Field(default_factory=lambda: Details())

    def explain(self, not_fired: Sequence[Reason] = ()) -> str:
        """A human-readable breakdown of this result; ``not_fired``, the bonuses and deductions that did not
        fire (see ``Engine.not_fired``), are listed with the values their conditions saw."""
        places = self.details.get("places", 2)
        head = f"{self.partner_id} · {self.program_id}"
        if self.program_version is not None:
            head += f" v{self.program_version}"
        out = [f"{head} · {self.period} · {self.status}"]
        if self.tier is not None or self.next_tier is not None:
            out.append(f"  tier: {self.tier or '(none)'}")
        if self.next_tier is not None:
            unmet = f"; unmet: {', '.join(self.next_tier.unmet)}" if self.next_tier.unmet else ""
            out.append(f"  next tier: {self.next_tier.name} (gap {format_amount(self.next_tier.gap, places)}{unmet})")
        if self.attainment is not None:
            out.append(f"  attainment: {format_ratio(self.attainment)}")
        if "proration" in self.details:
            out.append(f"  active fraction: {self.details['proration']}")
        for goal in self.details.get("goals", []):
            factor = f", factor {format_ratio(goal['factor'])}" if "factor" in goal else ""  # per-goal payouts
            out.append(f"  goal {goal['id']}: {format_amount(goal['metric'], 0)} of "
                       f"{format_amount(goal['target'], 0)} = {format_ratio(goal['attainment'])}"
                       f" (weight {format_rate(goal['weight'])}{factor})")
        if "accrued" in self.details:
            fund = self.details
            out.append(f"  fund: opening {format_amount(fund['opening'], places)} + accrued "
                       f"{format_amount(fund['accrued'], places)} ({fund['accrual_formula']}; "
                       f"{fund['accrual_rate_source']}) = available {format_amount(fund['available'], places)}; "
                       f"paid {format_amount(fund['paid'], places)}; closing {format_amount(fund['closing'], places)}")
        for line in self.lines:
            formula = formula_with_values(line, places) if line.kind in EXPRESSION_FORMULA_KINDS else line.formula
            out.append(f"  {line.n:>3}. {line.kind:<10} {line.rule_id:<24} {format_amount(line.amount, places):>16}"
                       f"   {formula}")
        for verb, reasons in (("did not fire", not_fired), ("failed", self.reasons)):
            for reason in reasons:
                seen = ", ".join(f"{name}={value}" for name, value in reason.values.items())
                label = f" ({reason.description})" if reason.description else ""
                out.append(f"  {verb} {reason.rule_id}{label}: {reason.when}  [saw {seen or 'nothing'}]")
        for rejected in self.details.get("rejected_claims", []):
            out.append(f"  rejected claim {rejected['claim_id']}: {'; '.join(rejected['reasons'])}")
        for error in self.errors:
            out.append(f"  error: {error}")
        currency = f" {self.currency}" if self.currency else ""
        out.append(f"  total: {format_amount(self.total, places)}{currency}")
        return "\n".join(out)


#: Line kinds whose formula is an expression's text and its amount (``0.5% * net_sales = 3,750.00``).
EXPRESSION_FORMULA_KINDS = frozenset({"bonus"})
_QUOTED = re.compile(r"""('[^']*'|"[^"]*")""")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def formula_with_values(line: PayoutLine, places: int) -> str:
    """The line's formula with each fact it names followed by the value it had, ``*`` written ``×``:
    ``0.5% × net_sales 750,000.00 = 3,750.00``. Only ``explain`` shows it: the formula that payouts and
    lines files hold stays the expression's own text, and the values stay in the line's ``inputs``."""
    expression, equals, amount = line.formula.rpartition(" = ")
    if not equals:
        return line.formula
    inputs = line.inputs

    def with_value(match: re.Match[str]) -> str:
        name = match.group()
        return f"{name} {_shown_value(inputs[name], places)}" if name in inputs else name

    parts = _QUOTED.split(expression)
    for index in range(0, len(parts), 2):  # split() puts the quoted texts at the odd indexes
        parts[index] = _NAME.sub(with_value, parts[index]).replace("*", "×")
    return "".join(parts) + equals + amount


def _shown_value(value: Any, places: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_amount(value, places)
    return "(missing)" if value is None else repr(value) if isinstance(value, str) else str(value)


class ProgramInfo(_Model):
    id: str
    version: int
    file: str
    sha256: str


# --- fast construction for the engine's per-record path -------------------------------------

def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of the descriptor behind ``name`` on pydantic models.

    Calling it directly skips the attribute lookup ``object.__setattr__`` makes
    on every call: about a third of the cost of a trusted construction.
    """
    for klass in _Model.__mro__:
        if name in vars(klass):
            return vars(klass)[name].__set__
    raise AttributeError(name)


def _trusted_constructor(model: type[_Model]) -> Any:
    """A ``model_construct`` for values that are already exact and given for *every* field, in field order.

    ``model_construct`` walks every field looking for aliases and defaults on
    each call; the engine always passes every field, so this sets the same four
    slots directly (``__dict__``, the fields set, no extra, no private). It is
    checked once against ``model_construct`` at import; should a pydantic
    release lay models out differently, the engine falls back to it.
    """
    fields = tuple(model.model_fields)
    # Every field is set, so every instance's fields set is this same set: pydantic only
    # ever adds a field name to it (already there) or copies it (model_copy), and one
    # shared set spares an allocation (and the garbage collector a container) per model.
    every_field = set(fields)
    new = object.__new__

    def fallback(values: dict[str, Any]) -> Any:
        return model.model_construct(**values)

    try:
        set_dict, set_fields, set_extra, set_private = (
            _slot_setter(name)
            for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))
    except AttributeError:  # pragma: no cover - a pydantic that keeps these elsewhere
        return fallback

    def construct(values: dict[str, Any]) -> Any:
        instance = new(model)
        set_dict(instance, values)
        set_fields(instance, every_field)
        set_extra(instance, None)
        set_private(instance, None)
        return instance

    try:
        sample = {name: None for name in fields}
        fast, slow = construct(dict(sample)), model.model_construct(**sample)
        same = (fast.__dict__ == slow.__dict__ and fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
                and fast.__pydantic_extra__ == slow.__pydantic_extra__
                and fast.__pydantic_private__ == slow.__pydantic_private__
                and list(fast.__dict__) == list(slow.__dict__))
    except Exception:  # pragma: no cover - a pydantic that refuses the direct layout
        same = False
    return construct if same else fallback


#: ``new_line({...every PayoutLine field...})``: see :func:`_trusted_constructor`.
new_line = _trusted_constructor(PayoutLine)
new_next_tier = _trusted_constructor(NextTier)
new_reason = _trusted_constructor(Reason)
new_result = _trusted_constructor(PayoutResult)
