"""Streaming runs: a whole partner base straight to ``payouts.csv``, ``lines.csv``, ``results.jsonl`` and
``run.json``.

:meth:`Engine.run` keeps every :class:`PayoutResult` in memory and
:func:`~incentives.output.files.write_run` renders each file as one string: fine for thousands of
partners, not for a million. :func:`run_to` (``Engine.run_to``) writes the same
files, byte for byte (``run_id`` and ``created_at`` aside), while keeping
a few numbers per result in memory:

1. Records are evaluated one at a time, exactly as ``Engine.run`` evaluates
   them, and each result is rendered at once — its ``payouts.csv`` row, its
   ``lines.csv`` rows, its ``results.jsonl`` line — into three *spill* files. In
   memory stay its program, status and byte lengths; per record its partner
   id, period and place (for duplicate messages); per program the sum of the
   totals; and, for results a budget may scale, their totals.
2. A large facts file (CSV without quotes, or JSON Lines) is cut at line
   boundaries and the parts are evaluated by worker processes, one per core
   (``workers``), each with its own spill files. A file not in partner_id
   order is first copied in that order (its lines keep their line numbers), so
   that the spill files come out in output order. When a program reads earlier
   periods (``prior.X``), the cuts are moved to partner boundaries, so that
   each worker reads all of a partner's records, one partner at a time.
3. The run is then resolved as ``Engine.run`` resolves it: claims without a
   record, the output order (partner_id, program_id, period), duplicate
   records, coverage notes, budgets (the same
   :class:`~incentives.kinds.steps.BudgetScale` lines, largest remainder).
4. The three files of results are written in output order by copying the rendered pieces
   out of the spill files, patching in budget lines and scaled totals, by one
   process per worker. When the records came in output order (a file sorted by
   partner_id, one record per partner), each copies its own spill files as
   they are; otherwise each writes a range of the output order, cut between
   partners, reading each partner's pieces where they lie (one read per
   partner and spill file). The parts are joined in the kernel. Then ``run.json``, the run's
   metadata, totals and counts, is written whole. The files (and the spill files)
   are written into a fresh folder that then replaces the output folder whole
   (:mod:`incentives.output.folder`).
"""

from __future__ import annotations

import codecs
import csv
import ctypes
import dataclasses
import functools
import io
import itertools
import json
import multiprocessing
import operator
import os
import pickle
import re
import shutil
import signal
import sys
import time
import uuid
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from json.encoder import encode_basestring as json_string
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from .errors import InputError
from .history import ReadCounter
from .inputs import FactRow
from .money import exact_add, exact_subtract, plain_amount
from .output.files import (LINE_COLUMNS, PAYOUT_COLUMNS, csv_head, csv_line, csv_text, result_json, result_rows,
                           run_json)
from .output.folder import OUTPUT_FILES, RESULTS_FILE, OutputFolder, run_inputs
from .payout_run import PayoutRun
from .result_parts import PayoutLine, new_line
from .results import PayoutResult, ProgramInfo
from .run_rules import (DUPLICATE_PLACES, Record, RunEngine, budget_note, coverage_text, duplicate_results,
                        group_claims, orphan_claim_results, unpack_record)
from .version import __version__

if TYPE_CHECKING:
    from .ledger.records import ProgramRecord, ResultRecord

__all__ = ["RunSummary", "run_to"]

_OK, _INELIGIBLE, _ERROR = 0, 1, 2
_STATUS = {"ok": _OK, "ineligible": _INELIGIBLE, "error": _ERROR}
_STATUS_NAMES = ("ok", "ineligible", "error")
_KEYED, _ORPHAN, _UNKEYED = 0, 1, 2

#: Below this size a facts file is evaluated in-process: starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 4 << 20
_RESULT_SERIALIZER = PayoutResult.__pydantic_serializer__
_LINE_SERIALIZER = PayoutLine.__pydantic_serializer__
# In a result's line of results.jsonl the lines array closes just before "total". Where it closes is found
# by length (see _lines_end), never by searching: a fact's name and value in a line's inputs may hold this text.
_LINES_END_TEXT = '],"total":"'
_LINES_END = _LINES_END_TEXT.encode()
_AFTER_LINES = {"total", "reasons", "errors", "details"}
_ERROR_SAMPLES = 50



@dataclass
class RunSummary:
    """What :func:`run_to` wrote, without the results themselves (they are in the files)."""

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
    workers: int
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

    @property
    def errors(self) -> int:
        """How many results are ``error`` (the CLI exits 3 when there are any)."""
        return sum(count.get("error", 0) for count in self.counts.values())


def run_to(engine: RunEngine, folder: str | os.PathLike[str], facts: Iterable[Record] | str | os.PathLike[str],
           claims: Iterable[Mapping[str, Any]] | str | os.PathLike[str] = (), *,
           facts_sha256: str | None = None, claims_sha256: str | None = None, force: bool = False,
           progress: Callable[[int], None] | None = None, workers: int | None = None,
           notes: Callable[[int], Iterable[str]] | None = None,
           record: Callable[[RunSummary, Iterator["ResultRecord"]], None] | None = None,
           ledger_programs: Mapping[tuple[str, int], "ProgramRecord"] | None = None,
           period: str | None = None) -> RunSummary:
    """Evaluate ``facts`` and write the run's files into ``folder``; see :meth:`Engine.run_to`.

    With ``record`` (and the ``ledger_programs`` it records results of), each result
    is also kept as a ledger :class:`~incentives.ledger.records.ResultRecord`, and
    ``record`` is called once the files are in place with the summary and those
    records in output order, final totals (budgets applied).
    """
    started = time.perf_counter()
    programs = engine.program_infos()
    inputs = run_inputs(((program.id, program.version, program.sha256) for program in programs), facts_sha256,
                        claims_sha256)
    # The folder is locked (and checked) before any record is evaluated, until the run is in place.
    with OutputFolder(folder, inputs, force=force) as output:
        if isinstance(claims, (str, os.PathLike)):
            from .inputs import read_claims

            claims = read_claims(claims)
        claims_by_key = group_claims(claims, period)
        del claims
        spill = output.scratch()
        recorded = ledger_programs if record is not None else None
        segments, used_workers = _evaluate_all(engine, facts, claims_by_key, spill, progress, workers, recorded,
                                               period)
        assembly = _Assembly(engine, segments, claims_by_key, spill, recorded)
        extra = engine.period_notes(period, assembly.read - assembly.records) if period is not None else []
        extra += list(notes(assembly.records)) if notes is not None else []
        summary = assembly.write(output.path, Path(folder), programs, facts_sha256, claims_sha256, notes=extra)
        output.commit()
        if record is not None:
            record(summary, assembly.ledger_results())
    summary.workers = used_workers
    summary.seconds = time.perf_counter() - started
    return summary


# --- evaluating records into spill files ----------------------------------------------------


class _Sums:
    """Per program: the sum of the totals (less budget candidates, kept apart) and the count per status."""

    def __init__(self) -> None:
        self.totals: dict[str, Decimal] = {}
        self.counts: dict[str, list[int]] = {}

    def merge(self, other: "_Sums") -> None:
        for program_id, counts in other.counts.items():
            mine = self.counts.get(program_id)
            if mine is None:
                mine = self.counts[program_id] = [0, 0, 0]
                self.totals[program_id] = Decimal(0)
            for status in range(3):
                mine[status] += counts[status]
            self.totals[program_id] = exact_add(self.totals[program_id], other.totals[program_id])


@dataclass
class _Segment:
    """One worker's (or the main process's) evaluated records: compact arrays plus spill files."""

    name: str
    records: int = 0
    read: int = 0  # with a period given: every record read, computed or not
    # per unit (one evaluated record, or a group of results made at the end); indexes and counts are
    # unsigned ints ("I"), never shorts: a bad file can hold more than 65,535 period labels, a claims file
    # as many program ids, and one duplicated record's unit gets a result per copy and program
    pids: list[str] = field(default_factory=list)
    periods: array = field(default_factory=lambda: array("I"))  # index into period_table
    period_table: list[str] = field(default_factory=list)
    kinds: bytearray = field(default_factory=bytearray)
    places: array = field(default_factory=lambda: array("q"))
    nres: array = field(default_factory=lambda: array("I"))
    missing: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # per result
    progs: array = field(default_factory=lambda: array("I"))  # index into program_table
    program_table: list[str] = field(default_factory=list)
    status: bytearray = field(default_factory=bytearray)
    len_pay: array = field(default_factory=lambda: array("I"))
    len_lines: array = field(default_factory=lambda: array("I"))
    len_json: array = field(default_factory=lambda: array("I"))
    sums: _Sums = field(default_factory=_Sums)
    # budget candidates: ok results of a program with a budget that pay something
    cand_result: array = field(default_factory=lambda: array("q"))
    cand_unit: array = field(default_factory=lambda: array("q"))
    cand_group: array = field(default_factory=lambda: array("I"))  # index into group_table
    group_table: list[tuple[str, int | None, str]] = field(default_factory=list)
    cand_nlines: array = field(default_factory=lambda: array("I"))
    cand_pay: array = field(default_factory=lambda: array("I"))  # where the total starts in the row
    cand_json: array = field(default_factory=lambda: array("I"))  # where the lines array closes
    cand_total: list[Decimal] = field(default_factory=list)
    cand_tier: list[str | None] = field(default_factory=list)
    matched: list[tuple[str, str]] = field(default_factory=list)
    error: tuple[str, str | None, int | None] | None = None
    # for the run's summary
    versions: dict[str, set] = field(default_factory=dict)
    partners: dict[str, int] = field(default_factory=dict)  # units with a result, per program
    by_tier: dict[tuple[str, str], list] = field(default_factory=dict)  # [count, total] less candidates
    errors: list[tuple[int, int, str, str, str, list[str]]] = field(default_factory=list)
    # for a ledger, when the run records into one: each result's record, in the segment's result order
    ledger_rows: list | None = None

    def spill(self, directory: Path, stream: str) -> Path:
        return directory / f"{self.name}.{stream}"

    def period(self, unit: int) -> str:
        return self.period_table[self.periods[unit]]

    def program(self, result: int) -> str:
        return self.program_table[self.progs[result]]


class _Renderer:
    """Renders evaluated records into a segment's spill files and compact arrays."""

    def __init__(self, engine: RunEngine, segment: _Segment, directory: Path, recorded: Mapping | None = None):
        self.engine = engine
        self.segment = segment
        # a ledger's record of each result (by program id and version: the program's ledger record)
        self.recorded = recorded
        if recorded is not None:
            segment.ledger_rows = []
        self.pay = open(segment.spill(directory, "pay"), "wb", buffering=1 << 20)
        self.lines = open(segment.spill(directory, "lines"), "wb", buffering=1 << 20)
        self.json = open(segment.spill(directory, "json"), "wb", buffering=1 << 20)
        # per program and version: its index in the program table, whether it has a budget, its counts
        self.programs: dict[tuple[str, int | None], tuple[int, bool, list[int]]] = {}
        self.program_index: dict[str, int] = {}
        self.period_index: dict[str, int] = {}
        self.group_index: dict[tuple[str, int | None, str], int] = {}
        self.orders: dict[tuple[str, ...], tuple[int, ...] | None] = {}

    def close(self) -> None:
        for handle in (self.pay, self.lines, self.json):
            handle.close()

    def unit(self, partner_id: str, period: str, kind: int, place: int, results: Mapping[str, PayoutResult],
             missing: tuple[str, ...] = ()) -> None:
        """One record's results (by key, as ``Engine.evaluate_facts`` returns them), in program_id order."""
        segment = self.segment
        keys = tuple(results)
        order = self.orders.get(keys, False)
        if order is False:  # the same programs come back for most records: sort their order once
            values = list(results.values())
            permutation = sorted(range(len(values)), key=lambda at: values[at].program_id)
            order = self.orders[keys] = tuple(permutation) if all(
                key == values[at].program_id for at, key in enumerate(keys)) else None
        values = list(results.values())
        ordered = [values[at] for at in order] if order is not None else sorted(values, key=_program_of)
        index = len(segment.pids)
        segment.pids.append(partner_id)
        segment.periods.append(_intern(period, self.period_index, segment.period_table))
        segment.kinds.append(kind)
        segment.places.append(place)
        segment.nres.append(len(ordered))
        if missing:
            segment.missing[index] = missing
        if ordered:
            self._results(ordered, index)

    def _results(self, ordered: list[PayoutResult], unit: int) -> None:
        """Render one unit's results: their payouts.csv and lines.csv rows and results.jsonl lines."""
        segment = self.segment
        programs, partners, totals, by_tier = self.programs, segment.partners, segment.sums.totals, segment.by_tier
        progs, statuses, len_pay, len_lines, len_json = (segment.progs, segment.status, segment.len_pay,
                                                        segment.len_lines, segment.len_json)
        pay_texts, line_texts, json_texts = [], [], []
        seen = None
        for result in ordered:
            values = result.__dict__
            status = values["status"]
            total = values["total"]
            program_id = values["program_id"]
            version = values["program_version"]
            known = programs.get((program_id, version))
            if known is None:
                known = self._program(program_id, version)
            program, budget, counts = known
            pay, lines = result_rows(result)
            pay, lines = pay.encode(), lines.encode()
            json_text = result_json(result)
            code = _STATUS[status]
            counts[code] += 1
            if status == "ok" and budget and total > 0:
                self._candidate(result, unit, len(statuses), pay, _lines_end(result, json_text))
            else:
                totals[program_id] = exact_add(totals[program_id], total)
                if status == "ok":
                    tier = values["tier"]
                    if tier is not None:
                        paid = by_tier.get((program_id, tier))
                        if paid is None:
                            by_tier[(program_id, tier)] = [1, total]
                        else:
                            paid[0] += 1
                            paid[1] = exact_add(paid[1], total)
                elif status == "error" and len(segment.errors) < _ERROR_SAMPLES:
                    segment.errors.append((unit, len(statuses), values["partner_id"], values["period"],
                                           program_id, list(values["errors"])))
            if program_id != seen:
                partners[program_id] = partners.get(program_id, 0) + 1
                seen = program_id
            progs.append(program)
            statuses.append(code)
            len_pay.append(len(pay))
            len_lines.append(len(lines))
            len_json.append(len(json_text))
            pay_texts.append(pay)
            line_texts.append(lines)
            json_texts.append(json_text)
        self.pay.write(b"".join(pay_texts))
        self.lines.write(b"".join(line_texts))
        self.json.write(b"".join(json_texts))
        if self.recorded is not None:
            from .ledger.runs import result_record

            recorded = self.recorded
            segment.ledger_rows += [result_record(result, recorded.get((result.program_id, result.program_version)))
                                    for result in ordered]

    def _program(self, program_id: str, version: int | None) -> tuple[int, bool, list[int]]:
        """A program version met for the first time: its index, whether it has a budget and its counts per
        status (the segment's); its version is noted."""
        segment = self.segment
        program = _intern(program_id, self.program_index, segment.program_table)
        compiled = self.engine.program_version(program_id, version)
        sums = segment.sums
        counts = sums.counts.get(program_id)
        if counts is None:
            counts = sums.counts[program_id] = [0, 0, 0]
            sums.totals[program_id] = Decimal(0)
        known = self.programs[(program_id, version)] = (
            program, compiled is not None and compiled.budget is not None, counts)
        segment.versions.setdefault(program_id, set()).add(version)
        return known

    def _candidate(self, result: PayoutResult, unit: int, number: int, pay: bytes, lines_end: int) -> None:
        """An ok result of a program with a budget that pays something: the budget may scale it."""
        segment = self.segment
        values = result.__dict__
        program_id, version, total = values["program_id"], values["program_version"], values["total"]
        # the total column starts where the row's last two cells (total, currency) do
        tail = f'{plain_amount(total, values["details"].get("places", 2))},{csv_text(values["currency"] or "")}\n'
        group = _intern((program_id, version, values["period"]), self.group_index, segment.group_table)
        segment.cand_result.append(number)
        segment.cand_unit.append(unit)
        segment.cand_group.append(group)
        segment.cand_nlines.append(len(values["lines"]))
        segment.cand_pay.append(len(pay) - len(tail.encode()))
        segment.cand_json.append(lines_end)
        segment.cand_total.append(total)
        segment.cand_tier.append(values["tier"])


def _lines_end(result: PayoutResult, text: bytes) -> int:
    """Where the lines array of ``result`` closes in ``text``, its line of results.jsonl: before the fields
    after the lines, whose JSON object (``{"total":...}``) is as long as they are with their comma."""
    at = len(text) - 1 - len(_RESULT_SERIALIZER.to_json(result, include=_AFTER_LINES)) - 1
    if text[at:at + len(_LINES_END)] != _LINES_END:
        raise RuntimeError("a result's JSON does not end with its lines, then its total")
    return at


def _intern(key: Any, index: dict[Any, int], table: list[Any]) -> int:
    """``key``'s position in ``table``, appended on first sight (``index`` maps keys to positions)."""
    at = index.get(key)
    if at is None:
        at = index[key] = len(table)
        table.append(key)
    return at


def _program_of(result: PayoutResult) -> str:
    return result.program_id


def _place(record: Any, index: int) -> int:
    """Where a record came from, as an int: its line (> 0), 0 for a FactRow without one, -index for API records."""
    if isinstance(record, FactRow):
        return record.line if record.line is not None else 0
    return -index


def _place_text(place: int) -> str:
    if place > 0:
        return f"line {place}"
    return "line None" if place == 0 else f"record {-place}"


def _evaluate_records(engine: RunEngine, records: Iterable[Record], claims_by_key: Mapping[tuple[str, str], list],
                      renderer: _Renderer, progress: Callable[[int], None] | None, first_index: int = 1, *,
                      period: str | None = None, grouped: bool = False) -> None:
    """``Engine.run``'s loop over records, rendering each record's results as it goes; ``period`` and
    ``grouped`` as for :meth:`Engine.records_to_compute`."""

    segment = renderer.segment
    programs = engine.program_ids
    evaluate = engine.evaluate_facts
    unit = renderer.unit
    counter = ReadCounter()
    if period is not None:
        records = counter.counting(records)
    for index, record, history in engine.records_to_compute(records, period, grouped=grouped,
                                                            first_index=first_index):
        partner_id, period_label, facts, problems = unpack_record(record)
        if not partner_id or not period_label:
            unit(partner_id, period_label, _UNKEYED, _place(record, index),
                 evaluate(partner_id, period_label, facts, problems, (), history))
        else:
            key = (partner_id, period_label)
            claims = claims_by_key.get(key, ())
            if claims:
                segment.matched.append(key)
            results = evaluate(partner_id, period_label, facts, problems, claims, history)
            missing = tuple(program_id for program_id in programs if program_id not in results)
            unit(partner_id, period_label, _KEYED, _place(record, index), results, missing)
        segment.records += 1
        if progress is not None:
            progress(index)
    segment.read = counter.read


# --- splitting a CSV facts file over worker processes ---------------------------------------


def _split_lines(path: Path, parts: int, *, csv_header: bool) -> list[tuple[int, int, int]] | None:
    """``(start, end, lines before start)`` byte ranges of ``path`` cut after a ``\\n``, or None.

    A CSV file (``csv_header``: its first line is the header, never in a part)
    is split only when it holds no double quote: then every line break ends a
    record, so each part parses exactly as it would in one pass. A JSON Lines
    file is one record per line whatever it holds (a JSON value cannot contain
    a raw line break). Lines are counted as the csv module and universal
    newlines count them (``\\r\\n``, ``\\r`` and ``\\n`` each end one).
    """
    size = path.stat().st_size
    targets = [size * part // parts for part in range(1, parts)]
    cuts: list[int] = []
    breaks: list[int] = []
    counted = 0  # line breaks before ``position``
    position = 0
    previous_cr = False
    header_end = -1 if csv_header else None  # None: no header, the first part starts at byte 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 24)
            if not chunk:
                break
            if csv_header and b'"' in chunk:
                return None  # quoted fields may hold line breaks: read in one pass
            if chunk.count(b"\r") != chunk.count(b"\r\n"):
                return None  # lone \r line ends: read in one pass
            if header_end is not None and header_end < 0:
                at = chunk.find(b"\n")
                if at >= 0:
                    header_end = position + at
                    if not chunk[:at].rstrip(b"\r").strip(b","):
                        return None  # a blank first line: the header is further down
            while targets and (header_end is None or header_end >= 0):
                wanted = max(targets[0], 0 if header_end is None else header_end + 1, cuts[-1] if cuts else 0)
                if wanted >= position + len(chunk):
                    break
                at = chunk.find(b"\n", wanted - position)
                if at < 0:
                    break
                cut = position + at + 1
                targets.pop(0)
                if cut < size and (not cuts or cut > cuts[-1]):
                    cuts.append(cut)
                    breaks.append(counted + _line_breaks(chunk[:at + 1], previous_cr))
            counted += _line_breaks(chunk, previous_cr)
            previous_cr = chunk.endswith(b"\r")
            position += len(chunk)
    if header_end is None:
        if not cuts:
            return None
        starts, lines_before = [0, *cuts], [0, *breaks]
    else:
        if header_end < 0 or not cuts:
            return None
        starts = [header_end + 1, *cuts]
        lines_before = [_header_lines(path, header_end), *breaks]
    ends = [*cuts, size]
    return [(start, end, lines) for start, end, lines in zip(starts, ends, lines_before) if end > start]


def _line_breaks(data: bytes, after_cr: bool = False) -> int:
    """Line breaks in ``data`` (``\\r\\n`` once); ``after_cr``: the bytes before it ended with ``\\r``."""
    count = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    if after_cr and data.startswith(b"\n"):
        count -= 1  # this \\n completes a \\r\\n counted with the previous chunk
    return count


def _header_lines(path: Path, header_end: int) -> int:
    with open(path, "rb") as handle:
        return _line_breaks(handle.read(header_end + 1))


def _csv_range(path: Path, start: int, end: int, lines_before: int,
               numbers: Sequence[int] | None = None) -> Iterator[FactRow]:
    """The facts rows in bytes ``start:end`` of a quote-free CSV file, as ``read_facts`` reads them;
    ``numbers``: the line number of each line in the file it was copied from (see :func:`_in_partner_order`)."""
    from .inputs import PARTNER_ID, PERIOD, _check_width, _csv_fact_row, _csv_header, _open_text

    file = str(path)
    with _open_text(path) as stream:
        header = _csv_header(_rows(csv.reader(stream, strict=True), file, 0), file, (PARTNER_ID, PERIOD))
    width = len(header)
    partner_at, period_at = header.index(PARTNER_ID), header.index(PERIOD)
    columns = [(at, name) for at, name in enumerate(header) if at not in (partner_at, period_at)]
    for line, cells in _rows(csv.reader(_range_text(path, start, end), strict=True), file, lines_before):
        if numbers is not None:
            line = numbers[line - 1]
        if len(cells) != width:
            _check_width(cells, width, file, line)
        yield _csv_fact_row(line, cells, partner_at, period_at, columns)


def _jsonl_range(path: Path, start: int, end: int, lines_before: int,
                 numbers: Sequence[int] | None = None) -> Iterator[FactRow]:
    """The facts records in bytes ``start:end`` of a JSON Lines file, as ``read_facts`` reads them;
    ``numbers``: as for :func:`_csv_range`."""
    from .inputs import _json_objects, fact_row

    for line, record in _json_objects(_range_text(path, start, end), str(path), lines_before):
        yield fact_row(record, line if numbers is None else numbers[line - 1])


_JSON_PARTNER = re.compile(rb'"partner_id"\s*:\s*"([^"\\]*)"')


def _in_partner_order(path: Path, directory: Path, csv_header: bool,
                      exact: bool = False) -> tuple[Path, array] | None:
    """The lines of a facts file that holds one record a line (see :func:`_split_lines`), copied into
    ``directory`` in partner_id order, and the line number in ``path`` of each line of the copy (0 for
    the header); None when they are in that order already.

    Workers given records in partner order write their spill files in output order, and then copy them
    into the three files as they are; records out of order would be read back one partner at a time.
    Sorting the lines costs about two seconds for a million records, reading out of order about twenty.
    The order is only a hint: the run resolves the output order itself (a partner id is read here
    without the reader's normalisation, unless ``exact``: see :func:`_partner_key`), and the same records in
    any order give the same files.
    """
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    if not lines[-1]:
        lines.pop()  # after the last line break
    head = lines[:1] if csv_header else []
    records = lines[len(head):]
    if not csv_header and records and records[0].startswith(codecs.BOM_UTF8):  # only the first byte may be one
        records[0] = records[0][len(codecs.BOM_UTF8):]
    keys = list(map(_partner_key(path, csv_header, exact), records))
    if all(map(operator.le, keys, itertools.islice(keys, 1, None))):
        return None
    order = sorted(range(len(records)), key=keys.__getitem__)
    del keys
    copy = directory / f"facts-in-partner-order{path.suffix}"
    with open(copy, "wb") as handle:
        handle.writelines(line + b"\n" for line in itertools.chain(head, map(records.__getitem__, order)))
    return copy, array("Q", [0] * len(head)) + array("Q", [at + 1 + len(head) for at in order])


def _partner_key(path: Path, csv_header: bool, exact: bool = False) -> Callable[[bytes], bytes | str]:
    """What sorts a line of a facts file by partner (see :func:`_in_partner_order`): its partner_id's bytes.

    ``exact``: the partner_id the reader gives, where the bytes may differ for one partner (in JSON, an
    escape, a number, spaces inside the quotes; in CSV, a space that is not ASCII around the cell): a run
    whose programs read earlier periods must not cut between two records of one partner. A quoted CSV file
    is never cut, so an unquoted cell is the reader's text.
    """
    if not csv_header:
        if exact:
            from .inputs import json_line_partner_id

            return json_line_partner_id
        return lambda line: found.group(1) if (found := _JSON_PARTNER.search(line)) else b""
    from .inputs import PARTNER_ID, PERIOD, _csv_header, _open_text

    with _open_text(path) as stream:  # a bad header fails here, naming the file, as read_facts would
        header = _csv_header(_rows(csv.reader(stream, strict=True), str(path), 0), str(path), (PARTNER_ID, PERIOD))
    at = header.index(PARTNER_ID)
    if exact:
        return lambda line: (line.split(b",", at + 1)[at].decode("utf-8", "replace").strip()
                             if line.count(b",") >= at else "")
    return lambda line: line.split(b",", at + 1)[at].strip() if line.count(b",") >= at else b""


def _at_partner_boundaries(path: Path, parts: list[tuple[int, int, int]],
                           key: Callable[[bytes], bytes | str]) -> list[tuple[int, int, int]]:
    """``parts`` of a file in partner order (see :func:`_split_lines`) with each cut moved forward past the
    lines of the partner it falls in, so that one worker reads all of a partner's records (its history)."""
    end = parts[-1][1]
    starts = [(parts[0][0], parts[0][2])]
    with open(path, "rb") as handle:
        for start, _, lines_before in parts[1:]:
            if start <= starts[-1][0]:
                continue  # the previous cut moved past this one
            partner = key(_line_before(handle, start))
            handle.seek(start)
            while start < end:
                line = handle.readline()
                if key(line.rstrip(b"\r\n")) != partner:
                    break
                start += len(line)
                lines_before += _line_breaks(line)
            if start < end:
                starts.append((start, lines_before))
    ends = [start for start, _ in starts[1:]] + [end]
    return [(start, stop, lines_before) for (start, lines_before), stop in zip(starts, ends)]


def _line_before(handle: Any, end: int) -> bytes:
    """The line that ends (with its line break) at byte ``end`` of ``handle``, without the break."""
    block = 1 << 16
    while True:
        begin = max(0, end - block)
        handle.seek(begin)
        data = handle.read(end - begin)
        at = data.rfind(b"\n", 0, len(data) - 1)
        if at >= 0 or begin == 0:
            return data[at + 1:].rstrip(b"\r\n")
        block *= 4


def _range_text(path: Path, start: int, end: int) -> io.StringIO:
    """Bytes ``start:end`` of a facts file as text, line endings kept as read (as ``_open_text`` reads them)."""
    with open(path, "rb") as raw:
        raw.seek(start)
        data = raw.read(end - start)
    try:
        text = data.decode("utf-8-sig" if start == 0 else "utf-8")  # a BOM can only open the file
    except UnicodeDecodeError:
        from .inputs import _first_bad_utf8_line

        raise InputError("the file is not UTF-8 text (save it as UTF-8)", str(path),
                         _first_bad_utf8_line(path)) from None
    del data
    return io.StringIO(text, newline="")


def _rows(reader: Any, file: str, lines_before: int) -> Iterator[tuple[int, list[str]]]:
    """``inputs._csv_rows`` starting after ``lines_before`` physical lines."""
    last = lines_before
    try:
        for cells in reader:
            start, last = last + 1, lines_before + reader.line_num
            if any(cells):
                yield start, cells
    except csv.Error as error:
        raise InputError(f"malformed CSV: {error}", file, last + 1) from None


def _worker(engine: RunEngine, read: Callable[..., Iterator[FactRow]], path: Path, part: tuple[int, int, int],
            claims_by_key: Mapping, directory: Path, name: str, counter: Any, connection: Any, parent: int,
            recorded: Mapping | None, period: str | None) -> None:
    segment = _Segment(name)
    try:
        _die_with_parent(parent)
        renderer = _Renderer(engine, segment, directory, recorded)
        step = 0

        def tick(index: int) -> None:
            nonlocal step
            step += 1
            if step == 1000:
                with counter.get_lock():
                    counter.value += step
                step = 0

        try:
            # a part holds all the records of its partners (see _at_partner_boundaries)
            _evaluate_records(engine, read(path, *part), claims_by_key, renderer, tick, period=period, grouped=True)
        finally:
            renderer.close()
        with counter.get_lock():
            counter.value += step
    except InputError as error:
        segment = _Segment(name, error=(error.problem.message, error.problem.file, error.problem.line))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which re-raises
        connection.send(("crash", f"{type(error).__name__}: {error}"))
        connection.close()
        return
    # the compact arrays go through a file: a pipe would hold the whole pickle in both processes
    with open(directory / f"{name}.segment", "wb") as handle:
        pickle.dump(segment, handle, protocol=pickle.HIGHEST_PROTOCOL)
    connection.send(("done", None))
    connection.close()


def _evaluate_all(engine: RunEngine, facts: Any, claims_by_key: Mapping, directory: Path,
                  progress: Callable[[int], None] | None, workers: int | None,
                  recorded: Mapping | None, period: str | None) -> tuple[list[_Segment], int]:
    """Every record evaluated into one spill segment per worker (or one in-process); ``recorded``: the
    programs whose results are also kept for a ledger (see :func:`run_to`); ``period``: the one period
    computed, if given (see :meth:`Engine.run`).

    When a program reads earlier periods, each worker is given whole partners, in partner order; a
    file that cannot be cut so is evaluated in-process."""
    if isinstance(facts, (str, os.PathLike)):
        path = Path(facts)
        parts = None
        suffix = path.suffix.lower()
        if suffix in (".csv", ".jsonl", ".ndjson"):
            wanted = workers if workers is not None else _cores()
            if wanted > 1 and path.is_file() and (workers is not None or
                                                   path.stat().st_size >= PARALLEL_MIN_BYTES):
                parts = _split_lines(path, wanted, csv_header=suffix == ".csv")
        if parts is not None and _fork_available():
            read: Callable[..., Iterator[FactRow]] = _csv_range if suffix == ".csv" else _jsonl_range
            csv_header = suffix == ".csv"
            in_order = _in_partner_order(path, directory, csv_header=csv_header, exact=engine.reads_history)
            # the same lines in another order: cut elsewhere, or not at all (a long line last, say)
            sorted_parts = _split_lines(in_order[0], wanted, csv_header=csv_header) if in_order else None
            if in_order is not None and sorted_parts is None and engine.reads_history:
                pass  # cut out of partner order, a partner's records could fall in two parts: read in-process
            elif in_order is None or sorted_parts is None:
                if engine.reads_history:
                    parts = _at_partner_boundaries(path, parts, _partner_key(path, csv_header, exact=True))
                return (_evaluate_parallel(engine, read, path, parts, claims_by_key, directory, progress, recorded,
                                           period), len(parts))
            else:
                copy, numbers = in_order
                if engine.reads_history:
                    sorted_parts = _at_partner_boundaries(copy, sorted_parts,
                                                          _partner_key(copy, csv_header, exact=True))
                try:
                    return (_evaluate_parallel(engine, functools.partial(read, numbers=numbers), copy, sorted_parts,
                                               claims_by_key, directory, progress, recorded, period),
                            len(sorted_parts))
                except InputError:
                    from .inputs import read_facts

                    for _ in read_facts(path):  # in file order: the file's first error, as one pass meets it
                        pass
                    raise
        from .inputs import read_facts

        records: Iterable[Any] = read_facts(path)
    else:
        records = facts
    segment = _Segment("main")
    renderer = _Renderer(engine, segment, directory, recorded)
    try:
        _evaluate_records(engine, records, claims_by_key, renderer, progress, period=period)
    finally:
        renderer.close()
    return [segment], 1


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _evaluate_parallel(engine: RunEngine, read: Callable[..., Iterator[FactRow]], path: Path,
                       parts: list[tuple[int, int, int]], claims_by_key: Mapping, directory: Path,
                       progress: Callable[[int], None] | None, recorded: Mapping | None,
                       period: str | None) -> list[_Segment]:
    from .inputs import PARTNER_ID, PERIOD, _csv_header, _open_text

    file = str(path)
    if read is _csv_range:
        with _open_text(path) as stream:  # a bad header fails here, in the parent, as read_facts would
            _csv_header(_rows(csv.reader(stream, strict=True), file, 0), file, (PARTNER_ID, PERIOD))
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    children = []
    for number, part in enumerate(parts):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_worker, name=f"incentives-run-{number}",
                                  args=(engine, read, path, part, claims_by_key, directory, f"w{number}", counter,
                                        send, os.getpid(), recorded, period),
                                  daemon=True)
        process.start()
        send.close()
        children.append((process, receive))
    segments: list[_Segment | None] = [None] * len(children)
    try:
        pending = dict(enumerate(children))
        while pending:
            for number, (process, receive) in list(pending.items()):
                if receive.poll(0.2 / len(pending)):
                    kind, payload = receive.recv()
                    if kind == "crash":
                        raise RuntimeError(f"a worker process failed: {payload}")
                    process.join()
                    with open(directory / f"w{number}.segment", "rb") as handle:
                        segments[number] = pickle.load(handle)
                    del pending[number]
                elif not process.is_alive() and not receive.poll():
                    raise RuntimeError(f"worker process {process.name} ended with exit code {process.exitcode}")
            if progress is not None:
                progress(counter.value)
    finally:
        _stop(children)
    failed = [segment.error for segment in segments if segment is not None and segment.error is not None]
    if failed:
        message, error_file, line = failed[0]  # the first part with an error holds the file's first error
        raise InputError(message, error_file, line)
    if progress is not None:
        progress(sum(segment.records for segment in segments if segment is not None))
    return [segment for segment in segments if segment is not None]



# --- resolving the run and writing the files ------------------------------------------------


class _BudgetLines:
    """The budget lines of one :class:`BudgetScale`, rendered from a template cut out of pydantic's output.

    A probe line with sentinel values is serialised once; each candidate's line
    is then the template with its own n, basis, amount and formula. The first
    lines are checked against pydantic's own rendering; on any difference the
    template is dropped and pydantic renders every line.
    """

    CHECKS = 3

    def __init__(self, scale: Any):
        self.scale = scale
        self.rate_text = f"{scale.factor.normalize():f}"
        # the row's cells between n and basis: kind, rule_id, description
        self.row_middle = f",budget,budget,{csv_text(scale.description)},"
        self.checks = self.CHECKS
        probe = dict(scale.line(987654321, Decimal(1), Decimal(1)), basis=Decimal("111111111.111111111"),
                     amount=Decimal("-222222222.222222222"), formula="@@budget formula@@")
        text = self._pydantic(new_line(probe))
        sentinels = ("987654321", '"111111111.111111111"', '"-222222222.222222222"', '"@@budget formula@@"')
        parts, rest = [], text
        for sentinel in sentinels:
            before, found, rest = rest.partition(sentinel)
            if not found or sentinel in rest:
                self.parts = None
                return
            parts.append(before)
        self.parts = (*parts, rest)

    @staticmethod
    def _pydantic(line: PayoutLine) -> str:
        return "," + _LINE_SERIALIZER.to_json(line).decode()

    def patch(self, head: tuple[str, str, str], n: int, total: Decimal,
              new_total: Decimal) -> tuple[bytes, bytes, bytes, int, int]:
        """What a scaled result's texts take: its new total cell (payouts.csv), its budget row (lines.csv)
        and what follows its lines in results.jsonl (the budget line, the lines' end, the new total); with
        the lengths of what they replace: the old total cell, and the lines' end and old total in results.jsonl."""
        scale = self.scale
        places = scale.places
        adjustment = exact_subtract(new_total, total)
        formula = scale.formula(total, new_total, adjustment)
        parts = self.parts
        if parts is not None:
            line = (f'{parts[0]}{n}{parts[1]}"{total}"{parts[2]}"{adjustment}"{parts[3]}'
                    f'{json_string(formula)}{parts[4]}')
            if self.checks:
                self.checks -= 1
                if line != self._pydantic(new_line(scale.line(n, total, new_total))):
                    self.parts = None
        if self.parts is None:
            line = self._pydantic(new_line(scale.line(n, total, new_total)))
        row = (f"{csv_head(*head)}{n}{self.row_middle}{plain_amount(total, places)},{self.rate_text},"
               f"{plain_amount(adjustment, places)},{csv_text(formula)}\n")
        return (plain_amount(new_total, places).encode(), row.encode(),
                f"{line}{_LINES_END_TEXT}{new_total}".encode(),
                len(plain_amount(total, places)), len(_LINES_END) + len(str(total)))


class _Assembly:
    """Every segment's units and results, resolved as ``Engine.run`` resolves a run, then written out.

    Units (evaluated records, or results made here at the end) are numbered
    segment after segment, in file order.
    """

    def __init__(self, engine: RunEngine, segments: list[_Segment], claims_by_key: Mapping, directory: Path,
                 recorded: Mapping | None = None):
        self.engine = engine
        self.directory = directory
        self.recorded = recorded
        self.claims_by_key = claims_by_key
        self.records = sum(segment.records for segment in segments)
        self.read = sum(segment.read for segment in segments)
        self.segments: list[_Segment] = []
        self.unit_base: list[int] = []
        self.pids: list[str] = []
        self.unit_segment = array("I")
        for segment in segments:
            self._add(segment)
        self.record_segments = len(segments)
        self.record_units = len(self.pids)
        self.replaced: dict[int, int] = {}
        self.dropped: set[int] = set()
        self.duplicate_keys: set[tuple[str, str]] = set()
        self.order: list[int] | None = None  # None: the records' own order is the output order
        self.scales: list[_BudgetLines] = []

    def _add(self, segment: _Segment) -> None:
        number = len(self.segments)
        self.segments.append(segment)
        self.unit_base.append(len(self.pids))
        self.pids += segment.pids
        self.unit_segment += array("I", [number]) * len(segment.pids)

    def _local(self, unit: int) -> tuple[_Segment, int]:
        number = self.unit_segment[unit]
        return self.segments[number], unit - self.unit_base[number]

    # -- resolution --------------------------------------------------------------------------

    def resolve(self) -> list[str]:
        """Claims without a record, output order, duplicates, coverage and budgets; returns the notes."""
        engine = self.engine
        orphans = self._made("orphans", lambda renderer: [
            renderer.unit(key[0], key[1], _ORPHAN, 0, orphan_claim_results(key, key_claims, engine.mdf_program_ids))
            for key, key_claims in self.claims_by_key.items() if key not in self.matched()])
        pids = self.pids
        if orphans or not all(a < b for a, b in zip(pids, itertools.islice(pids, 1, self.record_units))):
            kinds = bytearray().join(segment.kinds for segment in self.segments[:len(self.segments) - 1])
            keyed = [unit for unit in range(self.record_units) if kinds[unit] == _KEYED]
            unkeyed = [unit for unit in range(self.record_units) if kinds[unit] != _KEYED]
            order = sorted([*keyed, *orphans, *unkeyed], key=pids.__getitem__)
            firsts: list[int] = []
            made = self._made("duplicates", lambda renderer: self._duplicates(order, renderer, firsts))
            self.replaced = dict(zip(firsts, made))
            self.order = [self.replaced.get(unit, unit) for unit in order if unit not in self.dropped]
        coverage: dict[tuple[str, str], int] = {}
        for number, segment in enumerate(self.segments):
            for local, programs in segment.missing.items():
                period = segment.period(local)
                if (segment.pids[local], period) in self.duplicate_keys:
                    continue
                for program_id in programs:
                    coverage[(program_id, period)] = coverage.get((program_id, period), 0) + 1
        return self._budgets() + coverage_text(coverage)

    def matched(self) -> set[tuple[str, str]]:
        if not hasattr(self, "_matched"):
            self._matched = {key for segment in self.segments for key in segment.matched}
        return self._matched

    def _made(self, name: str, make: Callable[[_Renderer], Any]) -> range:
        """Units rendered here at the end, into a segment of their own; their unit numbers."""
        segment = _Segment(name)
        renderer = _Renderer(self.engine, segment, self.directory, self.recorded)
        try:
            make(renderer)
        finally:
            renderer.close()
        first = len(self.pids)
        self._add(segment)
        return range(first, len(self.pids))

    def _duplicates(self, order: list[int], renderer: _Renderer, firsts: list[int]) -> None:
        """Records with the same partner and period: the first is replaced by error results, the rest dropped."""

        pids, record_units = self.pids, self.record_units
        count = len(order)
        at = 0
        while at < count:
            end = at + 1
            unit = order[at]
            if unit < record_units:
                partner = pids[unit]
                while end < count and order[end] < record_units and pids[order[end]] == partner:
                    end += 1
            if end - at > 1:
                by_period: dict[str, list[int]] = {}
                for other in order[at:end]:
                    segment, local = self._local(other)
                    if segment.kinds[local] == _KEYED:
                        by_period.setdefault(segment.period(local), []).append(other)
                for period, units in by_period.items():
                    if len(units) < 2:
                        continue
                    units.sort()
                    key = (pids[units[0]], period)
                    self.duplicate_keys.add(key)
                    places = [_place_text(segment.places[local])
                              for segment, local in map(self._local, units[:DUPLICATE_PLACES])]
                    renderer.unit(key[0], key[1], _KEYED, 0, duplicate_results(key, places, len(units), self.engine.program_ids))
                    firsts.append(units[0])
                    self.dropped.update(units[1:])
            at = end

    def _dead(self, unit: int) -> bool:
        return unit in self.dropped or unit in self.replaced

    def _budgets(self) -> list[str]:
        from .kinds.steps import scale_to_budget

        engine = self.engine
        groups: dict[tuple[str, int | None, str], list[tuple[str, int, int]]] = {}
        for number, segment in enumerate(self.segments):
            segment.cand_new = [None] * len(segment.cand_result)  # type: ignore[attr-defined]
            segment.cand_scale = array("i", [-1]) * len(segment.cand_result)  # type: ignore[attr-defined]
            base, pids, table = self.unit_base[number], segment.pids, segment.group_table
            dead = self.dropped or self.replaced
            for at, (unit, group) in enumerate(zip(segment.cand_unit, segment.cand_group)):
                if dead and self._dead(base + unit):
                    continue
                groups.setdefault(table[group], []).append((pids[unit], number, at))
        notes = []
        for key in sorted(groups, key=str):
            program_id, version, period = key
            compiled = engine.program_version(program_id, version)
            if compiled is None or compiled.budget is None:
                continue
            members = sorted(groups[key], key=_first)
            scaled = scale_to_budget([(pid, self.segments[number].cand_total[at]) for pid, number, at in members],
                                     compiled.budget, compiled.rounding.places)
            if scaled is None:
                continue
            scale, new_totals = scaled
            self.scales.append(_BudgetLines(scale))
            for (_, number, at), new_total in zip(members, new_totals):
                segment = self.segments[number]
                segment.cand_new[at] = new_total  # type: ignore[attr-defined]
                segment.cand_scale[at] = len(self.scales) - 1  # type: ignore[attr-defined]
            notes.append(budget_note(program_id, version, period, compiled, scale.factor))
        return notes

    # -- totals and counts -------------------------------------------------------------------

    def totals(self) -> tuple[dict[str, Decimal], dict[str, dict[str, int]]]:
        """Totals and counts per program, equal to ``_totals``/``_counts`` over the run's results.

        An exact sum of decimals is the same whatever the order, and its
        exponent is the least of its terms': so the
        segments' sums, plus the candidates' final totals, give the same Decimal.
        Duplicates take their first record's results out; then the totals are
        summed again from the rendered results, so that no exponent of a result
        taken out remains.
        """
        program_ids = self.engine.program_ids
        sums = _Sums()
        for program_id in program_ids:
            sums.counts[program_id] = [0, 0, 0]
            sums.totals[program_id] = Decimal(0)
        for segment in self.segments:
            sums.merge(segment.sums)
        for unit in [*self.dropped, *self.replaced]:
            segment, local = self._local(unit)
            for result in self._unit_results(segment, local):
                sums.counts[segment.program(result)][segment.status[result]] -= 1
        exact = not (self.dropped or self.replaced)
        if exact:
            for number, segment in enumerate(self.segments):
                for total, new_total, program in zip(segment.cand_total, segment.cand_new,  # type: ignore
                                                     (segment.progs[r] for r in segment.cand_result)):
                    program_id = segment.program_table[program]
                    sums.totals[program_id] = exact_add(sums.totals[program_id],
                                                        total if new_total is None else new_total)
            totals = sums.totals
        else:
            totals = {program_id: Decimal(0) for program_id in sums.totals}
            for number, result in self.ordered_results():
                segment = self.segments[number]
                program_id = segment.program(result)
                totals[program_id] = exact_add(totals[program_id], self._total_of(number, result))
        counts = {program_id: dict(zip(_STATUS_NAMES, sums.counts[program_id])) for program_id in sums.counts}
        in_order = self.engine.in_program_order
        return in_order(totals), in_order(counts)

    def _unit_results(self, segment: _Segment, local: int) -> range:
        starts = getattr(segment, "unit_starts", None)
        if starts is None:
            starts = segment.unit_starts = array("q", _running(segment.nres))  # type: ignore[attr-defined]
            starts.pop()  # the grand total: no unit starts there
        start = starts[local]
        return range(start, start + segment.nres[local])

    def _total_of(self, number: int, result: int) -> Decimal:
        """A result's final total (its scaled total when a budget applies): a budget candidate's is kept in
        memory; any other's is read back from its line of results.jsonl (a few numbers per result stay in
        memory, not every total: this is asked only when duplicates took results out)."""
        segment = self.segments[number]
        candidate = self._candidate_of(number).get(result)
        if candidate is not None and segment.cand_new[candidate] is not None:  # type: ignore[attr-defined]
            return segment.cand_new[candidate]  # type: ignore[attr-defined]
        if candidate is not None:
            return segment.cand_total[candidate]
        offsets = self._offsets(number)[2]
        with open(segment.spill(self.directory, "json"), "rb") as handle:
            handle.seek(offsets[result])
            text = handle.read(offsets[result + 1] - offsets[result])
        return Decimal(json.loads(text)["total"])

    def _candidate_of(self, number: int) -> dict[int, int]:
        segment = self.segments[number]
        known = getattr(segment, "candidate_of", None)
        if known is None:
            known = segment.candidate_of = {result: at for at, result in  # type: ignore[attr-defined]
                                            enumerate(segment.cand_result)}
        return known

    def _offsets(self, number: int) -> tuple[array, array, array]:
        segment = self.segments[number]
        known = getattr(segment, "offsets", None)
        if known is None:
            known = segment.offsets = tuple(array("Q", _running(lengths))  # type: ignore
                                            for lengths in (segment.len_pay, segment.len_lines, segment.len_json))
        return known

    # -- the output order ----------------------------------------------------------------------

    def ledger_results(self) -> Iterator["ResultRecord"]:
        """Each result's ledger record in output order, with its final total (a budget's scaled one)."""
        for number, result in self.ordered_results():
            segment = self.segments[number]
            assert segment.ledger_rows is not None
            row = segment.ledger_rows[result]
            candidate = self._candidate_of(number).get(result) if segment.cand_result else None
            if candidate is not None and segment.cand_new[candidate] is not None:  # type: ignore[attr-defined]
                row = dataclasses.replace(row, total=segment.cand_new[candidate])  # type: ignore[attr-defined]
            yield row

    def ordered_results(self) -> Iterator[tuple[int, int]]:
        """``(segment, result)`` in output order: partner_id, program_id, period; ties in Engine.run's order."""
        for number, first, end in self._ordered_runs(0, len(self.order or ())):
            yield from zip(itertools.repeat(number), range(first, end))

    def _ordered_runs(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """The results of the units ``order[start:stop]`` (``start`` and ``stop`` between two partners), in
        output order, as runs ``(segment, first result, end)`` of results that follow each other in a segment
        (a partner with one record: its unit's results); without an order, every segment's results."""
        if self.order is None:
            for number, segment in enumerate(self.segments):
                if segment.status:
                    yield number, 0, len(segment.status)
            return
        order, pids, unit_segment, unit_base = self.order, self.pids, self.unit_segment, self.unit_base
        starts = [self._unit_results_starts(segment) for segment in self.segments]
        counts = [segment.nres for segment in self.segments]
        at = start
        while at < stop:
            unit = order[at]
            partner = pids[unit]
            end = at + 1
            while end < stop and pids[order[end]] == partner:
                end += 1
            if end == at + 1:  # the common case, made quick: one record of the partner, its results in a row
                number = unit_segment[unit]
                local = unit - unit_base[number]
                count = counts[number][local]
                if count:
                    first = starts[number][local]
                    yield number, first, first + count
            else:
                group = []
                for other in order[at:end]:
                    segment, local = self._local(other)
                    number = self.unit_segment[other]
                    period = segment.period(local)
                    group.extend((segment.program(result), period, number, result)
                                 for result in self._unit_results(segment, local))
                group.sort(key=_program_and_period)
                run: list[int] = []
                for _, _, number, result in group:
                    if run and run[0] == number and run[2] == result:
                        run[2] += 1
                    else:
                        if run:
                            yield run[0], run[1], run[2]
                        run = [number, result, result + 1]
                if run:
                    yield run[0], run[1], run[2]
            at = end

    # -- writing -----------------------------------------------------------------------------

    def write(self, directory: Path, folder: Path, programs: list[ProgramInfo], facts_sha256: str | None,
              claims_sha256: str | None, *, notes: Sequence[str] = ()) -> RunSummary:
        """The run's files into ``directory``, the fresh folder that will become ``folder``: the three files of
        results, then ``run.json``."""
        notes = self.resolve() + list(notes)
        totals, counts = self.totals()
        self.aggregate = _Aggregate()
        results = sum(count for program_counts in counts.values() for count in program_counts.values())
        run_id = uuid.uuid4().hex
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        paths = [directory / name for name in ("payouts.csv", "lines.csv", RESULTS_FILE)]
        with_results = [number for number, segment in enumerate(self.segments) if segment.status]
        if self.order is None and with_results:
            self._write_parts(paths, with_results)
        else:
            self._write_here(paths)
        # the results are in results.jsonl: the run's metadata is written as write_run writes it
        metadata = PayoutRun.model_construct(
            run_id=run_id, created_at=created_at, engine_version=__version__, programs=programs,
            facts_sha256=facts_sha256, claims_sha256=claims_sha256, results=[], totals=totals, counts=counts,
            notes=notes)
        with open(directory / "run.json", "w", encoding="utf-8", newline="") as handle:
            handle.write(run_json(metadata, results))
        summary = RunSummary(folder, run_id, created_at, __version__, programs, facts_sha256, claims_sha256,
                             totals, counts,
                             notes, self.records, results, 1)
        if self.order is None:
            self._aggregate_in_order(summary)
        else:
            self.aggregate.fill(summary)
        return summary

    def _aggregate_in_order(self, summary: RunSummary) -> None:
        """The summary's per-program figures from the segments' own (records in output order, nothing taken out)."""
        aggregate = _Aggregate()
        self._summed_figures(aggregate)
        for segment in self.segments:
            for program_id, count in segment.partners.items():
                aggregate.partners[program_id] = aggregate.partners.get(program_id, 0) + count
            aggregate.periods.update(period for period in segment.period_table if period)
            aggregate.first_errors += [error[2:] for error in segment.errors]
        aggregate.first_errors = aggregate.first_errors[:_ERROR_SAMPLES]
        aggregate.fill(summary)

    def _summed_figures(self, aggregate: "_Aggregate") -> None:
        """The versions and the paid-by-tier figures from the sums the segments kept as they rendered their
        results (budget candidates apart, with their final totals): right when no result was taken out."""
        by_tier = aggregate.by_tier
        for segment in self.segments:
            for program_id, seen in segment.versions.items():
                numbered = {version for version in seen if version is not None}  # None: errors without one
                if numbered:
                    aggregate.versions.setdefault(program_id, set()).update(numbered)
            for (program_id, tier), (count, total) in segment.by_tier.items():
                known_count, known_total = by_tier.setdefault(program_id, {}).get(tier, (0, Decimal(0)))
                by_tier[program_id][tier] = (known_count + count, exact_add(known_total, total))
            for at, (tier, total) in enumerate(zip(segment.cand_tier, segment.cand_total)):
                if tier is not None:
                    new_total = segment.cand_new[at]  # type: ignore[attr-defined]
                    program_id = segment.program(segment.cand_result[at])
                    known_count, known_total = by_tier.setdefault(program_id, {}).get(tier, (0, Decimal(0)))
                    paid = total if new_total is None else new_total
                    by_tier[program_id][tier] = (known_count + 1, exact_add(known_total, paid))

    def _patch(self, number: int, at: int, head: tuple[str, str, str]) -> tuple[bytes, bytes, bytes, int, int]:
        """A budget candidate's patches: see :meth:`_BudgetLines.patch`."""
        segment = self.segments[number]
        lines = self.scales[segment.cand_scale[at]]  # type: ignore[attr-defined]
        return lines.patch(head, segment.cand_nlines[at] + 1, segment.cand_total[at],
                           segment.cand_new[at])  # type: ignore[attr-defined]

    def _write_here(self, paths: list[Path]) -> None:
        """The three files of results in output order, from any order of records; the summary's figures into
        ``self.aggregate``.

        The output order is cut between partners into one range per evaluation
        worker, and each range is written by a process of its own: the first
        straight into the files, after their heads; the others into part files,
        then appended to them in the kernel. Reading a spill file out of order
        costs a system call per partner, so this keeps pace with the parallel
        copy of :meth:`_write_parts` only when it is parallel too.

        The figures come from the segments' sums, as for records in output
        order, unless duplicates took results out: then from the rows written.
        """
        from_rows = bool(self.dropped or self.replaced)
        heads = _heads()
        ranges = self._ranges(self.record_segments)
        targets = [paths] + [[self.directory / f"range{number}.{stream}" for stream in ("pay", "lines", "json")]
                             for number in range(1, len(ranges))]
        jobs = [(self._write_range, (start, stop, target, heads if number == 0 else None, from_rows))
                for number, ((start, stop), target) in enumerate(zip(ranges, targets))]
        if len(jobs) == 1 or not _fork_available():
            aggregates = [function(*args) for function, args in jobs]
        else:
            for number in range(len(self.segments)):  # computed once here rather than in every process
                self._offsets(number)
                self._unit_results_starts(self.segments[number])
            aggregates = _in_forked_processes(jobs, "incentives-write")
        for number, (aggregate, target) in enumerate(zip(aggregates, targets)):
            if number > 0:
                for path, part in zip(paths, target):
                    with open(path, "r+b") as joined:  # not "ab": copy_file_range refuses a file opened so
                        joined.seek(0, os.SEEK_END)
                        _append(joined, part)
            self.aggregate.merge(aggregate)
        if not from_rows:
            self._summed_figures(self.aggregate)
            self._partners_and_periods(self.aggregate)

    def _ranges(self, parts: int) -> list[tuple[int, int]]:
        """About ``parts`` equal ranges of the output order, each cut between two partners."""
        order, pids = self.order or [], self.pids
        cuts = [0]
        for part in range(1, parts):
            cut = max(len(order) * part // parts, cuts[-1])
            while 0 < cut < len(order) and pids[order[cut]] == pids[order[cut - 1]]:
                cut += 1
            if cut < len(order) and cut > cuts[-1]:
                cuts.append(cut)
        return list(zip(cuts, [*cuts[1:], len(order)]))

    def _write_range(self, start: int, stop: int, paths: Sequence[Path], heads: tuple[bytes, bytes] | None,
                     from_rows: bool) -> "_Aggregate":
        """The results of the units ``order[start:stop]`` into ``paths``; ``heads``: the files' beginnings,
        for the first range.
        Returns the first errors of these results, and ``from_rows``: all the summary's figures."""
        aggregate = _Aggregate()
        readers = [tuple(_Reader(segment.spill(self.directory, stream)) for stream in ("pay", "lines", "json"))
                   for segment in self.segments]
        try:
            with _Output(paths[0], 1 << 20) as pay, _Output(paths[1], 1 << 20) as lines, \
                    _Output(paths[2], 1 << 20) as out:
                if heads is not None:
                    pay.write(heads[0])
                    lines.write(heads[1])
                for number, first, end in self._ordered_runs(start, stop):
                    segment = self.segments[number]
                    pay_at, lines_at, json_at = self._offsets(number)
                    reader_pay, reader_lines, reader_json = readers[number]
                    bases = pay_at[first], lines_at[first], json_at[first]
                    # the run's texts, read at once: its results follow each other in the spill files
                    texts = (reader_pay.get(bases[0], pay_at[end]), reader_lines.get(bases[1], lines_at[end]),
                             reader_json.get(bases[2], json_at[end]))
                    patches = self._patches(number, first, end, bases)
                    pay_text, lines_text, json_text = _spliced(texts, patches) if patches else texts
                    pay.write(pay_text)
                    lines.write(lines_text)
                    out.write(json_text)
                    if from_rows:
                        self._add_rows(aggregate, number, first, end, bases, texts, patches)
                    elif len(aggregate.first_errors) < _ERROR_SAMPLES and _ERROR in segment.status[first:end]:
                        self._add_errors(aggregate, number, first, end, bases[2], texts[2])
        finally:
            for trio in readers:
                for reader in trio:
                    reader.close()
        return aggregate

    def _patches(self, number: int, first: int, end: int, bases: tuple[int, int, int]) -> list[tuple[Any, ...]]:
        """What budgets change in the results ``first`` to ``end`` of a segment, whose texts start at ``bases``
        in its spill files: per scaled result, ``(result, (start, end, new text)`` in each text, from its run's
        start)."""
        segment = self.segments[number]
        candidates = segment.cand_result
        pay_at, lines_at, json_at = self._offsets(number)
        patches = []
        at = bisect_left(candidates, first)
        while at < len(candidates) and candidates[at] < end:
            if segment.cand_new[at] is not None:  # type: ignore[attr-defined]
                result = candidates[at]
                unit = segment.cand_unit[at]
                head = (segment.pids[unit], segment.period(unit), segment.program(result))
                new_total, row, insertion, old_pay, old_json = self._patch(number, at, head)
                split = pay_at[result] - bases[0] + segment.cand_pay[at]
                lines_end = lines_at[result + 1] - bases[1]
                json_split = json_at[result] - bases[2] + segment.cand_json[at]
                patches.append((result, (split, split + old_pay, new_total), (lines_end, lines_end, row),
                                (json_split, json_split + old_json, insertion)))
            at += 1
        return patches

    def _add_rows(self, aggregate: "_Aggregate", number: int, first: int, end: int, bases: tuple[int, int, int],
                  texts: tuple[bytes, bytes, bytes], patches: list) -> None:
        """The summary's figures of the results ``first`` to ``end`` of a segment, read from their texts as
        written (a scaled result's patched)."""
        pay_at, _, json_at = self._offsets(number)
        scaled = {result: (pay_patch, json_patch) for result, pay_patch, _, json_patch in patches}
        for result in range(first, end):
            row_start, json_start = pay_at[result] - bases[0], json_at[result] - bases[2]
            row = texts[0][row_start:pay_at[result + 1] - bases[0]]
            json_text = texts[2][json_start:json_at[result + 1] - bases[2]]
            if result in scaled:
                (split, old_end, new_total), (json_split, json_end, insertion) = scaled[result]
                row = row[:split - row_start] + new_total + row[old_end - row_start:]
                json_text = json_text[:json_split - json_start] + insertion + json_text[json_end - json_start:]
            aggregate.add(row, json_text)

    def _add_errors(self, aggregate: "_Aggregate", number: int, first: int, end: int, json_base: int,
                    json_text: bytes) -> None:
        """The error results among the results ``first`` to ``end`` of a segment, as the summary samples them."""
        segment = self.segments[number]
        json_at = self._offsets(number)[2]
        starts = self._unit_results_starts(segment)
        result = segment.status.find(_ERROR, first, end)
        while 0 <= result and len(aggregate.first_errors) < _ERROR_SAMPLES:
            unit = bisect_right(starts, result) - 1
            errors = json.loads(json_text[json_at[result] - json_base:json_at[result + 1] - json_base])["errors"]
            aggregate.first_errors.append((segment.pids[unit], segment.period(unit), segment.program(result), errors))
            result = segment.status.find(_ERROR, result + 1, end)

    def _partners_and_periods(self, aggregate: "_Aggregate") -> None:
        """How many partners each program has results for, and the results' periods, from the segments (no
        result was taken out): a partner with several records (periods) counts once."""
        for segment in self.segments:
            for program_id, count in segment.partners.items():  # records with a result, per program
                aggregate.partners[program_id] = aggregate.partners.get(program_id, 0) + count
            aggregate.periods.update(period for period in map(segment.period_table.__getitem__,
                                                               set(itertools.compress(segment.periods, segment.nres)))
                                     if period)
        order, pids = self.order or [], self.pids
        partner_ids = list(map(pids.__getitem__, order))
        repeats = itertools.compress(range(1, len(order)), map(operator.eq, partner_ids, partner_ids[1:]))

        def programs(unit: int) -> set[str]:  # the programs a unit has results for
            segment, local = self._local(unit)
            return {segment.program(result) for result in self._unit_results(segment, local)}

        previous = -1
        for at in repeats:  # order[at] is another record of the partner of order[at - 1]
            if at - 1 != previous:  # a new partner: the programs its first record has results for
                seen = programs(order[at - 1])
            for program_id in programs(order[at]):
                if program_id in seen:
                    aggregate.partners[program_id] -= 1
                seen.add(program_id)
            previous = at

    def _unit_results_starts(self, segment: _Segment) -> array:
        self._unit_results(segment, 0) if segment.nres else None
        return getattr(segment, "unit_starts", array("q"))

    def _write_parts(self, paths: list[Path], segments: list[int]) -> None:
        """The three files of results when the records came in output order: one process per segment copies
        its spill files into its part of each file (patching in budget lines); the first part, which the
        files' heads begin, becomes each file, and the others are appended to it."""
        heads = _heads()
        jobs = [(self._copy_part, (number, heads if position == 0 else None))
                for position, number in enumerate(segments)]
        if len(jobs) == 1 or not _fork_available():
            for function, args in jobs:
                function(*args)
        else:
            _in_forked_processes(jobs, "incentives-write")
        first = self.segments[segments[0]]
        for path, stream in zip(paths, ("pay", "lines", "json")):
            with open(self._part(first, stream), "r+b") as joined:  # not "ab": see _write_here
                joined.seek(0, os.SEEK_END)
                for number in segments[1:]:
                    _append(joined, self._part(self.segments[number], stream))
            os.replace(self._part(first, stream), path)

    def _part(self, segment: _Segment, stream: str) -> Path:
        return self.directory / f"{segment.name}.part.{stream}"

    def _copy_part(self, number: int, heads: tuple[bytes, bytes] | None) -> None:
        """One segment's spill files, budget lines patched in, into its part files; ``heads``: the CSV files'
        beginnings, for the first part (which becomes the file)."""
        segment = self.segments[number]
        pay_at, lines_at, json_at = self._offsets(number)
        pay_head, lines_head = heads or (b"", b"")
        directory = self.directory
        with _Splicer(segment.spill(directory, "pay"), self._part(segment, "pay"), pay_head) as pay, \
                _Splicer(segment.spill(directory, "lines"), self._part(segment, "lines"), lines_head) as lines, \
                _Splicer(segment.spill(directory, "json"), self._part(segment, "json")) as out:
            pids, periods, period_table = segment.pids, segment.periods, segment.period_table
            progs, program_table, scales = segment.progs, segment.program_table, self.scales
            for at, (result, new, unit, scale) in enumerate(zip(
                    segment.cand_result, segment.cand_new, segment.cand_unit,  # type: ignore[attr-defined]
                    segment.cand_scale)):  # type: ignore[attr-defined]
                if new is None:
                    continue
                head = (pids[unit], period_table[periods[unit]], program_table[progs[result]])
                new_total, row, insertion, old_pay, old_json = scales[scale].patch(
                    head, segment.cand_nlines[at] + 1, segment.cand_total[at], new)
                split = pay_at[result] + segment.cand_pay[at]
                pay.replace(split, split + old_pay, new_total)
                lines_end = lines_at[result + 1]
                lines.replace(lines_end, lines_end, row)
                lines_end = json_at[result] + segment.cand_json[at]
                out.replace(lines_end, lines_end + old_json, insertion)


class _Aggregate:
    """The summary's per-program figures: gathered from the final rows as they are written (``add``), or
    from the segments' sums (``_Assembly._summed_figures`` and the like)."""

    def __init__(self) -> None:
        self.versions: dict[str, set[int]] = {}
        self.partners: dict[str, int] = {}
        self.last_partner: dict[str, str] = {}
        self.by_tier: dict[str, dict[str, tuple[int, Decimal]]] = {}
        self.periods: set[str] = set()
        self.first_errors: list[tuple[str, str, str, list[str]]] = []

    def add(self, pay_text: Any, json_text: Any) -> None:
        row = bytes(pay_text).decode()
        if "'" in row:  # a text cell may have been neutralised (text_cell): results.jsonl holds the values
            result = json.loads(bytes(json_text))
            partner_id, period, program_id, status, total = (result["partner_id"], result["period"],
                                                             result["program_id"], result["status"], result["total"])
            version, tier = result["program_version"] or "", result["tier"] or ""
        else:
            partner_id, period, program_id, version, status, tier, _, total, _ = next(csv.reader([row]))
        if self.last_partner.get(program_id) != partner_id:  # rows come sorted by partner_id
            self.last_partner[program_id] = partner_id
            self.partners[program_id] = self.partners.get(program_id, 0) + 1
        if version:
            self.versions.setdefault(program_id, set()).add(int(version))
        if period:
            self.periods.add(period)
        if status == "ok" and tier:
            tiers = self.by_tier.setdefault(program_id, {})
            count, paid = tiers.get(tier, (0, Decimal(0)))
            tiers[tier] = (count + 1, exact_add(paid, Decimal(total)))
        elif status == "error" and len(self.first_errors) < _ERROR_SAMPLES:
            result = json.loads(bytes(json_text))
            self.first_errors.append((partner_id, period, program_id, result["errors"]))

    def merge(self, other: "_Aggregate") -> None:
        """Add the figures of the rows written after this one's (a range of the output order cut between
        partners: no partner is counted twice)."""
        for program_id, seen in other.versions.items():
            self.versions.setdefault(program_id, set()).update(seen)
        for program_id, count in other.partners.items():
            self.partners[program_id] = self.partners.get(program_id, 0) + count
        for program_id, other_tiers in other.by_tier.items():
            tiers = self.by_tier.setdefault(program_id, {})
            for tier, (count, paid) in other_tiers.items():
                known_count, known_paid = tiers.get(tier, (0, Decimal(0)))
                tiers[tier] = (known_count + count, exact_add(known_paid, paid))
        self.periods |= other.periods
        self.first_errors += other.first_errors[:_ERROR_SAMPLES - len(self.first_errors)]

    def fill(self, summary: RunSummary) -> None:
        summary.partners = dict(self.partners)
        summary.versions = {program_id: sorted(seen) for program_id, seen in self.versions.items()}
        summary.by_tier = self.by_tier
        summary.periods = sorted(self.periods)
        summary.first_errors = self.first_errors


def _spliced(texts: tuple[bytes, bytes, bytes], patches: list[tuple[Any, ...]]) -> list[bytes]:
    """``texts`` with their spans ``(start, end, new text)`` in ``patches`` (see ``_Assembly._patches``, in
    order) replaced."""
    spliced = []
    for position, text in enumerate(texts, start=1):
        pieces, copied = [], 0
        for patch in patches:
            start, end, new = patch[position]
            pieces += (text[copied:start], new)
            copied = end
        pieces.append(text[copied:])
        spliced.append(b"".join(pieces))
    return spliced


def _heads() -> tuple[bytes, bytes]:
    """The beginnings of payouts.csv and lines.csv, their header rows (results.jsonl has none)."""
    return csv_line(PAYOUT_COLUMNS).encode(), csv_line(LINE_COLUMNS).encode()


def _running(counts: Iterable[int]) -> Iterator[int]:
    """Running sums before each count, and the grand total after the last."""
    return itertools.accumulate(counts, initial=0)


def _append(target: Any, part: Path) -> None:
    """Append the file ``part`` to the open file ``target``, in the kernel."""
    target.flush()
    with open(part, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        offset = 0
        while size > 0:
            try:
                copied = os.copy_file_range(source.fileno(), target.fileno(), size, offset)
            except (AttributeError, OSError):
                copied = 0
            if copied <= 0:  # not supported here: copy through memory
                source.seek(offset)
                shutil.copyfileobj(source, target, 1 << 22)
                target.flush()
                return
            offset += copied
            size -= copied


class _Splicer:
    """Writes a spill file into a part file with spans replaced on the way.

    The spill file is read a few megabytes at a time; the slices between
    replacements (views of what was read) and the new pieces are gathered and
    written out a few megabytes at a time, so a replacement costs a few list
    appends rather than reads, writes and seeks of its own.
    """

    BLOCK = 1 << 20

    def __init__(self, source: Path, target: Path, head: bytes = b""):
        self.source = os.open(source, os.O_RDONLY)
        self.target = _Output(target, block=self.BLOCK)
        self.target.write(head)
        self.window = memoryview(b"")
        self.window_start = 0
        self.position = 0

    def replace(self, start: int, end: int, data: bytes) -> None:
        """Copy the spill file up to ``start``, write ``data``, and go on from ``end``."""
        if start < self.position:
            raise RuntimeError("a spill file does not match its index")
        self._copy(start)
        self.target.write(data)
        self.position = end

    def _copy(self, end: int | None) -> None:
        """The spill file from the current position up to ``end`` (None: its end)."""
        position = self.position
        while end is None or position < end:
            offset = position - self.window_start
            if not 0 <= offset < len(self.window):
                # the views already gathered keep the previous window alive until written
                self.window = memoryview(os.pread(self.source, self.BLOCK, position))
                self.window_start, offset = position, 0
                if not self.window:
                    if end is None:
                        break
                    raise RuntimeError("a spill file is shorter than its index")
            piece = self.window[offset:offset + (end - position) if end is not None else None]
            self.target.write(piece)
            position += len(piece)
        self.position = position

    def __enter__(self) -> "_Splicer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self._copy(None)
                self.target.flush()
        finally:
            os.close(self.source)
            self.target.close()


def _first(item: tuple) -> Any:
    return item[0]


def _program_and_period(item: tuple) -> tuple[str, str]:
    return item[0], item[1]


class _Reader:
    """Byte ranges of a spill file, read through a window that grows while the reads go on in file order.

    A read outside the window starts a new one where it starts. After a jump
    (records in any order) the new window holds just the range asked for: a
    bigger one would be read for nothing, once per partner. When the read
    starts where the last window ended (records in output order) the window
    is twice the last one's size, from 8 KB up to 4 MB. Ranges are returned
    as bytes of their own: a view would keep its whole window alive until it
    is written out.
    """

    SMALL, LARGE = 8 << 10, 4 << 20

    def __init__(self, path: Path):
        self.descriptor = os.open(path, os.O_RDONLY)
        self.start = 0
        self.window = b""
        self.size = 0

    def get(self, start: int, end: int) -> bytes:
        if end == start:
            return b""
        window_start = self.start
        window_end = window_start + len(self.window)
        if start >= window_start and end <= window_end:
            return self.window[start - window_start:end - window_start]
        self.size = min(max(self.size * 2, self.SMALL), self.LARGE) if start == window_end else 0
        self.window = os.pread(self.descriptor, max(self.size, end - start), start)
        self.start = start
        return self.window[:end - start] if len(self.window) > end - start else self.window

    def close(self) -> None:
        os.close(self.descriptor)


class _Output:
    """A binary output file that gathers what it is given (bytes or views) and writes ``block`` bytes at a time."""

    def __init__(self, path: Path, block: int = 8 << 20):
        self.handle = open(path, "wb")  # buffered: it writes what a system call leaves, if anything
        self.block = block
        self.parts: list[Any] = []
        self.size = 0

    def write(self, data: Any) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= self.block:
            self.flush()

    def flush(self) -> None:
        self.handle.write(b"".join(self.parts))
        self.parts.clear()
        self.size = 0

    def close(self) -> None:
        """Close without writing what is still gathered (flush first to keep it)."""
        self.parts.clear()  # views into spill windows: released with them
        self.handle.close()

    def __enter__(self) -> "_Output":
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self.flush()
        finally:
            self.close()


def _in_forked_processes(jobs: Sequence[tuple[Callable[..., Any], tuple]], name: str) -> list[Any]:
    """Call every ``function(*args)`` of ``jobs`` at once, each in a forked process of its own; what they
    return, in order (pickled through a pipe: keep it small). A job that fails fails the call."""
    context = multiprocessing.get_context("fork")
    parent = os.getpid()
    children = []
    try:
        for number, (function, args) in enumerate(jobs):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_forked_job, args=(parent, function, args, send), daemon=True,
                                      name=f"{name}-{number}")
            process.start()
            send.close()
            children.append((process, receive))
        returned = []
        for process, receive in children:
            kind, payload = receive.recv()
            if kind != "done":
                raise RuntimeError(f"a writer process failed: {payload}")
            process.join()
            returned.append(payload)
        return returned
    except EOFError:
        raise RuntimeError("a writer process ended without finishing its part") from None
    finally:
        _stop(children)


def _forked_job(parent: int, function: Callable[..., Any], args: tuple, connection: Any) -> None:
    """One job of :func:`_in_forked_processes`, in the forked process: its result or failure to the parent."""
    try:
        _die_with_parent(parent)
        returned = function(*args)
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which re-raises
        connection.send(("crash", f"{type(error).__name__}: {error}"))
    else:
        connection.send(("done", returned))
    finally:
        connection.close()


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """In a forked worker: be killed with the process ``parent`` that forked it, however it ends (kill -9
    included), instead of running on as an orphan into a spill folder nobody will read.

    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere a worker whose run was killed runs its part to the
    end. The signal comes when the thread that forked the worker ends, and that thread waits for its workers.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the call above: no signal will come
        os._exit(1)


def _stop(children: Sequence[tuple[Any, Any]]) -> None:
    """End worker processes (those still running are terminated) and close their pipes."""
    for process, receive in children:
        if process.is_alive():
            process.terminate()
        process.join()
        receive.close()
