"""The expression language: text → :mod:`incentives.rules.ast` nodes.

Expressions are a safe subset of Python's expression syntax. The text is parsed
with Python's own parser (``ast.parse(..., mode="eval")``) and the resulting
tree is checked against a strict whitelist and translated into our AST; nothing
is ever evaluated, executed or compiled to code here.

The language:

* decimal literals (``1_000``, ``0.035``, ``1e3``), read from the source text
  into exact :class:`~decimal.Decimal` values, never through ``float``;
* percent literals ``3.5%`` (the ``%`` directly after the number, no space):
  the exact decimal divided by 100, so ``3.5%`` is ``Decimal("0.035")``;
* strings (Python's quoting and escapes), ``true``/``false`` and
  ``True``/``False``, list literals ``[a, b]`` (a tuple ``(a, b)`` is a list too);
* names and dotted names: ``certifications.sales`` is the single name
  ``"certifications.sales"``, kept as written (no Unicode normalisation);
* ``+ - * /``, unary ``- + not``, comparisons (chains allowed), ``in``,
  ``not in``, ``and``, ``or``, parentheses;
* calls of ``abs(x)``, ``min(a, b, ...)``/``max(...)`` and
  ``min([a, b, ...])``/``max([...])``. Both spellings produce the same node:
  ``Call("min", (a, b, ...))`` whose arguments are the values compared, so a
  backend never unpacks a list for min/max;
* ``if(condition, then, else)``, an :class:`~incentives.rules.ast.If` node.
  ``if`` is a Python keyword, so Python's parser cannot read it as a call: the
  token is renamed before parsing (as ``%`` is turned into ``j``), keeping every
  offset.

Deliberately left out: ``None``/``null`` (a record lacking a fact gets its value
from the program's ``defaults``, not from a null in the expression), names
starting with ``_``, the bare names ``true``/``false``/``null``/``abs``/``min``/
``max`` as facts, comments (a YAML block string is one logical line, so a ``#``
would silently swallow whatever follows it), and everything else Python has
(``%`` modulo, ``**``, ``//``, subscripts, attributes of non-names, lambdas,
comprehensions, f-strings, conditional expressions, keyword arguments...).

Every rejection is an :class:`~incentives.errors.ExpressionError` carrying the
0-based character offset, into the original text, of the offending construct.
A text containing line breaks (a YAML block scalar) is read as one logical
line; offsets still count the line-break characters, so the loader can turn
them into file lines and columns.
"""

from __future__ import annotations

import ast as py
import io
import keyword
import re
import tokenize
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, NoReturn

from ..errors import ExpressionError
from .ast import BoolOp, Binary, Call, Compare, If, ListLiteral, Literal, Name, Node, Unary

__all__ = ["Expression", "parse_expression", "FUNCTIONS", "MAX_LENGTH", "MAX_DEPTH"]

FUNCTIONS = frozenset({"abs", "if", "max", "min"})
MAX_LENGTH = 2_000
"""Longest accepted expression text, in characters."""
MAX_DEPTH = 100
"""Deepest accepted nesting of syntax nodes (a sum of n terms is n levels deep)."""
MAX_DIGITS = 50
MAX_EXPONENT = 100

_BOOLEANS = {"true": True, "false": False}
_NULL = "{} is not part of the expression language; give missing facts a value in the program's defaults"
_MODULO = "the modulo operator is not supported; a percent literal is written 3.5% with no space"
_ALLOWED_FUNCTIONS = ", ".join(sorted(FUNCTIONS))

_ARITHMETIC = {py.Add: "+", py.Sub: "-", py.Mult: "*", py.Div: "/"}
_UNSUPPORTED_OPERATORS: dict[type[py.AST], tuple[str, str]] = {
    py.Pow: ("**", "the ** operator is not supported"),
    py.FloorDiv: ("//", "the // operator is not supported; use /"),
    py.Mod: ("%", _MODULO),
    py.MatMult: ("@", "the @ operator is not supported"),
    py.BitAnd: ("&", "the & operator is not supported; use and"),
    py.BitOr: ("|", "the | operator is not supported; use or"),
    py.BitXor: ("^", "the ^ operator is not supported"),
    py.LShift: ("<<", "the << operator is not supported"),
    py.RShift: (">>", "the >> operator is not supported"),
    py.Is: ("is", "'is' is not supported; use =="),
    py.IsNot: ("is", "'is not' is not supported; use !="),
}
_UNARY = {py.USub: "-", py.UAdd: "+", py.Not: "not"}
_BOOLEAN_OPERATORS = {py.And: "and", py.Or: "or"}
_COMPARISONS = {
    py.Lt: "<", py.LtE: "<=", py.Gt: ">", py.GtE: ">=", py.Eq: "==", py.NotEq: "!=",
    py.In: "in", py.NotIn: "not in",
}
_COMPREHENSIONS = "comprehensions are not supported"
_UNSUPPORTED_NODES: dict[type[py.AST], str] = {
    py.Subscript: "subscripts are not supported",
    py.Lambda: "lambda is not supported",
    py.ListComp: _COMPREHENSIONS,
    py.SetComp: _COMPREHENSIONS,
    py.DictComp: _COMPREHENSIONS,
    py.GeneratorExp: _COMPREHENSIONS,
    py.IfExp: "conditional expressions (a if b else c) are not supported",
    py.Dict: "dictionaries are not supported",
    py.Set: "sets are not supported; write a list: [a, b]",
    py.JoinedStr: "f-strings are not supported",
    py.NamedExpr: "the := operator is not supported",
    py.Starred: "unpacking with * is not supported",
    py.Await: "await is not supported",
    py.Yield: "yield is not supported",
    py.YieldFrom: "yield is not supported",
}
_BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
_IF_CALL = "_f"
"""What a call's ``if`` becomes for Python's parser: an identifier of the same length.

A program cannot call ``_f`` itself: the converter reads function names from the
original text, where it is ``if`` (and a name written ``_f`` is an unknown function)."""
_OPERAND_KEYWORDS = frozenset({"True", "False", "None"})
_NOT_PERCENT_AFTER = frozenset({tokenize.NAME, tokenize.NUMBER, tokenize.STRING})
_NON_DECIMAL = re.compile(r"[xXoObBjJ]")


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: its text, its AST and every (dotted) name it reads."""

    text: str
    node: Node
    names: frozenset[str]
    #: ``(name, offset)`` of each name's first occurrence in ``text``, in the order they occur
    first_offsets: tuple[tuple[str, int], ...] = ()


def parse_expression(text: str) -> Expression:
    """Parse ``text`` into an :class:`Expression`; raise :class:`ExpressionError` if it is not one.

    For any ``str`` input this returns or raises ``ExpressionError``, nothing else.
    """
    source = _Source.of(text)
    converter = _Converter(source)
    node = converter.convert(source.parse().body, depth=1)
    return Expression(text, node, frozenset(converter.names),
                      tuple(sorted(converter.names.items(), key=lambda item: item[1])))


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    text: str


@dataclass(slots=True)
class _Scan:
    percents: set[int]
    names: dict[int, _Token]
    complete: bool
    #: where each ``if`` called as a function starts (not the keyword of ``a if b else c``)
    if_calls: set[int]


@dataclass(frozen=True, slots=True)
class _Source:
    """The text as handed to Python's parser, and the maps back to the original text.

    ``code`` is the original with line breaks turned into spaces, leading
    whitespace cut (``lead`` characters), each percent sign turned into ``j``
    (so ``3.5%`` parses as the imaginary literal ``3.5j``) and each called
    ``if`` into ``_f`` (so ``if(a, b, c)`` parses as a call). Every replacement
    keeps the length, so a character offset in ``code`` plus ``lead`` is the
    offset in the original text.
    """

    text: str
    code: str
    lead: int
    percents: frozenset[int]
    names: dict[int, _Token]
    char_at_byte: Callable[[int], int]

    @classmethod
    def of(cls, text: str) -> _Source:
        _check_text(text)
        flat = text.replace("\r", " ").replace("\n", " ")
        code = flat.lstrip()
        lead = len(flat) - len(code)
        if not code.strip():
            raise ExpressionError("empty expression", 0)
        scan = _scan_tokens(code, lead)
        for index in scan.percents:
            code = f"{code[:index]}j{code[index + 1:]}"
        for index in scan.if_calls:
            code = f"{code[:index]}{_IF_CALL}{code[index + len(_IF_CALL):]}"
        if not scan.complete:
            _parse(code, lead)
            # the parser accepted what the tokenizer did not
            raise ExpressionError("syntax error: invalid syntax", lead)
        return cls(text, code, lead, frozenset(scan.percents), scan.names, _byte_to_char(code))

    def parse(self) -> py.Expression:
        return _parse(self.code, self.lead)

    def start(self, node: py.AST) -> int:
        return self.lead + self.char_at_byte(node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: py.AST) -> int:
        """The original-text offset just after ``node``."""
        return self.lead + self.char_at_byte(node.end_col_offset)  # type: ignore[attr-defined]

    def segment(self, node: py.AST) -> str:
        return self.code[self.start(node) - self.lead : self.end(node) - self.lead]

    def name_ending_at(self, node: py.AST) -> _Token:
        """The identifier as written (Python NFKC-normalises ``ast.Name.id``; fact keys are not)."""
        token = self.names[self.end(node) - self.lead]
        return _Token(self.lead + token.start, token.text)

    def operator_offset(self, symbol: str, left: py.AST, right: py.AST) -> int:
        # Between two operands there is only the operator, blanks and parentheses.
        gap_start = self.end(left)
        found = self.text.find(symbol, gap_start, self.start(right))
        return found if found >= 0 else gap_start

    def spans_lines(self, node: py.AST) -> bool:
        original = self.text[self.start(node) : self.end(node)]
        return "\n" in original or "\r" in original


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is too long ({len(text):,} characters; at most {MAX_LENGTH:,})", MAX_LENGTH)
    if "\0" in text:
        raise ExpressionError("expression contains a NUL character", text.index("\0"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ExpressionError("expression contains an invalid character (a lone surrogate)", error.start) from None


def _scan_tokens(code: str, lead: int) -> _Scan:
    """Find percent signs and identifiers; reject comments and modulo.

    Scanning stops at the first token Python's tokenizer cannot make sense of:
    the parser then reports that error, with a better message than ours.
    """
    tokens = _tokens(code)
    scan = _Scan(set(), {}, complete=len(tokens) > 0 and tokens[-1].type == tokenize.ENDMARKER, if_calls=set())
    brackets = 0
    for index, token in enumerate(tokens):
        start, end = token.start[1], token.end[1]
        if token.type == tokenize.ERRORTOKEN and not token.string.isspace():
            scan.complete = False
            break
        if token.type == tokenize.COMMENT:
            raise ExpressionError("comments (#) are not supported", lead + start)
        if token.type == tokenize.NAME:
            scan.names[end] = _Token(start, token.string)
            if token.string == "if" and _is_if_call(tokens, index, scan.percents):
                scan.if_calls.add(start)
        if token.type != tokenize.OP:
            continue
        brackets += _BRACKETS.get(token.string, 0)
        # Inside brackets '=' is a keyword argument, reported as such later.
        if token.string == "=" and brackets <= 0:
            raise ExpressionError("'=' is not a comparison; use ==", lead + start)
        if token.string == "%":
            if not _is_percent_sign(tokens, index):
                raise ExpressionError(_MODULO, lead + start)
            scan.percents.add(start)
    return scan


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    """The tokens of ``code`` up to the first tokenizer error."""
    tokens: list[tokenize.TokenInfo] = []
    try:
        tokens.extend(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # _Scan.complete records it
    return tokens


def _is_percent_sign(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    """``%`` glued to a decimal number before it, and not glued to an operand after it (``3%x`` is modulo)."""
    sign = tokens[index]
    before = tokens[index - 1] if index > 0 else None
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    glued_after = (
        after is not None
        and after.start == sign.end
        and (after.type in _NOT_PERCENT_AFTER or after.string in ("(", "["))
    )
    return (
        before is not None
        and before.type == tokenize.NUMBER
        and before.end == sign.start
        and not _NON_DECIMAL.search(before.string)
        and not glued_after
    )


def _is_if_call(tokens: list[tokenize.TokenInfo], index: int, percents: set[int]) -> bool:
    """``if`` followed by ``(`` where an operand can start: ``if(a, b, c)``, not ``x if (a) else y``."""
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if after is None or after.string != "(":
        return False
    return index == 0 or not _ends_operand(tokens[index - 1], percents)


def _ends_operand(token: tokenize.TokenInfo, percents: set[int]) -> bool:
    if token.type in (tokenize.NUMBER, tokenize.STRING):
        return True
    if token.type == tokenize.NAME:
        return not keyword.iskeyword(token.string) or token.string in _OPERAND_KEYWORDS
    # '.' too: 'x.if(...)' stays the syntax error it is
    return token.string in (")", "]", "}", ".") or token.start[1] in percents


def _parse(code: str, lead: int) -> py.Expression:
    try:
        with warnings.catch_warnings():
            # Python warns about things such as invalid escapes; they are not errors of ours.
            warnings.simplefilter("ignore")
            return py.parse(code, mode="eval")
    except SyntaxError as error:
        raise _syntax_error(error, code, lead) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression is nested too deeply", lead) from None
    except (ValueError, OverflowError) as error:
        raise ExpressionError(f"invalid expression: {error}", lead) from None


def _syntax_error(error: SyntaxError, code: str, lead: int) -> ExpressionError:
    message = re.sub(r" \(detected at line \d+\)", "", error.msg or "invalid syntax")
    # Python reports errors at the end of the input with offset 0 (or none).
    column = (error.offset or 0) - 1
    offset = column if 0 <= column <= len(code) else len(code.rstrip())
    return ExpressionError(f"syntax error: {message}", lead + offset)


def _byte_to_char(code: str) -> Callable[[int], int]:
    """Python's AST columns count UTF-8 bytes; ours count characters."""
    if code.isascii():
        return _same
    table: list[int] = []
    for index, char in enumerate(code):
        table.extend([index] * len(char.encode("utf-8")))
    table.append(len(code))
    return table.__getitem__


def _same(offset: int) -> int:
    return offset


def _decimal(literal: str, offset: int) -> Decimal:
    value = Decimal(literal.replace("_", ""))
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise ExpressionError(f"number has more than {MAX_DIGITS} digits", offset)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise ExpressionError(f"number is out of range (exponent beyond ±{MAX_EXPONENT})", offset)
    return value


def _percent(literal: str, offset: int) -> Decimal:
    sign, digits, exponent = _decimal(literal, offset).as_tuple()
    # Exact: shifting the exponent never rounds, unlike dividing in a context.
    return Decimal((sign, digits, int(exponent) - 2))


class _Converter:
    """Python AST → our AST, whitelisting node by node; collects the names read."""

    def __init__(self, source: _Source):
        self.source = source
        #: each name read, with the offset of its first occurrence
        self.names: dict[str, int] = {}

    def convert(self, node: py.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node)
        handler = _HANDLERS.get(type(node))
        if handler is None:
            self.fail(_UNSUPPORTED_NODES.get(type(node), "this construct is not supported"), node)
        return handler(self, node, depth + 1)

    def fail(self, message: str, node: py.AST) -> NoReturn:
        raise ExpressionError(message, self.source.start(node))

    def convert_all(self, nodes: list[py.expr], depth: int) -> tuple[Node, ...]:
        return tuple(self.convert(node, depth) for node in nodes)

    def constant(self, node: py.Constant, depth: int) -> Node:
        value, offset = node.value, self.source.start(node)
        if isinstance(value, bool):
            return Literal(value, offset)
        if isinstance(value, str):
            if self.source.spans_lines(node):
                self.fail("a string cannot span lines", node)
            return Literal(value, offset)
        if isinstance(value, (int, float)):
            return Literal(self.number(node), offset)
        if isinstance(value, complex):
            return Literal(self.percent(node), offset)
        if value is None:
            self.fail(_NULL.format("None"), node)
        if isinstance(value, bytes):
            self.fail("bytes literals are not supported", node)
        self.fail(f"'{self.source.segment(node)}' is not supported", node)

    def number(self, node: py.Constant) -> Decimal:
        literal = self.source.segment(node)
        prefix = literal[:2].lower()
        if prefix in ("0x", "0o", "0b"):
            kind = {"0x": "hexadecimal", "0o": "octal", "0b": "binary"}[prefix]
            self.fail(f"{kind} numbers are not supported; write decimal numbers", node)
        return _decimal(literal, self.source.start(node))

    def percent(self, node: py.Constant) -> Decimal:
        if self.source.end(node) - 1 - self.source.lead not in self.source.percents:
            self.fail("imaginary numbers are not supported", node)
        return _percent(self.source.segment(node)[:-1], self.source.start(node))

    def name(self, node: py.Name, depth: int) -> Node:
        token = self.source.name_ending_at(node)
        if token.text in _BOOLEANS:
            return Literal(_BOOLEANS[token.text], token.start)
        if token.text == "null":
            self.fail(_NULL.format("null"), node)
        if token.text in FUNCTIONS:
            self.fail(f"'{token.text}' is a function; call it: {token.text}(...)", node)
        return self.fact([token])

    def attribute(self, node: py.Attribute, depth: int) -> Node:
        parts: list[_Token] = []
        base: py.expr = node
        while isinstance(base, py.Attribute):
            parts.append(self.source.name_ending_at(base))
            base = base.value
        if not isinstance(base, py.Name):
            self.fail("only a name can have a dotted part, as in certifications.sales", node)
        root = self.source.name_ending_at(base)
        if root.text in _BOOLEANS or root.text in FUNCTIONS or root.text == "null":
            self.fail(f"'{root.text}' is reserved and cannot start a dotted name", node)
        return self.fact([root, *reversed(parts)])

    def fact(self, parts: list[_Token]) -> Name:
        for part in parts:
            if part.text.startswith("_"):
                raise ExpressionError("names starting with '_' are not allowed", part.start)
        name = ".".join(part.text for part in parts)
        start = parts[0].start
        if start < self.names.get(name, start + 1):
            self.names[name] = start
        return Name(name, parts[0].start)

    def list_literal(self, node: py.List | py.Tuple, depth: int) -> Node:
        return ListLiteral(self.convert_all(node.elts, depth), self.source.start(node))

    def unary(self, node: py.UnaryOp, depth: int) -> Node:
        op = _UNARY.get(type(node.op))
        if op is None:
            self.fail("the ~ operator is not supported", node)
        return Unary(op, self.convert(node.operand, depth), self.source.start(node))  # type: ignore[arg-type]

    def binary(self, node: py.BinOp, depth: int) -> Node:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            self.unsupported_operator(node.op, node.left, node.right)
        left, right = self.convert(node.left, depth), self.convert(node.right, depth)
        return Binary(op, left, right, self.source.start(node))  # type: ignore[arg-type]

    def boolean(self, node: py.BoolOp, depth: int) -> Node:
        op = _BOOLEAN_OPERATORS[type(node.op)]
        return BoolOp(op, self.convert_all(node.values, depth), self.source.start(node))  # type: ignore[arg-type]

    def compare(self, node: py.Compare, depth: int) -> Node:
        ops = []
        for op, left, right in zip(node.ops, [node.left, *node.comparators], node.comparators):
            symbol = _COMPARISONS.get(type(op))
            if symbol is None:
                self.unsupported_operator(op, left, right)
            ops.append(symbol)
        left_node, comparators = self.convert(node.left, depth), self.convert_all(node.comparators, depth)
        return Compare(left_node, tuple(ops), comparators, self.source.start(node))  # type: ignore[arg-type]

    def unsupported_operator(self, op: py.AST, left: py.AST, right: py.AST) -> NoReturn:
        symbol, message = _UNSUPPORTED_OPERATORS.get(type(op), ("", "this operator is not supported"))
        raise ExpressionError(message, self.source.operator_offset(symbol, left, right))

    def call(self, node: py.Call, depth: int) -> Node:
        function = self.function_name(node.func)
        if node.keywords:
            raise ExpressionError("keyword arguments are not supported", self.source.start(node.keywords[0]))
        args = node.args
        if function == "if":
            if len(args) != 3:
                self.fail(f"if() takes exactly three arguments, if(condition, then, else) ({len(args)} given)",
                          node)
            condition, then, otherwise = self.convert_all(args, depth)
            return If(condition, then, otherwise, self.source.start(node))
        if function == "abs" and len(args) != 1:
            self.fail(f"abs() takes exactly one argument ({len(args)} given)", node)
        if function != "abs" and not args:
            self.fail(f"{function}() needs at least one argument", node)
        if function != "abs" and len(args) == 1:
            args = self.min_max_list(function, args[0])
        return Call(function, self.convert_all(args, depth), self.source.start(node))  # type: ignore[arg-type]

    def function_name(self, func: py.expr) -> str:
        if isinstance(func, py.Name):
            name = self.source.name_ending_at(func).text
        elif isinstance(func, py.Attribute):
            name = self.source.segment(func).replace(" ", "")
        else:
            self.fail(f"only {_ALLOWED_FUNCTIONS} can be called", func)
        if name not in FUNCTIONS:
            self.fail(f"unknown function '{name}'; allowed: {_ALLOWED_FUNCTIONS}", func)
        return name

    def min_max_list(self, function: str, arg: py.expr) -> list[py.expr]:
        """``min([a, b])`` is ``min(a, b)``; like Python, one argument must be the list."""
        if type(arg) in _UNSUPPORTED_NODES:
            self.fail(_UNSUPPORTED_NODES[type(arg)], arg)
        if not isinstance(arg, (py.List, py.Tuple)):
            self.fail(f"{function}() of a single value: write {function}(a, b) or {function}([a, b])", arg)
        if not arg.elts:
            self.fail(f"{function}() of an empty list", arg)
        return arg.elts


# Each handler takes its own ast node class, hence Any.
_Handler = Callable[[_Converter, Any, int], Node]
_HANDLERS: dict[type[py.AST], _Handler] = {
    py.Constant: _Converter.constant,
    py.Name: _Converter.name,
    py.Attribute: _Converter.attribute,
    py.List: _Converter.list_literal,
    py.Tuple: _Converter.list_literal,
    py.UnaryOp: _Converter.unary,
    py.BinOp: _Converter.binary,
    py.BoolOp: _Converter.boolean,
    py.Compare: _Converter.compare,
    py.Call: _Converter.call,
}
