"""The durable_rules backend: rule conditions matched by durable_rules' Rete engine.

Our AST is translated once into durable_rules rulesets (their JSON/dict form);
per record, the facts are posted as *one* fact into a fresh session of each
ruleset and the rules that fire are the conditions that hold. See
``docs/durable.md`` for the full story; in short:

* **Rete matches** the logical structure: ``and``/``or``/``not`` (pushed down to
  the tests), comparison chains, ``in``/``not in`` literal lists, and every
  comparison of a value with a constant number, text or boolean.
* **We compute** (with :func:`incentives.rules.closures.compile_expression`)
  every value Rete compares: a fact, or a derived value such as ``revenue * 3%``
  or ``min(a, b)``; and, as a posted boolean, every comparison Rete cannot do
  exactly (two computed sides, ``text in text``, mixed lists, booleans ordered).
* **Numbers and texts reach Rete as ranks**: each posted value is replaced by its
  position among the constants it is compared with (``2i+1`` when equal to the
  i-th constant, ``2i`` just below it). The comparison is done in Python on the
  exact ``Decimal`` / ``str`` values; Rete only compares small integers, so
  ``99999.99 < 100000`` or ``0.1 + 0.2 == 0.3`` can never go wrong in doubles,
  whatever the magnitude or number of digits.
* A value of an unexpected type (a text where a number is compared, ``None``, a
  NaN) or a derived value that fails to compute makes the condition that needs it
  fall back, for this record only, to the compiled backend's own evaluation — so
  the answer, or the :class:`EvaluationError`, is the compiled backend's.

durable_rules is imported lazily: it does not import on Python 3.13+, where
constructing :class:`DurableBackend` raises :class:`DurableUnavailableError`.
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
import threading
from bisect import bisect_left
from dataclasses import dataclass, field, fields, is_dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

from ..errors import EvaluationError, IncentivesError
from .ast import BoolOp, Compare, Name, Node, Unary
from .backend import Condition
from .closures import CompiledMatcher, Evaluator, compile_expression

__all__ = ["DurableBackend", "DurableMatcher", "DurableUnavailableError", "LIMITS", "Limits"]


class DurableUnavailableError(IncentivesError):
    """durable-rules cannot be imported here (Python 3.13+, or not installed)."""


# --- durable_rules 2.0.28's hard limits, measured and read from its C source ----------------


@dataclass(frozen=True, slots=True)
class Limits:
    stack: int = 56
    """Alpha nodes one fact may push on the C engine's 64-entry match stack (``MAX_STACK_SIZE``;
    overflow is error 303, and deleting that session can crash). Our layout model is an exact
    bound for the shapes we generate; 8 entries are kept back in case a shape is mis-modelled."""
    operators: int = 15
    """``$and``/``$or`` operators in one rule: each takes two of the 32 expression slots a rule
    has (``MAX_SEQUENCE_EXPRESSIONS``); the 16th is error 113 at ruleset creation."""
    properties: int = 250
    """Properties of one posted fact, ``sid`` and the marker included; durable adds ``id`` and
    refuses the 254th (``MAX_OBJECT_PROPERTIES``, error 302)."""
    rules: int = 200
    """Rules of one ruleset: rules that end on the same alpha node share its 256-entry beta list."""


LIMITS = Limits()

_MARKER = "mk"
"""Field every posted fact carries and every rule tests first: it keeps rules off durable's
internal state fact (a rule that matches it re-fires forever)."""
_CATCH_ALL = "catch_all"
"""A rule that fires for every posted fact: a session in which no action ever started can
segfault when it is deleted."""


# --- loading durable_rules ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Durable:
    host: type
    engine: ModuleType


@functools.cache
def _durable() -> _Durable:
    try:
        import durable.engine
        import durable_rules_engine
    except ImportError as error:  # 3.13: undefined symbol PyEval_CallObject
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise DurableUnavailableError(
            f"the durable backend needs durable-rules, which does not import on Python {version} "
            f"({error}); use backend='compiled'"
        ) from error

    class QuietHost(durable.engine.Host):  # type: ignore[misc]
        """A host whose two background timer threads never start: we drive every session."""

        def _run(self) -> None:
            return None

    return _Durable(QuietHost, durable_rules_engine)


# --- formulas: the Rete side of a condition -------------------------------------------------

NUMBER, TEXT, BOOLEAN = "number", "text", "boolean"


@dataclass(frozen=True, slots=True)
class _Field:
    """A value posted to Rete: slot ``slot`` (a computed value) encoded as ``kind``."""

    slot: int
    kind: str


@dataclass(frozen=True, slots=True)
class _Test:
    """``field op constant``: one Rete test (the constant is raw until it is encoded)."""

    field: _Field
    op: str
    constant: Decimal | str | bool


@dataclass(frozen=True, slots=True)
class _All:
    parts: tuple["_Formula", ...]


@dataclass(frozen=True, slots=True)
class _Any:
    parts: tuple["_Formula", ...]


_Formula = Union[_Test, _All, _Any]

_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_SWAPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_RETE_OPERATORS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}


def _all(parts: Sequence[_Formula]) -> _Formula:
    flat = tuple(itertools.chain.from_iterable(p.parts if isinstance(p, _All) else (p,) for p in parts))
    return flat[0] if len(flat) == 1 else _All(flat)


def _any(parts: Sequence[_Formula]) -> _Formula:
    flat = tuple(itertools.chain.from_iterable(p.parts if isinstance(p, _Any) else (p,) for p in parts))
    return flat[0] if len(flat) == 1 else _Any(flat)


def _negate(formula: _Formula) -> _Formula:
    # Sound because a formula only runs in Rete when every value it tests has the type its
    # constants have; then each test is true or false and De Morgan's laws hold.
    if isinstance(formula, _Test):
        return _Test(formula.field, _NEGATED[formula.op], formula.constant)
    if isinstance(formula, _All):
        return _any([_negate(part) for part in formula.parts])
    return _all([_negate(part) for part in formula.parts])


def _formula_fields(formula: _Formula) -> Iterator[_Field]:
    if isinstance(formula, _Test):
        yield formula.field
    else:
        for part in formula.parts:
            yield from _formula_fields(part)


def _kind_of(constant: Any) -> str | None:
    kind = type(constant)
    if kind is bool:
        return BOOLEAN
    if kind is Decimal:
        return NUMBER
    if kind is str:
        return TEXT
    return None


def _rete_comparable(op: str, constant: Any) -> bool:
    kind = _kind_of(constant)
    # Ordering booleans is an error in the compiled backend: computed, so that it says so.
    return kind in (NUMBER, TEXT) or kind == BOOLEAN and op in ("==", "!=")


_NOT_CONSTANT = object()


def _reads_no_name(node: Node) -> bool:
    if isinstance(node, Name):
        return False
    return all(_reads_no_name(child) for child in _children(node))


def _children(node: Node) -> list[Node]:
    children = []
    for f in fields(node):
        value = getattr(node, f.name)
        children.extend(item for item in (value if isinstance(value, tuple) else (value,)) if is_dataclass(item))
    return children


def _structure(value: Any) -> Any:
    """A hashable key of an AST node that ignores offsets, and keeps ``True`` apart from ``1``."""
    if is_dataclass(value):
        return (type(value).__name__,) + tuple(
            _structure(getattr(value, f.name)) for f in fields(value) if f.name != "offset"
        )
    if isinstance(value, tuple):
        return tuple(_structure(item) for item in value)
    return (type(value).__name__, value)


class _Translator:
    """Turns conditions into formulas, collecting the slots (values we compute) they test."""

    def __init__(self) -> None:
        self.slots: list[Evaluator] = []
        self._slot_ids: dict[Any, int] = {}
        self.constants: dict[_Field, set[Any]] = {}

    def formula(self, node: Node) -> _Formula:
        if isinstance(node, BoolOp):
            parts = [self.formula(operand) for operand in node.operands]
            return _all(parts) if node.op == "and" else _any(parts)
        if isinstance(node, Unary) and node.op == "not":
            return _negate(self.formula(node.operand))
        if isinstance(node, Compare):
            operands = (node.left, *node.comparators)
            links = [self._link(operands[i], op, operands[i + 1], node.offset) for i, op in enumerate(node.ops)]
            return _all(links)
        return self.truth(node)

    def ranks(self) -> dict[_Field, tuple[Any, ...]]:
        return {posted: tuple(sorted(set(constants)))
                for posted, constants in self.constants.items() if posted.kind != BOOLEAN}

    def truth(self, node: Node) -> _Test:
        """``node`` computed by our evaluator, its boolean posted and tested by Rete."""
        return self._test(node, "==", True)

    def _link(self, left: Node, op: str, right: Node, offset: int) -> _Formula:
        left_value, right_value = self._constant(left), self._constant(right)
        if op in ("in", "not in"):
            kinds = {_kind_of(item) for item in right_value} if isinstance(right_value, tuple) else set()
            if left_value is _NOT_CONSTANT and len(kinds) == 1 and kinds <= {NUMBER, TEXT}:
                member = _any([self._test(left, "==", item) for item in dict.fromkeys(right_value)])
                return member if op == "in" else _negate(member)
        elif left_value is _NOT_CONSTANT and _rete_comparable(op, right_value):
            return self._test(left, op, right_value)
        elif right_value is _NOT_CONSTANT and _rete_comparable(op, left_value):
            return self._test(right, _SWAPPED[op], left_value)
        return self.truth(Compare(left, (op,), (right,), offset))

    def _test(self, subject: Node, op: str, constant: Any) -> _Test:
        posted = _Field(self._slot(subject), _kind_of(constant))  # type: ignore[arg-type]
        self.constants.setdefault(posted, set()).add(constant)
        return _Test(posted, op, constant)

    def _slot(self, node: Node) -> int:
        key = _structure(node)
        slot = self._slot_ids.get(key)
        if slot is None:
            slot = self._slot_ids[key] = len(self.slots)
            self.slots.append(compile_expression(node))
        return slot

    @staticmethod
    def _constant(node: Node) -> Any:
        """The value of a node that reads no fact (``-5``, ``[1, 2]``, ``3% * 100``), else a marker."""
        if not _reads_no_name(node):
            return _NOT_CONSTANT
        try:
            value = compile_expression(node)({})
        except EvaluationError:
            return _NOT_CONSTANT
        if isinstance(value, tuple):
            return value if all(_kind_of(item) is not None for item in value) else _NOT_CONSTANT
        if type(value) is Decimal and not value.is_finite():
            return _NOT_CONSTANT
        return value if _kind_of(value) is not None else _NOT_CONSTANT


# --- encoding: exact values to small integers --------------------------------------------------

Ranks = Mapping[_Field, tuple[Any, ...]]
"""The sorted, distinct constants each number or text field is compared with."""


def _rank(constants: Sequence[Any], value: Any) -> int:
    """``2i+1`` if ``value`` equals the i-th constant, ``2i`` if it lies just below it.

    Order-preserving, so ``value op c`` and ``rank(value) op rank(c)`` agree for every
    comparison operator; the comparisons behind it are Python's, on exact values.
    """
    index = bisect_left(constants, value)
    if index < len(constants) and constants[index] == value:
        return 2 * index + 1
    return 2 * index


def _encode_constant(ranks: Ranks, test: _Test) -> int:
    if test.field.kind == BOOLEAN:
        return int(test.constant)
    return _rank(ranks[test.field], test.constant)


@dataclass(frozen=True, slots=True)
class _Encoder:
    """How one posted field is computed from the slot values of a record."""

    slot: int
    kind: str
    constants: tuple[Any, ...]

    def encode(self, value: Any) -> int | None:
        """The integer Rete sees, or ``None`` when this value cannot be matched exactly."""
        if self.kind == NUMBER:
            if type(value) is Decimal and value.is_finite():
                return _rank(self.constants, value)
        elif self.kind == TEXT:
            if type(value) is str:
                return _rank(self.constants, value)
        elif value is True or value is False:
            return int(value)
        return None


# --- layout: conditions into rulesets that stay inside durable's limits -----------------------


def _rete_test(name: str, op: str, value: int) -> dict[str, Any]:
    if op == "==":
        return {name: value}
    return {_RETE_OPERATORS[op]: {name: value}}


def _rete_expression(formula: _Formula, names: Mapping[_Field, str], ranks: Ranks) -> dict[str, Any]:
    if isinstance(formula, _Test):
        return _rete_test(names[formula.field], formula.op, _encode_constant(ranks, formula))
    parts = [_rete_expression(part, names, ranks) for part in formula.parts]
    return {"$and" if isinstance(formula, _All) else "$or": parts}


def _rule_condition(formula: _Formula, names: Mapping[_Field, str], ranks: Ranks) -> dict[str, Any]:
    """``marker and formula``, the marker first so every rule starts at one shared node."""
    parts = formula.parts if isinstance(formula, _All) else (formula,)
    return {"$and": [{_MARKER: 1}, *(_rete_expression(part, names, ranks) for part in parts)]}


class _AlphaNode:
    """A node of the alpha network durable builds for our rules (see ``rete.c: createAlpha``)."""

    __slots__ = ("children", "forwards")

    def __init__(self) -> None:
        self.children: dict[Any, _AlphaNode] = {}  # shared by (property, operator, value)
        self.forwards: list[_AlphaNode] = []  # the join node of each `$or` branch ending here

    def place(self, expression: Mapping[str, Any]) -> "_AlphaNode":
        """Add ``expression`` below this node, as durable does; return the node it ends on."""
        ((key, value),) = expression.items()
        if key == "$and":
            node = self
            for part in value:
                node = node.place(part)
            return node
        if key == "$or":
            join = _AlphaNode()  # durable's "forward" node: always pushed, never shared
            for part in value:
                self.place(part).forwards.append(join)
            return join
        test = (key, json.dumps(value, sort_keys=True))
        return self.children.setdefault(test, _AlphaNode())

    def stack_bound(self, memo: dict[int, int]) -> int:
        """Most match-stack entries processing this node's subtree can take, every test matching.

        The engine pops a node and pushes every matching child: the last child pushed is
        processed first, above its k-1 siblings.
        """
        known = memo.get(id(self))
        if known is not None:
            return known
        successors = [*self.children.values(), *self.forwards]
        bound = 0
        if successors:
            deepest = max(successor.stack_bound(memo) for successor in successors)
            bound = max(len(successors), len(successors) - 1 + deepest)
        memo[id(self)] = bound
        return bound


def _count_operators(expression: Any) -> int:
    if isinstance(expression, dict):
        return sum((key in ("$and", "$or")) + _count_operators(value) for key, value in expression.items())
    if isinstance(expression, list):
        return sum(_count_operators(item) for item in expression)
    return 0


def _fits(conditions: Sequence[dict[str, Any]], field_count: int) -> bool:
    """Whether a ruleset of these rule conditions (plus the catch-all) stays inside ``LIMITS``."""
    root = _AlphaNode()
    root.place({_MARKER: 1})  # the catch-all rule
    for condition in conditions:
        root.place(condition)
    return (
        len(conditions) < LIMITS.rules
        and field_count + 2 <= LIMITS.properties
        and max(1, root.stack_bound({})) <= LIMITS.stack
        and all(_count_operators(condition) <= LIMITS.operators for condition in conditions)
    )


@dataclass(slots=True)
class _Group:
    """The rules of one durable ruleset and the fields its facts carry."""

    rules: list[tuple[int, _Formula]] = field(default_factory=list)
    names: dict[_Field, str] = field(default_factory=dict)

    def with_rule(self, index: int, formula: _Formula) -> "_Group":
        names = dict(self.names)
        for posted in _formula_fields(formula):
            names.setdefault(posted, f"f{len(names)}")
        return _Group([*self.rules, (index, formula)], names)

    def conditions(self, ranks: Ranks) -> list[dict[str, Any]]:
        return [_rule_condition(formula, self.names, ranks) for _, formula in self.rules]

    def fits(self, ranks: Ranks) -> bool:
        return _fits(self.conditions(ranks), len(self.names))


def _layout(formulas: Sequence[_Formula], ranks: Ranks, too_big: Callable[[int], _Formula]) -> list[_Group]:
    """Pack rules, in order, into as few rulesets as the limits allow.

    A condition too big for a ruleset of its own (a long ``in`` list, 20 nested ``or``s)
    is matched as one computed boolean instead: ``too_big(index)``.
    """
    groups: list[_Group] = []
    current = _Group()
    for index, formula in enumerate(formulas):
        if not _Group().with_rule(index, formula).fits(ranks):
            formula = too_big(index)
        candidate = current.with_rule(index, formula)
        if not candidate.fits(ranks):
            groups.append(current)
            candidate = _Group().with_rule(index, formula)
        current = candidate
    if current.rules:
        groups.append(current)
    return groups


# --- the matcher ------------------------------------------------------------------------------

_serials = itertools.count(1)
"""Makes every ruleset name unique in the process: durable cannot redefine a name."""


def _never_run(closure: Any) -> None:
    """durable needs an action per rule; we drain actions through its C API instead."""


@dataclass(frozen=True, slots=True)
class _Ruleset:
    name: str
    handle: int
    fields: tuple[tuple[int, str], ...]  # (encoder index, property name)
    rule_conditions: Mapping[str, int]  # durable rule name -> condition index
    conditions: frozenset[int]


@dataclass(frozen=True, slots=True)
class _Rule:
    rule_id: str
    fields: tuple[int, ...]  # the posted fields this condition's Rete form reads
    fallback: CompiledMatcher  # the compiled backend's evaluation of this condition alone


class _EngineFault(Exception):
    """durable_rules answered something it never should for our rulesets."""


class DurableMatcher:
    """Matches records against durable rulesets; see :class:`incentives.rules.backend.Matcher`."""

    def __init__(self, conditions: Sequence[Condition], ruleset_name: str, durable: _Durable):
        translator = _Translator()
        formulas = [translator.formula(condition.expression.node) for condition in conditions]
        ranks = translator.ranks()
        groups = _layout(formulas, ranks, lambda index: translator.truth(conditions[index].expression.node))
        posted = list(dict.fromkeys(posted for group in groups for posted in group.names))
        position = {field_: index for index, field_ in enumerate(posted)}
        self._slots = tuple(translator.slots)
        self._encoders = tuple(_Encoder(f.slot, f.kind, ranks.get(f, ())) for f in posted)
        formula_of = {index: formula for group in groups for index, formula in group.rules}
        self._rules = tuple(
            _Rule(condition.rule_id,
                  tuple(sorted({position[f] for f in _formula_fields(formula_of[index])})),
                  CompiledMatcher([(condition.rule_id, compile_expression(condition.expression.node))]))
            for index, condition in enumerate(conditions)
        )
        self._engine = durable.engine
        self._host: Any = durable.host()
        self.definitions: dict[str, dict[str, Any]] = {}
        """Every registered ruleset, by name, in durable's JSON form (for inspection and docs)."""
        self._rulesets = tuple(self._register(group, ranks, position, ruleset_name) for group in groups)
        self._sessions = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False

    def _register(self, group: _Group, ranks: Ranks, position: Mapping[_Field, int],
                  ruleset_name: str) -> _Ruleset:
        name = f"{ruleset_name}#{next(_serials)}"
        rule_names = {f"r{index}": index for index, _ in group.rules}
        definition: dict[str, Any] = {
            rule: {"all": [{"m": condition}]} for rule, condition in zip(rule_names, group.conditions(ranks))
        }
        definition[_CATCH_ALL] = {"all": [{"m": {_MARKER: 1}}]}
        self.definitions[name] = definition
        self._host.register_rulesets({name: {rule: {**body, "run": _never_run} for rule, body in definition.items()}})
        return _Ruleset(
            name,
            self._host.get_ruleset(name)._handle,
            tuple((position[posted], property_name) for posted, property_name in group.names.items()),
            rule_names,
            frozenset(rule_names.values()),
        )

    # --- per record ---------------------------------------------------------------------------

    def matching(self, facts: Mapping[str, Any]) -> frozenset[str]:
        encoded = self._encode(facts)
        matched: set[str] = set()
        fallback: set[int] = set()
        for index, rule in enumerate(self._rules):
            if any(encoded[position] is None for position in rule.fields):
                # In condition order, so the first error is the one the compiled backend raises.
                fallback.add(index)
                matched |= rule.fallback.matching(facts)
        with self._lock:
            if self._closed:
                raise RuntimeError("this durable matcher is closed")
            for ruleset in self._rulesets:
                if ruleset.conditions <= fallback:
                    continue
                for rule_name in self._fire(ruleset, encoded):
                    index = ruleset.rule_conditions.get(rule_name)
                    if index is not None and index not in fallback:
                        matched.add(self._rules[index].rule_id)
        return frozenset(matched)

    def _encode(self, facts: Mapping[str, Any]) -> list[int | None]:
        values: list[Any] = []
        for slot in self._slots:
            try:
                values.append(slot(facts))
            except EvaluationError:
                values.append(None)  # conditions that need it fall back, and raise if they must
        return [encoder.encode(values[encoder.slot]) for encoder in self._encoders]

    def _fire(self, ruleset: _Ruleset, encoded: Sequence[int | None]) -> list[str]:
        """Post one fact into a fresh session; the names of the rules that fired."""
        sid = str(next(self._sessions))
        posted = "".join(f',"{name}":{encoded[position]}'
                         for position, name in ruleset.fields if encoded[position] is not None)
        engine = self._engine
        started = False
        try:
            code, state = engine.assert_fact(ruleset.handle, f'{{"sid":"{sid}","{_MARKER}":1{posted}}}')
            if code != 0:
                raise _EngineFault(f"assert_fact returned code {code}")
            first = engine.start_action_for_state(ruleset.handle, state)
            if first is None:
                raise _EngineFault("no rule fired, not even the catch-all rule")
            started = True
            fired = []
            message = first[1]
            while message is not None:
                # '{"r12":{...}}': rule names are ours (r<digits>, catch_all), never escaped.
                fired.append(message[2:message.index('"', 2)])
                message = engine.complete_and_start_action(ruleset.handle, state)
            return fired
        except Exception as error:
            raise EvaluationError(
                f"durable_rules failed on ruleset '{ruleset.name}': {error}; "
                "this record can be evaluated with backend='compiled'"
            ) from error
        finally:
            if started:  # deleting a session in which no action started can segfault: leak it instead
                self._delete(ruleset, sid)

    def _delete(self, ruleset: _Ruleset, sid: str) -> None:
        try:
            self._engine.delete_state(ruleset.handle, sid)
        except Exception as error:
            raise EvaluationError(f"durable_rules could not delete session {sid} of '{ruleset.name}': {error}") \
                from error

    def close(self) -> None:
        """Delete the rulesets in the C engine; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for ruleset in self._rulesets:
                self._engine.delete_ruleset(ruleset.handle)
            self._host = None


class DurableBackend:
    """The ``durable`` :class:`~incentives.rules.backend.RuleBackend`: durable_rules' Rete engine."""

    name = "durable"

    def __init__(self) -> None:
        self._durable = _durable()

    def compile(self, conditions: Sequence[Condition], *, ruleset_name: str) -> DurableMatcher:
        """Register ``conditions`` as one or more rulesets named ``<ruleset_name>#<n>``."""
        ids = [condition.rule_id for condition in conditions]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids in {ruleset_name}: {', '.join(duplicates)}")
        return DurableMatcher(conditions, ruleset_name, self._durable)
