"""A measures file computed over its transactions: one facts row per partner and period.

The transactions are typed (:mod:`.transactions`), each aggregation's ``where``
compiled by the expression compiler the columnar engine uses
(:func:`incentives.rules.columns.compile_columns`), the rows grouped by partner
and period and aggregated by polars' streaming engine in integer minor units;
then each ``avg`` (a sum over a count) and each derived measure is computed on
the grouped rows by the same compiler, with the expression language's exact
``/``. Nothing is a float.

Values, and what a partner and period without matching rows gets:

* ``sum`` — written with the column's decimals (``1234.50``); ``0`` when no row matches;
* ``count``, ``count_distinct`` — whole numbers; ``0`` when no row matches
  (``count_distinct`` does not count an empty cell);
* ``min``, ``max`` — as written, at the column's decimals; no value when no row matches;
* ``avg`` and derived measures — the exact quotient as the expression language
  computes it (28 significant digits, half-even), written without trailing
  zeros; no value where it reads a measure that has none, or divides by zero.

A measure with no value is null, an empty cell of the facts file (a missing fact: a
program's ``defaults`` apply). A row on which a ``where`` cannot be evaluated
(a cell it reads is empty, or it divides by zero) does not match, and an empty
cell of an aggregated column adds nothing: the notes count both. Every
(partner, period) with at least one row that is not rejected gets a facts row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import InputError
from ..inputs import PARTNER_ID, PERIOD
from ..money_by_columns import plain_amount
from ..rules.ast import Binary, Name
from ..rules.columns import MAX_UNITS, ColumnExpression, Kind, NotByColumns, compile_columns
from .model import Aggregation, MeasuresFile
from .transactions import (REJECTED, ROW, TransactionSource, TypedTransactions, text_column,
                           typed_transactions, units_column)

__all__ = ["MeasuredFacts", "MeasuresFacts", "REJECTED_FILE", "compute_measures", "measure_facts"]

#: The file the rejected transactions are written to, beside the facts.
REJECTED_FILE = "rejected_transactions.csv"
#: How many rejected rows the notes quote.
FIRST_REJECTED = 5
_ROWS = "rows"


@dataclass
class MeasuresFacts:
    """What a measures file gave: ``frame`` holds ``partner_id``, ``period`` and each measure in file order, as
    a facts file's cells (text; null for no value), by partner_id then period; ``transactions``: rows read,
    ``rejected``: of them rejected (``first_rejected``: the first, as (row, why)); ``notes``: what a reader
    should know (the rejected rows, rows a where could not read, measures without a value)."""

    measures: MeasuresFile
    frame: pl.DataFrame
    transactions: int
    rejected: int
    first_rejected: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compute_measures(measures: MeasuresFile, source: TransactionSource, *, name: str | None = None,
                     rejected_to: str | Path | None = None) -> MeasuresFacts:
    """``measures`` over the transactions of ``source`` (a CSV or Parquet file, or a polars frame; ``name``:
    how messages name it, by default the file). ``rejected_to``: a file to write the rejected rows to (their
    row, why, and their cells), written even when there are none. Raises :class:`InputError` for a source that
    cannot be read."""
    name = name or (str(source) if isinstance(source, (str, Path)) else measures.source)
    typed = typed_transactions(measures, source, name)
    try:
        # one pass: every row grouped by partner and period, the rejected ones under no period
        grouped = _grouped(measures, typed).collect(engine="streaming")
        rejected = int(grouped.filter(pl.col(PERIOD).is_null())[_ROWS].sum() or 0)
        first: list[tuple[int, str]] = []
        # the rejected rows take a second pass, only when there are some
        if rejected_to is not None and not rejected:
            pl.DataFrame(schema=typed.rejected.collect_schema()).write_csv(rejected_to)
        elif rejected_to is not None:
            typed.rejected.sink_csv(rejected_to, engine="streaming")
            first = list(pl.read_csv(rejected_to, n_rows=FIRST_REJECTED, columns=[ROW, REJECTED],
                                     schema_overrides={ROW: pl.Int64, REJECTED: pl.String}).iter_rows())
        elif rejected:
            first = list(typed.rejected.select(ROW, REJECTED).head(FIRST_REJECTED).collect().iter_rows())
    except pl.exceptions.ComputeError as error:
        raise InputError(f"cannot read the transactions: {error}", name) from None
    rows = int(grouped[_ROWS].sum() or 0)
    grouped = grouped.filter(pl.col(PERIOD).is_not_null()).sort(PARTNER_ID, PERIOD)
    facts = MeasuresFacts(measures, pl.DataFrame(), rows, rejected, first_rejected=first)
    if rejected:
        shown = "; ".join(f"row {row}: {why}" for row, why in facts.first_rejected)
        facts.notes.append(f"{measures.id}: {rejected:,} of {rows:,} transactions of {name} rejected: "
                           f"{shown}{'; ...' if rejected > len(facts.first_rejected) else ''}")
    facts.frame = _facts(measures, typed, grouped, facts.notes)
    return facts


def _part(role: str, name: str) -> str:
    """The name of a working column of measure ``name``: ``holds`` (its where holds on a row), ``unread`` (its
    where could not be evaluated), ``empty`` (a matching row without a value), an avg's ``sum`` and ``count``,
    a value computed once (``value``) and whether it has none (``none``)."""
    return f"{role}:{name}"


def _grouped(measures: MeasuresFile, typed: TypedTransactions) -> pl.LazyFrame:
    """The rows by partner and period (the rejected ones under a null period: their values mean nothing): how
    many, each aggregation's raw values (a sum's and a min's units, a count), and what the notes count."""
    conditions = []
    for name, aggregation in measures.aggregations.items():
        if aggregation.where is None:
            conditions.append(pl.lit(True).alias(_part("holds", name)))
            conditions.append(pl.lit(False).alias(_part("unread", name)))
            continue
        try:
            where = compile_columns(aggregation.where.node, typed.columns)
        except NotByColumns as reason:
            raise InputError(f"the where of measure '{name}' cannot be computed: {reason.reason}",
                             typed.name) from None
        if where.kind is not Kind.BOOLEAN:
            raise InputError(f"the where of measure '{name}' is not a condition over the columns of "
                             f"{typed.name}", typed.name)
        conditions.append((where.value.fill_null(False) & ~where.needs_record).alias(_part("holds", name)))
        conditions.append(where.needs_record.alias(_part("unread", name)))
    aggregates = []
    for name, aggregation in measures.aggregations.items():
        holds = pl.col(_part("holds", name))
        aggregates.append(pl.col(_part("unread", name)).sum().alias(_part("unread", name)))
        function = aggregation.function
        if function == "count":
            aggregates.append(holds.sum().cast(pl.Int128).alias(name))
            continue
        assert aggregation.column is not None
        if function == "count_distinct":
            aggregates.append(pl.when(holds).then(pl.col(text_column(aggregation.column))).drop_nulls().n_unique()
                              .cast(pl.Int128).alias(name))
            aggregates.append((holds & pl.col(text_column(aggregation.column)).is_null()).sum().alias(_part("empty", name)))
            continue
        units = pl.when(holds).then(pl.col(units_column(aggregation.column)))
        aggregates.append((holds & pl.col(units_column(aggregation.column)).is_null()).sum().alias(_part("empty", name)))
        if function == "sum":
            aggregates.append(units.sum().alias(name))
        elif function == "min":
            aggregates.append(units.min().alias(name))
        elif function == "max":
            aggregates.append(units.max().alias(name))
        else:  # avg: a sum over a count, divided once grouped
            aggregates.append(units.sum().alias(_part("sum", name)))
            aggregates.append(units.count().cast(pl.Int128).alias(_part("count", name)))
    return typed.frame.with_columns(conditions).group_by(PARTNER_ID, PERIOD).agg(pl.len().alias(_ROWS), *aggregates)


def _facts(measures: MeasuresFile, typed: TypedTransactions, grouped: pl.DataFrame, notes: list[str]) -> pl.DataFrame:
    """The grouped rows' measures as facts cells, with the notes of what was not counted."""
    values: dict[str, ColumnExpression] = {}
    places: dict[str, int] = {}
    for name, aggregation in measures.aggregations.items():
        unread = int(grouped[_part("unread", name)].sum() or 0)
        if unread:
            notes.append(f"{measures.id}: {name}: its where could not be evaluated on {unread:,} rows (a cell it "
                         "reads is empty, or it divides by zero); they are not counted")
        if _part("empty", name) in grouped.columns and (empty := int(grouped[_part("empty", name)].sum() or 0)):
            notes.append(f"{measures.id}: {name}: {empty:,} matching row{'s have' if empty > 1 else ' has'} no "
                         f"{aggregation.column}; {'they add' if empty > 1 else 'it adds'} nothing")
        values[name], places[name] = _aggregated(name, aggregation, typed, grouped)
    cells = [pl.col(PARTNER_ID), pl.col(PERIOD)]
    for name, measure in measures.measures.items():
        if not isinstance(measure, Aggregation):
            try:
                values[name] = compile_columns(measure.node, {}, values)
            except NotByColumns as reason:
                raise InputError(f"measure '{name}' cannot be computed: {reason.reason}", typed.name) from None
            places[name] = 0
        # each value computed once, into columns the texts and the derived measures after it read (a quotient
        # is a long division: 0.7 s for 500,000 partner periods, each time it is evaluated)
        value = values[name]
        grouped = grouped.with_columns(value.value.alias(_part("value", name)), value.needs_record.alias(_part("none", name)))
        value = values[name] = dataclasses.replace(value, value=pl.col(_part("value", name)), needs_record=pl.col(_part("none", name)))
        missing = int(grouped[_part("none", name)].sum())
        if missing:
            notes.append(f"{measures.id}: {name} has no value for {missing:,} of {grouped.height:,} partners and "
                         "periods (no matching row, a measure it reads has none, or a division by zero)")
        cells.append(pl.when(~value.needs_record).then(_text(value, places[name], name, typed.name)).alias(name))
    return grouped.select(cells)


def _aggregated(name: str, aggregation: Aggregation, typed: TypedTransactions,
                grouped: pl.DataFrame) -> tuple[ColumnExpression, int]:
    """An aggregation's value on the grouped rows, for the texts and the derived measures, and the decimals its
    text shows at least."""
    function = aggregation.function
    if function in ("count", "count_distinct"):
        return _number(name, 0, grouped[name]), 0
    assert aggregation.column is not None
    scale = typed.scales[aggregation.column]
    if function != "avg":  # a sum of no rows is 0, never null (polars' sum); a min or max of none is null
        return _number(name, scale, grouped[name]), scale
    total = _number(_part("sum", name), scale, grouped[_part("sum", name)])
    count = _number(_part("count", name), 0, grouped[_part("count", name)])
    quotient = compile_columns(Binary("/", Name("total"), Name("count")), {}, {"total": total, "count": count})
    return quotient, 0


def _number(column: str, scale: int, units: pl.Series) -> ColumnExpression:
    bound = int(units.abs().max() or 0) if units.len() else 0
    if bound > MAX_UNITS:
        raise InputError(f"the measure {column} reaches {bound} minor units: beyond what is computed exactly")
    return ColumnExpression(pl.col(column), pl.col(column).is_null(), Kind.NUMBER, scale, bound, wide=True)


def _text(value: ColumnExpression, places: int, name: str, source: str) -> pl.Expr:
    """A measure's value as a facts file's cell."""
    if value.kind is Kind.NUMBER:
        return plain_amount(value.value.cast(pl.Int128), value.scale, min(places, value.scale),
                            bound=max(value.bound, 1))
    if value.kind is Kind.BOOLEAN:
        return pl.when(value.value).then(pl.lit("true")).otherwise(pl.lit("false"))
    if value.kind is Kind.DATE:
        return value.value.dt.strftime("%Y-%m-%d")
    if value.kind is Kind.TEXT:
        return value.value
    raise InputError(f"measure '{name}' has no value on any partner (it reads a name that is no measure)", source)


@dataclass
class MeasuredFacts:
    """Every measures file of a load computed: ``frame`` holds ``partner_id``, ``period`` and every measure (the
    files in order, each one's measures in file order) as facts cells, one row per partner and period any of
    them has (null where a file has no row for it), by partner_id then period; ``files``: each file's own."""

    frame: pl.DataFrame
    files: list[MeasuresFacts]

    @property
    def notes(self) -> list[str]:
        return [note for facts in self.files for note in facts.notes]

    @property
    def rejected(self) -> int:
        return sum(facts.rejected for facts in self.files)


def measure_facts(measures_files: list[MeasuresFile], transactions: dict[str, TransactionSource], *,
                  rejected_folder: str | Path | None = None) -> MeasuredFacts:
    """Each measures file over its source in ``transactions`` (by the name its ``source`` gives), joined by
    partner and period. ``rejected_folder``: where each source's rejected rows are written
    (:data:`REJECTED_FILE`; with several measures files, ``rejected_transactions_<measures id>.csv``). Raises
    :class:`InputError` for a source not given or that cannot be read."""
    sources = list(dict.fromkeys(measures.source for measures in measures_files))
    missing = [source for source in sources if source not in transactions]
    if missing:
        raise InputError(f"no transactions given for {', '.join(missing)} (read by the measures "
                         f"{', '.join(m.id for m in measures_files if m.source in missing)}): give "
                         f"{' '.join(f'--transactions {source}=FILE' for source in missing)}")
    computed = []
    for measures in measures_files:
        rejected_to = None
        if rejected_folder is not None:
            file = REJECTED_FILE if len(measures_files) == 1 else f"rejected_transactions_{measures.id}.csv"
            rejected_to = Path(rejected_folder) / file
        computed.append(compute_measures(measures, transactions[measures.source], rejected_to=rejected_to))
    frame = computed[0].frame
    for facts in computed[1:]:
        frame = frame.join(facts.frame, on=[PARTNER_ID, PERIOD], how="full", coalesce=True)
    return MeasuredFacts(frame.sort(PARTNER_ID, PERIOD), computed)
