"""Result models: one :class:`PayoutResult` per partner, period and program, with its lines and reasons.

The engine builds them without validation (its values are already exact),
through trusted constructors equivalent to ``model_construct`` (``new_result``,
``new_line``...); reading one back from JSON (``model_validate_json``)
validates as usual. A result's ``details`` hold the keys of the steps and of
the program kinds (:mod:`incentives.kinds`), each kind's own, and ``explain``
shows each kind's as the kind writes them.
"""

from __future__ import annotations

import re
import typing
from decimal import Decimal
from typing import Any, Literal, Sequence

from pydantic import Field
from typing_extensions import TypedDict

from .kinds import KINDS
from .money import format_amount, format_ratio
from .result_parts import NextTier, PayoutLine, Reason, ResultModel, trusted_constructor

Status = Literal["ok", "ineligible", "error"]


class StepDetails(TypedDict, total=False):
    """The details every kind's result may carry: the money places, and the active fraction when prorated."""

    places: int
    proration: Decimal


#: What a result carries beyond its lines: the steps' keys, then each kind's (its ``details``), in registry order;
#: each key is set by the step or calculator that owns it.
Details = TypedDict(  # type: ignore[misc]
    "Details",
    {name: hint for details in (StepDetails, *(kind.details for kind in KINDS.values() if kind.details is not None))
     for name, hint in typing.get_type_hints(details, include_extras=True).items()},
    total=False)


class PayoutResult(ResultModel):
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
        for kind in KINDS.values():  # each kind's details, shown by the kind that set them
            out += kind.explain_details(self.details, places)
        for line in self.lines:
            formula = formula_with_values(line, places) if line.kind in EXPRESSION_FORMULA_KINDS else line.formula
            out.append(f"  {line.n:>3}. {line.kind:<10} {line.rule_id:<24} {format_amount(line.amount, places):>16}"
                       f"   {formula}")
        for verb, reasons in (("did not fire", not_fired), ("failed", self.reasons)):
            for reason in reasons:
                seen = ", ".join(f"{name}={value}" for name, value in reason.values.items())
                label = f" ({reason.description})" if reason.description else ""
                out.append(f"  {verb} {reason.rule_id}{label}: {reason.when}  [saw {seen or 'nothing'}]")
        for kind in KINDS.values():
            out += kind.explain_after_reasons(self.details, places)
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


class ProgramInfo(ResultModel):
    id: str
    version: int
    file: str
    sha256: str


class MeasuresInfo(ResultModel):
    """A measures file whose facts a run read: the file, its source and the transaction file's sha256 (``None``
    for transactions given as a dataframe)."""

    id: str
    file: str
    sha256: str
    source: str
    source_sha256: str | None



#: ``new_result({...every PayoutResult field...})``: see :func:`incentives.result_parts.trusted_constructor`.
new_result = trusted_constructor(PayoutResult)
