"""The backend-neutral rule interface.

A program's conditions (eligibility rules, tier ``requires``, bonus ``when``)
are handed to a backend once, at compile time, as :class:`Condition` objects;
per record the engine asks the resulting :class:`Matcher` which of them hold.

Contract shared by every backend (the parity suite enforces it):

* ``facts`` maps names (dotted names are single keys: ``"certifications.sales"``)
  to values: ``Decimal``, ``str``, ``bool``, ``datetime.date`` or ``None``.
  Metrics and used-program values (``"partner_tier.tier"``) are already in it.
* The engine has already checked that every name a condition reads is present.
* ``matching`` returns the ids of the conditions that evaluate to ``True``:
  each id at most once, none lost.
* A condition that cannot be evaluated for this record (a string compared with
  a number, division by zero, a non-boolean result) raises
  :class:`incentives.errors.EvaluationError` naming the rule; the engine turns
  it into an ``error`` result for the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from .expressions import Expression


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule condition to match: ``rule_id`` is unique within one program version."""

    rule_id: str
    expression: "Expression"


class Matcher(Protocol):
    def matching(self, facts: Mapping[str, Any]) -> frozenset[str]:
        """Ids of the conditions that hold for ``facts``."""
        ...

    def close(self) -> None:
        """Release engine resources (durable rulesets); idempotent."""
        ...


class RuleBackend(Protocol):
    name: str

    def compile(self, conditions: Sequence[Condition], *, ruleset_name: str) -> Matcher:
        """Prepare ``conditions`` once; ``ruleset_name`` is unique per engine and program version."""
        ...
