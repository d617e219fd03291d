"""Facts and claims: reading CSV / JSON Lines files and normalising API records.

Every record becomes plain typed data, one name per fact: ``Decimal``, ``str``,
``bool``, ``datetime.date`` or a tuple of those. A missing fact is an absent
key, never ``None``.

Typing rules, the same for CSV cells, JSON strings and API strings:

* surrounding whitespace is ignored; an empty text is a missing fact;
* ``-12.50``, ``100000``, ``.5``, ``1e3`` (decimal syntax, optional exponent, no
  thousands separators, no ``%``) are ``Decimal``;
* ``true`` / ``false`` in any letter case are booleans;
* ``YYYY-MM-DD`` is a date; a text of that shape that is not a real day
  (``2027-02-30``) is a problem;
* ``NaN``, ``Infinity``, ``inf``, ``sNaN`` (any case, any sign) are not numbers:
  a problem, as are non-finite Decimals and floats;
* anything else is a string (``1,000`` and ``3.5%`` stay strings); a string
  or a fact name holding a lone surrogate (``\\ud800``, which JSON and Python
  allow but UTF-8 cannot write) is a problem.

Numbers have a supported range, whatever they come from (a cell, a JSON number
or string, an API ``Decimal``/``int``/``float``/numeric string, a claim amount):
at most :data:`MAX_NUMBER_DIGITS` (40) significant digits, the digits of the
number as written from its first nonzero one (trailing zeros count: ``1.500``
has 4, ``0.0015`` has 2, ``1e100`` has 1), and an adjusted exponent (the power
of ten of that first digit) within ±:data:`MAX_NUMBER_EXPONENT` (100): a nonzero
number is within ``1e-100 <= |value| < 1e101``. A zero may be written with at
most 139 decimal places (the most a number in range has) and an exponent of at
most 100 (``0e-140`` and ``0e101`` are refused). A number outside the range is a
problem of its record naming the fact and showing a short excerpt of the text;
outputs therefore never hold an exponent that expands to megabytes of zeros.

``partner_id`` and ``period`` are always strings (an integer becomes its
digits); a missing one is a problem. JSON and API values keep their own type
(``Decimal``/``int``/``float``/``bool``/``date``); a ``datetime`` is refused
rather than silently truncated to its date. Nested mappings become dotted
names; lists become tuples.

Problems with one record never raise while reading a file: each record
yields a :class:`FactRow` (or :class:`Claim`) carrying its ``problems``, which
the engine turns into an ``error`` result. Problems with the file itself (not
UTF-8, no header, duplicate or missing columns, a ragged row, malformed CSV
quoting, a JSON line that is not an object or that holds a lone surrogate
escape such as ``"\\ud800"``) raise :class:`InputError` with the file and the
1-based line. An API record (:func:`fact_row`, :func:`normalize_claim`) holding
a lone surrogate gets a problem instead, and an identifier holding one is kept
with the surrogate written as the six characters ``\\ud800``, so that its error
row can be written. Files are read as UTF-8 with an optional BOM and
universal newlines; line numbers are physical lines where the record starts.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections import Counter
from collections.abc import Mapping  # typing.Mapping's isinstance is several times slower
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Clamped, Context, Decimal, InvalidOperation, Overflow, Rounded, Subnormal
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO, Union

from .errors import InputError

Value = Union[Decimal, str, bool, date, tuple["Value", ...]]

PARTNER_ID = "partner_id"
PERIOD = "period"
CLAIM_COLUMNS = (
    "claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on", "preapproved",
)
OPTIONAL_CLAIM_COLUMNS = ("program_id",)

#: The typing rules' patterns for a stripped text, written for Python's ``re`` and polars' (Rust) regular
#: expressions alike (ASCII digits spelt out), so that the columnar reader types cells by the same rules.
DECIMAL_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: case-insensitive in ASCII only
NON_FINITE_PATTERN = r"[+-]?(?:s?nan[0-9]*|inf|infinity)"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: a text (stripped, lowercased) that is a boolean
BOOLEANS = {"true": True, "false": False}
_DECIMAL = re.compile(DECIMAL_PATTERN).fullmatch
_NON_FINITE = re.compile(NON_FINITE_PATTERN, re.ASCII | re.IGNORECASE).fullmatch
_DATE = re.compile(DATE_PATTERN).fullmatch
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}

MAX_NUMBER_DIGITS = 40
"""Most significant digits a number read as a fact or a claim amount may have (see the module docstring)."""
MAX_NUMBER_EXPONENT = 100
"""Largest size of the adjusted exponent of a number read as a fact or a claim amount."""
_OUT_OF_RANGE = (f"is outside the supported range (at most {MAX_NUMBER_DIGITS} significant digits, "
                 f"exponent within ±{MAX_NUMBER_EXPONENT})")
# The range as a context of its own (the thread's context is never changed): a number in
# range fits it exactly, so rounding one to it signals nothing; each trapped signal is a
# way out of range: more digits than its precision (Rounded), an adjusted exponent above
# Emax (Overflow) or, not zero, below Emin (Subnormal), a zero's exponent beyond Emax or
# below Emin - prec + 1 = -139 (Clamped), an exponent Decimal cannot hold (InvalidOperation).
_NUMBER_RANGE = Context(prec=MAX_NUMBER_DIGITS, Emax=MAX_NUMBER_EXPONENT, Emin=-MAX_NUMBER_EXPONENT,
                        traps=[Rounded, Overflow, Subnormal, Clamped, InvalidOperation])
# Integers have all their digits significant: in range exactly when strictly between these.
_INTEGER_BOUND = 10**MAX_NUMBER_DIGITS
# Python refuses str() of an integer past 4,300 digits (sys.int_info.default_max_str_digits).
_SHOWN_INTEGER_BOUND = 10**4000

# A Python string holds a surrogate code point only from an escape (\ud800 in JSON or
# YAML) or from Python code: UTF-8 decoding refuses them. JSON joins an escaped pair
# (\ud83d\ude00) into one character, so any left is lone; no encoder can write one.
_SURROGATE = re.compile("[\ud800-\udfff]").search
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]").search
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL).finditer

# NaN/Infinity literals become non-finite Decimals so that they are reported as a
# problem of their record, exactly like a "NaN" CSV cell, instead of failing the file.
_decode_json = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal).decode


class RecordError(ValueError):
    """An API record that cannot be evaluated; ``problems`` says why (one message each)."""

    def __init__(self, problems: Iterable[str], partner_id: str = "", period: str = ""):
        self.problems: tuple[str, ...] = tuple(problems)
        self.partner_id = partner_id
        self.period = period
        super().__init__("; ".join(self.problems))


@dataclass(slots=True)
class FactRow:
    """One facts record as read: ``facts`` holds every valid fact, ``partner_id`` and ``period`` included.

    ``partner_id`` / ``period`` are ``""`` when missing (with a problem), so an
    error row can always be written. ``line`` is the 1-based line where the record
    starts in its file, ``None`` for API records. Non-empty ``problems`` make the
    record an ``error``; the engine may append its own (duplicates).
    """

    line: int | None
    partner_id: str
    period: str
    facts: dict[str, Value]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Claim:
    """One MDF claim. ``problems`` (missing or unreadable fields, duplicate ids) are rejection reasons."""

    claim_id: str
    partner_id: str
    period: str
    activity: str
    amount: Decimal | None
    activity_end: date | None
    submitted_on: date | None
    preapproved: bool
    program_id: str | None = None
    line: int | None = None
    problems: tuple[str, ...] = ()

    def with_problem(self, message: str) -> "Claim":
        """This claim with one more problem (claims are frozen: the engine adds its own this way)."""
        return replace(self, problems=(*self.problems, message))


# -- typing values ---------------------------------------------------------------------------


# Facts files repeat most cells (counts, flags, dates, regions); typed values are
# immutable, so the value of a text is kept for its next occurrence and a repeat
# costs one dict lookup. A plain dict (emptied when full, to bound memory) rather
# than functools.lru_cache: the CSV readers look it up inline, without a call per
# cell, and a miss does not pay for keeping recency order.
_TYPED_TEXTS: dict[str, Value] = {}
_TYPED_TEXTS_LIMIT = 1 << 16


def type_text(text: str) -> Value | None:
    """The typed value of a cell or string (``None``: missing); raises ValueError for a bad one."""
    value = _TYPED_TEXTS.get(text)
    return value if value is not None else _type_new_text(text)


def _type_new_text(text: str) -> Value | None:
    """:func:`type_text` of a text not in :data:`_TYPED_TEXTS`, which keeps the value from now on."""
    # Most cells that miss the cache are amounts such as 380486.37: ASCII digits
    # with at most one point always have the decimal syntax (and no surrounding
    # space), so two string tests replace the general path's regular expressions;
    # up to MAX_NUMBER_DIGITS characters such a number is always in range.
    if len(text) <= MAX_NUMBER_DIGITS and text.isascii() and text.replace(".", "", 1).isdigit():
        value: Value | None = Decimal(text)
    else:
        value = _type_text_general(text)
        if value is None:
            return None
    if len(_TYPED_TEXTS) >= _TYPED_TEXTS_LIMIT:
        _TYPED_TEXTS.clear()
    _TYPED_TEXTS[text] = value
    return value


def _type_text_general(text: str) -> Value | None:
    """:func:`type_text` by the typing rules alone, for any text (the reference the fast path must agree with)."""
    text = text.strip()
    if not text:
        return None
    if _DECIMAL(text):
        return _decimal_in_range(text)
    flag = BOOLEANS.get(text.lower())
    if flag is not None:
        return flag
    if _DATE(text):
        return _iso_date(text)
    if _NON_FINITE(text):
        raise ValueError(f"{_quoted_excerpt(text)} is not a number")
    if not text.isascii() and _SURROGATE(text):
        raise ValueError(f"the text {lone_surrogate(text)}")
    return text


def _decimal_in_range(text: str) -> Decimal:
    """The Decimal of a text of decimal syntax, equal to ``Decimal(text)``; ValueError when out of range."""
    try:
        return _NUMBER_RANGE.create_decimal(text)  # exact for a number in range: nothing to round
    except ArithmeticError:
        raise ValueError(f"{_quoted_excerpt(text)} {_OUT_OF_RANGE}") from None


def _excerpt(text: str) -> str:
    """``text`` for a message: whole up to 40 characters, else its first 20, a ``…`` and its length."""
    return text if len(text) <= 40 else f"{text[:20]}… ({len(text):,} characters)"


def _shown(value: Any) -> str:
    """``repr(value)`` for a message, cut to 60 characters; never raises (a value can be too large to show)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of more than 4,300 digits, a mapping that holds itself
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text):,} characters)"


def _quoted_excerpt(text: str) -> str:
    """:func:`_excerpt` in quotes (``repr``): ``'1e999999999'``, ``'99999999999999999999…' (5,000 characters)``."""
    return repr(text) if len(text) <= 40 else f"{text[:20] + '…'!r} ({len(text):,} characters)"


def lone_surrogate(text: str) -> str | None:
    """What is wrong with a text holding a surrogate code point, saying which (``\\ud800``); ``None`` for valid text."""
    found = None if text.isascii() else _SURROGATE(text)
    if found is None:
        return None
    return f"holds {_escaped(found.group())}, a lone surrogate, which is not valid Unicode text"


def _escaped(text: str) -> str:
    """``text`` with each surrogate written as its escape (``\\ud800``): writable, and still telling what it was."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def _finite_decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"{_excerpt(str(value))} is not a number")
    if not _in_range(value):
        raise ValueError(f"{_excerpt(str(value))} {_OUT_OF_RANGE}")
    return value


def _in_range(value: Decimal) -> bool:
    """Whether a finite Decimal is within the supported range (see the module docstring)."""
    try:
        _NUMBER_RANGE.plus(value)
    except ArithmeticError:
        return False
    return True


def _int_decimal(value: int) -> Decimal:
    if -_INTEGER_BOUND < value < _INTEGER_BOUND:
        return Decimal(value)
    raise ValueError(f"{_integer_excerpt(value)} {_OUT_OF_RANGE}")


def _integer_excerpt(value: int) -> str:
    # Decimal(value) and str(value) take quadratic time in the digits: only a shown one is converted.
    if -_SHOWN_INTEGER_BOUND < value < _SHOWN_INTEGER_BOUND:
        return _excerpt(str(value))
    return "an integer of more than 4,000 digits"


def _float_decimal(value: float) -> Decimal:
    # The shortest repr is what the user wrote: 0.1 -> Decimal("0.1"), not its binary expansion.
    return _finite_decimal(Decimal(repr(value)))


class _HugeJsonNumber:
    """A JSON number whose exponent is beyond what ``Decimal`` can hold (``1e999999999999999999999``).

    It stands in the decoded record for its text, so that it is refused as a
    problem of its record (like any number out of range), not of the file.
    """

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return _excerpt(self.text)


def _refuse_huge_json_number(value: _HugeJsonNumber) -> Value:
    raise ValueError(f"{_excerpt(value.text)} {_OUT_OF_RANGE}")


def _refuse_datetime(value: datetime) -> Value:
    raise ValueError(f"{value.isoformat()} is a datetime; pass a date (value.date())")


# Exact-type dispatch keeps the per-value cost to one dict lookup; subclasses take _convert_other.
_SCALARS: dict[type, Callable[[Any], Value | None]] = {
    Decimal: _finite_decimal,
    str: type_text,
    bool: lambda value: value,
    int: _int_decimal,
    float: _float_decimal,
    date: lambda value: value,
    datetime: _refuse_datetime,
    type(None): lambda value: None,
    _HugeJsonNumber: _refuse_huge_json_number,
}


def _convert(value: Any) -> Value | None:
    convert = _SCALARS.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, (list, tuple)):
        return tuple(_list_item(item) for item in value)
    return _convert_other(value)


def _convert_other(value: Any) -> Value | None:
    for kind in (bool, int, Decimal, str, float, datetime, date):
        if isinstance(value, kind):
            return _SCALARS[kind](value)
    raise ValueError(f"unsupported value of type {type(value).__name__}")


def _list_item(item: Any) -> Value:
    if isinstance(item, Mapping):
        raise ValueError("a list of mappings cannot be flattened to named facts")
    value = _convert(item)
    if value is None:
        raise ValueError("a list cannot hold a missing (empty or null) item")
    return value


def _identifier(value: Any, name: str, problems: list[str]) -> str:
    """``partner_id``, ``period``, ``claim_id``...: a non-empty string; integers (in range) become their digits.

    A text holding a lone surrogate is a problem; it is kept with the surrogate
    escaped, so that the record's error row can be written and still says who.
    """
    if isinstance(value, str):
        text = value.strip()
        if text:
            if text.isascii() or not _SURROGATE(text):
                return text
            problems.append(f"{name}: the text {lone_surrogate(text)}")
            return _escaped(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        if -_INTEGER_BOUND < value < _INTEGER_BOUND:
            return str(value)
        problems.append(f"{name}: {_integer_excerpt(value)} {_OUT_OF_RANGE}")
        return ""
    elif isinstance(value, Decimal) and value.is_finite() and not _in_range(value):
        # checked before int(): int(Decimal("1E+999999999")) would build a billion digits
        problems.append(f"{name}: {_excerpt(str(value))} {_OUT_OF_RANGE}")
        return ""
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))  # JSON numbers arrive as Decimal: 1001 -> "1001"
    elif type(value) is _HugeJsonNumber:
        problems.append(f"{name}: {_excerpt(value.text)} {_OUT_OF_RANGE}")
        return ""
    elif value is not None:
        problems.append(f"{name} must be a string, not {type(value).__name__} {_shown(value)}")
        return ""
    problems.append(f"missing {name}")
    return ""


# -- facts records ---------------------------------------------------------------------------


def fact_row(record: Mapping[str, Any], line: int | None = None) -> FactRow:
    """Normalise one API or JSON record; never raises: problems go into the row."""
    if not isinstance(record, Mapping):
        return FactRow(line, "", "", {}, [f"a record must be a mapping, not {type(record).__name__}"])
    problems: list[str] = []
    partner_id = _identifier(record.get(PARTNER_ID), PARTNER_ID, problems)
    period = _identifier(record.get(PERIOD), PERIOD, problems)
    facts: dict[str, Value] = {}
    if partner_id:
        facts[PARTNER_ID] = partner_id
    if period:
        facts[PERIOD] = period
    typed = _TYPED_TEXTS.get
    check_range = _NUMBER_RANGE.plus  # _in_range inlined: it raises for a number out of range
    try:
        for name, value in record.items():
            if name == PARTNER_ID or name == PERIOD:
                continue
            # The usual fact, a new ASCII name with a finite Decimal in range, a bool
            # or an already typed text, is stored here; _put does the rest (and
            # words the problems).
            if type(name) is str and name.isascii() and name not in facts:
                kind = type(value)
                if kind is Decimal:
                    if value.is_finite():
                        try:
                            check_range(value)
                        except ArithmeticError:
                            pass
                        else:
                            facts[name] = value
                            continue
                elif kind is str:
                    text_value = typed(value)
                    if text_value is not None:
                        facts[name] = text_value
                        continue
                elif kind is bool:
                    facts[name] = value
                    continue
            _put(facts, problems, name, value)
    except RecursionError:  # nested (or self-referencing) mappings or lists
        problems.append("the record is nested too deeply")
    return FactRow(line, partner_id, period, facts, problems)


def _put(facts: dict[str, Value], problems: list[str], name: Any, value: Any) -> None:
    if not isinstance(name, str):
        problems.append(f"fact names must be strings, not {_shown(name)}")
        return
    if not name.isascii() and _SURROGATE(name):
        problems.append(f"the fact name '{_escaped(name)}' {lone_surrogate(name)}")
        return
    convert = _SCALARS.get(type(value))  # scalars first: the ABC check below is slower
    if convert is None and isinstance(value, Mapping):
        for key, item in value.items():
            _put(facts, problems, f"{name}.{key}" if isinstance(key, str) else key, item)
        return
    try:
        converted = convert(value) if convert is not None else _convert(value)
    except ValueError as error:
        problems.append(f"{name}: {error}")
        return
    if converted is None:
        return
    if name in facts:
        problems.append(f"{name}: given twice (as a dotted name and inside a nested mapping)")
        return
    facts[name] = converted


def normalize_record(record: Mapping[str, Any]) -> dict[str, Value]:
    """The typed, flattened facts of an API record; raises :class:`RecordError` listing every problem."""
    row = fact_row(record)
    if row.problems:
        raise RecordError(row.problems, row.partner_id, row.period)
    return row.facts


def read_facts(path: str | os.PathLike[str]) -> Iterator[FactRow]:
    """Stream the records of a ``.csv``, ``.jsonl`` or ``.ndjson`` facts file, one :class:`FactRow` each.

    The suffix and the file's existence are checked at once; everything else as
    the rows are read, so an :class:`InputError` can come after some rows.
    """
    source = _existing(path)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return _csv_facts(source)
    if suffix in (".jsonl", ".ndjson"):
        return (fact_row(record, line) for line, record in _json_lines(source))
    raise InputError(f"unsupported facts file type {suffix or '(none)'!r}: expected .csv, .jsonl or .ndjson",
                     str(source))


#: How many JSON Lines records :func:`fact_columns` reads: a fact that first appears later is not seen.
COLUMN_SAMPLE_RECORDS = 100


def fact_columns(path: str | os.PathLike[str]) -> list[str]:
    """The fact names a facts file offers, read from its start only: a CSV header, or the (flattened)
    names of the first :data:`COLUMN_SAMPLE_RECORDS` JSON Lines records, in the order first seen."""
    source = _existing(path)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        with _open_text(source) as stream:
            rows = _csv_rows(csv.reader(stream, strict=True), str(source))
            return _csv_header(rows, str(source), (PARTNER_ID, PERIOD))
    if suffix in (".jsonl", ".ndjson"):
        names: dict[str, None] = {}
        for count, (line, record) in enumerate(_json_lines(source), 1):
            names.update(dict.fromkeys(fact_row(record, line).facts))
            if count == COLUMN_SAMPLE_RECORDS:
                break
        return list(names)
    raise InputError(f"unsupported facts file type {suffix or '(none)'!r}: expected .csv, .jsonl or .ndjson",
                     str(source))


@contextmanager
def csv_fact_cells(path: str | os.PathLike[str]) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    """A facts CSV file's header and its rows as read, untyped: ``(line, cells)`` for each row that is not
    blank, every one as wide as the header. Problems with the file raise :class:`InputError` as
    :func:`read_facts` raises them (the header at once, a ragged row or a bad byte when it is reached)."""
    with _csv_cells(path, (PARTNER_ID, PERIOD)) as read:
        yield read


@contextmanager
def csv_claim_cells(path: str | os.PathLike[str]) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    """A claims CSV file's header and its rows as read, as :func:`csv_fact_cells` gives a facts file's; the
    header has every column of :data:`CLAIM_COLUMNS`. Problems raise :class:`InputError` as
    :func:`read_claims` raises them."""
    with _csv_cells(path, CLAIM_COLUMNS) as read:
        yield read


@contextmanager
def _csv_cells(path: str | os.PathLike[str],
               required: tuple[str, ...]) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    source = _existing(path)
    file = str(source)
    with _open_text(source) as stream:
        rows = _csv_rows(csv.reader(stream, strict=True), file)
        header = _csv_header(rows, file, required)
        yield header, _of_width(rows, len(header), file)


def _of_width(rows: Iterator[tuple[int, list[str]]], width: int, file: str) -> Iterator[tuple[int, list[str]]]:
    for line, cells in rows:
        if len(cells) != width:
            _check_width(cells, width, file, line)
        yield line, cells


def _csv_facts(source: Path) -> Iterator[FactRow]:
    with csv_fact_cells(source) as (header, rows):
        read_row = csv_row_reader(header)
        for line, cells in rows:
            yield read_row(line, cells)


def csv_row_reader(header: Sequence[str]) -> Callable[[int, list[str]], FactRow]:
    """What reads one row of a facts CSV file with ``header`` (its line and its cells as
    :func:`csv_fact_cells` gives them) into a :class:`FactRow`, as :func:`read_facts` does."""
    partner_at, period_at = header.index(PARTNER_ID), header.index(PERIOD)
    columns = [(at, name) for at, name in enumerate(header) if at not in (partner_at, period_at)]
    return functools.partial(_csv_fact_row, partner_at=partner_at, period_at=period_at, columns=columns)


def _csv_fact_row(line: int, cells: list[str], partner_at: int, period_at: int,
                  columns: list[tuple[int, str]]) -> FactRow:
    # The per-cell work of type_text is inlined (a cache lookup, a call only on a
    # miss): a facts file has a dozen cells per row and millions of rows.
    partner_id = cells[partner_at].strip()
    period = cells[period_at].strip()
    problems: list[str] = []
    if partner_id and period:
        facts: dict[str, Value] = {PARTNER_ID: partner_id, PERIOD: period}
    else:
        facts = {}
        for name, text in ((PARTNER_ID, partner_id), (PERIOD, period)):
            if text:
                facts[name] = text
            else:
                problems.append(f"missing {name}")
    typed = _TYPED_TEXTS.get
    for at, name in columns:
        text = cells[at]
        if text:
            # A number with a point is usually an amount, seen once: typed (as in
            # _type_new_text) without a cache lookup or entry.
            if "." in text and len(text) <= MAX_NUMBER_DIGITS and text.isascii() and text.replace(".", "", 1).isdigit():
                facts[name] = Decimal(text)
                continue
            value = typed(text)
            if value is None:
                try:
                    value = _type_new_text(text)
                except ValueError as error:
                    problems.append(f"{name}: {error}")
                    continue
                if value is None:
                    continue
            facts[name] = value
    return FactRow(line, partner_id, period, facts, problems)


# -- claims ----------------------------------------------------------------------------------


def normalize_claim(record: Mapping[str, Any], line: int | None = None) -> Claim:
    """A :class:`Claim` from a mapping of raw strings (CSV) or typed values (JSON, API); never raises."""
    if not isinstance(record, Mapping):
        return Claim("", "", "", "", None, None, None, False, None, line,
                     (f"a claim must be a mapping, not {type(record).__name__}",))
    problems: list[str] = []
    claim_id = _identifier(record.get("claim_id"), "claim_id", problems)
    partner_id = _identifier(record.get(PARTNER_ID), PARTNER_ID, problems)
    period = _identifier(record.get(PERIOD), PERIOD, problems)
    activity = _identifier(record.get("activity"), "activity", problems)
    amount = _claim_amount(record.get("amount"), problems)
    activity_end = _usual_date(record.get("activity_end")) or _claim_date(
        record.get("activity_end"), "activity_end", problems)
    submitted_on = _usual_date(record.get("submitted_on")) or _claim_date(
        record.get("submitted_on"), "submitted_on", problems)
    preapproved = _claim_flag(record.get("preapproved"), problems)
    program_id = _optional_identifier(record.get("program_id"), "program_id", problems)
    if problems:
        return Claim(claim_id, partner_id, period, activity, amount, activity_end, submitted_on,
                     preapproved, program_id, line, tuple(problems))
    return _problem_free_claim(claim_id, partner_id, period, activity, amount, activity_end,  # type: ignore[arg-type]
                               submitted_on, preapproved, program_id, line)  # no problem: no None among them


def _claim_amount(value: Any, problems: list[str]) -> Decimal | None:
    try:
        amount = _convert(value)
    except ValueError as error:
        problems.append(f"amount: {error}")
        return None
    if amount is None:
        problems.append("missing amount")
        return None
    if type(amount) is not Decimal:
        problems.append(f"amount: {_shown(value)} is not a number")
        return None
    return amount


def _usual_date(value: Any) -> date | None:
    """The date of a claim's date text, found in type_text's cache (claims repeat their dates), else ``None``.

    Where type_text gives a text a date, :func:`_claim_date` gives it the same
    one; anything else (another type, a blank, a bad date) is left to it.
    """
    if type(value) is not str:
        return None
    try:
        typed = type_text(value)
    except ValueError:
        return None
    return typed if type(typed) is date else None


def _claim_date(value: Any, name: str, problems: list[str]) -> date | None:
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        problems.append(f"missing {name}")
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE(value):
        try:
            return _iso_date(value)
        except ValueError as error:
            problems.append(f"{name}: {error}")
            return None
    problems.append(f"{name}: {_shown(value)} is not a YYYY-MM-DD date")
    return None


def _claim_flag(value: Any, problems: list[str]) -> bool:
    # No recorded pre-approval means not pre-approved: the calculator rejects the
    # claim only where the program requires pre-approval.
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        flag = BOOLEANS.get(text.lower())
        if flag is not None:
            return flag
        if not text:
            return False
    problems.append(f"preapproved: {_shown(value)} is not true or false")
    return False


def _optional_identifier(value: Any, name: str, problems: list[str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _identifier(value, name, problems) or None


_CLAIM_ID = attrgetter("claim_id")


def flag_duplicate_claims(claims: Iterable[Claim]) -> list[Claim]:
    """The claims in order, each one whose ``claim_id`` occurs more than once getting a problem saying so.

    Claim ids are unique across a claims set (all partners, periods and programs);
    both copies of a duplicate are rejected so that neither can be paid twice.
    Idempotent: claims from :func:`read_claims` can be flagged again by the engine.
    """
    claims = list(claims)
    counts = Counter(map(_CLAIM_ID, claims))
    if len(counts) == len(claims):
        return claims
    repeated = {claim_id for claim_id, count in counts.items() if count > 1 and claim_id}
    return [_flag_duplicate(claim, counts[claim.claim_id]) if claim.claim_id in repeated else claim
            for claim in claims]


def _flag_duplicate(claim: Claim, count: int) -> Claim:
    message = f"claim_id {claim.claim_id!r} occurs {count} times"
    return claim if message in claim.problems else claim.with_problem(message)


def read_claims(path: str | os.PathLike[str]) -> list[Claim]:
    """Every claim of a ``.csv``, ``.jsonl`` or ``.ndjson`` claims file, in file order, none dropped.

    A CSV file must have every column of :data:`CLAIM_COLUMNS` (``program_id`` is
    optional; other columns are ignored); in JSON Lines a missing field is a
    problem of that claim. Duplicate claim ids are flagged (:func:`flag_duplicate_claims`).
    """
    source = _existing(path)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        claims = list(_csv_claims(source))
    elif suffix in (".jsonl", ".ndjson"):
        claims = [normalize_claim(record, line) for line, record in _json_lines(source)]
    else:
        raise InputError(f"unsupported claims file type {suffix or '(none)'!r}: expected .csv, .jsonl or .ndjson",
                         str(source))
    return flag_duplicate_claims(claims)


def _csv_claims(source: Path) -> Iterator[Claim]:
    with csv_claim_cells(source) as (header, rows):
        read_claim = csv_claim_reader(header)
        for line, cells in rows:
            yield read_claim(line, cells)


def csv_claim_reader(header: Sequence[str]) -> Callable[[int, list[str]], Claim]:
    """What reads one row of a claims CSV file with ``header`` (its line and its cells as
    :func:`csv_claim_cells` gives them) into a :class:`Claim`, as :func:`read_claims` does (duplicate
    ids aside: they are flagged over the whole file)."""
    wanted = [(at, name) for at, name in enumerate(header) if name in CLAIM_COLUMNS + OPTIONAL_CLAIM_COLUMNS]
    usual_cells = itemgetter(*(header.index(name) for name in CLAIM_COLUMNS))
    program_at = header.index("program_id") if "program_id" in header else None

    def read_claim(line: int, cells: list[str]) -> Claim:
        claim = _usual_csv_claim(line, cells, usual_cells, program_at)
        return claim if claim is not None else normalize_claim({name: cells[at] for at, name in wanted}, line)

    return read_claim


def _usual_csv_claim(line: int, cells: list[str], usual_cells: Callable[[list[str]], tuple[str, ...]],
                     program_at: int | None) -> Claim | None:
    """The claim of a CSV row whose cells all have their usual shape, else ``None`` (:func:`normalize_claim` decides).

    Equal to what :func:`normalize_claim` makes of the row, at a fraction of the
    cost: identifiers are stripped texts, the amount and dates are typed as by
    :func:`type_text` (for a text of date shape it gives exactly
    ``_claim_date``'s date), the flag is a literal ``true`` / ``false``.
    Anything else (a blank, a bad date, `` true``, ``TRUE``...) goes the general
    way, which words the problems. ``usual_cells`` picks the cells of :data:`CLAIM_COLUMNS`.
    """
    claim_id, partner_id, period, activity, amount, activity_end, submitted_on, preapproved = usual_cells(cells)
    claim_id, partner_id, period, activity = claim_id.strip(), partner_id.strip(), period.strip(), activity.strip()
    # type_text inlined: an amount is seldom repeated, so a plain one is typed (as in
    # _type_new_text) without the cache; dates repeat and are found by the lookup
    # alone (a falsy value, 0 or false, is not a date and is only typed again).
    typed = _TYPED_TEXTS.get
    try:
        amount_value = (Decimal(amount) if len(amount) <= MAX_NUMBER_DIGITS and amount.isascii()
                        and amount.replace(".", "", 1).isdigit() else typed(amount) or _type_new_text(amount))
        activity_end_value = typed(activity_end) or _type_new_text(activity_end)
        submitted_on_value = typed(submitted_on) or _type_new_text(submitted_on)
    except ValueError:
        return None
    flag = BOOLEANS.get(preapproved)
    if (claim_id and partner_id and period and activity and flag is not None and type(amount_value) is Decimal
            and type(activity_end_value) is date and type(submitted_on_value) is date):
        program_id = (cells[program_at].strip() or None) if program_at is not None else None
        return _problem_free_claim(claim_id, partner_id, period, activity, amount_value, activity_end_value,
                                   submitted_on_value, flag, program_id, line)
    return None


# A frozen dataclass's __init__ sets every field through object.__setattr__, half of
# what a usual claim costs to read; the reader writes the slots directly instead.
# The unpacking fails at import if Claim's fields change; tests/test_reading.py
# checks that the result equals Claim(...).
(_set_claim_id, _set_partner_id, _set_period, _set_activity, _set_amount, _set_activity_end, _set_submitted_on,
 _set_preapproved, _set_program_id, _set_line, _set_problems) = (
    Claim.__dict__[name].__set__ for name in Claim.__slots__)


def _problem_free_claim(claim_id: str, partner_id: str, period: str, activity: str, amount: Decimal,
                        activity_end: date, submitted_on: date, preapproved: bool, program_id: str | None,
                        line: int) -> Claim:
    """``Claim(claim_id, ..., line)`` (no problems) for values already checked, without ``Claim.__init__``."""
    claim = object.__new__(Claim)
    _set_claim_id(claim, claim_id)
    _set_partner_id(claim, partner_id)
    _set_period(claim, period)
    _set_activity(claim, activity)
    _set_amount(claim, amount)
    _set_activity_end(claim, activity_end)
    _set_submitted_on(claim, submitted_on)
    _set_preapproved(claim, preapproved)
    _set_program_id(claim, program_id)
    _set_line(claim, line)
    _set_problems(claim, ())
    return claim


# -- files -----------------------------------------------------------------------------------


def _existing(path: str | os.PathLike[str]) -> Path:
    source = Path(path)
    if not source.is_file():
        raise InputError("no such file" if not source.exists() else "not a regular file", str(source))
    return source


@contextmanager
def _open_text(source: Path) -> Iterator[TextIO]:
    """The file as UTF-8 text (BOM stripped, universal newlines kept as read for ``csv``).

    Decoding happens in chunks ahead of the reader, so the line of a bad byte is
    found again by scanning the bytes.
    """
    try:
        stream = open(source, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"cannot read the file: {error.strerror or error}", str(source)) from None
    with stream:
        try:
            yield stream
        except UnicodeDecodeError:
            raise InputError("the file is not UTF-8 text (save it as UTF-8)", str(source),
                             _first_bad_utf8_line(source)) from None


def _first_bad_utf8_line(source: Path) -> int | None:
    line = 1
    with open(source, "rb") as raw:
        # Split at b"\n" only: that byte never occurs inside a multi-byte UTF-8 sequence.
        for chunk in raw:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as error:
                return line + _line_breaks(chunk[: error.start])
            line += _line_breaks(chunk)
    return None


def _line_breaks(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _csv_rows(reader: Any, file: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line, cells)`` of each row that is not blank; ``reader.line_num`` counts physical lines."""
    last = 0
    try:
        for cells in reader:
            start, last = last + 1, reader.line_num
            if any(cells):
                yield start, cells
    except csv.Error as error:
        raise InputError(f"malformed CSV: {error}", file, last + 1) from None


def _csv_header(rows: Iterator[tuple[int, list[str]]], file: str, required: tuple[str, ...]) -> list[str]:
    first = next(rows, None)
    if first is None:
        raise InputError("the file is empty: expected a header row", file, 1)
    line, cells = first
    header = [cell.strip() for cell in cells]
    if len(header) == 1:
        for delimiter, kind in _DELIMITERS.items():
            if delimiter in header[0]:
                raise InputError(f"expected comma-separated values; the header looks {kind}-separated", file, line)
    for at, name in enumerate(header, 1):
        if not name:
            raise InputError(f"column {at} of the header has no name", file, line)
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        raise InputError(f"duplicate column name(s) in the header: {', '.join(repeated)}", file, line)
    missing = [name for name in required if name not in header]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}; the header has: {', '.join(header)}",
                         file, line)
    return header


def _check_width(cells: list[str], width: int, file: str, line: int) -> None:
    if len(cells) != width:
        raise InputError(f"this row has {len(cells)} cells but the header has {width} columns", file, line)


def json_line_partner_id(line: bytes) -> str:
    """The partner_id a JSON Lines facts file's ``line`` gives once read (escapes decoded, numbers as their
    digits, spaces stripped), or ``""`` when the line has none or is not a JSON object: the key that keeps a
    partner's records together when a run splits a file between workers and a program reads earlier periods.
    A line in error gives ``""``; reading it reports the error."""
    try:
        record = _decode_json_keeping_huge_numbers(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ""
    return _identifier(record.get(PARTNER_ID), PARTNER_ID, []) if type(record) is dict else ""


def _json_lines(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each non-blank line; a line that is not a JSON object fails the file."""
    with _open_text(source) as stream:
        yield from _json_objects(stream, str(source), 0)


def _json_objects(stream: Iterable[str], file: str, lines_before: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`_json_lines` over a text stream whose first line is line ``lines_before + 1`` of ``file``."""
    # Universal newlines as in CSV (a JSON value cannot hold a raw line break);
    # the line ending left on each line is JSON whitespace.
    for line, text in enumerate(stream, lines_before + 1):
        if text.isspace():
            continue
        # Without its line ending, an error at the end of the line keeps its column.
        text = text.rstrip("\r\n")
        try:
            record = _decode_json(text)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON: {error.msg} (column {error.colno})", file, line) from None
        except RecursionError:
            raise InputError("not valid JSON: nested too deeply", file, line) from None
        except InvalidOperation:  # only from a number Decimal cannot hold: a problem of the record, not the file
            record = _decode_json_keeping_huge_numbers(text)
        if type(record) is not dict:
            raise InputError(f"expected a JSON object, got {type(record).__name__}", file, line)
        # An escape is the only way a surrogate gets in; "\\" alone is searched with memchr.
        if "\\" in text and _SURROGATE_ESCAPE(text):
            _refuse_lone_surrogate(text, file, line)
        yield line, record


def _json_number(text: str) -> Decimal | _HugeJsonNumber:
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond ±999,999,999,999,999,999
        return _HugeJsonNumber(text)


_decode_json_keeping_huge_numbers = json.JSONDecoder(
    parse_float=_json_number, parse_int=_json_number, parse_constant=Decimal).decode


def _refuse_lone_surrogate(text: str, file: str, line: int) -> None:
    """Raise InputError if a ``\\uXXXX`` escape of the JSON line ``text`` makes a lone surrogate.

    Escapes are taken left to right (so ``\\\\ud800`` is a backslash and text); a
    high surrogate escape directly followed by a low one is a pair, which JSON
    decodes to one character; any other surrogate escape is lone.
    """
    pending: re.Match[str] | None = None  # a high surrogate escape waiting for its low half
    for escape in _JSON_ESCAPE(text):
        code = int(escape.group(1), 16) if escape.group(1) else None
        if pending is not None:
            if code is not None and 0xDC00 <= code <= 0xDFFF and escape.start() == pending.end():
                pending = None
                continue
            break
        if code is not None and 0xD800 <= code <= 0xDFFF:
            pending = escape
            if code >= 0xDC00:
                break
    if pending is not None:
        raise InputError(f"the line holds {pending.group()} (column {pending.start() + 1}), a lone surrogate, "
                         "which is not valid Unicode text", file, line)

