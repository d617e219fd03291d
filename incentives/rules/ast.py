"""The expression language's abstract syntax tree.

Our own small node set, independent of Python's ``ast`` module: the parser
(``expressions.py``) produces it, the compiled backend turns it into closures,
the durable_rules backend into Rete rulesets. Every node records ``offset``, the
0-based character offset of its first character in the expression text.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal as Lit, Union

ArithmeticOp = Lit["+", "-", "*", "/"]
CompareOp = Lit["<", "<=", ">", ">=", "==", "!=", "in", "not in"]
FunctionName = Lit["min", "max", "abs"]


@dataclass(frozen=True, slots=True)
class Literal:
    """A decimal (percent literals are already divided by 100), string or boolean."""

    value: Decimal | str | bool
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple["Node", ...]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Name:
    """A fact, metric or used-program value; dotted names are one name: ``certifications.sales``."""

    name: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Unary:
    op: Lit["-", "+", "not"]
    operand: "Node"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Binary:
    op: ArithmeticOp
    left: "Node"
    right: "Node"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Lit["and", "or"]
    operands: tuple["Node", ...]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Compare:
    """``a < b <= c`` is ``Compare(a, ("<", "<="), (b, c))``: Python's chain semantics."""

    left: "Node"
    ops: tuple[CompareOp, ...]
    comparators: tuple["Node", ...]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    function: FunctionName
    args: tuple["Node", ...]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class If:
    """``if(condition, then, otherwise)``: a node of its own, not a ``Call``, because only one branch is evaluated."""

    condition: "Node"
    then: "Node"
    otherwise: "Node"
    offset: int = 0


Node = Union[Literal, ListLiteral, Name, Unary, Binary, BoolOp, Compare, Call, If]
