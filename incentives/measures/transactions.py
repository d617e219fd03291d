"""A transaction file as a measures file reads it: lazily, every cell typed by columns, bad rows told apart.

A transaction source is a CSV file, a Parquet file, or a polars frame (the
Python API). It is never loaded whole: a CSV or Parquet file is scanned
(``pl.scan_csv`` / ``pl.scan_parquet``), and what is computed of it goes
through polars' streaming engine.

Every cell is read as text first (a Parquet column of integers, decimals,
dates or booleans as the text it stands for; a floating-point column is
refused: an exact amount is never a binary float), stripped of surrounding
whitespace, then typed by the column's use:

* the ``partner`` column: a text, not empty;
* the ``date`` column: ``YYYY-MM-DD``, a real day, in a period of the
  calendar;
* a column a ``sum``, ``avg``, ``min`` or ``max`` reads: a plain decimal
  (``-1234.50``: a sign, digits, one point; no exponent, at most
  :data:`MAX_DIGITS` digits and :data:`MAX_DECIMALS` decimals), as minor units
  at the column's scale (the most decimals a cell of it has); an empty cell
  has no value (the aggregation skips its row, and the notes count it);
* a column ``count_distinct`` reads: its text (an empty cell is not counted);
* a column a ``where`` reads: the kind every non-empty cell of it has — a
  number (plain decimals), a boolean (``true`` / ``false``), a date, or else a
  text; an empty cell has no value.

A row whose partner is empty, whose date is not a day of a period, or whose
number cell is not a plain decimal is *rejected*: it counts for no measure,
and the caller writes it, with why, to ``rejected_transactions.csv``.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from ..errors import InputError
from ..inputs import DATE_PATTERN
from ..periods import Period, periods_covering
from ..rules.columns import Column
from .model import MeasuresFile

__all__ = ["MAX_DECIMALS", "MAX_DIGITS", "REJECTED", "ROW", "TransactionSource", "TypedTransactions", "text_column",
           "typed_transactions", "units_column"]

#: A plain decimal's digits at most (its units at the column's scale fit Int128 with room for a sum).
MAX_DIGITS = 30
#: A plain decimal's decimals at most.
MAX_DECIMALS = 12
#: The 1-based row number of a transaction (the header not counted), in the rejected rows and the notes.
ROW = "row"
PERIOD = "period"
PARTNER = "partner_id"
#: Why a row is rejected ("" when it is not), in a rejected row.
REJECTED = "rejected"
_PLAIN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
_BOOLEANS = ("true", "false")
_READ_CHUNK = 1 << 24
_INT64_LIMIT = 2**63

TransactionSource = str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame


@dataclass(frozen=True)
class TypedTransactions:
    """A transaction source typed for one measures file: ``frame`` (lazy) has :data:`ROW`, ``partner_id``,
    ``period`` (null on a rejected row), :data:`REJECTED` (why, ``""`` for a row that is not), each aggregated
    number column's minor units (:func:`units_column`, Int128 at ``scales[column]``), each ``count_distinct``
    column's texts (:func:`text_column`), and each column a ``where`` reads under its own name, typed as a fact
    column (``columns``: what they are, for the expression compiler). ``raw``: the source's own columns as
    text, with :data:`ROW` and :data:`REJECTED` (for the rejected rows' file)."""

    frame: pl.LazyFrame
    columns: Mapping[str, Column]
    scales: Mapping[str, int]
    raw: pl.LazyFrame
    name: str


def typed_transactions(measures: MeasuresFile, source: TransactionSource, name: str) -> TypedTransactions:
    """``source`` typed for ``measures`` (``name``: the source as messages name it, a file's path). Raises
    :class:`InputError` for a source that cannot be read: not UTF-8, no such column, a floating-point column."""
    raw = _as_text(_scan(source, name), name)
    header = raw.collect_schema().names()
    _check_columns(measures, header, name)
    raw = raw.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    stripped = {column: pl.col(column).str.strip_chars() for column in _read_columns(measures)}
    numbers = {column for aggregation in measures.aggregations.values()
               if aggregation.function in ("sum", "avg", "min", "max") for column in [aggregation.column]
               if column is not None}
    distinct = {aggregation.column for aggregation in measures.aggregations.values()
                if aggregation.function == "count_distinct" and aggregation.column is not None}
    where_columns = sorted({column for aggregation in measures.aggregations.values() if aggregation.where
                            for column in aggregation.where.names} - {measures.partner})
    survey = _survey(raw, stripped, measures.date, numbers | {c for c in where_columns}, where_columns)
    periods = _periods(measures, survey)
    columns: dict[str, Column] = {}
    typed: dict[str, pl.Expr] = {}
    bad_number = {}
    scales = {column: _scale(survey, column) for column in sorted(numbers)}
    for column, scale in scales.items():
        typed[units_column(column)] = units = _units(stripped[column], scale)
        bad_number[column] = (stripped[column] != "") & units.is_null()
    for column in sorted(distinct):
        typed[text_column(column)] = pl.when(stripped[column] != "").then(stripped[column])
    for column in where_columns:
        kind = "number" if column in numbers else _kind_of(survey, column)
        typed[column], columns[column] = _typed_cell(stripped[column], kind, survey, column)
    day = _day(stripped[measures.date])
    starts = pl.Series([period.start for period in periods], dtype=pl.Date)
    ends = pl.Series([period.end for period in periods], dtype=pl.Date)
    labels = pl.Series([period.label for period in periods], dtype=pl.String)
    at = pl.lit(starts).search_sorted(day, side="right").cast(pl.Int64) - 1 if len(periods) else pl.lit(-1, pl.Int64)
    in_period = (at >= 0) & (pl.lit(ends).gather(at.clip(0)) >= day) if len(periods) else pl.lit(False)
    period = pl.when(day.is_not_null() & in_period).then(pl.lit(labels).gather(at.clip(0)))
    partner = stripped[measures.partner]
    reasons = [pl.when(partner == "").then(pl.lit(f"{measures.partner} is empty")),
               pl.when(day.is_null()).then(pl.concat_str([pl.lit(f"{measures.date} "), _quoted(stripped[measures.date]),
                                                          pl.lit(" is not a date (YYYY-MM-DD)")]))
               .when(period.is_null()).then(pl.concat_str([pl.lit(f"{measures.date} "),
                                                           _quoted(stripped[measures.date]),
                                                           pl.lit(" is in no period of the calendar")])),
               *(pl.when(bad).then(pl.concat_str([pl.lit(f"{column} "), _quoted(stripped[column]),
                                                  pl.lit(" is not a plain decimal")]))
                 for column, bad in bad_number.items())]
    rejected = pl.concat_str(reasons, separator="; ", ignore_nulls=True).fill_null("")
    frame = raw.select(ROW, partner.alias(PARTNER), period.alias(PERIOD), rejected.alias(REJECTED),
                       *(expression.alias(column) for column, expression in typed.items()))
    return TypedTransactions(frame, columns, scales, raw.with_columns(rejected.alias(REJECTED)), name)


def units_column(column: str) -> str:
    """The name of an aggregated number column's Int128 minor units in :attr:`TypedTransactions.frame`."""
    return f"units:{column}"


def text_column(column: str) -> str:
    """The name of a ``count_distinct`` column's texts (null for an empty cell) in the frame."""
    return f"text:{column}"


def _scan(source: TransactionSource, name: str) -> pl.LazyFrame:
    if isinstance(source, pl.DataFrame):
        return source.lazy()
    if isinstance(source, pl.LazyFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise InputError("no such file", name)
    if path.suffix.lower() == ".parquet":
        try:
            return pl.scan_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as error:
            raise InputError(f"cannot read the Parquet file: {error}", name) from None
    _check_utf8(path, name)
    return pl.scan_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=False)


def _check_utf8(path: Path, name: str) -> None:
    """The file is UTF-8 text (a BOM allowed), else an error at the first line that is not."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise InputError("the file is not UTF-8 text", name,
                                 line + chunk[:max(error.start, 0)].count(b"\n")) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError("the file is not UTF-8 text (it ends inside a character)", name, line) from None


def _as_text(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """Every column as the text its cells stand for; a floating-point column is refused."""
    try:
        schema = frame.collect_schema()
    except pl.exceptions.PolarsError as error:
        raise InputError(f"cannot read the file: {error}", name, 1) from None
    texts = []
    for column, dtype in schema.items():
        if dtype.is_float():
            raise InputError(f"column {column} holds floating-point numbers: an exact amount needs decimal, "
                             "integer or text values", name)
        if dtype == pl.String:
            texts.append(pl.col(column).fill_null(""))
        elif dtype == pl.Boolean:
            texts.append(pl.when(pl.col(column)).then(pl.lit("true")).when(~pl.col(column))
                         .then(pl.lit("false")).otherwise(pl.lit("")).alias(column))
        elif dtype == pl.Date or dtype.is_integer() or dtype.is_decimal():
            texts.append(pl.col(column).cast(pl.String).fill_null(""))
        else:
            raise InputError(f"column {column} holds {dtype} values: expected text, integers, decimals, dates "
                             "or booleans", name)
    return frame.select(texts)


def _read_columns(measures: MeasuresFile) -> list[str]:
    """The columns a measures file reads: the partner, the date, the aggregated ones and those a where reads."""
    read = [measures.partner, measures.date]
    for aggregation in measures.aggregations.values():
        if aggregation.column is not None:
            read.append(aggregation.column)
        if aggregation.where is not None:
            read += sorted(aggregation.where.names)
    return list(dict.fromkeys(read))


def _check_columns(measures: MeasuresFile, header: Sequence[str], name: str) -> None:
    missing = [column for column in _read_columns(measures) if column not in header]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (read by the "
                         f"measures '{measures.id}'); the file has: {', '.join(header) or 'no columns'}", name, 1)


def _survey(raw: pl.LazyFrame, stripped: Mapping[str, pl.Expr], date_column: str, numbers: set[str],
            where_columns: Sequence[str]) -> dict:
    """One pass over the source: the days the date column spans, each number column's decimals, and what kind
    of cells each column a ``where`` reads has."""
    day = _day(stripped[date_column])
    found = [day.min().alias("first_day"), day.max().alias("last_day")]
    for column in sorted(numbers):
        cell = stripped[column]
        plain = cell.str.contains(_PLAIN)
        decimals = pl.when(plain).then(cell.str.split(".").list.get(1, null_on_oob=True).str.len_chars().fill_null(0))
        found.append(decimals.max().alias(f"decimals:{column}"))
        found.append(plain.sum().alias(f"plain:{column}"))
    for column in where_columns:
        cell = stripped[column]
        found += [(cell != "").sum().alias(f"filled:{column}"),
                  cell.is_in(_BOOLEANS).sum().alias(f"boolean:{column}"),
                  _day(cell).is_not_null().sum().alias(f"date:{column}")]
    try:
        return raw.select(found).collect(engine="streaming").row(0, named=True)
    except pl.exceptions.ComputeError as error:
        raise InputError(f"cannot read the file: {error}", None) from None


def _kind_of(survey: Mapping[str, int], column: str) -> str:
    filled = survey[f"filled:{column}"]
    if filled and survey.get(f"plain:{column}") == filled:
        return "number"
    if filled and survey[f"boolean:{column}"] == filled:
        return "boolean"
    if filled and survey[f"date:{column}"] == filled:
        return "date"
    return "text"


def _typed_cell(cell: pl.Expr, kind: str, survey: Mapping[str, int], column: str) -> tuple[pl.Expr, Column]:
    if kind == "number":
        # a where compares facts' Int64 minor units; a larger value has no value there (its row is counted)
        scale = _scale(survey, column)
        units = _units(cell, scale)
        return pl.when(units.abs() < _INT64_LIMIT).then(units.cast(pl.Int64)), Column.number(scale)
    if kind == "boolean":
        return pl.when(cell != "").then(cell == "true"), Column.boolean()
    if kind == "date":
        return _day(cell), Column.date()
    return pl.when(cell != "").then(cell), Column.text()


def _scale(survey: Mapping[str, int], column: str) -> int:
    """A number column's scale: the most decimals a plain cell of it has, at most :data:`MAX_DECIMALS` (a cell
    with more is not a number here)."""
    return min(survey[f"decimals:{column}"] or 0, MAX_DECIMALS)


def _units(cell: pl.Expr, scale: int) -> pl.Expr:
    """A plain decimal's minor units at ``scale`` (Int128), null where the cell is not one (or is empty)."""
    plain = cell.str.contains(_PLAIN)
    negative = cell.str.starts_with("-")
    unsigned = cell.str.strip_chars_start("+-")
    whole = unsigned.str.split(".").list.get(0).str.strip_chars_start("0")
    fraction = unsigned.str.split(".").list.get(1, null_on_oob=True).fill_null("")
    digits = pl.concat_str([whole, fraction.str.pad_end(scale, "0")]).str.strip_chars_start("0")
    fits = (whole.str.len_chars() + fraction.str.len_chars() <= MAX_DIGITS) & \
        (fraction.str.len_chars() <= min(scale, MAX_DECIMALS))
    units = pl.when(digits == "").then(pl.lit(0, pl.Int128)).otherwise(digits.cast(pl.Int128, strict=False))
    return pl.when(plain & fits).then(pl.when(negative).then(pl.lit(0, pl.Int128) - units).otherwise(units))


def _day(cell: pl.Expr) -> pl.Expr:
    return pl.when(cell.str.contains(f"^(?:{DATE_PATTERN})$")).then(cell.str.to_date("%Y-%m-%d", strict=False))


def _quoted(cell: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("'"), cell, pl.lit("'")])


def _periods(measures: MeasuresFile, survey: Mapping[str, date | None]) -> list[Period]:
    first, last = survey["first_day"], survey["last_day"]
    if first is None or last is None:
        return []
    return periods_covering(measures.period, measures.fiscal_year_start, first, last)
