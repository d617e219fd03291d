"""Pydantic models of a program file (SPEC "Program file").

They know the file format and its single-file rules, nothing about evaluation.
The keys every program has are here; each kind's section (``tiers``,
``goals``, ``mdf``) is its kind's model (:mod:`incentives.kinds`), taken from
the registry, so the program file lists the kinds in one place.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, create_model

from .fields import (AmountOrExpression, Bonus, Deduction, ExpressionField, FactName, FiscalYearStart, Identifier,
                     NonNegativeAmount, Rounding, Rule, StrictModel)
from .kinds import KINDS


class Effective(StrictModel):
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None


class _ProgramHead(StrictModel):
    """The keys of a program file before its kind's section, in file order."""

    id: Identifier
    name: str = Field(min_length=1)
    kind: Literal[tuple(KINDS)]  # type: ignore[valid-type]  # the registry's kinds, in its order
    # at most what a 32-bit integer holds: the ledger's program_version column, and a run's Int64 keys
    version: int = Field(ge=1, le=2**31 - 1, strict=True)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    effective: Effective
    period: Literal["month", "quarter", "half", "year"]
    fiscal_year_start: FiscalYearStart = "01-01"
    rounding: Rounding = Rounding()
    uses: list[Identifier] = []
    defaults: dict[FactName, Any] = {}
    metrics: dict[FactName, ExpressionField] = {}
    eligibility: list[Rule] = []


#: One optional section per registered kind (``tiers: Tiers | None = None``...), after the head's keys.
_ProgramSections: type[_ProgramHead] = create_model(  # type: ignore[call-overload]
    "_ProgramSections", __base__=_ProgramHead,
    **{kind.section: (kind.model | None, None) for kind in KINDS.values()})


# A program file: the head's keys, one kind's section, the steps after it. (No docstring: the JSON Schema
# would show it as the program's description.)
class Program(_ProgramSections):
    bonuses: list[Bonus] = []
    deductions: list[Deduction] = []
    allow_negative: bool = False
    cap: AmountOrExpression | None = None
    min_payout: AmountOrExpression | None = None
    budget: NonNegativeAmount | None = None
    prorate_by: FactName | None = None

    @property
    def key(self) -> str:
        return f"{self.id} v{self.version}"

    @property
    def section(self) -> Any:
        """This program's kind section (``tiers`` of a tier program...), ``None`` when the file lacks it."""
        return getattr(self, KINDS[self.kind].section)
