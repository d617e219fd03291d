"""The columnar engine in a run: a block of facts computed by columns, what it cannot so computed per record.

A block (:class:`~incentives.columnar.facts.FactBlock`, whole partners) is
split by period label; for each label every program version the engine would
use (:meth:`Engine.versions_in`) computes the block by columns
(:class:`~incentives.columnar.program.ProgramByColumns`). A program the columns
refuse, or a record one of them cannot compute exactly (a missing fact, a
negative step...), is computed per record for that program alone
(:meth:`Engine.evaluate_facts` with ``only``; a program that uses it goes with
it, its used values being unknown by columns), the record's other programs
staying by columns. A whole record goes per record — read again from its cells,
exactly as the per-record engine computes it — for a cell the columns cannot
hold, a version chosen per record, a claim naming no loaded MDF program, or
when no program of its label computed it by columns. So the files are the same
bytes. A record's claims are routed to their MDF programs as the per-record
engine routes them (:meth:`Engine.route_claims`: a claim goes to the MDF program it names, or to the only
one loaded; naming none with several loaded, to each with a problem), by columns, and each MDF program computes
its records' claims by columns
(:class:`~incentives.claims_by_columns.ClaimsByColumns`). How many records went
per record, and why, is told in the run's summary (never in ``run.json``, which
is the same whichever engine ran).
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Mapping, Sequence

import polars as pl

from ..claims_by_columns import NEEDS_RECORD, PROGRAM_ID, ClaimsByColumns
from ..columnar.facts import LINE, PER_RECORD, FactBlock
from ..columnar.program import (BY_COLUMNS, LINES, LINE_ROWS, PAYOUT_ROW, PROGRAM_VERSION, RESULT_JSON, STATUS, TIER,
                                Prepared, ProgramByColumns)
from ..compiler import CompiledProgram
from ..inputs import PARTNER_ID, PERIOD, FactRow
from ..kinds.block import TOTAL
from ..periods import Period
from ..rules.columns import NotByColumns
from ..run_rules import NO_MDF_PROGRAM
from .claims import BlockClaims
from .resolve import KEYED, UNITS, BudgetPlan
from .rows import KEYS, TEXTS

#: Why a record went per record, when no program refused it: what the run's summary says.
CELLS = "a cell the columns cannot hold exactly (or no partner_id or period)"
CHOSEN_PER_RECORD = "a program version chosen per record for its period (an error row, no version, history)"
UNROUTED_CLAIMS = "a claim naming a program that is not a loaded MDF program (or no MDF program is loaded)"
NOT_BY_COLUMNS = "a value computed per record (a missing fact, a negative step, an amount beyond 128 bits)"
#: The program a claim goes to, as it is routed.
_TARGET = "claims#target"
#: Said of the records one program of which went per record, their other programs by columns.
ALONE = "{program} alone (the records' other programs by columns): {why}"


class ColumnarEngine:
    """The run's programs by columns, compiled once each (see the module docstring)."""

    def __init__(self, versions_in: Callable[[str], list[tuple[str, CompiledProgram | None, Period | None]]],
                 read_row: Callable[[int, list[str]], FactRow],
                 mdf_ids: Sequence[str]):
        """``mdf_ids``: the MDF programs loaded, in evaluation order. (With a ledger, an MDF program has no
        version by columns, :meth:`Engine.versions_in`: its funds' opening balances and the claims already
        paid are the ledger's, read per record.)"""
        self._versions_in = versions_in
        self._read_row = read_row
        self._mdf_ids = list(mdf_ids)
        self._compiled: dict[tuple[str, int], ProgramByColumns | str] = {}
        #: records computed per record, by why
        self.per_record: Counter[str] = Counter()
        self._kept: _KeptNumbers | None = None

    def keep_numbers(self, folder: Path) -> None:
        """From now on, a first pass over the budgets (``evaluate`` with ``only``) keeps each block's numbers
        before the budgets in ``folder``, and the second pass (``evaluate`` with a plan), given the same
        blocks in the same order, ends them rather than computing them again (:class:`Prepared`): at 100k
        and 1M benchmark records, the budgeted goal program's numbers were a tenth of the run."""
        self._kept = _KeptNumbers(folder)

    def evaluate(self, block: FactBlock, claims: BlockClaims | None, plan: BudgetPlan | None, *,
                 only: Collection[str] | None = None
                 ) -> tuple[pl.DataFrame, list[FactRow], list[tuple[FactRow, list[str]]]]:
        """``block``'s results by columns (rows of :data:`~incentives.runs.rows.KEYS` and texts, with their
        units), the records to compute per record, as read, and the records some of whose programs are to be
        computed per record (their others were computed by columns), with those programs. ``claims``:
        the claims of the block's partners; ``plan``: the budgets, whose lines close the results they
        scale. ``only``: the programs to compute (and their results' keys only, no texts): a run's first pass,
        over its budgets."""
        frame = block.frame
        needs_record = frame[PER_RECORD]
        self._count(CELLS, int(needs_record.sum()))
        routed = self._routed(claims) if claims else None
        if routed is not None:
            unrouted = frame.select(pl.struct(PARTNER_ID, PERIOD).is_in(routed.unrouted.implode()).alias("unrouted")) \
                .to_series() & ~needs_record
            self._count(UNROUTED_CLAIMS, int(unrouted.sum()))
            needs_record = needs_record | unrouted
        results: list[pl.DataFrame] = []
        partial: list[tuple[int, list[str]]] = []  # (line, programs)
        kept = self._kept.block(_extent(frame[LINE]), first_pass=only is not None) if self._kept is not None else None
        labels = frame.filter(~needs_record)[PERIOD].unique(maintain_order=True).to_list()
        for label in labels:
            in_label = (frame[PERIOD] == label) & ~needs_record
            part = block.rows(in_label)
            label_claims = routed.of(part.frame[PARTNER_ID], label) if routed is not None else {}
            computed, label_rows, label_partial = self._label(part, label, plan, only, label_claims, kept)
            results += label_rows
            lines_of_part = part.frame[LINE]
            partial += [(lines_of_part[at], program_ids) for at, program_ids in label_partial.items()]
            needs_record = _set(needs_record, in_label, ~computed)
        per_record = self._read_rows(block, needs_record)
        partial_rows = self._read_rows(block, frame[LINE].is_in(pl.Series([line for line, _ in partial],
                                                                          dtype=pl.Int64).implode()))
        programs_of = dict(partial)
        return (pl.concat(results, how="vertical") if results else pl.DataFrame(schema={**KEYS, **TEXTS}),
                per_record, [(row, programs_of[row.line]) for row in partial_rows])

    def _read_rows(self, block: FactBlock, rows: pl.Series) -> list[FactRow]:
        """The records of ``block`` where ``rows`` holds, read again from their cells, in the block's order."""
        lines = block.frame.filter(rows)[LINE].to_list()
        return [self._read_row(line, list(cells)) for line, cells in zip(lines, block.cells.filter(rows).iter_rows())]

    def _routed(self, claims: BlockClaims) -> _RoutedClaims:
        """The block's claims routed to their MDF programs as the per-record engine routes a record's
        (:meth:`Engine.route_claims`), by columns."""
        frame = claims.by_columns.frame
        mdf_ids = self._mdf_ids
        unnamed_to = mdf_ids if len(mdf_ids) > 1 else mdf_ids or [NO_MDF_PROGRAM]
        named = pl.col(PROGRAM_ID)
        # a claim naming no program, with several MDF programs loaded, goes to each with a problem: per record
        targets = frame.with_columns(
            (pl.col(NEEDS_RECORD) | (named.is_null() & (len(mdf_ids) > 1))).alias(NEEDS_RECORD),
            pl.when(named.is_null()).then(pl.lit(unnamed_to, pl.List(pl.String))).otherwise(pl.concat_list(named))
            .alias(_TARGET)).explode(_TARGET)
        to_mdf = pl.col(_TARGET).is_in(mdf_ids)
        unrouted = targets.filter(~to_mdf).select(pl.struct(PARTNER_ID, PERIOD)).to_series().unique()
        routed = targets.filter(to_mdf)
        return _RoutedClaims(unrouted, {
            program_id: ClaimsByColumns(routed.filter(pl.col(_TARGET) == program_id).drop(_TARGET),
                                        claims.by_columns.amount_scale, claims.by_columns.amount_bound)
            for program_id in routed[_TARGET].unique(maintain_order=True).to_list()})

    def _label(self, part: FactBlock, label: str, plan: BudgetPlan | None, only: Collection[str] | None,
               claims: Mapping[str, ClaimsByColumns], kept: _BlockNumbers | None
               ) -> tuple[pl.Series, list[pl.DataFrame], dict[int, list[str]]]:
        """The rows of one period label: whether each was computed by columns (all its programs, or some), the
        results computed so, and for a row some of whose programs were not, those programs (by the row's
        position in ``part``): they are computed per record. ``claims``: the claims of the label's partners by
        the MDF program they go to; ``kept``: the block's numbers kept by a first pass over the budgets (to
        keep, or to end)."""
        height = part.frame.height
        none = pl.Series([False] * height)
        order = {program_id: at for at, (program_id, _, _) in enumerate(self._versions_in(label))}
        # a version chosen per record (an error row, no version) sends the label per record
        chosen: list[tuple[str, CompiledProgram, Period, ProgramByColumns | str]] = []
        for program_id, compiled, period in self._versions_in(label):
            if only is not None and program_id not in only:
                continue
            if compiled is None or period is None:
                self._count(CHOSEN_PER_RECORD, height)
                return none, [], {}
            chosen.append((program_id, compiled, period, self._program(compiled)))
        # each program by columns where it can: one the columns refuse (or a row one flags) is computed per
        # record for those rows alone, and so is a program that uses it there (its used values are unknown)
        frames: dict[str, pl.DataFrame] = {}
        computed: dict[str, pl.Series] = {}
        refused: dict[str, tuple[str, str]] = {}  # the program (and version), why
        for entry in chosen:
            program_id, compiled, _, _ = entry
            outcome = self._evaluated(entry, part, label, plan, only, claims.get(program_id), kept, frames)
            if isinstance(outcome, str):
                refused[program_id] = (f"{program_id} v{compiled.version}", outcome)
            else:
                frames[program_id] = outcome
                computed[program_id] = outcome[BY_COLUMNS]
        by_columns = pl.Series([False] * height)
        for rows in computed.values():
            by_columns = by_columns | rows
        if not computed:
            for name, why in dict.fromkeys(refused.values()):
                self._count(f"{name}: {why}", height)
            return none, [], {}
        self._count(NOT_BY_COLUMNS, int((~by_columns).sum()))
        partial: dict[int, list[str]] = {}
        for program_id, _, _, _ in chosen:
            rows = computed.get(program_id)
            left = by_columns if rows is None else by_columns & ~rows
            positions = left.arg_true().to_list()
            for at in positions:
                partial.setdefault(at, []).append(program_id)
            if positions:
                name, why = refused.get(program_id, (program_id, NOT_BY_COLUMNS))
                self._count(ALONE.format(program=name, why=why), len(positions))
        results = []
        for program_id, compiled, _, _ in chosen:
            evaluated = frames.get(program_id)
            if evaluated is None:
                continue
            places = compiled.rounding.places
            texts = [pl.col(PAYOUT_ROW).alias("payout_row"), pl.col(LINE_ROWS).alias("line_rows"),
                     pl.col(RESULT_JSON).alias("result_json")] if only is None else []
            results.append(evaluated.filter(by_columns & computed[program_id]).select(
                pl.col(PARTNER_ID).alias("partner_id"), pl.col(PERIOD).alias("period"),
                pl.lit(program_id).alias("program_id"), pl.col(PROGRAM_VERSION).alias("program_version"),
                pl.col(STATUS).alias("status"), pl.col(TIER).alias("tier"),
                pl.col(TOTAL).cast(pl.Int128).alias("total_units"),
                # an ok total with a line has the program's places (0.00); with none, or not ok, it is Decimal 0
                pl.when((pl.col(STATUS) == "ok") & (pl.col(LINES) > 0)).then(pl.lit(-places)).otherwise(pl.lit(0))
                .cast(pl.Int32).alias("total_exponent"),
                pl.lit(None, pl.String).alias("total_text"), pl.lit(None, pl.List(pl.String)).alias("errors"),
                pl.lit(KEYED, pl.Int8).alias("rank"), pl.col(LINE).alias("index"),
                pl.lit(order[program_id], pl.Int32).alias("result_at"), *texts))
        return by_columns, results, partial

    def _evaluated(self, entry: tuple[str, CompiledProgram, Period, ProgramByColumns | str], part: FactBlock,
                   label: str, plan: BudgetPlan | None, only: Collection[str] | None, claims: ClaimsByColumns | None,
                   kept: _BlockNumbers | None, frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame | str:
        """One program's frame over the label's rows (``frames``: those of the programs before it), or why the
        columns refuse it."""
        program_id, compiled, period, program = entry
        if isinstance(program, str):
            return program
        budget = plan.by_columns(program_id, compiled.version, label) if plan else None
        try:
            prepared = kept.numbers(label, program_id) if kept is not None else None
            if prepared is None:
                prepared = program.prepare(
                    part, period, used={used_id: frames[used_id] for used_id in compiled.uses if used_id in frames},
                    claims=claims)
                if kept is not None and only is not None:  # the first pass over the budgets
                    prepared = kept.keep(label, program_id, prepared)
            return program.finish(prepared, budget=budget, texts=only is None)
        except NotByColumns as reason:
            return str(reason)

    def _program(self, compiled: CompiledProgram) -> ProgramByColumns | str:
        """The program by columns, or why the columns refuse it."""
        key = (compiled.id, compiled.version)
        program = self._compiled.get(key)
        if program is None:
            try:
                program = ProgramByColumns(compiled)
            except NotByColumns as refused:
                program = str(refused)
            self._compiled[key] = program
        return program

    def _count(self, reason: str, records: int) -> None:
        if records:
            self.per_record[reason] += records


class _KeptNumbers:
    """The numbers a run's first pass over its budgets computed, block by block, kept on disk in ``folder``
    (Arrow IPC, one file a program and label) until its second pass ends them: a block's files are removed
    once the next block is ended (what is left goes with the run's scratch folder)."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._blocks: deque[_BlockNumbers] = deque()
        self._ended: list[Path] = []
        self._files = itertools.count(1)

    def block(self, extent: tuple[int, int | None], *, first_pass: bool) -> _BlockNumbers:
        """The numbers of the block of rows of ``extent`` (:func:`_extent`): new ones to keep (``first_pass``),
        else those the first pass kept for it (the second pass gives the same blocks in the same order)."""
        if first_pass:
            kept = _BlockNumbers(self, extent)
            self._blocks.append(kept)
            return kept
        for path in self._ended:
            path.unlink(missing_ok=True)
        kept = self._blocks.popleft()
        assert kept.extent == extent, "the second pass over the budgets reads the first pass's blocks"
        self._ended = kept.paths
        return kept

    def file(self) -> Path:
        return self._folder / f"numbers-{next(self._files):06d}.arrow"


@dataclass
class _BlockNumbers:
    """One block's numbers before the budgets (:class:`Prepared`), by period label and program."""

    store: _KeptNumbers
    extent: tuple[int, int | None]
    prepared: dict[tuple[str, str], Prepared] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)

    def keep(self, label: str, program_id: str, prepared: Prepared) -> Prepared:
        """``prepared`` with its frame collected, as it goes on; kept on disk for the second pass. (Not read
        back from disk in the first pass: polars maps the file, and what a query reads of it stays mapped as
        long as the scan lives, here until the second pass: at 10M records, 4,142 MB PSS against 3,831.)"""
        collected = prepared.frame.collect()
        path = self.store.file()
        collected.write_ipc(path, compression="uncompressed")
        self.paths.append(path)
        self.prepared[label, program_id] = prepared.over(pl.scan_ipc(path))
        return prepared.over(collected.lazy())

    def numbers(self, label: str, program_id: str) -> Prepared | None:
        """The numbers the first pass kept of ``program_id`` over the block's rows of ``label`` (None: none, or
        none yet in the first pass, which computes each program of a label once)."""
        return self.prepared.get((label, program_id))


@dataclass(frozen=True)
class _RoutedClaims:
    """A block's claims routed: the (partner_id, period) keys with a claim that goes to no loaded MDF program (a
    Series of structs), and every other claim by the MDF program it goes to, in the run's order."""

    unrouted: pl.Series
    by_program: Mapping[str, ClaimsByColumns]

    def of(self, partner_ids: pl.Series, label: str) -> dict[str, ClaimsByColumns]:
        """The claims of ``partner_ids`` for the period ``label``, by program (the frames keep the run's scale
        and bound of amounts)."""
        rows = (pl.col(PERIOD) == label) & pl.col(PARTNER_ID).is_in(partner_ids.implode())
        return {program_id: claims.filter(rows) for program_id, claims in self.by_program.items()}


def _extent(lines: pl.Series) -> tuple[int, int | None]:
    """A block's rows as few numbers: how many, and the line of the first (None: no rows)."""
    first = lines.first() if lines.len() else None
    return lines.len(), None if first is None else int(first)


def units_by_columns(results: pl.DataFrame) -> pl.DataFrame:
    """The units (:data:`~incentives.runs.resolve.UNITS`) of the records computed by columns."""
    return results.select("index", "partner_id", "period", "rank").unique("index", maintain_order=True).select(
        "index", "partner_id", "period", "rank", pl.format("line {}", pl.col("index")).alias("place"),
        pl.lit([], pl.List(pl.String)).alias("missing")).cast(UNITS)


def _set(flags: pl.Series, where: pl.Series, values: pl.Series) -> pl.Series:
    """``flags`` with its rows where ``where`` holds replaced, in order, by ``values``."""
    out = flags.clone()
    out.scatter(where.arg_true(), values)
    return out
