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
  :data:`~incentives.money_by_columns.MAX_PLAIN_DIGITS` digits and :data:`MAX_DECIMALS` decimals), as minor units
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
from typing import Iterator, Mapping, Sequence

import polars as pl

from ..errors import InputError
from ..inputs import DATE_PATTERN, PARTNER_ID, PERIOD
from ..money_by_columns import PLAIN_DECIMAL, plain_decimals, plain_units
from ..periods import Period, periods_covering
from ..rules.columns import Column
from .model import MeasuresFile

__all__ = ["MAX_DECIMALS", "REJECTED", "ROW", "TransactionSource", "TypedTransactions", "columns_read",
           "text_column", "transaction_columns", "typed_transactions", "units_column"]

#: A plain decimal's decimals at most.
MAX_DECIMALS = 12
#: The 1-based row number of a transaction (the header not counted), in the rejected rows and the notes.
ROW = "row"
#: Why a row is rejected, in the rejected rows.
REJECTED = "why"
_BOOLEANS = ("true", "false")
_READ_CHUNK = 1 << 24
# working columns beside the source's own (a source may not have columns of these names: _check_columns)
_DAY = "day:number"
_PERIOD = "day:period"
_INT64_LIMIT = 2**63

TransactionSource = str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame


@dataclass(frozen=True)
class TypedTransactions:
    """A transaction source typed for one measures file: ``frame`` (lazy) has :data:`ROW`, ``partner_id``,
    ``period`` (null on a rejected row, and only there), each aggregated
    number column's minor units (:func:`units_column`, Int128 at ``scales[column]``), each ``count_distinct``
    column's texts (:func:`text_column`), and each column a ``where`` reads under its own name, typed as a fact
    column (``columns``: what they are, for the expression compiler). ``rejected``: the rejected rows, their
    :data:`ROW`, why (:data:`REJECTED`) and the source's own columns as text (for the rejected rows' file).
    ``cells``: every row so (``why`` null where it is not rejected), and ``partner`` its partner."""

    frame: pl.LazyFrame
    columns: Mapping[str, Column]
    scales: Mapping[str, int]
    rejected: pl.LazyFrame
    name: str
    #: every row as :attr:`rejected` has the rejected ones (why: null on a row that is not)
    cells: pl.LazyFrame
    #: each row's partner as :attr:`frame` has it (stripped), over :attr:`cells`
    partner: pl.Expr


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
    csv_path = Path(source) if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() != ".parquet" \
        else None
    survey = _survey(raw, stripped, measures.date, numbers | set(where_columns), where_columns, name, csv_path)
    periods = _periods(measures, survey)
    columns: dict[str, Column] = {}
    typed: dict[str, pl.Expr] = {}
    bad_number = {}
    scales = {column: _scale(survey, column) for column in sorted(numbers)}
    for column, scale in scales.items():
        typed[units_column(column)] = units = plain_units(stripped[column], scale)
        bad_number[column] = (stripped[column] != "") & units.is_null()
    for column in sorted(distinct):
        typed[text_column(column)] = pl.when(stripped[column] != "").then(stripped[column])
    for column in where_columns:
        kind = "number" if column in numbers else _kind_of(survey, column)
        typed[column], columns[column] = _typed_cell(stripped[column], kind, survey, column)
    day = _day(stripped[measures.date])
    raw = _with_period(raw, day, periods)
    period = pl.col(_PERIOD)
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
    # the reasons are written on the rejected rows alone: the rows that are not only need to be told apart
    is_rejected = pl.any_horizontal(partner == "", period.is_null(), *bad_number.values())
    # in two steps, each cell typed once: the second reads the first's columns (a number's units, the period)
    filled = {column: (stripped[column] != "").alias(f"filled:{column}") for column in bad_number}
    frame = raw.select(ROW, partner.alias(PARTNER_ID), period.alias(PERIOD), *filled.values(),
                       *(expression.alias(column) for column, expression in typed.items())).with_columns(
        pl.when(~pl.any_horizontal(pl.col(PARTNER_ID) == "", *(pl.col(f"filled:{column}") &
                                                               pl.col(units_column(column)).is_null()
                                                               for column in bad_number)))
        .then(pl.col(PERIOD)).alias(PERIOD)).drop(*(f"filled:{column}" for column in filled))
    cells = raw.select(ROW, pl.when(is_rejected).then(pl.concat_str(reasons, separator="; ", ignore_nulls=True))
                       .alias(REJECTED), pl.all().exclude(ROW, _PERIOD))
    return TypedTransactions(frame, columns, scales, cells.filter(pl.col(REJECTED).is_not_null()), name, cells,
                             partner.alias(PARTNER_ID))


def units_column(column: str) -> str:
    """The name of an aggregated number column's Int128 minor units in :attr:`TypedTransactions.frame`."""
    return f"units:{column}"


def text_column(column: str) -> str:
    """The name of a ``count_distinct`` column's texts (null for an empty cell) in the frame."""
    return f"text:{column}"


def transaction_columns(source: TransactionSource, name: str) -> list[str]:
    """The columns of a transaction source: a file's header (only its start is read). Raises
    :class:`InputError` for a file that cannot be read."""
    try:
        return _scan(source, name).collect_schema().names()
    except pl.exceptions.PolarsError as error:
        raise InputError(f"cannot read the header: {error}", name) from None


def columns_read(measures: MeasuresFile) -> Iterator[tuple[tuple[str, ...], str, int | None]]:
    """Each column a measures file reads, with the path of the key that names it and, in a ``where``, where in
    its text it first does; in file order."""
    yield ("partner",), measures.partner, None
    yield ("date",), measures.date, None
    for name, aggregation in measures.aggregations.items():
        if aggregation.column is not None:
            yield ("measures", name, aggregation.function), aggregation.column, None
        if aggregation.where is not None:
            for column, offset in aggregation.where.first_offsets:
                yield ("measures", name, "where"), column, offset


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
    return list(dict.fromkeys(column for _, column, _ in columns_read(measures)))


def _check_columns(measures: MeasuresFile, header: Sequence[str], name: str) -> None:
    missing = [column for column in _read_columns(measures) if column not in header]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (read by the "
                         f"measures '{measures.id}'); the file has: {', '.join(header) or 'no columns'}", name, 1)
    reserved = [column for column in (_DAY, _PERIOD) if column in header]
    if reserved:
        raise InputError(f"a column may not be named {', '.join(reserved)}: the measures work with a column of "
                         "that name", name, 1)


def _survey(raw: pl.LazyFrame, stripped: Mapping[str, pl.Expr], date_column: str, numbers: set[str],
            where_columns: Sequence[str], name: str, path: Path | None) -> dict:
    """One pass over the source: the days the date column spans, each number column's decimals, and what kind
    of cells each column a ``where`` reads has."""
    day = _day(stripped[date_column])
    found = [day.min().alias("first_day"), day.max().alias("last_day")]
    for column in sorted(numbers):
        cell = stripped[column]
        plain = cell.str.contains(PLAIN_DECIMAL)
        decimals = pl.when(plain).then(plain_decimals(cell))
        found.append(decimals.max().alias(f"decimals:{column}"))
        found.append(plain.sum().alias(f"plain:{column}"))
    for column in where_columns:
        cell = stripped[column]
        # a column of YYYY-MM-DD cells is a date column (a cell that is no day then has no value)
        found += [(cell != "").sum().alias(f"filled:{column}"),
                  cell.is_in(_BOOLEANS).sum().alias(f"boolean:{column}"),
                  cell.str.contains(f"^(?:{DATE_PATTERN})$").sum().alias(f"date:{column}")]
    try:
        return raw.select(found).collect(engine="streaming").row(0, named=True)
    except pl.exceptions.ComputeError as error:
        if path is not None:  # the file is checked only now, to say where it is not UTF-8 (polars does not)
            _check_utf8(path, name)
        raise InputError(f"cannot read the file: {error}", name) from None


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
        units = plain_units(cell, scale)
        return pl.when(units.abs() < _INT64_LIMIT).then(units.cast(pl.Int64)), Column.number(scale)
    if kind == "boolean":
        return pl.when(cell != "").then(cell == "true"), Column.boolean()
    if kind == "date":
        return _day(cell), Column.date()
    return pl.when(cell != "").then(cell), Column.text()


def _with_period(raw: pl.LazyFrame, day: pl.Expr, periods: Sequence[Period]) -> pl.LazyFrame:
    """``raw`` with :data:`_PERIOD`: the label of the period of ``periods`` (in order, tiling their days) that
    holds each row's ``day``; null for none.

    A join of the day's number (days since 1970) with a table of every day the periods hold, in the rows'
    order: what polars' streaming engine runs batch by batch. A ``search_sorted`` of the days in the periods'
    starts, or a ``replace_strict`` by the table, is not: the engine gathered the whole column first (1.7 GB
    for 30M rows, growing with the file)."""
    epoch = date(1970, 1, 1)
    table = pl.LazyFrame({_DAY: pl.Series([(period.start - epoch).days + offset for period in periods
                                           for offset in range(period.days)], dtype=pl.Int32),
                          _PERIOD: pl.Series([period.label for period in periods for _ in range(period.days)],
                                             dtype=pl.String)})
    return raw.with_columns(day.cast(pl.Int32).alias(_DAY)).join(table, on=_DAY, how="left",
                                                                 maintain_order="left").drop(_DAY)


def _scale(survey: Mapping[str, int], column: str) -> int:
    """A number column's scale: the most decimals a plain cell of it has, at most :data:`MAX_DECIMALS` (a cell
    with more is not a number here)."""
    return min(survey[f"decimals:{column}"] or 0, MAX_DECIMALS)


def _day(cell: pl.Expr) -> pl.Expr:
    return pl.when(cell.str.contains(f"^(?:{DATE_PATTERN})$")).then(cell.str.to_date("%Y-%m-%d", strict=False))


def _quoted(cell: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("'"), cell, pl.lit("'")])


def _periods(measures: MeasuresFile, survey: Mapping[str, date | None]) -> list[Period]:
    first, last = survey["first_day"], survey["last_day"]
    if first is None or last is None:
        return []
    return periods_covering(measures.period, measures.fiscal_year_start, first, last)
