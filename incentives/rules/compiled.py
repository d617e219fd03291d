"""The compiled backend (the default): a program's conditions generated as one Python function.

:class:`~incentives.rules.closures.CompiledMatcher` calls one closure per
condition, and each comparison inside it is one more call. Here all the
conditions of a program version become one generated function that evaluates
the common shapes inline — a fact compared with a constant (``nps >= 50``,
``status == 'active'``, ``segment in ['smb', 'commercial']``) and ``and``,
``or``, ``not`` over them — and calls the compiled closure of anything else.

The generated code is optimistic: it *gives up* whenever a value is not of the
type its shape needs, a fact is missing, arithmetic fails or a closure raises,
and the record is then evaluated by the closures, one rule at a time
(:class:`~incentives.rules.closures.CompiledMatcher`), which answer or raise exactly as they always
have. So whenever the generated function answers, its answer is the closures'
answer; it never decides an error case itself.

No text of a program file reaches the generated source: fact names, constants
and closures are arguments of the factory that builds the function, referred to
as ``b0``, ``b1``, ... in its source, so a program cannot inject code.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import compress, product
from typing import Any, Callable, Mapping, Sequence

from ..errors import EvaluationError
from .ast import BoolOp, Compare, If, ListLiteral, Literal, Name, Node, Unary
from .backend import Condition
from .closures import CompiledMatcher, compile_expression, constant_value

__all__ = ["CompiledBackend", "GeneratedMatcher"]

#: Up to this many conditions, every combination of outcomes maps to its prepared frozenset.
TABLE_LIMIT = 10

_ORDERING = ("<", "<=", ">", ">=")


class _GiveUp(Exception):
    """Raised by generated code when a record needs the closures' exact evaluation."""


def _give_up() -> bool:
    raise _GiveUp


def _truth(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _GiveUp


class _Source:
    """The values the generated source refers to, in order: ``b0``, ``b1``, ..."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"b{len(self.values) - 1}"


def _comparison(node: Compare, source: _Source) -> str | None:
    """Inline Python for ``name OP constant``, or None when the closures must compare."""
    if len(node.ops) != 1 or not isinstance(node.left, Name):
        return None
    known, constant = constant_value(node.comparators[0])
    if not known:
        return None
    op = node.ops[0]
    fact = f"facts[{source.bind(node.left.name)}]"
    kind = type(constant)
    if op in _ORDERING and kind in (Decimal, str):
        # Ordering two values of different types is an error: the closures report it.
        return (f"(x {op} {source.bind(constant)} if type(x := {fact}) is {source.bind(kind)} "
                "else give_up())")
    if op in ("==", "!=") and kind in (Decimal, str, bool):
        # Values of different types are unequal (true != 1), never an error.
        equal = f"(type(x := {fact}) is {source.bind(kind)} and x == {source.bind(constant)})"
        return equal if op == "==" else f"(not {equal})"
    if op in ("in", "not in") and type(constant) is tuple and constant:
        kinds = {type(item) for item in constant}
        if len(kinds) == 1 and kinds <= {Decimal, str}:
            (item_kind,) = kinds
            # ``x in [...]`` compares with ``==`` item by item; a set of same-typed items
            # answers the same (equal Decimals hash equal), and any other type is not in it.
            found = (f"(type(x := {fact}) is {source.bind(item_kind)} "
                     f"and x in {source.bind(frozenset(constant))})")
            return found if op == "in" else f"(not {found})"
    return None


def _boolean_source(node: Node, source: _Source) -> str:
    """A Python expression that is True or False as ``node`` holds, or raises to give up."""
    if isinstance(node, Compare):
        inline = _comparison(node, source)
        if inline is not None:
            return inline
    elif isinstance(node, BoolOp):
        # Every operand is itself True or False (or gives up), so Python's and/or short-circuit
        # and answer exactly as the language's do.
        return "(" + f" {node.op} ".join(_boolean_source(operand, source) for operand in node.operands) + ")"
    elif isinstance(node, Unary) and node.op == "not":
        return f"(not {_boolean_source(node.operand, source)})"
    elif isinstance(node, If):
        # The condition is True or False (or gives up), and Python's conditional evaluates
        # only the branch it takes, as the language's if() does.
        condition, then, otherwise = (_boolean_source(part, source)
                                      for part in (node.condition, node.then, node.otherwise))
        return f"({then} if {condition} else {otherwise})"
    elif isinstance(node, Name):
        return f"truth(facts[{source.bind(node.name)}])"
    elif isinstance(node, Literal) and type(node.value) is bool:
        return "True" if node.value else "False"
    elif isinstance(node, ListLiteral):
        return "give_up()"  # a list is never true or false: the closures say so
    return f"truth({source.bind(compile_expression(node))}(facts))"


def _generate(conditions: Sequence[Condition], one_by_one: Callable[[Mapping[str, Any]], frozenset[str]],
              ids: tuple[str, ...]) -> Callable[[Mapping[str, Any]], frozenset[str]]:
    source = _Source()
    outcomes = [_boolean_source(condition.expression.node, source) for condition in conditions]
    if not outcomes:
        answer = source.bind(frozenset())
    elif len(outcomes) <= TABLE_LIMIT:
        table = {combination: frozenset(compress(ids, combination))
                 for combination in product((False, True), repeat=len(outcomes))}
        answer = f"{source.bind(table)}[({', '.join(outcomes)},)]"
    else:
        answer = f"frozenset(compress({source.bind(ids)}, ({', '.join(outcomes)},)))"
    bound = ", ".join(f"b{index}" for index in range(len(source.values)))
    text = (f"def factory(one_by_one, truth, give_up, compress, {bound}):\n"
            "    def matching(facts):\n"
            "        try:\n"
            f"            return {answer}\n"
            "        except (LookupError, TypeError, ArithmeticError, EvaluationError, GiveUp):\n"
            "            return one_by_one(facts)\n"
            "    return matching\n")
    namespace: dict[str, Any] = {"EvaluationError": EvaluationError, "GiveUp": _GiveUp, "frozenset": frozenset}
    exec(compile(text, "<incentives generated matcher>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace["factory"](one_by_one, _truth, _give_up, compress, *source.values)


class GeneratedMatcher:
    """The compiled backend's :class:`~incentives.rules.backend.Matcher`: one generated function per program.

    ``matching`` is the generated function itself (an attribute, not a
    method), so a call costs no extra frame.
    """

    __slots__ = ("matching", "closures")

    def __init__(self, conditions: Sequence[Condition]):
        #: The same conditions as closures: the exact evaluation the generated code falls back on.
        self.closures = CompiledMatcher(
            [(condition.rule_id, compile_expression(condition.expression.node)) for condition in conditions])
        self.matching = _generate(conditions, self.closures.matching,
                                  tuple(condition.rule_id for condition in conditions))

    def close(self) -> None:
        """Nothing to release."""


class CompiledBackend:
    """The default :class:`~incentives.rules.backend.RuleBackend`: each program version's generated matcher."""

    name = "compiled"

    def compile(self, conditions: Sequence[Condition], *, ruleset_name: str) -> GeneratedMatcher:
        """``ruleset_name`` is part of the backend interface; generated functions need no name."""
        ids = [condition.rule_id for condition in conditions]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids in {ruleset_name}: {', '.join(duplicates)}")
        return GeneratedMatcher(conditions)
