"""What every program kind shares: what a kind declares (:class:`Kind`), the per-record evaluation state
and how lines are made.

A kind's calculator is built once per program version from its section and
then called once per record (``base``) with an :class:`Evaluation`; it
appends its base lines and sets the result fields it owns (tier, attainment,
details).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from pydantic import BaseModel

from .. import fields
from ..errors import EvaluationError
from ..money import Rounding, exact_add
from ..result_parts import LineKind, NextTier, PayoutLine, new_line
from ..yamlsource import Path

if TYPE_CHECKING:
    from ..inputs import Claim
    from ..periods import Period
    from ..rules.backend import Condition
    from ..rules.expressions import Expression

Evaluator = Callable[[Mapping[str, Any]], Any]
Compile = Callable[["Expression"], Evaluator]

ONE = Decimal(1)
ZERO = Decimal(0)

MAX_COPIED_TEXT = 200
"""Longest text a reason or a line copies from the facts whole; a longer one is cut (:func:`copied`)."""
MAX_COPIED_ITEMS = 20
"""Most items (at any depth) a reason or a line copies of a list fact; the rest are cut (:func:`copied`)."""
_KEPT_TEXT = 100


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


class CalculatorByColumns(Protocol):
    """A kind's calculator over a block of partners (:class:`incentives.kinds.block.BlockEvaluation`)."""


    def conditions(self) -> list["Condition"]:
        """Rule conditions this calculator needs matched, as the per-record calculator's."""
        ...

    def base(self, block: Any, fired: Mapping[str, Any]) -> Any:
        """Adds the base lines to ``block`` (a ``BlockEvaluation``) on its computing rows, given each condition's
        Boolean expression; returns the tier per row (a String expression, null for none)."""
        ...


def _no_tiers(section: Any) -> list[str]:
    return []


def _nothing_to_explain(details: Mapping[str, Any], places: int) -> list[str]:
    return []


@dataclass(frozen=True)
class Kind:
    """One program kind as the rest of the library knows it: each kind module defines one, and the registry
    (:data:`incentives.kinds.KINDS`) lists them."""

    #: the ``kind:`` value of a program file
    name: str
    #: the program file key of its section (``tiers``), and the section's model
    section: str
    model: type[BaseModel]
    #: the calculator of one program version, from its section, its rounding keys and the expression compiler
    calculator: Callable[[Any, fields.Rounding, Compile], Calculator]
    #: the section's rules that no single field can check, each with the path (from the file's top) to blame
    check: Callable[[Any, fields.Rounding], list[tuple[Path, str]]]
    #: the kinds of the lines its calculator adds (the base step), which the steps after it add to
    base_line_kinds: frozenset[str]
    #: keys of its section whose expression must be a number / a condition (checked at load)
    number_keys: frozenset[str] = frozenset()
    condition_keys: frozenset[str] = frozenset()
    #: ``this.*`` names that only this kind computes
    own_names: frozenset[str] = frozenset()
    #: facts its calculator reads when a record has them, and does without otherwise (no facts file needs them)
    optional_facts: frozenset[str] = frozenset()
    #: whether its programs take claims (``claims.csv``)
    takes_claims: bool = False
    #: the tiers its results can name, lowest first (for the run summary's order)
    tiers: Callable[[Any], list[str]] = _no_tiers
    #: the TypedDict of the keys its calculator sets in a result's details (``None``: it sets none)
    details: type | None = None
    #: the lines ``explain`` shows of those details (from the details and the money places; none when the
    #: details are not its own): after the result's attainment, and after its reasons
    explain_details: Callable[[Mapping[str, Any], int], list[str]] = _nothing_to_explain
    explain_after_reasons: Callable[[Mapping[str, Any], int], list[str]] = _nothing_to_explain
    #: where its calculator by columns is, ``"module:name"`` (``None``: its programs are computed per record
    #: only): a callable of its section and rounding keys giving a :class:`CalculatorByColumns` (see
    #: :mod:`incentives.kinds.block`). A path, not the class, so that the per-record path imports no polars:
    #: the columnar engine loads it on first use
    by_columns: str | None = None


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
    if type(value) is str and len(value) > MAX_COPIED_TEXT:
        return f"str {copied(value)}"
    return f"{type(value).__name__} {copied(value)!r}"


def copied(value: Any) -> Any:
    """A fact value as a reason or a line copies it: itself, unless it is a long text or a long list.

    Facts (and program defaults, which aliases can repeat) may hold long texts
    and lists, and every ineligible record's reasons copy what its rules read:
    a text longer than :data:`MAX_COPIED_TEXT` characters is cut to its first
    100, in quotes, with its length (``'aaaa…' (1,048,576 characters)``); a
    tuple keeps its first :data:`MAX_COPIED_ITEMS` items at any depth, the tuple
    where they run out ending with ``… (5,000 items)``. Both are texts that read
    back from ``results.jsonl`` as texts, so a result still reads back equal.
    """
    kind = type(value)
    if kind is str:
        return value if len(value) <= MAX_COPIED_TEXT else f"{value[:_KEPT_TEXT] + '…'!r} ({len(value):,} characters)"
    if kind is tuple:
        return _copied_items(value, [MAX_COPIED_ITEMS])
    return value


def _copied_items(items: tuple, budget: list[int]) -> tuple:
    """``items`` copied while ``budget[0]`` (items left to copy, shared with the enclosing tuples) lasts."""
    kept = []
    for item in items:
        if budget[0] == 0:
            kept.append(f"… ({len(items):,} items)")
            break
        budget[0] -= 1
        kept.append(_copied_items(item, budget) if type(item) is tuple else copied(item))
    return tuple(kept)


def inputs_of(expression: "Expression", facts: Mapping[str, Any]) -> dict[str, Any]:
    """The values an expression read, for the audit trail, in name order (:func:`copied`)."""
    return {name: copied(facts.get(name)) for name in sorted(expression.names)}


def input_names(expression: "Expression") -> tuple[str, ...]:
    """The names :func:`inputs_of` reports, sorted once at compile time (see :func:`inputs_from`)."""
    return tuple(sorted(expression.names))


def inputs_from(names: tuple[str, ...], facts: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs_of`` for names prepared by :func:`input_names`: the per-record half only."""
    if len(names) == 1:
        name = names[0]
        return {name: copied(facts.get(name))}
    get = facts.get
    return {name: copied(get(name)) for name in names}
