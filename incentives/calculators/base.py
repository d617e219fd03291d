"""What every calculator shares: the per-record evaluation state and how lines are made.

A calculator is built once per program version (``build``) and then called
once per record (``base``) with an :class:`Evaluation`; it appends its base
lines and sets the result fields it owns (tier, attainment, details).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from ..errors import EvaluationError
from ..money import Rounding, exact_add
from ..results import LineKind, NextTier, PayoutLine, new_line

if TYPE_CHECKING:
    from ..inputs import Claim
    from ..periods import Period
    from ..rules.backend import Condition
    from ..rules.expressions import Expression

Evaluator = Callable[[Mapping[str, Any]], Any]
Compile = Callable[["Expression"], Evaluator]

ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(slots=True)
class Evaluation:
    """Everything known about one partner, period and program version while it is computed."""

    facts: dict[str, Any]
    fired: frozenset[str]
    period: "Period"
    fraction: Decimal
    rounding: Rounding
    claims: Sequence["Claim"] = ()
    lines: list[PayoutLine] = field(default_factory=list)
    tier: str | None = None
    next_tier: NextTier | None = None
    attainment: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: The exact sum of the lines' amounts, kept as lines are added (in line order,
    #: so it equals ``sum(line.amount for line in lines)`` to the last digit).
    total: Decimal = ZERO

    def subtotal(self) -> Decimal:
        return self.total

    def add_line(self, kind: LineKind, rule_id: str, description: str, amount: Decimal, formula: str,
                 *, basis: Decimal | None = None, rate: Decimal | None = None,
                 inputs: dict[str, Any] | None = None) -> PayoutLine:
        return self.line(kind, rule_id, description, amount, formula, basis, rate,
                         inputs if inputs is not None else {})

    def line(self, kind: LineKind, rule_id: str, description: str, amount: Decimal, formula: str,
             basis: Decimal | None, rate: Decimal | None, inputs: dict[str, Any]) -> PayoutLine:
        """:meth:`add_line` with every argument given in order (the calculators' fast path)."""
        lines = self.lines
        line = new_line({"n": len(lines) + 1, "kind": kind, "rule_id": rule_id, "description": description,
                         "basis": basis, "rate": rate, "amount": amount, "formula": formula, "inputs": inputs})
        lines.append(line)
        self.total = exact_add(self.total, amount)
        return line


class Calculator(Protocol):
    def conditions(self) -> list["Condition"]:
        """Rule conditions this calculator needs matched (e.g. tier ``requires``)."""
        ...

    def names(self) -> set[str]:
        """Fact names its expressions read."""
        ...

    def base(self, evaluation: Evaluation) -> None:
        """Append the base lines for one record."""
        ...


def number(value: Any, what: str) -> Decimal:
    """``value`` as a Decimal, or an EvaluationError saying what was expected."""
    if type(value) is Decimal:
        return value
    raise EvaluationError(f"{what} must be a number, found {_describe(value)}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"{type(value).__name__} {value!r}"


def inputs_of(expression: "Expression", facts: Mapping[str, Any]) -> dict[str, Any]:
    """The values an expression read, for the audit trail, in name order."""
    return {name: facts.get(name) for name in sorted(expression.names)}


def input_names(expression: "Expression") -> tuple[str, ...]:
    """The names :func:`inputs_of` reports, sorted once at compile time (see :func:`inputs_from`)."""
    return tuple(sorted(expression.names))


def inputs_from(names: tuple[str, ...], facts: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs_of`` for names prepared by :func:`input_names`: the per-record half only."""
    if len(names) == 1:
        name = names[0]
        return {name: facts.get(name)}
    get = facts.get
    return {name: get(name) for name in names}
