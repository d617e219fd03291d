"""YAML reading that keeps every value's source position and reads numbers exactly.

PyYAML's safe loader turns ``0.035`` into a binary float and silently keeps
the last of two duplicate keys. We compose the node graph instead and build
plain Python values ourselves: floats become ``Decimal`` from their source
text, duplicate keys are errors, and every mapping key and value is recorded
with its line and column so validation errors can point at it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from .errors import Problem
from .inputs import lone_surrogate

Path = tuple[str | int, ...]

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as text: an exponent without a dot or
# without a sign (``1e5``, ``2.5e6``). A designer who writes ``from: 1e5`` means 100000.
_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+")

_constructor = yaml.constructor.SafeConstructor()

MAX_NESTING = 100
"""Deepest nesting of mappings and lists a file may have."""
MAX_VALUES = 20_000
"""Most values (scalars and collections, aliases expanded) one file may hold: a bound against alias bombs."""
MAX_CHARACTERS = 1_000_000
"""Most characters of text (keys and scalars, aliases expanded) one file may hold: a bound against string bombs.

A program file of ordinary size holds a few kilobytes; a long string repeated
by aliases (``*name``) within :data:`MAX_VALUES` would otherwise be copied into
every record's facts and results.
"""


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column of a node; ``quoted`` tells whether the scalar had quotes."""

    line: int
    column: int
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class TextSpan:
    """Where a text scalar written over several lines (a block ``>``/``|`` or a plain scalar) has its characters.

    ``start`` and ``end`` index the document's text; ``value`` is the scalar's value.
    """

    start: int
    end: int
    value: str

    def index_of(self, text: str, offset: int) -> int | None:
        """The index in ``text`` of the value's character at ``offset``, or None if they do not line up.

        The value holds the source's characters in order; only the whitespace differs (YAML folds
        line breaks and drops indentation), so the non-blank characters are matched one by one.
        """
        target = min(offset, len(self.value.rstrip()) - 1)
        at = self.start
        for index in range(target + 1):
            char = self.value[index]
            if char.isspace():
                continue
            while at < self.end and text[at].isspace():
                at += 1
            if at >= self.end or text[at] != char:
                return None
            if index == target:
                return at + (offset - target)
            at += 1
        return None


@dataclass(slots=True)
class SourceMap:
    """Positions of the values (and of the keys) of one YAML document, by path."""

    file: str
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    collections: set[Path] = field(default_factory=set)
    #: Characters of the keys and scalars built so far, aliases expanded (bounded by MAX_CHARACTERS).
    characters: int = 0
    #: The document's text, and the text scalars written over several lines: an offset in one is found by
    #: matching its characters (expression errors point inside them).
    text: str = ""
    spans: dict[Path, TextSpan] = field(default_factory=dict)

    def locate(self, path: Path, *, prefer_key: bool = False) -> Position | None:
        """The position of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            found = first.get(prefix) or second.get(prefix)
            if found is not None:
                return found
        return None

    def problem(self, path: Path, message: str, *, prefer_key: bool = False,
                offset: int | None = None) -> Problem:
        """A located problem; ``offset`` points inside a one-line scalar (expression errors)."""
        # A section (mapping or list) is blamed at its key, where a reader looks for it.
        position = self.locate(path, prefer_key=prefer_key or path in self.collections)
        if position is None:
            return Problem(message, self.file)
        column = position.column
        if offset is not None and position == self.values.get(path):
            span = self.spans.get(path)
            index = span.index_of(self.text, offset) if span is not None else None
            if index is not None:
                line_start = self.text.rfind("\n", 0, index) + 1
                return Problem(message, self.file, self.text.count("\n", 0, index) + 1, index - line_start + 1)
            column += offset + (1 if position.quoted else 0)
        return Problem(message, self.file, position.line, column)


class YamlSourceError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values (Decimal for floats) and its source map."""
    source = SourceMap(file, text=text)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise YamlSourceError([_marked_problem(error, file)]) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        raise YamlSourceError([Problem(f"unacceptable character #x{error.character:04x}: "
                                       "special characters are not allowed", file, line, column)]) from None
    except yaml.YAMLError as error:
        raise YamlSourceError([Problem(f"invalid YAML: {error}", file)]) from None
    except RecursionError:
        raise YamlSourceError([_too_deep(text, file)]) from None
    if node is None:
        raise YamlSourceError([Problem("the file is empty; expected a program mapping", file, 1, 1)])
    problems: list[Problem] = []
    try:
        value = _build(node, (), source, problems)
    except RecursionError:
        raise YamlSourceError([_too_deep(text, file)]) from None
    if problems:
        raise YamlSourceError(problems)
    return value, source


def _too_deep(text: str, file: str) -> Problem:
    """Where the nesting first goes beyond ``MAX_NESTING`` (found with the parser's flat event stream)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_NESTING + 1:  # the top mapping is depth 1, its path is ()
                    mark = event.start_mark
                    return Problem(f"the file is nested too deeply (more than {MAX_NESTING} levels)", file,
                                   mark.line + 1, mark.column + 1)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass
    return Problem("the file is nested too deeply", file)


def _marked_problem(error: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    message = " ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
    if "'\\t'" in message:
        message += " (YAML indentation must use spaces, not tabs)"
    if mark is None:
        return Problem(message, file)
    return Problem(message, file, mark.line + 1, mark.column + 1)


def _position(node: yaml.Node) -> Position:
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, quoted)


def _build(node: yaml.Node, path: Path, source: SourceMap, problems: list[Problem]) -> Any:
    source.values[path] = _position(node)
    if len(source.values) > MAX_VALUES:
        position = source.values[path]
        raise YamlSourceError([Problem(f"the file holds more than {MAX_VALUES:,} values "
                                       "(are aliases (*name) repeating a large anchor?)",
                                       source.file, position.line, position.column)])
    if len(path) > MAX_NESTING:
        position = source.values[path]
        raise YamlSourceError([Problem(f"the file is nested too deeply (more than {MAX_NESTING} levels)",
                                       source.file, position.line, position.column)])
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        source.collections.add(path)
        if node.tag not in (_MAP, _SEQ):  # !!set, !!omap, !!python/...: never constructed, so refused
            position = source.values[path]
            problems.append(Problem(f"YAML tag '{node.tag}' is not supported", source.file,
                                    position.line, position.column))
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(node, path, source, problems)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (index,), source, problems) for index, item in enumerate(node.value)]
    return _build_scalar(node, path, source, problems)


def _build_mapping(node: yaml.MappingNode, path: Path, source: SourceMap, problems: list[Problem]) -> dict:
    result: dict[str, Any] = {}
    first_seen: dict[str, Position] = {}
    for key_node, value_node in node.value:
        key_position = _position(key_node)
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            problems.append(Problem("only plain keys are allowed here (no merge keys or complex keys)",
                                    source.file, key_position.line, key_position.column))
            continue
        key = str(key_node.value)
        if key in first_seen:
            first = first_seen[key]
            problems.append(Problem(f"duplicate key '{key}' (first defined at line {first.line})",
                                    source.file, key_position.line, key_position.column))
            continue
        _check_text(key, key_node, source, problems)
        first_seen[key] = key_position
        source.keys[path + (key,)] = key_position
        result[key] = _build(value_node, path + (key,), source, problems)
    return result


def _check_text(text: str, node: yaml.ScalarNode, source: SourceMap, problems: list[Problem]) -> None:
    """Count a key's or scalar's characters (refusing the file past MAX_CHARACTERS); a lone surrogate is a problem."""
    source.characters += len(text)
    if source.characters > MAX_CHARACTERS:
        position = _position(node)
        raise YamlSourceError([Problem(f"the file holds more than {MAX_CHARACTERS:,} characters of text once "
                                       "aliases (*name) are expanded", source.file, position.line, position.column)])
    problem = lone_surrogate(text)
    if problem is not None:
        position = _position(node)
        problems.append(Problem(f"the text {problem}{_unjoined_pair_hint(text)}", source.file,
                                position.line, position.column))


def _unjoined_pair_hint(text: str) -> str:
    """A hint when the surrogate starts an escaped pair (``\\ud83d\\ude00``), which JSON joins and YAML does not."""
    for at, high in enumerate(text[:-1]):
        low = text[at + 1]
        if "\ud800" <= high <= "\udbff" and "\udc00" <= low <= "\udfff":
            code = 0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00)
            return f" (YAML does not join an escaped surrogate pair: write \\U{code:08X})"
        if "\ud800" <= high <= "\udfff":
            break
    return ""


def _build_scalar(node: yaml.ScalarNode, path: Path, source: SourceMap, problems: list[Problem]) -> Any:
    text = node.value
    _check_text(text, node, source, problems)
    if node.tag == _FLOAT:
        return _exact_decimal(text, node, source, problems)
    if node.tag in (_INT, _BOOL, _NULL, _TIMESTAMP):
        try:
            # The tag's constructor itself: construct_object would cache every node for ever.
            value = _constructor.yaml_constructors[node.tag](_constructor, node)
        except ValueError as error:  # 2027-02-30, or an integer of more than 4,300 digits
            position = _position(node)
            message = (f"'{text}' is not a valid date ({error})" if node.tag == _TIMESTAMP
                       else f"'{text[:20]}...' is not a usable number ({len(text):,} characters)")
            problems.append(Problem(message, source.file, position.line, position.column))
            return None
        if isinstance(value, dt.datetime):
            position = _position(node)
            problems.append(Problem(f"expected a date (YYYY-MM-DD), found a date-time '{text}'",
                                    source.file, position.line, position.column))
        return value
    if node.tag == _STR and node.style is None and _EXPONENT_FLOAT.fullmatch(text):
        return _exact_decimal(text, node, source, problems)
    if node.tag not in (_STR, _MAP, _SEQ):
        position = _position(node)
        problems.append(Problem(f"YAML tag '{node.tag}' is not supported", source.file,
                                position.line, position.column))
    if node.style in (None, ">", "|") and node.end_mark.line > node.start_mark.line:
        start = node.start_mark.index
        if node.style is not None:  # the content starts on the line after the '>' or '|' header
            start = source.text.find("\n", start, node.end_mark.index) + 1
        source.spans[path] = TextSpan(start, node.end_mark.index, text)
    return text


def _exact_decimal(text: str, node: yaml.ScalarNode, source: SourceMap, problems: list[Problem]) -> Decimal | None:
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        position = _position(node)
        problems.append(Problem(f"expected a finite number, found '{text}'", source.file,
                                position.line, position.column))
        return None
    return value
