"""One run, two sinks: ``Engine.run`` keeps the results in memory, ``Engine.run_to`` writes the run's files.

Both take the same steps (see :mod:`incentives.runs`): records in partner order,
cut into blocks of whole partners; each block evaluated, resolved on its keys
(:func:`~incentives.runs.resolve.resolve_block`), ordered, and tallied. Budgets
need the whole run's totals before a scaled result can be written: a run to
files whose programs have a budget first goes over the records once to gather
the budgets' candidates (:class:`~incentives.runs.resolve.BudgetPlan`), then
writes every result with its budget applied (by columns, the blocks the first
pass read and typed are kept on disk for the second:
:class:`~incentives.columnar.spill.SpilledBlocks`). In memory, the results are
held anyway: the budgets are applied to them at the end.

Writing: the folder is locked and checked before any record is evaluated, the
files are written into a fresh folder that replaces it whole
(:class:`~incentives.output.folder.OutputFolder`), block after block, in
output order; ``run.json`` last.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from contextlib import ExitStack
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

import polars as pl

from ..history import records_to_compute
from ..columnar.facts import FactBlock, read_csv_blocks
from ..columnar.spill import SpilledBlocks
from ..inputs import PARTNER_ID, PERIOD, FactRow, csv_row_reader, fact_columns, fact_row, read_facts
from ..joined_facts import ComputedFacts, check_no_clash, joined_rows
from ..measures.compute import MeasuredFacts
from ..output.files import LINE_COLUMNS, PAYOUT_COLUMNS, csv_line, run_json
from ..output.folder import OUTPUT_FILES, RESULTS_FILE, OutputFolder, measures_inputs, run_inputs
from ..payout_run import PayoutRun
from ..results import MeasuresInfo, PayoutResult, ProgramInfo
from ..run_rules import Record, RunEngine, coverage_text, place_text
from ..version import __version__
from .by_columns import ColumnarEngine, units_by_columns
from .order import Numbered, numbered_in_partner_order, partner_blocks
from .claims import BlockClaims, RunClaims
from .resolve import KEYED, UNITS, UNKEYED, BudgetPlan, Unit, resolve_block
from .rows import REF, Tally, in_output_order, rows_of

__all__ = ["RunSummary", "run_in_memory", "run_to_folder"]


@dataclass
class RunSummary:
    """What :meth:`Engine.run_to` wrote, without the results themselves (they are in the files)."""

    folder: Path
    run_id: str
    created_at: str
    engine_version: str
    programs: list[ProgramInfo]
    facts_sha256: str | None
    claims_sha256: str | None
    totals: dict[str, Decimal]
    counts: dict[str, dict[str, int]]
    notes: list[str]
    records: int
    results: int
    #: the claims of the run (of its period, with ``period``), bad ones and duplicates included
    claims: int = 0
    seconds: float = 0.0
    files: tuple[str, ...] = OUTPUT_FILES
    #: per program: how many distinct partners have a result, and which versions were used
    partners: dict[str, int] = field(default_factory=dict)
    versions: dict[str, list[int]] = field(default_factory=dict)
    #: per program and tier: how many ``ok`` results reached it and their total (budget applied)
    by_tier: dict[str, dict[str, tuple[int, Decimal]]] = field(default_factory=dict)
    #: the periods of the results, sorted
    periods: list[str] = field(default_factory=list)
    #: the first ``error`` results in output order: (partner_id, period, program_id, errors)
    first_errors: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    #: the measures files whose facts the run read, as run.json records them
    measures: list[MeasuresInfo] = field(default_factory=list)
    #: with the columnar engine: how many records it computed per record, by why (not in ``run.json``, which
    #: is the same whichever engine ran)
    per_record: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """How many results are ``error`` (the CLI exits 3 when there are any)."""
        return sum(count.get("error", 0) for count in self.counts.values())


@dataclass
class _Pass:
    """What one pass over the records counted: records read, records computed, and coverage."""

    read: int = 0
    computed: int = 0
    coverage: dict[tuple[str, str], int] = field(default_factory=dict)


def run_in_memory(engine: RunEngine, records: Iterable[Record], claims: Iterable[Mapping[str, Any]], *,
                  facts_sha256: str | None, claims_sha256: str | None,
                  progress: Callable[[int], None] | None, period: str | None,
                  measured: MeasuredFacts | None = None) -> PayoutRun:
    """:meth:`Engine.run`'s run: every result in memory, in output order, budgets applied. ``measured``: facts
    computed from transactions, joined to the records (:mod:`incentives.joined_facts`)."""
    if measured is not None:
        records = with_measures(records, measured)
    counted = _Pass()
    plan = BudgetPlan(engine)
    results: list[PayoutResult] = []
    for rows, block_results in _blocks(engine, records, RunClaims.read(claims, period), period, counted, texts=False,
                                       plan=None, progress=progress, keep_results=True):
        if plan:
            plan.gather(rows)
        results += block_results
    notes: list[str] = []
    if plan:
        plan.apportion()
        for result in results:
            plan.apply(result)
        notes += plan.notes
    tally = Tally(engine.program_ids)
    tally.add(rows_of([(_NO_UNIT, 0, result) for result in results], texts=False))
    notes += coverage_text(counted.coverage)
    if period is not None:
        notes += engine.period_notes(period, counted.read - counted.computed)
    if measured is not None:
        notes += measured.notes
    return PayoutRun.model_construct(
        run_id=uuid.uuid4().hex, created_at=_now(), engine_version=__version__, programs=engine.program_infos(),
        facts_sha256=facts_sha256, claims_sha256=claims_sha256,
        measures=measured.inputs if measured is not None else [], results=results,
        totals=engine.in_program_order(tally.totals), counts=engine.in_program_order(tally.counts), notes=notes)


def run_to_folder(engine: RunEngine, folder: str | os.PathLike[str],
                  facts: Iterable[Record] | str | os.PathLike[str],
                  claims: Iterable[Mapping[str, Any]] | str | os.PathLike[str] = (), *,
                  facts_sha256: str | None, claims_sha256: str | None, force: bool,
                  progress: Callable[[int], None] | None, notes: Callable[[int], Iterable[str]] | None,
                  record: Callable[[RunSummary, Iterator[PayoutResult]], None] | None,
                  period: str | None, by_columns: bool = True, measured: MeasuredFacts | None = None) -> RunSummary:
    """:meth:`Engine.run_to`'s run: the run's files written into ``folder``, block after block.

    ``record``: called once the files are in place, with the summary and the results as written (read back
    from ``results.jsonl``), to record the run in a ledger. ``by_columns``: a CSV facts file is computed by
    the columnar engine (:mod:`incentives.runs.by_columns`), else every record per record. ``measured``: facts
    computed from transactions, joined to the facts records (:mod:`incentives.joined_facts`); ``facts`` may then
    be ``None``: the records are the measures'."""
    started = time.perf_counter()
    programs = engine.program_infos()
    measures = measured.inputs if measured is not None else []
    inputs = run_inputs(((program.id, program.version, program.sha256) for program in programs), facts_sha256,
                        claims_sha256, measures_inputs(measures))
    joined = measured.computed if measured is not None else None
    # The folder is locked (and checked) before any record is evaluated, until the run is in place.
    with OutputFolder(folder, inputs, force=force) as output, ExitStack() as reading:
        columnar = _columnar(engine, facts, joined) if by_columns else None
        if columnar is None and measured is not None:
            facts = with_measures(facts, measured)
        plan = BudgetPlan(engine)
        # budgets: a first pass over the facts, whose blocks the columnar engine keeps on disk for the second
        spill = SpilledBlocks(output.scratch()) if columnar is not None and plan else None
        if spill is not None:
            assert columnar is not None
            columnar.keep_numbers(spill.folder)  # and their numbers, which the second pass ends
        first_read = None
        if columnar is not None:
            assert isinstance(facts, (str, os.PathLike))
            blocks = read_csv_blocks(facts, in_partner_order=True, rows_per_block=ROWS_PER_BLOCK, joined=joined)
            # the facts file is read from the moment the run starts, while the claims are
            first_read = reading.enter_context(_ReadAhead(spill.write_through(blocks) if spill else blocks))
        run_claims = RunClaims.read(claims, period)
        del claims
        second_read = first_read
        if plan:
            if not isinstance(facts, (str, os.PathLike)):
                facts = list(facts)  # read twice
            for rows, _ in _blocks(engine, facts, run_claims, period, _Pass(), texts=False, plan=None,
                                   progress=None, columnar=columnar, fact_blocks=first_read,
                                   only=plan.programs_read()):
                plan.gather(rows)
            plan.apportion()
            if columnar is not None:
                columnar.per_record.clear()  # counted again as the files are written
                assert spill is not None
                second_read = reading.enter_context(_ReadAhead(spill.read_back()))
        counted = _Pass()
        tally = Tally(engine.program_ids)
        paths = [output.path / name for name in ("payouts.csv", "lines.csv", RESULTS_FILE)]
        with open(paths[0], "wb") as payouts, open(paths[1], "wb") as lines, open(paths[2], "wb") as results, \
                ThreadPoolExecutor(max_workers=len(paths), thread_name_prefix="incentives-writer") as writer:
            payouts.write(csv_line(PAYOUT_COLUMNS).encode())
            lines.write(csv_line(LINE_COLUMNS).encode())
            handles = ((payouts, "payout_row"), (lines, "line_rows"), (results, "result_json"))
            # a block is written while the next one is computed (the write waits on the disk, polars and Python's
            # file writes let go of the GIL), its three files side by side (the last block's write is waited
            # for: 100k benchmark records, 0.3-0.6 s one file after the other); one block at a time, so at most
            # two blocks' texts are held, and each file gets its blocks in order
            written: list[Future[None]] = []
            for rows, _ in _blocks(engine, facts, run_claims, period, counted, texts=True, plan=plan,
                                   progress=progress, columnar=columnar, fact_blocks=second_read):
                for future in written:
                    future.result()
                written = [writer.submit(_write_file, rows.select(column), handle) for handle, column in handles]
                tally.add(rows)
            for future in written:
                future.result()
        run_notes = [*plan.notes, *coverage_text(counted.coverage)]
        if period is not None:
            run_notes += engine.period_notes(period, counted.read - counted.computed)
        run_notes += measured.notes if measured is not None else []
        run_notes += list(notes(counted.computed)) if notes is not None else []
        totals, counts = engine.in_program_order(tally.totals), engine.in_program_order(tally.counts)
        run_id, created_at = uuid.uuid4().hex, _now()
        metadata = PayoutRun.model_construct(
            run_id=run_id, created_at=created_at, engine_version=__version__, programs=programs,
            facts_sha256=facts_sha256, claims_sha256=claims_sha256, measures=measures, results=[], totals=totals,
            counts=counts,
            notes=run_notes)
        with open(output.path / "run.json", "w", encoding="utf-8", newline="") as handle:
            handle.write(run_json(metadata, tally.results))
        for rejected in measured.rejected_files if measured is not None else []:
            shutil.copyfile(rejected, output.path / rejected.name)
        output.commit()
        summary = RunSummary(Path(folder), run_id, created_at, __version__, programs, facts_sha256, claims_sha256,
                             totals, counts, run_notes, counted.computed, tally.results, run_claims.count,
                             partners=tally.partners, measures=measures,
                             versions={program_id: sorted(seen) for program_id, seen in tally.versions.items()},
                             by_tier=tally.by_tier, periods=sorted(tally.periods), first_errors=tally.first_errors,
                             per_record=dict(columnar.per_record) if columnar is not None else {})
        if record is not None:
            record(summary, _written_results(Path(folder) / RESULTS_FILE))
    summary.seconds = time.perf_counter() - started
    return summary


def _blocks(engine: RunEngine, facts: Iterable[Record] | str | os.PathLike[str],
            claims: RunClaims, period: str | None, counted: _Pass, *, texts: bool,
            plan: BudgetPlan | None, progress: Callable[[int], None] | None, columnar: ColumnarEngine | None = None,
            fact_blocks: Iterable[FactBlock] | None = None, only: set[str] | None = None,
            keep_results: bool = False
            ) -> Iterator[tuple[pl.DataFrame, list[PayoutResult]]]:
    """Each block's rows in output order, with (``keep_results``, per record and not ``texts``) its results
    in that order;
    ``plan``: the budgets to apply before the results are rendered. The last block holds the claims of
    partners after every record's. ``columnar``: the columnar engine, for a CSV facts file, and
    ``fact_blocks``: the file's blocks it computes, in partner order; ``only``: the programs it computes (a
    first pass over the budgets: every record per record computes them all)."""
    cursor = claims.cursor()
    if columnar is not None:
        assert fact_blocks is not None
        for block in fact_blocks:
            counted.read += block.frame.height
            if period is not None:
                block = block.rows(block.frame[PERIOD].is_in([period, ""]))
            last = block.frame[PARTNER_ID].max()
            block_claims = cursor.through(last) if isinstance(last, str) else cursor.none()
            computed, rows, partly = columnar.evaluate(block, block_claims, plan if texts else None, only=only)
            counted.computed += computed.select(pl.col("index").n_unique()).item()
            evaluated = _per_record(engine, [(row.line, row, row) for row in rows], None, block_claims, counted,
                                    progress, texts=texts, plan=plan)
            # in input order, whichever engine computed them (a duplicate's error names its lines in that order)
            evaluated.units = pl.concat([units_by_columns(computed), evaluated.units]).sort("index")
            evaluated.rows += [computed, _partly_per_record(engine, partly, block_claims, texts=texts, plan=plan)]
            yield _resolved(engine, evaluated, block_claims, counted, texts, keep_results=False)
        yield _resolved(engine, _Evaluated(), cursor.through(None), counted, texts, keep_results=False)
        return
    for block in partner_blocks(_counting(numbered_in_partner_order(facts), counted)):
        block_claims = cursor.through(block[-1][2].partner_id)
        evaluated = _per_record(engine, block, period, block_claims, counted, progress, texts=texts, plan=plan)
        yield _resolved(engine, evaluated, block_claims, counted, texts, keep_results=keep_results)
    yield _resolved(engine, _Evaluated(), cursor.through(None), counted, texts, keep_results=keep_results)


class _ReadAhead:
    """``with _ReadAhead(blocks) as blocks:`` each next block read by a reader thread while the one given is
    computed (reading and typing a block is mostly polars, which lets go of the GIL); so one block more is
    held. The first block is read from the moment the block is entered."""

    def __init__(self, blocks: Iterator[FactBlock]):
        self._blocks = blocks
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="incentives-reader")
        self._pending: Future[FactBlock | None] | None = None

    def __enter__(self) -> "_ReadAhead":
        self._pending = self._reader.submit(next, self._blocks, None)
        return self

    def __iter__(self) -> Iterator[FactBlock]:
        while self._pending is not None and (block := self._pending.result()) is not None:
            self._pending = self._reader.submit(next, self._blocks, None)
            yield block
        self._pending = None

    def __exit__(self, *exc_info: object) -> None:
        # a block being read when the run stopped is waited for (a thread cannot be stopped), then dropped
        self._pending = None
        self._reader.shutdown(wait=True, cancel_futures=True)
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()  # the file it reads is closed now, not when the reader is collected


#: How many rows a block of the columnar engine holds: its programs' frames, every text included, are held
#: until the block is written (1M × 3 programs: 100,000-row blocks peaked at 2.4 GB in 106 s, 50,000-row
#: ones at 1.9 GB in 112 s; benchmarks/README.md).
ROWS_PER_BLOCK = 50_000

#: How many results the per-record path holds as objects before it renders them (the rest of a block is
#: kept as rows: a block of the columnar engine may send a hundred thousand records per record).
RESULTS_PER_CHUNK = 15_000


@dataclass
class _Evaluated:
    """A block's evaluated records: their units (:data:`UNITS`), their results' rows (:mod:`.rows`), and, in
    memory, the results themselves (``ref`` in the rows is a position in ``results``)."""

    units: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=UNITS))
    rows: list[pl.DataFrame] = field(default_factory=list)
    results: list[PayoutResult] = field(default_factory=list)


def _per_record(engine: RunEngine, block: list[Numbered], period: str | None, claims: BlockClaims,
                counted: _Pass, progress: Callable[[int], None] | None, *, texts: bool,
                plan: BudgetPlan | None) -> _Evaluated:
    """A block's records evaluated one at a time, their results rendered (``texts``; ``plan``: the budgets
    applied first) a chunk at a time, or kept (not ``texts``)."""
    evaluate = engine.evaluate_facts
    program_ids = engine.program_ids
    units: dict[str, list] = {name: [] for name in UNITS}
    indexes, partner_ids, periods, ranks, places, missings = units.values()
    out = _Evaluated()
    pending: list[tuple[Unit, int, PayoutResult]] = []

    def render() -> None:
        if plan:
            for _, _, result in pending:
                plan.apply(result)
        out.rows.append(rows_of(pending, texts=texts, first_ref=len(out.results)))
        if not texts:
            out.results += [result for _, _, result in pending]
        pending.clear()

    for index, record, row, history in records_to_compute(block, period, engine.reads_history):
        partner_id, period_label = row.partner_id, row.period
        keyed = bool(partner_id and period_label)
        results = evaluate(partner_id, period_label, row.facts, list(row.problems),
                           claims.of((partner_id, period_label)) if keyed else (), history)
        unit = Unit(index, partner_id, period_label, KEYED if keyed else UNKEYED)
        indexes.append(index)
        partner_ids.append(partner_id)
        periods.append(period_label)
        ranks.append(unit.rank)
        places.append(place_text(record.line, None) if isinstance(record, FactRow) else place_text(None, index))
        missings.append([program_id for program_id in program_ids if program_id not in results] if keyed else [])
        pending += [(unit, result_at, result) for result_at, result in enumerate(results.values())]
        if len(pending) >= RESULTS_PER_CHUNK:
            render()
        counted.computed += 1
        if progress is not None:
            progress(counted.computed)
    render()
    out.units = pl.DataFrame(units, schema=UNITS)
    return out


def _partly_per_record(engine: RunEngine, partly: list[tuple[FactRow, list[str]]], claims: BlockClaims, *,
                       texts: bool, plan: BudgetPlan | None) -> pl.DataFrame:
    """The rows of the programs the columnar engine left to this path for records whose other programs it
    computed (each record's unit is theirs; ``plan``: the budgets applied first)."""
    made: list[tuple[Unit, int, PayoutResult]] = []
    orders: dict[str, dict[str, int]] = {}  # each period's programs by their place in a record's results
    for row, program_ids in partly:
        key = (row.partner_id, row.period)
        results = engine.evaluate_facts(row.partner_id, row.period, row.facts, list(row.problems),
                                        claims.of(key), only=program_ids)
        order = orders.get(row.period)
        if order is None:
            order = orders[row.period] = {program_id: at for at, (program_id, _, _)
                                          in enumerate(engine.versions_in(row.period))}
        unit = Unit(row.line, row.partner_id, row.period, KEYED)
        for program_id, result in results.items():
            if plan:
                plan.apply(result)
            made.append((unit, order[program_id], result))
    return rows_of(made, texts=texts)


def _resolved(engine: RunEngine, evaluated: _Evaluated, claims: BlockClaims, counted: _Pass, texts: bool, *,
              keep_results: bool) -> tuple[pl.DataFrame, list[PayoutResult]]:
    """One block's results resolved (see :func:`resolve_block`) in output order, with (``keep_results``) the
    results in that order."""
    resolution = resolve_block(evaluated.units, claims, engine)
    for key, count in resolution.coverage.items():
        counted.coverage[key] = counted.coverage.get(key, 0) + count
    frames = [frame.filter(~pl.col("index").is_in(resolution.dropped)) for frame in evaluated.rows] \
        if resolution.dropped else list(evaluated.rows)
    made = [(unit, result_at, result) for unit, results in resolution.made
            for result_at, result in enumerate(results.values())]
    results = evaluated.results
    frames.append(rows_of(made, texts=texts, first_ref=len(results)))
    rows = in_output_order(frames)
    if not keep_results:
        return rows, []
    results = results + [result for _, _, result in made]
    return rows, [results[ref] for ref in rows[REF]]


def _columnar(engine: RunEngine, facts: Iterable[Record] | str | os.PathLike[str] | None,
              joined: ComputedFacts | None) -> ColumnarEngine | None:
    """The columnar engine for ``facts``, when it can compute them: a CSV file, programs that read no earlier
    periods (a partner's history is read per record). ``joined``: computed facts joined to its rows, which its
    per-record path reads after the file's own."""
    if not isinstance(facts, (str, os.PathLike)) or Path(facts).suffix.lower() != ".csv" or engine.reads_history:
        return None
    header = fact_columns(facts)
    return ColumnarEngine(engine.versions_in, csv_row_reader([*header, *(joined.names if joined is not None else [])]),
                          engine.mdf_program_ids)


def with_measures(facts: Iterable[Record] | str | os.PathLike[str] | None,
                  measured: MeasuredFacts) -> Iterator[FactRow]:
    """The records of ``facts`` (a facts file, records, or ``None``: none) with the measures joined."""
    if facts is None:
        return joined_rows((), measured.computed)
    if isinstance(facts, (str, os.PathLike)):
        check_no_clash(fact_columns(facts), measured.computed, os.fspath(facts))
        return joined_rows(read_facts(facts), measured.computed, facts=os.fspath(facts))
    return joined_rows((record if isinstance(record, FactRow) else fact_row(record) for record in facts),
                       measured.computed)


def _counting(numbered: Iterator[Numbered], counted: _Pass) -> Iterator[Numbered]:
    for item in numbered:
        counted.read += 1
        yield item


def _write_file(texts: pl.DataFrame, handle: BinaryIO) -> None:
    """A block's texts for one file (``texts``: one column) written to it, then to disk.

    The run is flushed to disk before it is switched in (:meth:`OutputFolder.commit`); flushing each block as
    it is written lets the disk work while the next blocks are computed, rather than all at the end (1M × 3
    programs: 3 GB, the last of it seconds to flush)."""
    _write_texts(texts, handle)
    handle.flush()
    _flush_to_disk(handle.fileno())


def _write_texts(texts: pl.DataFrame, handle: BinaryIO) -> None:
    """Each row's text of the one column of ``texts`` (line ends included) written as it is, in UTF-8: polars
    writes it without quotes or separators straight to the file (4.5 times faster than into memory first and
    then by Python), with no Python string of the whole block in between; in batches of 16,384 rows (the
    default 1,024 took 0.21 s for a 100k block's 158 MB of texts, against 0.065 s)."""
    handle.flush()  # what Python holds of the file goes first
    try:
        texts.write_csv(handle, include_header=False, quote_style="never", line_terminator="", batch_size=16384)
    except OSError as error:
        raise _os_error(error) from None


def _os_error(error: OSError) -> OSError:
    """``error`` with its ``errno``: polars tells an error of the system as text only (``File too large (os
    error 27)``), and a full disk is to be told as the system words it (``cannot write to OUT: File too
    large``)."""
    found = _OS_ERROR.search(str(error))
    if error.errno is not None or found is None:
        return error
    number = int(found.group(1))
    return OSError(number, os.strerror(number))


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


#: only the data, not the file's times (where the system has it: not macOS, not Windows)
_flush_to_disk = getattr(os, "fdatasync", os.fsync)


def _written_results(path: Path) -> Iterator[PayoutResult]:
    """The results of a run's ``results.jsonl``, as written (final totals, budgets applied), in order."""
    with open(path, "rb") as handle:
        for line in handle:
            yield PayoutResult.model_validate_json(line)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: The unit of results tallied after the run (their order is already the output order).
_NO_UNIT = Unit(0, "", "", KEYED)
