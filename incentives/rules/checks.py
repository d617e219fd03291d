"""Checks at load: what an expression is certain to get wrong, found before any record is read.

A stage of its own between parsing and evaluation (text → AST → check →
evaluate). Each node gets a static type: ``number``, ``boolean``, ``text`` or
``list`` when the language fixes it (a literal, an operator's result, a metric
whose own expression fixes it), or unknown (a fact: its type is only known per
record). A finding is made only where the types known here make a run-time
error, or a constant answer, certain:

* arithmetic, ``abs``/``min``/``max`` or unary ``-``/``+`` on something that is
  not a number (``(rev_att >= 80%) * 2``, ``'a' + 1``), and ``/`` by a constant 0;
* ``and``/``or``/``not`` and an ``if()`` condition on something that is not a
  boolean (``not 5``);
* ordering a boolean or a list, or two different types (``5 < 'a'``); ``==``/``!=``
  between two different types (always false/true); ``in`` whose right side is
  not a list or a text, or a non-text looked for in a text;
* a condition that is not a boolean, a value that must be a number and is not.

So ``revenue * 2`` passes (``revenue`` may be a number), while ``(revenue > 1) *
2`` does not: a comparison's result is a boolean for every partner. A part that
is never evaluated — the branch an ``if()`` with a constant condition does not
take, the operands after a constant that decides ``and``/``or`` — is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from .ast import BoolOp, Binary, Call, Compare, If, ListLiteral, Literal, Name, Node, Unary
from .closures import constant_value

__all__ = ["NUMBER", "BOOLEAN", "TEXT", "LIST", "Finding", "Checked", "check_expression"]

NUMBER, BOOLEAN, TEXT, LIST = "number", "boolean", "text", "list"
_AS_NOUN = {NUMBER: "a number", BOOLEAN: "true or false", TEXT: "a text", LIST: "a list"}
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_ORDERING = frozenset({"<", "<=", ">", ">="})
_ORDERED = frozenset({NUMBER, TEXT})
_CERTAIN = "certain to fail: "


@dataclass(frozen=True, slots=True)
class Finding:
    """A certain problem at ``offset`` (0-based, in the expression text)."""

    offset: int
    message: str


@dataclass(frozen=True, slots=True)
class Checked:
    """An expression's static type (``None``: unknown) and its findings, in text order."""

    kind: str | None
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class _Typed:
    kind: str | None
    node: Node
    label: str
    """How a message names this value when it is not a constant: ``a comparison's result (true or false)``."""

    @property
    def what(self) -> str:
        """How a message names this value: ``the number -5`` for a constant, else :attr:`label`.

        Worked out only for a message: finding a constant's value compiles its subtree.
        """
        if not isinstance(self.node, (Name, Compare, BoolOp)):  # a comparison is named by what it is
            known, value = constant_value(self.node)
            if known:
                return _describe_value(value)
        return self.label


def check_expression(node: Node, known: Mapping[str, str] | None = None, *, expected: str | None = None,
                     place: str = "the value") -> Checked:
    """Check ``node``; ``known`` gives the static type of names (metrics); ``expected`` what the place needs.

    ``expected`` is :data:`BOOLEAN` for a condition, :data:`NUMBER` for an amount
    (``place`` names it in the message), ``None`` where any value will do.
    """
    checker = _Checker(known or {})
    typed = checker.infer(node)
    findings = checker.findings
    if expected is not None and typed.kind is not None and typed.kind != expected:
        needed = "a condition must be true or false" if expected == BOOLEAN else f"{place} must be {_AS_NOUN[expected]}"
        findings.append(Finding(node.offset, f"{_CERTAIN}{needed}, not {typed.what}"))
    return Checked(typed.kind, tuple(sorted(findings, key=lambda finding: finding.offset)))


def _kind_of_value(value: Any) -> str | None:
    kind = type(value)
    if kind is bool:
        return BOOLEAN
    if kind is Decimal:
        return NUMBER
    if kind is str:
        return TEXT
    if kind is tuple:
        return LIST
    return None


def _describe_value(value: Any) -> str:
    kind = _kind_of_value(value)
    if kind == BOOLEAN:
        return f"the boolean {'true' if value else 'false'}"
    if kind == NUMBER:
        return f"the number {value}"
    if kind == TEXT:
        shown = value if len(value) <= 40 else f"{value[:37]}..."
        return f"the text {shown!r}"
    return "a list"


class _Checker:
    def __init__(self, known: Mapping[str, str]):
        self.known = known
        self.findings: list[Finding] = []

    def fail(self, offset: int, detail: str) -> None:
        self.findings.append(Finding(offset, f"{_CERTAIN}{detail}"))

    def infer(self, node: Node) -> _Typed:
        match node:
            case Literal(value=value):
                return _Typed(_kind_of_value(value), node, _describe_value(value))
            case ListLiteral(items=items):
                for item in items:
                    self.infer(item)
                return _Typed(LIST, node, "a list")
            case Name(name=name):
                kind = self.known.get(name)
                return _Typed(kind, node, f"metric '{name}' ({_AS_NOUN[kind]})" if kind else name)
            case Unary(op="not", operand=operand):
                self.needs(operand, BOOLEAN, "'not' needs true or false")
                return _Typed(BOOLEAN, node, "the result of 'not' (true or false)")
            case Unary(op=op, operand=operand):
                self.needs(operand, NUMBER, f"unary '{op}' needs a number")
                return _Typed(NUMBER, node, f"the result of unary '{op}' (a number)")
            case Binary(op=op, left=left, right=right):
                return self.binary(node, op, left, right)
            case BoolOp(op=op, operands=operands):
                stop_at = op == "or"
                for operand in operands:
                    self.needs(operand, BOOLEAN, f"'{op}' needs true or false operands")
                    known, value = constant_value(operand)
                    if known and value is stop_at:
                        break  # the operands after it are never evaluated
                return _Typed(BOOLEAN, node, f"the result of '{op}' (true or false)")
            case Compare(left=left, ops=ops, comparators=comparators):
                operands = [self.infer(left), *(self.infer(item) for item in comparators)]
                nodes = (left, *comparators)
                for index, op in enumerate(ops):
                    self.link(op, nodes[index], operands[index], nodes[index + 1], operands[index + 1])
                return _Typed(BOOLEAN, node, "a comparison's result (true or false)")
            case Call(function=function, args=args):
                for arg in args:
                    self.needs(arg, NUMBER, f"{function}() needs numbers")
                return _Typed(NUMBER, node, f"the result of {function}() (a number)")
            case If(condition=condition, then=then, otherwise=otherwise):
                return self.conditional(node, condition, then, otherwise)
        raise TypeError(f"not an expression node: {node!r}")

    def needs(self, node: Node, kind: str, rule: str) -> _Typed:
        typed = self.infer(node)
        if typed.kind is not None and typed.kind != kind:
            self.fail(node.offset, f"{rule}, not {typed.what}")
        return typed

    def binary(self, node: Binary, op: str, left: Node, right: Node) -> _Typed:
        rule = f"cannot {_VERBS[op]} {{}}: '{op}' needs two numbers"
        for side in (left, right):
            typed = self.infer(side)
            if typed.kind is not None and typed.kind != NUMBER:
                self.fail(side.offset, rule.format(typed.what))
        if op == "/":
            known, divisor = constant_value(right)
            if known and type(divisor) is Decimal and not divisor:
                self.fail(right.offset, "division by zero: the divisor is always 0")
        return _Typed(NUMBER, node, f"the result of '{op}' (a number)")

    def link(self, op: str, left: Node, a: _Typed, right: Node, b: _Typed) -> None:
        if op in _ORDERING:
            for side, typed in ((left, a), (right, b)):
                if typed.kind is not None and typed.kind not in _ORDERED:
                    self.fail(side.offset, f"cannot order {typed.what}: only two numbers, two texts or two dates "
                                           "can be ordered")
                    return
            if a.kind is not None and b.kind is not None and a.kind != b.kind:
                self.fail(left.offset, f"cannot compare {a.what} {op} {b.what}: only two numbers, two texts or "
                                       "two dates can be ordered")
        elif op in ("==", "!="):
            if a.kind is not None and b.kind is not None and a.kind != b.kind:
                answer = "false" if op == "==" else "true"
                self.findings.append(Finding(left.offset, f"always {answer}: {a.what} {op} {b.what} compares values "
                                                          "of different types, which are never equal"))
        elif b.kind == TEXT:
            if a.kind is not None and a.kind != TEXT:
                self.fail(left.offset, f"cannot look for {a.what} in a text: only text is found in text")
        elif b.kind is not None and b.kind != LIST:
            self.fail(right.offset, f"'{op}' needs a list or a text on its right, not {b.what}")

    def conditional(self, node: If, condition: Node, then: Node, otherwise: Node) -> _Typed:
        self.needs(condition, BOOLEAN, "if() needs a true or false condition")
        known, value = constant_value(condition)
        if known and type(value) is bool:
            taken = self.infer(then if value else otherwise)  # the other branch is never evaluated
            return _Typed(taken.kind, node, taken.label)
        branches = (self.infer(then), self.infer(otherwise))
        kind = branches[0].kind if branches[0].kind == branches[1].kind else None
        return _Typed(kind, node, f"the result of if() ({_AS_NOUN[kind]})" if kind else "the result of if()")
