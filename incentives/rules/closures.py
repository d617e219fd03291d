"""AST → nested Python closures: the exact evaluation every rule backend builds on.

Each node is compiled once into a closure ``evaluate(facts) -> value``; at
evaluation time there is no dispatch over node types, only closure calls.
Subtrees that read no name are evaluated once at compile time (constant folding).

Semantics (exact and strict; the durable backend must match them):

* Values are ``Decimal``, ``str``, ``bool``, ``datetime.date``, ``None`` and
  tuples (list literals; a ``list`` fact is accepted wherever a tuple is).
* Numbers are ``Decimal`` only: a ``bool`` is not a number, nor an ``int`` or a
  ``float`` (the engine converts facts to ``Decimal`` first). ``+ - * /``,
  unary ``-``/``+``, ``abs``, ``min`` and ``max`` take numbers only.
* ``+ - *``, unary ``-``/``+`` and ``abs`` are exact: every digit is kept
  (:data:`incentives.money.EXACT`), so ``0.1 + 0.2 == 0.3`` and a sum of large
  amounts never loses a cent. ``/`` uses the *current* :mod:`decimal` context
  of the evaluating thread (by default 28 significant digits,
  ``ROUND_HALF_EVEN``), since a quotient may have no end; nothing here changes
  it. Folded constants use the context active at compile time.
* ``/`` by zero, and any signal the decimal context traps (overflow, a NaN in
  an ordering), is an :class:`EvaluationError`.
* ``< <= > >=`` compare two numbers, two strings or two dates, nothing else.
  ``==``/``!=`` accept any two values and never coerce: values of different types
  are unequal (``true != 1``), ``Decimal("1") == Decimal("1.00")``, lists compare
  item by item with the same rule.
* ``x in list`` uses that ``==``; ``text in text`` is a substring test.
* ``and``/``or`` short-circuit like Python's and need ``bool`` operands (an
  operand that is never reached is never checked); ``not`` needs a ``bool``.
  Their result is always a ``bool``.
* ``min``/``max`` return the first of equal values (``min(1.0, 1)`` is ``1.0``).
* ``if(condition, then, else)`` needs a ``bool`` condition and evaluates only
  the branch it takes, so ``if(target > 0, actual / target, 0)`` never divides
  by zero.
"""

from __future__ import annotations

import operator
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from ..errors import EvaluationError
from ..money import EXACT
from .ast import BoolOp, Binary, Call, Compare, If, ListLiteral, Literal, Name, Node, Unary

__all__ = ["Evaluator", "compile_expression", "constant_value", "CompiledMatcher"]

Evaluator = Callable[[Mapping[str, Any]], Any]
_Check = Callable[[Any, Any], bool]

_NO_FACTS: Mapping[str, Any] = {}
_ORDERED = frozenset({Decimal, str, date})
_LISTS = frozenset({tuple, list})


def compile_expression(node: Node) -> Evaluator:
    """Compile ``node`` once into a function of the facts mapping."""
    builder = _BUILDERS.get(type(node))
    if builder is None:
        raise TypeError(f"not an expression node: {node!r}")
    evaluate = builder(node)
    if isinstance(node, Literal) or not _is_constant(node):
        return evaluate
    try:
        value = evaluate(_NO_FACTS)
    except EvaluationError:
        return evaluate  # e.g. a literal 1/0: fails per record, like every other evaluation error
    return _constant(value)


class CompiledMatcher:
    """Evaluates each condition's closure in order, one at a time; see :class:`incentives.rules.backend.Matcher`.

    The exact reference: the compiled backend's generated matcher
    (:mod:`incentives.rules.compiled`) hands a record to it whenever a value
    needs its checks, and the durable backend evaluates with it a condition
    whose values it cannot post.
    """

    __slots__ = ("_rules",)

    def __init__(self, rules: Sequence[tuple[str, Evaluator]]):
        self._rules = tuple(rules)

    def matching(self, facts: Mapping[str, Any]) -> frozenset[str]:
        """The ids that hold; the first rule (in order) that fails or gives a non-boolean raises, named."""
        matched = []
        for rule_id, evaluate in self._rules:
            try:
                value = evaluate(facts)
            except EvaluationError as error:
                raise EvaluationError(f"rule '{rule_id}': {error}") from error
            if value is True:
                matched.append(rule_id)
            elif value is not False:
                raise EvaluationError(f"rule '{rule_id}' must be true or false, got {_describe(value)}")
        return frozenset(matched)

    def close(self) -> None:
        """Nothing to release."""


# --- describing values in error messages -------------------------------------------------


def _describe(value: Any) -> str:
    kind = type(value)
    if value is None:
        return "no value (None)"
    if kind is bool:
        return "boolean true" if value else "boolean false"
    if kind is Decimal:
        return f"number {value}"
    if kind is str:
        shown = value if len(value) <= 40 else f"{value[:37]}..."
        return f"text {shown!r}"
    if isinstance(value, date):
        return f"date {value.isoformat()}"
    if kind in _LISTS:
        shown = ", ".join(_describe(item) for item in value[:5])
        return f"list [{shown}{', ...' if len(value) > 5 else ''}]"
    return f"{kind.__name__} {value!r}"


# --- node builders ------------------------------------------------------------------------


def _constant(value: Any) -> Evaluator:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        return value

    return evaluate


def _literal(node: Literal) -> Evaluator:
    return _constant(node.value)


def _name(node: Name) -> Evaluator:
    key = node.name

    def evaluate(facts: Mapping[str, Any]) -> Any:
        try:
            return facts[key]
        except KeyError:
            raise EvaluationError(f"missing fact '{key}'") from None

    return evaluate


def _list(node: ListLiteral) -> Evaluator:
    items = tuple(compile_expression(item) for item in node.items)

    def evaluate(facts: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple([item(facts) for item in items])

    return evaluate


def _divide(a: Decimal, b: Decimal) -> Decimal:
    if not b:
        raise EvaluationError(f"division by zero: {_describe(a)} / 0")
    return a / b


_ARITHMETIC: dict[str, tuple[Callable[[Decimal, Decimal], Decimal], str]] = {
    "+": (EXACT.add, "add"),
    "-": (EXACT.subtract, "subtract"),
    "*": (EXACT.multiply, "multiply"),
    "/": (_divide, "divide"),
}


def _binary(node: Binary) -> Evaluator:
    operation, verb = _ARITHMETIC[node.op]
    symbol = node.op
    left, right = compile_expression(node.left), compile_expression(node.right)

    def evaluate(facts: Mapping[str, Any]) -> Decimal:
        a, b = left(facts), right(facts)
        if type(a) is not Decimal or type(b) is not Decimal:
            raise EvaluationError(
                f"cannot {verb} {_describe(a)} and {_describe(b)}: '{symbol}' needs two numbers"
            )
        try:
            return operation(a, b)
        except ArithmeticError as error:
            raise EvaluationError(f"{a} {symbol} {b} failed: {type(error).__name__}") from error

    return evaluate


def _unary(node: Unary) -> Evaluator:
    operand = compile_expression(node.operand)
    if node.op == "not":
        return _negation(operand)
    operation = EXACT.minus if node.op == "-" else EXACT.plus
    symbol = node.op

    def evaluate(facts: Mapping[str, Any]) -> Decimal:
        a = operand(facts)
        if type(a) is not Decimal:
            raise EvaluationError(f"unary '{symbol}' needs a number, got {_describe(a)}")
        try:
            return operation(a)
        except ArithmeticError as error:
            raise EvaluationError(f"{symbol}{a} failed: {type(error).__name__}") from error

    return evaluate


def _negation(operand: Evaluator) -> Evaluator:
    def evaluate(facts: Mapping[str, Any]) -> bool:
        a = operand(facts)
        if a is True:
            return False
        if a is False:
            return True
        raise EvaluationError(f"'not' needs true or false, got {_describe(a)}")

    return evaluate


def _boolean(node: BoolOp) -> Evaluator:
    operands = tuple(compile_expression(operand) for operand in node.operands)
    op = node.op
    # 'and' stops at the first false operand, 'or' at the first true one.
    stop_at = op == "or"

    def evaluate(facts: Mapping[str, Any]) -> bool:
        for operand in operands:
            value = operand(facts)
            if value is stop_at:
                return stop_at
            if value is not (not stop_at):
                raise EvaluationError(f"'{op}' needs true or false operands, got {_describe(value)}")
        return not stop_at

    return evaluate


def _equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) in _LISTS:
        return len(a) == len(b) and all(map(_equal, a, b))
    return bool(a == b)


def _not_equal(a: Any, b: Any) -> bool:
    return not _equal(a, b)


def _contains(a: Any, b: Any) -> bool:
    if type(b) in _LISTS:
        # _equal inlined for the common scalar case: membership tests are hot.
        kind = type(a)
        if kind in _LISTS:
            return any(_equal(a, item) for item in b)
        for item in b:
            if type(item) is kind and item == a:
                return True
        return False
    if type(b) is str and type(a) is str:
        return a in b
    if type(b) is str:
        raise EvaluationError(f"cannot look for {_describe(a)} in {_describe(b)}: only text is found in text")
    raise EvaluationError(f"'in' needs a list or a text on its right, got {_describe(b)}")


def _not_contains(a: Any, b: Any) -> bool:
    return not _contains(a, b)


def _ordering(symbol: str, operation: _Check) -> _Check:
    def check(a: Any, b: Any) -> bool:
        kind = type(a)
        if kind is not type(b) or kind not in _ORDERED:
            raise EvaluationError(
                f"cannot compare {_describe(a)} {symbol} {_describe(b)}: "
                "only two numbers, two texts or two dates can be ordered"
            )
        try:
            return operation(a, b)
        except ArithmeticError as error:
            raise EvaluationError(f"{a} {symbol} {b} failed: {type(error).__name__}") from error

    return check


_COMPARISONS: dict[str, _Check] = {
    "<": _ordering("<", operator.lt),
    "<=": _ordering("<=", operator.le),
    ">": _ordering(">", operator.gt),
    ">=": _ordering(">=", operator.ge),
    "==": _equal,
    "!=": _not_equal,
    "in": _contains,
    "not in": _not_contains,
}


def _compare(node: Compare) -> Evaluator:
    left = compile_expression(node.left)
    steps = tuple(
        (_COMPARISONS[op], compile_expression(right)) for op, right in zip(node.ops, node.comparators, strict=True)
    )
    if len(steps) == 1:
        ((check, right),) = steps
        fast = _name_against_constant(node.left, node.ops[0], node.comparators[0], check)
        if fast is not None:
            return fast

        def evaluate_one(facts: Mapping[str, Any]) -> bool:
            return check(left(facts), right(facts))

        return evaluate_one

    def evaluate_chain(facts: Mapping[str, Any]) -> bool:
        # Python's chain: a < b < c is a < b and b < c, with b evaluated once.
        a = left(facts)
        for check, right in steps:
            b = right(facts)
            if not check(a, b):
                return False
            a = b
        return True

    return evaluate_chain


_FAST_ORDERING: dict[str, _Check] = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def constant_value(node: Node) -> tuple[bool, Any]:
    """``(True, value)`` for a node that reads no fact and evaluates (``50``, ``-5``, ``3.5%``, ``['a']``).

    ``(False, None)`` otherwise.
    """
    if not _is_constant(node):
        return False, None
    try:
        return True, compile_expression(node)(_NO_FACTS)
    except EvaluationError:  # e.g. 1/0: it fails per record, like every other evaluation error
        return False, None


def _name_against_constant(left: Node, op: str, right: Node, check: _Check) -> Evaluator | None:
    """``name OP constant`` (``nps >= 50``, ``status == 'active'``), the commonest condition, as one closure.

    Same results and errors as ``check(name, constant)``: the value is compared
    directly when it has the constant's type, and handed to ``check`` otherwise
    (which then raises its usual error, or answers ``==`` with false).
    """
    if not isinstance(left, Name):
        return None
    known, constant = constant_value(right)
    if not known:
        return None
    key = left.name
    kind = type(constant)
    if op in _FAST_ORDERING and kind in _ORDERED:
        operation = _FAST_ORDERING[op]

        def ordered(facts: Mapping[str, Any]) -> bool:
            try:
                a = facts[key]
            except KeyError:
                raise EvaluationError(f"missing fact '{key}'") from None
            if type(a) is kind:
                try:
                    return operation(a, constant)
                except ArithmeticError:
                    pass  # check() raises the error with its message
            return check(a, constant)

        return ordered
    if op in ("==", "!=") and kind not in _LISTS:
        equal = op == "=="

        def equality(facts: Mapping[str, Any]) -> bool:
            try:
                a = facts[key]
            except KeyError:
                raise EvaluationError(f"missing fact '{key}'") from None
            if type(a) is not kind:
                return not equal
            return bool(a == constant) is equal

        return equality
    return None


def _call(node: Call) -> Evaluator:
    args = tuple(compile_expression(arg) for arg in node.args)
    name = node.function
    if name == "abs" and len(args) != 1 or name in ("min", "max") and not args:
        raise ValueError(f"{name}() with {len(args)} arguments")
    function: Callable[[list[Decimal]], Decimal] = {
        "abs": lambda values: EXACT.abs(values[0]),
        "min": min,
        "max": max,
    }[name]

    def evaluate(facts: Mapping[str, Any]) -> Decimal:
        values = [arg(facts) for arg in args]
        for value in values:
            if type(value) is not Decimal:
                raise EvaluationError(f"{name}() needs numbers, got {_describe(value)}")
        try:
            return function(values)
        except ArithmeticError as error:
            raise EvaluationError(f"{name}() failed: {type(error).__name__}") from error

    return evaluate


def _if(node: If) -> Evaluator:
    condition, then, otherwise = (compile_expression(part) for part in (node.condition, node.then, node.otherwise))

    def evaluate(facts: Mapping[str, Any]) -> Any:
        chosen = condition(facts)
        if chosen is True:
            return then(facts)
        if chosen is False:
            return otherwise(facts)
        raise EvaluationError(f"if() needs a true or false condition, got {_describe(chosen)}")

    return evaluate


_BUILDERS: dict[type, Callable[[Any], Evaluator]] = {
    Literal: _literal,
    Name: _name,
    ListLiteral: _list,
    Unary: _unary,
    Binary: _binary,
    BoolOp: _boolean,
    Compare: _compare,
    Call: _call,
    If: _if,
}


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case ListLiteral(items=items):
            return items
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case BoolOp(operands=operands):
            return operands
        case Compare(left=left, comparators=comparators):
            return (left, *comparators)
        case Call(args=args):
            return args
        case If(condition=condition, then=then, otherwise=otherwise):
            return (condition, then, otherwise)
    return ()


def _is_constant(node: Node) -> bool:
    return not isinstance(node, Name) and all(_is_constant(child) for child in _children(node))
