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
import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import polars as pl

from ..errors import InputError
from ..inputs import PARTNER_ID, PERIOD
from ..joined_facts import ComputedFacts
from ..money_by_columns import plain_amount
from ..results import MeasuresInfo
from ..rules.ast import Binary, Name
from ..rules.columns import MAX_UNITS, ColumnExpression, Kind, NotByColumns, compile_columns
from .model import Aggregation, MeasuresFile
from .transactions import (REJECTED, ROW, TransactionSource, TypedTransactions, text_column,
                           typed_transactions, units_column)

__all__ = ["COUNTED_IN", "IN_PERIOD", "MeasuredFacts", "MeasuresFacts", "REJECTED_FILE", "ROWS_PER_BATCH",
           "compute_measures", "measure_facts", "partner_transactions"]

#: The file the rejected transactions are written to, beside the facts.
REJECTED_FILE = "rejected_transactions.csv"
#: How many rejected rows the notes quote.
FIRST_REJECTED = 5
#: How many transactions are grouped at a time: a few hundred MB of typed rows for a measures file of eight
#: measures (10M rows of ``benchmarks/programs_measures``: 1.0 GB at the peak; 1M rows a batch: 31.9 s against
#: 30.7, measured before the period became a join).
ROWS_PER_BATCH = 2_000_000
_ROWS = "rows"
_REJECTED = "rejected"


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
    #: the file the rejected rows were written to, if asked (``rejected_to``)
    rejected_file: Path | None = None
    #: the measures of a partner and period without transactions (a sum 0, no min...), as facts cells
    without_transactions: dict[str, str | None] = field(default_factory=dict)


def compute_measures(measures: MeasuresFile, source: TransactionSource, *, name: str | None = None,
                     rejected_to: str | Path | None = None, rows_per_batch: int = ROWS_PER_BATCH) -> MeasuresFacts:
    """``measures`` over the transactions of ``source`` (a CSV or Parquet file, or a polars frame; ``name``:
    how messages name it, by default the file). ``rejected_to``: a file to write the rejected rows to (their
    row, why, and their cells), written even when there are none. Raises :class:`InputError` for a source that
    cannot be read. ``rows_per_batch``: how many transactions are grouped at a time (memory, not results: any
    size gives the same facts)."""
    name = name or (str(source) if isinstance(source, (str, Path)) else measures.source)
    typed = typed_transactions(measures, source, name)
    try:
        grouped, counts = _grouped(measures, typed, rows_per_batch)
        rejected = counts[_REJECTED]
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
    rows = counts[_ROWS]
    grouped = grouped.sort(PARTNER_ID, PERIOD)
    facts = MeasuresFacts(measures, pl.DataFrame(), rows, rejected, first_rejected=first,
                          rejected_file=Path(rejected_to) if rejected_to is not None else None)
    if rejected:
        shown = "; ".join(f"row {row}: {why}" for row, why in facts.first_rejected)
        facts.notes.append(f"{measures.id}: {rejected:,} of {rows:,} transactions of {name} rejected: "
                           f"{shown}{'; ...' if rejected > len(facts.first_rejected) else ''}")
    facts.frame = _facts(measures, typed, grouped, counts, facts.notes)
    facts.without_transactions = _without_transactions(measures, typed)
    return facts


def _without_transactions(measures: MeasuresFile, typed: TypedTransactions) -> dict[str, str | None]:
    """The measures of a partner and period without transactions, as the facts cells of one with: a sum and a
    count 0, no min, max or avg, and the derived measures computed from those."""
    nothing: dict[str, pl.Series] = {PARTNER_ID: pl.Series([""]), PERIOD: pl.Series([""])}
    for name, aggregation in measures.aggregations.items():
        if aggregation.function == "avg":
            nothing[_part("sum", name)] = nothing[_part("count", name)] = pl.Series([0], dtype=pl.Int128)
        else:
            no_rows = None if aggregation.function in ("min", "max") else 0
            nothing[name] = pl.Series([no_rows], dtype=pl.Int128)
    cells = _facts(measures, typed, pl.DataFrame(nothing), defaultdict(int), [])
    return {name: cells[name][0] for name in measures.measures}


#: The columns of :func:`partner_transactions` before the source's own.
IN_PERIOD, COUNTED_IN = "in_period", "counted_in"


def partner_transactions(measures: MeasuresFile, source: TransactionSource, partner_id: str, *,
                         name: str | None = None) -> pl.DataFrame:
    """The transactions of one partner, for an auditor: each row's number (:data:`ROW`, the header not
    counted), its period (:data:`IN_PERIOD`), the aggregations it counts in (:data:`COUNTED_IN`, ``;``
    between them; a row counts in an aggregation when it holds the aggregation's where and has the value it
    reads), why it was rejected (:data:`REJECTED`: null where it was not), then its cells as the source has
    them; in row order. Raises :class:`InputError` as :func:`compute_measures` does."""
    name = name or (str(source) if isinstance(source, (str, Path)) else measures.source)
    typed = typed_transactions(measures, source, name)
    counted = []
    for measure, aggregation in measures.aggregations.items():
        counts = pl.col(_part("holds", measure))
        if aggregation.function == "count_distinct":
            assert aggregation.column is not None
            counts &= pl.col(text_column(aggregation.column)).is_not_null()
        elif aggregation.function != "count":
            assert aggregation.column is not None
            counts &= pl.col(units_column(aggregation.column)).is_not_null()
        counted.append(pl.when(counts).then(pl.lit(measure)))
    flags = typed.frame.filter((pl.col(PARTNER_ID) == partner_id) & pl.col(PERIOD).is_not_null()) \
        .with_columns(_conditions(measures, typed)) \
        .select(ROW, pl.col(PERIOD).alias(IN_PERIOD), pl.concat_str(counted, separator=";", ignore_nulls=True)
                .alias(COUNTED_IN)) \
        .with_columns(pl.when(pl.col(COUNTED_IN) != "").then(pl.col(COUNTED_IN)).alias(COUNTED_IN))  # none: empty
    mine = typed.cells.filter(typed.partner == partner_id)
    try:
        listed = mine.join(flags, on=ROW, how="left").collect(engine="streaming")
    except pl.exceptions.ComputeError as error:
        raise InputError(f"cannot read the transactions: {error}", name) from None
    return listed.select(ROW, IN_PERIOD, COUNTED_IN, REJECTED, pl.all().exclude(ROW, IN_PERIOD, COUNTED_IN, REJECTED)) \
        .sort(ROW)


def _part(role: str, name: str) -> str:
    """The name of a working column of measure ``name``: ``holds`` (its where holds on a row), ``unread`` (its
    where could not be evaluated), ``empty`` (a matching row without a value), an avg's ``sum`` and ``count``,
    a value computed once (``value``) and whether it has none (``none``)."""
    return f"{role}:{name}"


def _grouped(measures: MeasuresFile, typed: TypedTransactions,
             rows_per_batch: int) -> tuple[pl.DataFrame, dict[str, int]]:
    """The rows that are not rejected by partner and period, each aggregation's raw values (a sum's and a
    min's units, a count); and the counts of the whole source: rows, rejected rows, and for each aggregation the
    rows its where could not read (``unread``) and the matching rows without a value (``empty``).

    The rows come in batches of ``rows_per_batch`` from polars' streaming engine; each batch is grouped and its
    partial aggregates merged into the running ones (sums and counts add, a min is the least of the mins); a
    distinct count keeps each group's distinct values, once each, until the end. Memory is a batch and the
    groups, not the file: polars' own streaming group-by holds what it has read until it ends (polars issue
    #25607; 4.4 GB for 100M rows grouped by 500,000 keys)."""
    rows = typed.frame.with_columns(_conditions(measures, typed)).select(_contributions(measures))
    partial, merge = _partial_aggregates(measures)
    keys = [PARTNER_ID, PERIOD]
    # what the notes count, over the whole source: each where's unread rows, each aggregated column's empty cells
    noted = [_part(role, name) for name, aggregation in measures.aggregations.items()
             for role in ("unread", "empty") if role == "unread" or aggregation.function != "count"]
    counted = [pl.col(column).sum() for column in noted]
    counts = {_ROWS: 0, _REJECTED: 0} | dict.fromkeys(noted, 0)
    distinct = {name: _DistinctValues(name, rows_per_batch)
                for name, aggregation in measures.aggregations.items() if aggregation.function == "count_distinct"}
    running = rows.clear().collect().group_by(keys).agg(partial)

    def take(batch: pl.DataFrame) -> None:
        # called by the streaming engine, which waits for it: the batches cannot pile up unread
        nonlocal running
        accepted = batch.filter(pl.col(PERIOD).is_not_null())
        counts[_ROWS] += batch.height
        counts[_REJECTED] += batch.height - accepted.height
        for column, count in accepted.select(counted).row(0, named=True).items():
            counts[column] += count
        running = pl.concat([running, accepted.group_by(keys).agg(partial)]).group_by(keys).agg(merge)
        for values in distinct.values():
            values.add(accepted)

    rows.sink_batches(take, chunk_size=rows_per_batch, maintain_order=False, engine="streaming")
    for name, values in distinct.items():
        running = running.join(values.counts(), on=keys, how="left").with_columns(pl.col(name).fill_null(0))
    return running.with_columns(pl.col(keys).cast(pl.String)), counts


class _DistinctValues:
    """The distinct values of a ``count_distinct`` measure by partner and period, across batches: each batch's
    own, compacted into one frame (a value seen in many batches kept once) when they have grown to twice what
    the last compaction left, or a batch if more: compacting costs in proportion to what is kept."""

    def __init__(self, name: str, rows_per_batch: int) -> None:
        self.name = name
        self.frames: list[pl.DataFrame] = []
        self.rows = 0
        self.compact_at = 2 * rows_per_batch
        self.rows_per_batch = rows_per_batch

    def add(self, batch: pl.DataFrame) -> None:
        values = batch.select(PARTNER_ID, PERIOD, _part("value", self.name)).drop_nulls().unique()
        self.frames.append(values)
        self.rows += values.height
        if self.rows > self.compact_at:
            self.frames = [pl.concat(self.frames).unique()]
            self.rows = self.frames[0].height
            self.compact_at = 2 * max(self.rows, self.rows_per_batch)

    def counts(self) -> pl.DataFrame:
        """How many distinct values each partner and period has (those without any are not in it)."""
        if not self.frames:
            return pl.DataFrame(schema={PARTNER_ID: pl.Categorical, PERIOD: pl.Categorical, self.name: pl.Int128})
        return (pl.concat(self.frames).unique().group_by(PARTNER_ID, PERIOD)
                .agg(pl.len().cast(pl.Int128).alias(self.name)))


def _conditions(measures: MeasuresFile, typed: TypedTransactions) -> list[pl.Expr]:
    """Each aggregation's ``holds`` (its where holds on the row) and ``unread`` (its where cannot be evaluated)."""
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
    return conditions


def _contributions(measures: MeasuresFile) -> list[pl.Expr]:
    """What a row brings each aggregation, ready to be aggregated by a plain sum, min, max or count: whether its
    where is ``unread``; a count's ``holds``; the ``value`` it reads where its where holds (a number column's
    units, a distinct count's text) and whether that value is ``empty``. The partner and period are categories:
    grouping by their codes is a third faster than by their texts."""
    columns = [pl.col(PARTNER_ID).cast(pl.Categorical), pl.col(PERIOD).cast(pl.Categorical)]
    for name, aggregation in measures.aggregations.items():
        holds = pl.col(_part("holds", name))
        columns.append(pl.col(_part("unread", name)))
        if aggregation.function == "count":
            columns.append(holds)
            continue
        assert aggregation.column is not None
        read = pl.col(text_column(aggregation.column) if aggregation.function == "count_distinct"
                      else units_column(aggregation.column))
        columns.append((holds & read.is_null()).alias(_part("empty", name)))
        columns.append(pl.when(holds).then(read).alias(_part("value", name)))
    return columns


def _partial_aggregates(measures: MeasuresFile) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """The aggregates of a batch's groups, and how two of them for one group merge into one."""
    partial: list[pl.Expr] = []
    merge: list[pl.Expr] = []

    def add(aggregate: pl.Expr, column: str, merged: pl.Expr) -> None:
        partial.append(aggregate.alias(column))
        merge.append(merged.alias(column))

    for name, aggregation in measures.aggregations.items():
        function = aggregation.function
        if function == "count":
            add(pl.col(_part("holds", name)).sum().cast(pl.Int128), name, pl.col(name).sum())
            continue
        value = pl.col(_part("value", name))
        if function == "sum":
            add(value.sum(), name, pl.col(name).sum())
        elif function == "min":
            add(value.min(), name, pl.col(name).min())
        elif function == "max":
            add(value.max(), name, pl.col(name).max())
        elif function == "avg":  # a sum over a count, divided once grouped
            add(value.sum(), _part("sum", name), pl.col(_part("sum", name)).sum())
            add(value.count().cast(pl.Int128), _part("count", name), pl.col(_part("count", name)).sum())
    return partial, merge


def _facts(measures: MeasuresFile, typed: TypedTransactions, grouped: pl.DataFrame, counts: dict[str, int],
           notes: list[str]) -> pl.DataFrame:
    """The grouped rows' measures as facts cells, with the notes of what was not counted."""
    values: dict[str, ColumnExpression] = {}
    places: dict[str, int] = {}
    for name, aggregation in measures.aggregations.items():
        if unread := counts[_part("unread", name)]:
            notes.append(f"{measures.id}: {name}: its where could not be evaluated on {unread:,} rows (a cell it "
                         "reads is empty, or it divides by zero); they are not counted")
        if empty := counts.get(_part("empty", name), 0):
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
        grouped = grouped.with_columns(value.value.alias(_part("value", name)),
                                       value.needs_record.alias(_part("none", name)))
        value = values[name] = dataclasses.replace(value, value=pl.col(_part("value", name)),
                                                   needs_record=pl.col(_part("none", name)))
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
    them has (null where a file has no row for it), by partner_id then period; ``files``: each file's own;
    ``inputs``: what a run records of them (each measures file, its source and the source file's sha256)."""

    frame: pl.DataFrame
    files: list[MeasuresFacts]
    inputs: list[MeasuresInfo]

    @property
    def notes(self) -> list[str]:
        return [note for facts in self.files for note in facts.notes]

    @property
    def rejected(self) -> int:
        return sum(facts.rejected for facts in self.files)

    @property
    def computed(self) -> ComputedFacts:
        """The measures as facts to join a run's records (a partner and period without transactions: their
        measures without any)."""
        return ComputedFacts(self.frame, {name: cell for facts in self.files
                                          for name, cell in facts.without_transactions.items()})

    @property
    def rejected_files(self) -> list[Path]:
        """The files of rejected transactions written (``rejected_folder``) that hold some."""
        return [facts.rejected_file for facts in self.files if facts.rejected and facts.rejected_file is not None]


class LoadedMeasures(Protocol):
    """What :func:`measure_facts` reads of a loaded measures file (:class:`incentives.loading.LoadedMeasures`,
    which sits above this package: loading validates measures files by their model)."""

    @property
    def measures(self) -> MeasuresFile: ...

    @property
    def file(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def measure_facts(measures_files: Sequence[LoadedMeasures], transactions: Mapping[str, TransactionSource], *,
                  rejected_folder: str | Path | None = None) -> MeasuredFacts:
    """Each measures file (as :func:`incentives.load_programs` gives them: ``ProgramSet.measures``) over its
    source in ``transactions`` (by the name its ``source`` gives: a CSV or Parquet file, or a polars frame),
    joined by partner and period. ``rejected_folder``: where each source's rejected rows are written
    (:data:`REJECTED_FILE`; with several measures files, ``rejected_transactions_<measures id>.csv``). Raises
    :class:`InputError` for a source not given or that cannot be read."""
    sources = list(dict.fromkeys(loaded.measures.source for loaded in measures_files))
    missing = [source for source in sources if source not in transactions]
    if missing:
        readers = [loaded.measures.id for loaded in measures_files if loaded.measures.source in missing]
        raise InputError(f"no transactions given for {', '.join(missing)} (read by the measures "
                         f"{', '.join(readers)}): give {' '.join(f'--transactions {source}=FILE' for source in missing)}")
    digests = {source: _sha256(transactions[source]) for source in sources}
    computed = []
    inputs = []
    for loaded in measures_files:
        measures = loaded.measures
        rejected_to = None
        if rejected_folder is not None:
            file = REJECTED_FILE if len(measures_files) == 1 else f"rejected_transactions_{measures.id}.csv"
            rejected_to = Path(rejected_folder) / file
        computed.append(compute_measures(measures, transactions[measures.source], rejected_to=rejected_to))
        inputs.append(MeasuresInfo(id=measures.id, file=loaded.file, sha256=loaded.sha256, source=measures.source,
                                   source_sha256=digests[measures.source]))
    # a file without a row where another has one: its measures without transactions there
    frames = [facts.frame.with_columns(pl.lit(True).alias(_part("file", str(at)))) for at, facts in enumerate(computed)]
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.join(other, on=[PARTNER_ID, PERIOD], how="full", coalesce=True)
    frame = frame.with_columns(
        pl.when(pl.col(_part("file", str(at)))).then(pl.col(name))
        .otherwise(pl.lit(facts.without_transactions[name], pl.String)).alias(name)
        for at, facts in enumerate(computed) for name in facts.measures.measures
    ).drop(_part("file", str(at)) for at in range(len(computed)))
    return MeasuredFacts(frame.sort(PARTNER_ID, PERIOD), computed, inputs)


def _sha256(source: TransactionSource) -> str | None:
    """A transaction file's sha256 (a frame has none)."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    except OSError as error:
        raise InputError("no such file" if isinstance(error, FileNotFoundError) else
                         f"cannot read the file: {error.strerror or error}", str(source)) from None
    return digest.hexdigest()
