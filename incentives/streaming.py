"""Streaming runs: a whole partner base straight to ``payouts.csv``, ``lines.csv`` and ``run.json``.

:meth:`Engine.run` keeps every :class:`PayoutResult` in memory and
:meth:`PayoutRun.write` renders each file as one string: fine for thousands of
partners, not for a million. :func:`run_to` (``Engine.run_to``) writes the same
three files, byte for byte (``run_id`` and ``created_at`` aside), while keeping
only a few numbers per result in memory:

1. Records are evaluated one at a time, exactly as ``Engine.run`` evaluates
   them, and each result is rendered at once — its ``payouts.csv`` row, its
   ``lines.csv`` rows, its ``run.json`` object — into three *spill* files. What
   stays in memory per result is its program, status, total and byte lengths;
   per record its partner id, period and place (for duplicate messages).
2. A large CSV facts file is split at line boundaries and its parts are
   evaluated by worker processes, one per core (``workers``); each writes its
   own spill files.
3. At the end the run is resolved as ``Engine.run`` resolves it: duplicate
   records, claims without a record, coverage notes, then budgets (the same
   :class:`~incentives.calculators.steps.BudgetScale` lines, largest remainder).
4. The three files are written in output order (partner_id, program_id,
   period) by copying the rendered pieces out of the spill files, patching in
   the budget lines and scaled totals; each goes to a temporary file that is
   flushed and renamed, ``run.json`` last.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from .errors import InputError
from .export import (
    LINE_COLUMNS,
    PAYOUT_COLUMNS,
    OutputExistsError,
    fingerprint,
    line_row,
    payout_row,
)
from .inputs import FactRow
from .money import plain_amount
from .results import PayoutLine, PayoutResult, PayoutRun, ProgramInfo, new_line
from .version import __version__

if TYPE_CHECKING:
    from .engine import Engine, Record

__all__ = ["RunSummary", "run_to"]

_OK, _INELIGIBLE, _ERROR = 0, 1, 2
_STATUS = {"ok": _OK, "ineligible": _INELIGIBLE, "error": _ERROR}
_STATUS_NAMES = ("ok", "ineligible", "error")
_KEYED, _ORPHAN, _UNKEYED = 0, 1, 2

#: Below this size a facts file is evaluated in-process: starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 4 << 20
_RESULT_SERIALIZER = PayoutResult.__pydantic_serializer__
_LINE_SERIALIZER = PayoutLine.__pydantic_serializer__
# In run.json a result's fields sit at indent 3 and its lines' fields at 5; the lines
# array closes at indent 3, just before "total" (strings never hold a raw newline).
_LINES_END = b'\n   ],\n   "total": "'
_WINDOW = 4 << 20


@dataclass
class RunSummary:
    """What :func:`run_to` wrote, without the results themselves (they are in the files)."""

    folder: Path
    run_id: str
    created_at: str
    engine_version: str
    programs: list[ProgramInfo]
    facts_sha256: str | None
    totals: dict[str, Decimal]
    counts: dict[str, dict[str, int]]
    notes: list[str]
    records: int
    results: int
    workers: int
    seconds: float = 0.0
    files: tuple[str, ...] = ("payouts.csv", "lines.csv", "run.json")

    @property
    def errors(self) -> int:
        """How many results are ``error`` (the CLI exits 3 when there are any)."""
        return sum(count.get("error", 0) for count in self.counts.values())


def run_to(engine: "Engine", folder: str | os.PathLike[str], facts: "Iterable[Record] | str | os.PathLike[str]",
           claims: Iterable[Mapping[str, Any]] | str | os.PathLike[str] = (), *,
           facts_sha256: str | None = None, force: bool = False,
           progress: Callable[[int], None] | None = None, workers: int | None = None) -> RunSummary:
    """Evaluate ``facts`` and write the run's three files into ``folder``; see :meth:`Engine.run_to`."""
    started = time.perf_counter()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    previous = _previous_run(target, force)
    programs = engine._program_infos()
    if previous is not None and fingerprint(previous) != ((tuple((p.id, p.version, p.sha256) for p in programs)),
                                                           facts_sha256):
        raise OutputExistsError(f"{target} holds the output of a different run; choose another folder "
                                "or force the overwrite (--force)")
    if isinstance(claims, (str, os.PathLike)):
        from .inputs import read_claims

        claims = read_claims(claims)
    claims_by_key = engine._group_claims(claims)
    spill = Path(tempfile.mkdtemp(prefix=".incentives-spill-", dir=target))
    try:
        segments, used_workers = _evaluate_all(engine, facts, claims_by_key, spill, progress, workers)
        run = _Assembly(engine, segments, claims_by_key, spill)
        summary = run.write(target, programs, facts_sha256, force=force or previous is None)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    summary.workers = used_workers
    summary.seconds = time.perf_counter() - started
    return summary


def _previous_run(target: Path, force: bool) -> dict[str, Any] | None:
    """The head (programs, facts sha256) of a run.json already in ``target``, unless forced."""
    existing = target / "run.json"
    if force or not existing.exists():
        return None
    try:
        with open(existing, encoding="utf-8") as handle:
            head = handle.read(1 << 20)
        marker = head.find('\n "results": [')
        text = head[:marker].rstrip().rstrip(",") + "\n}" if marker >= 0 else head
        return json.loads(text)
    except (OSError, ValueError):
        return {}


# --- evaluating records into spill files ----------------------------------------------------


class _Collector(list):
    """A file-like list: ``csv.writer(collector)`` appends each row's text."""

    write = list.append


@dataclass
class _Segment:
    """One worker's (or the main process's) evaluated records: compact arrays plus spill files."""

    name: str
    records: int = 0
    # per unit (one evaluated record, or a group of results made at the end)
    pids: list[str] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)
    kinds: bytearray = field(default_factory=bytearray)
    places: array = field(default_factory=lambda: array("q"))
    nres: array = field(default_factory=lambda: array("I"))
    missing: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # per result
    progs: list[str] = field(default_factory=list)
    status: bytearray = field(default_factory=bytearray)
    totals: list[Decimal] = field(default_factory=list)
    len_pay: array = field(default_factory=lambda: array("Q"))
    len_lines: array = field(default_factory=lambda: array("Q"))
    len_json: array = field(default_factory=lambda: array("Q"))
    # budget candidates: results of a program with a budget that pay something
    cand_result: array = field(default_factory=lambda: array("q"))
    cand_unit: array = field(default_factory=lambda: array("q"))
    cand_group: list[tuple[str, int | None, str]] = field(default_factory=list)
    cand_nlines: array = field(default_factory=lambda: array("I"))
    cand_pay: array = field(default_factory=lambda: array("I"))
    cand_json: array = field(default_factory=lambda: array("Q"))
    matched: list[tuple[str, str]] = field(default_factory=list)
    error: tuple[str, str | None, int | None] | None = None

    def spill(self, directory: Path, stream: str) -> Path:
        return directory / f"{self.name}.{stream}"


class _Renderer:
    """Renders results into a segment's spill files and compact arrays."""

    def __init__(self, engine: "Engine", segment: _Segment, directory: Path):
        self.engine = engine
        self.segment = segment
        self.pay = open(segment.spill(directory, "pay"), "wb", buffering=1 << 20)
        self.lines = open(segment.spill(directory, "lines"), "wb", buffering=1 << 20)
        self.json = open(segment.spill(directory, "json"), "wb", buffering=1 << 20)
        self.rows = _Collector()
        self.writer = csv.writer(self.rows, lineterminator="\n")
        self.budgets = {}  # (program_id, version) -> has a budget
        self.periods: dict[str, str] = {}

    def close(self) -> None:
        for handle in (self.pay, self.lines, self.json):
            handle.close()

    def unit(self, partner_id: str, period: str, kind: int, place: int, results: Iterable[PayoutResult],
             missing: tuple[str, ...] = ()) -> None:
        segment = self.segment
        ordered = sorted(results, key=_program_of)
        index = len(segment.pids)
        segment.pids.append(partner_id)
        segment.periods.append(self.periods.setdefault(period, period))
        segment.kinds.append(kind)
        segment.places.append(place)
        segment.nres.append(len(ordered))
        if missing:
            segment.missing[index] = missing
        for result in ordered:
            self.result(result, index)

    def result(self, result: PayoutResult, unit: int) -> None:
        segment, rows, writer = self.segment, self.rows, self.writer
        values = result.__dict__
        status = values["status"]
        total = values["total"]
        row = payout_row(result)
        candidate = status == "ok" and total > 0 and self._has_budget(values["program_id"], values["program_version"])
        if candidate:
            writer.writerow(row[:7])
            head = rows.pop()
            writer.writerow(row)
            pay = rows.pop().encode()
            split = len(head.encode())  # the total column starts right after the head's line ending
        else:
            writer.writerow(row)
            pay = rows.pop().encode()
        places = values["details"].get("places", 2)
        lines = values["lines"]
        if lines:
            head_fields = (values["partner_id"], values["period"], values["program_id"])
            writer.writerows([line_row(head_fields, line, places) for line in lines])
            line_text = "".join(rows).encode()
            rows.clear()
        else:
            line_text = b""
        # each result's run.json text starts with its separator (the very first drops the comma)
        json_text = b",\n  " + _RESULT_SERIALIZER.to_json(result, indent=1).replace(b"\n", b"\n  ")
        at = len(segment.status)
        if candidate:
            segment.cand_result.append(at)
            segment.cand_unit.append(unit)
            segment.cand_group.append((values["program_id"], values["program_version"], values["period"]))
            segment.cand_nlines.append(len(lines))
            segment.cand_pay.append(split)
            segment.cand_json.append(json_text.index(_LINES_END))
        segment.progs.append(values["program_id"])
        segment.status.append(_STATUS[status])
        segment.totals.append(total)
        segment.len_pay.append(len(pay))
        segment.len_lines.append(len(line_text))
        segment.len_json.append(len(json_text))
        self.pay.write(pay)
        if line_text:
            self.lines.write(line_text)
        self.json.write(json_text)

    def _has_budget(self, program_id: str, version: int | None) -> bool:
        key = (program_id, version)
        known = self.budgets.get(key)
        if known is None:
            compiled = self.engine._version(program_id, version)
            known = self.budgets[key] = compiled is not None and compiled.budget is not None
        return known


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


def _evaluate_records(engine: "Engine", records: Iterable["Record"], claims_by_key: Mapping[tuple[str, str], list],
                      renderer: _Renderer, progress: Callable[[int], None] | None, first_index: int = 1) -> None:
    """``Engine.run``'s loop over records, rendering each record's results as it goes."""
    from .engine import _unpack

    segment = renderer.segment
    programs = engine.program_ids
    for index, record in enumerate(records, start=first_index):
        partner_id, period_label, facts, problems = _unpack(record)
        if not partner_id or not period_label:
            results = engine._evaluate(partner_id, period_label, facts, problems, ())
            renderer.unit(partner_id, period_label, _UNKEYED, _place(record, index), results.values())
        else:
            key = (partner_id, period_label)
            claims = claims_by_key.get(key, ())
            if claims:
                segment.matched.append(key)
            results = engine._evaluate(partner_id, period_label, facts, problems, claims)
            missing = tuple(program_id for program_id in programs if program_id not in results) \
                if len(results) < len(programs) else ()
            renderer.unit(partner_id, period_label, _KEYED, _place(record, index), results.values(), missing)
        segment.records += 1
        if progress is not None:
            progress(index)


# --- splitting a CSV facts file over worker processes ---------------------------------------


def _split_csv(path: Path, parts: int) -> list[tuple[int, int, int]] | None:
    """``(start, end, lines before start)`` byte ranges of ``path`` cut after a ``\\n``, or None.

    Only a file without any double quote is split: then every line break ends a
    record, so each part parses exactly as it would in one pass. Lines are
    counted as the csv module counts them (``\\r\\n``, ``\\r`` and ``\\n`` each end one).
    """
    size = path.stat().st_size
    targets = [size * part // parts for part in range(1, parts)]
    cuts: list[int] = []
    breaks: list[int] = []
    counted = 0  # line breaks before ``position``
    position = 0
    previous_cr = False
    header_end = -1
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 24)
            if not chunk:
                break
            if b'"' in chunk or chunk.count(b"\r") != chunk.count(b"\r\n"):
                return None  # quoted fields (may hold line breaks) or lone \r line ends: read in one pass
            if header_end < 0:
                at = chunk.find(b"\n")
                if at >= 0:
                    header_end = position + at
                    if not chunk[:at].rstrip(b"\r").strip(b","):
                        return None  # a blank first line: the header is further down
            while targets and header_end >= 0:
                wanted = max(targets[0], header_end + 1, cuts[-1] if cuts else 0)
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


def _csv_range(path: Path, start: int, end: int, lines_before: int) -> Iterator[FactRow]:
    """The facts rows in bytes ``start:end`` of a quote-free CSV file, as ``read_facts`` reads them."""
    from .inputs import PARTNER_ID, PERIOD, _check_width, _csv_fact_row, _csv_header, _open_text

    file = str(path)
    with _open_text(path) as stream:
        header = _csv_header(_rows(csv.reader(stream, strict=True), file, 0), file, (PARTNER_ID, PERIOD))
    width = len(header)
    partner_at, period_at = header.index(PARTNER_ID), header.index(PERIOD)
    columns = [(at, name) for at, name in enumerate(header) if at not in (partner_at, period_at)]
    with open(path, "rb") as raw:
        raw.seek(start)
        data = raw.read(end - start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from .inputs import _first_bad_utf8_line

        raise InputError("the file is not UTF-8 text (save it as UTF-8)", file, _first_bad_utf8_line(path)) from None
    del data
    stream = io.StringIO(text, newline="")
    for line, cells in _rows(csv.reader(stream, strict=True), file, lines_before):
        _check_width(cells, width, file, line)
        yield _csv_fact_row(line, cells, partner_at, period_at, columns)


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


def _worker(engine: "Engine", path: Path, part: tuple[int, int, int], claims_by_key: Mapping, directory: Path,
            name: str, counter: Any, connection: Any) -> None:
    segment = _Segment(name)
    try:
        renderer = _Renderer(engine, segment, directory)
        step = 0

        def tick(index: int) -> None:
            nonlocal step
            step += 1
            if step == 1000:
                with counter.get_lock():
                    counter.value += step
                step = 0

        try:
            _evaluate_records(engine, _csv_range(path, *part), claims_by_key, renderer, tick)
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
    connection.send(("done", segment))
    connection.close()


def _evaluate_all(engine: "Engine", facts: Any, claims_by_key: Mapping, directory: Path,
                  progress: Callable[[int], None] | None, workers: int | None) -> tuple[list[_Segment], int]:
    """Every record evaluated into one spill segment per worker (or one in-process)."""
    if isinstance(facts, (str, os.PathLike)):
        path = Path(facts)
        parts = None
        if path.suffix.lower() == ".csv":
            wanted = workers if workers is not None else _cores()
            if wanted > 1 and path.is_file() and (workers is not None or
                                                   path.stat().st_size >= PARALLEL_MIN_BYTES):
                parts = _split_csv(path, wanted)
        if parts is not None and _fork_available():
            return _evaluate_parallel(engine, path, parts, claims_by_key, directory, progress), len(parts)
        from .inputs import read_facts

        records: Iterable[Any] = read_facts(path)
    else:
        records = facts
    segment = _Segment("main")
    renderer = _Renderer(engine, segment, directory)
    try:
        _evaluate_records(engine, records, claims_by_key, renderer, progress)
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


def _evaluate_parallel(engine: "Engine", path: Path, parts: list[tuple[int, int, int]], claims_by_key: Mapping,
                       directory: Path, progress: Callable[[int], None] | None) -> list[_Segment]:
    from .inputs import PARTNER_ID, PERIOD, _csv_header, _open_text

    file = str(path)
    with _open_text(path) as stream:  # a bad header fails here, in the parent, as read_facts would
        _csv_header(_rows(csv.reader(stream, strict=True), file, 0), file, (PARTNER_ID, PERIOD))
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    children = []
    for number, part in enumerate(parts):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_worker, name=f"incentives-run-{number}",
                                  args=(engine, path, part, claims_by_key, directory, f"w{number}", counter, send),
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
                    segments[number] = payload
                    process.join()
                    del pending[number]
                elif not process.is_alive() and not receive.poll():
                    raise RuntimeError(f"worker process {process.name} ended with exit code {process.exitcode}")
            if progress is not None:
                progress(counter.value)
    finally:
        for process, receive in children:
            if process.is_alive():
                process.terminate()
            process.join()
            receive.close()
    failed = [segment.error for segment in segments if segment is not None and segment.error is not None]
    if failed:
        message, error_file, line = failed[0]  # the first part with an error holds the file's first error
        raise InputError(message, error_file, line)
    if progress is not None:
        progress(sum(segment.records for segment in segments if segment is not None))
    return [segment for segment in segments if segment is not None]


# --- resolving the run and writing the files ------------------------------------------------


class _Assembly:
    """Every segment's units and results in one numbering, resolved as ``Engine.run`` resolves a run.

    Units are numbered segment after segment (file order), results likewise;
    the units made here at the end (duplicates, claims without a record) come
    last, in a segment of their own.
    """

    def __init__(self, engine: "Engine", segments: list[_Segment], claims_by_key: Mapping, directory: Path):
        self.engine = engine
        self.directory = directory
        self.claims_by_key = claims_by_key
        self.records = sum(segment.records for segment in segments)
        self.segments: list[_Segment] = []
        self.pids: list[str] = []
        self.periods: list[str] = []
        self.kinds = bytearray()
        self.places = array("q")
        self.first = array("q")  # each unit's first result
        self.nres = array("I")
        self.progs: list[str] = []
        self.status = bytearray()
        self.totals: list[Decimal] = []
        self.source = array("H")  # each result's segment
        self.offsets = (array("Q"), array("Q"), array("Q"))  # each result's start in its segment's spills
        self.ends = (array("Q"), array("Q"), array("Q"))
        self.candidates: list[tuple[int, int, _Segment, int]] = []  # (unit, result, segment, candidate)
        self.missing: dict[int, tuple[str, ...]] = {}
        self.matched: set[tuple[str, str]] = set()
        for segment in segments:
            self._add(segment)
        self.record_units = len(self.pids)

    def _add(self, segment: _Segment) -> None:
        number = len(self.segments)
        self.segments.append(segment)
        unit_base, result_base = len(self.pids), len(self.status)
        self.pids += segment.pids
        self.periods += segment.periods
        self.kinds += segment.kinds
        self.places += segment.places
        self.nres += segment.nres
        first = result_base
        for count in segment.nres:
            self.first.append(first)
            first += count
        self.progs += segment.progs
        self.status += segment.status
        self.totals += segment.totals
        self.source += array("H", [number]) * len(segment.status)
        for offsets, ends, lengths in zip(self.offsets, self.ends,
                                          (segment.len_pay, segment.len_lines, segment.len_json)):
            position = 0
            for length in lengths:
                offsets.append(position)
                position += length
                ends.append(position)
        for at, (result, unit) in enumerate(zip(segment.cand_result, segment.cand_unit)):
            self.candidates.append((unit_base + unit, result_base + result, segment, at))
        for unit, programs in segment.missing.items():
            self.missing[unit_base + unit] = programs
        self.matched.update(segment.matched)
        # the compact arrays now live here; the segment keeps what budgets need
        segment.pids = segment.periods = segment.progs = []  # type: ignore[assignment]
        segment.totals = []
        segment.kinds = bytearray()

    def resolve(self) -> list[str]:
        """Orphan claims, output order, duplicates, coverage and budgets; returns the notes."""
        engine = self.engine
        record_units = self.record_units
        orphans = self._made("orphans", lambda renderer: [
            renderer.unit(key[0], key[1], _ORPHAN, 0, engine._orphan_claims(key, key_claims).values())
            for key, key_claims in self.claims_by_key.items() if key not in self.matched])
        kinds = self.kinds
        keyed = [unit for unit in range(record_units) if kinds[unit] == _KEYED]
        unkeyed = [unit for unit in range(record_units) if kinds[unit] != _KEYED]
        order = sorted([*keyed, *orphans, *unkeyed], key=self.pids.__getitem__)
        firsts: list[int] = []
        made = self._made("duplicates", lambda renderer: self._duplicates(order, renderer, firsts))
        self.replaced = dict(zip(firsts, made))
        self.order = [self.replaced.get(unit, unit) for unit in order if unit not in self.dropped]
        coverage: dict[tuple[str, str], int] = {}
        for unit, programs in self.missing.items():
            if (self.pids[unit], self.periods[unit]) in self.duplicate_keys:
                continue
            for program_id in programs:
                key = (program_id, self.periods[unit])
                coverage[key] = coverage.get(key, 0) + 1
        return self._budgets() + engine._coverage_text(coverage)

    def _made(self, name: str, make: Callable[[_Renderer], Any]) -> range:
        """Units rendered here at the end (into a segment of their own); their unit numbers."""
        segment = _Segment(name)
        renderer = _Renderer(self.engine, segment, self.directory)
        try:
            make(renderer)
        finally:
            renderer.close()
        first = len(self.pids)
        self._add(segment)
        return range(first, len(self.pids))

    def _duplicates(self, order: list[int], renderer: _Renderer, firsts: list[int]) -> None:
        """Records with the same partner and period: the first is replaced by error results, the rest dropped."""
        pids, periods, kinds = self.pids, self.periods, self.kinds
        record_units = self.record_units
        self.dropped: set[int] = set()
        self.duplicate_keys: set[tuple[str, str]] = set()
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
                    if kinds[other] == _KEYED:
                        by_period.setdefault(periods[other], []).append(other)
                for period, units in by_period.items():
                    if len(units) < 2:
                        continue
                    key = (pids[units[0]], period)
                    self.duplicate_keys.add(key)
                    units.sort()
                    places = [_place_text(self.places[other]) for other in units]
                    renderer.unit(key[0], key[1], _KEYED, 0, self.engine._duplicates(key, places).values())
                    firsts.append(units[0])
                    self.dropped.update(units[1:])
            at = end

    def _budgets(self) -> list[str]:
        from .calculators.steps import scale_to_budget

        engine = self.engine
        dead = self.dropped | set(self.replaced)
        groups: dict[tuple[str, int | None, str], list[tuple[str, int, int]]] = {}
        for number, (unit, result, segment, at) in enumerate(self.candidates):
            if unit in dead:
                continue
            groups.setdefault(segment.cand_group[at], []).append((self.pids[unit], result, number))
        self.patches: dict[int, tuple[Any, Decimal, int]] = {}
        notes = []
        for key in sorted(groups, key=str):
            program_id, version, period = key
            compiled = engine._version(program_id, version)
            if compiled is None or compiled.budget is None:
                continue
            members = sorted(groups[key], key=_first)
            scaled = scale_to_budget([(pid, self.totals[result]) for pid, result, _ in members],
                                     compiled.budget, compiled.rounding.places)
            if scaled is None:
                continue
            scale, new_totals = scaled
            for (_, result, number), new_total in zip(members, new_totals):
                self.patches[result] = (scale, new_total, number)
            notes.append(engine._budget_note(program_id, version, period, compiled, scale.factor))
        return notes

    def ordered_results(self) -> Iterator[int]:
        """Results in output order: partner_id, program_id, period; ties in Engine.run's list order."""
        order, pids, first, nres = self.order, self.pids, self.first, self.nres
        count = len(order)
        at = 0
        while at < count:
            unit = order[at]
            partner = pids[unit]
            end = at + 1
            while end < count and pids[order[end]] == partner:
                end += 1
            if end == at + 1:
                start = first[unit]
                yield from range(start, start + nres[unit])
            else:
                group = []
                for other in order[at:end]:
                    start = first[other]
                    period = self.periods[other]
                    group.extend((self.progs[result], period, result) for result in range(start, start + nres[other]))
                group.sort(key=_program_and_period)
                for item in group:
                    yield item[2]
            at = end

    # -- writing -----------------------------------------------------------------------------

    def write(self, target: Path, programs: list[ProgramInfo], facts_sha256: str | None, *,
              force: bool) -> RunSummary:
        notes = self.resolve()
        run_id = uuid.uuid4().hex
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        temporaries: list[Path] = []
        try:
            pay_path = _temporary(target, "payouts.csv", temporaries)
            lines_path = _temporary(target, "lines.csv", temporaries)
            json_path = _temporary(target, "run.json", temporaries)

            def run_json(totals: dict, counts: dict, notes: list[str]) -> tuple[bytes, bytes]:
                text = PayoutRun.model_construct(
                    run_id=run_id, created_at=created_at, engine_version=__version__, programs=programs,
                    facts_sha256=facts_sha256, results=[], totals=totals, counts=counts,
                    notes=notes).model_dump_json(indent=1)
                at = text.index('\n "results": []') + len('\n "results": [')
                return text[:at].encode(), text[at + 1:].encode()

            head, _ = run_json({}, {}, [])
            if self.in_order() and _fork_available() and sum(1 for s in self.segments if s.status) > 1:
                totals, counts, results = self._write_parts(pay_path, lines_path, json_path, head)
            else:
                totals, counts, results = self._write_files(pay_path, lines_path, json_path, head)
            _, tail = run_json(totals, counts, notes)
            with open(json_path, "ab") as handle:
                handle.write(tail + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            if not force and not _same_results(target / "run.json", json_path):
                raise OutputExistsError(f"{target} holds the output of a different run; choose another folder "
                                        "or force the overwrite (--force)")
            # run.json is the commit mark, replaced last (as PayoutRun.write does)
            (target / "run.json").unlink(missing_ok=True)
            os.replace(pay_path, target / "payouts.csv")
            os.replace(lines_path, target / "lines.csv")
            os.replace(json_path, target / "run.json")
        finally:
            for path in temporaries:
                path.unlink(missing_ok=True)
        return RunSummary(target, run_id, created_at, __version__, programs, facts_sha256, totals, counts, notes,
                          self.records, results, 1)

    def _write_files(self, pay_path: Path, lines_path: Path, json_path: Path,
                     json_head: bytes) -> tuple[dict[str, Decimal], dict[str, dict[str, int]], int]:
        """The three files in output order, from the spill files, in this process (any order of records)."""
        readers = [tuple(_Reader(segment.spill(self.directory, stream)) for stream in ("pay", "lines", "json"))
                   for segment in self.segments]
        patches = self.patches
        source = self.source
        (pay_at, lines_at, json_at), (pay_end, lines_end, json_end) = self.offsets, self.ends
        ordered = []
        try:
            with _Output(pay_path) as pay, _Output(lines_path) as lines, _Output(json_path) as out:
                pay.write(_csv_line(PAYOUT_COLUMNS))
                lines.write(_csv_line(LINE_COLUMNS))
                out.write(json_head)
                first = True
                for result in self.ordered_results():
                    ordered.append(result)
                    reader_pay, reader_lines, reader_json = readers[source[result]]
                    pay_text = reader_pay.get(pay_at[result], pay_end[result])
                    line_text = reader_lines.get(lines_at[result], lines_end[result])
                    json_text = reader_json.get(json_at[result], json_end[result])
                    patch = patches.get(result)
                    if patch is not None:
                        pay_text, line_text, json_text = self._patched(result, patch, pay_text, line_text,
                                                                       json_text)
                    pay.write(pay_text)
                    if line_text:
                        lines.write(line_text)
                    out.write(json_text[1:] if first else json_text)
                    first = False
                out.write(b"]" if first else b"\n ]")
        finally:
            for trio in readers:
                for reader in trio:
                    reader.close()
        totals, counts = self._totals(ordered)
        return totals, counts, len(ordered)

    def _totals(self, ordered: Iterable[int]) -> tuple[dict[str, Decimal], dict[str, dict[str, int]]]:
        """Totals and counts per program as ``_totals``/``_counts`` compute them: in output order."""
        program_ids = self.engine.program_ids
        totals = {program_id: Decimal(0) for program_id in program_ids}
        counts = {program_id: {"ok": 0, "ineligible": 0, "error": 0} for program_id in program_ids}
        progs, status, result_totals, patches = self.progs, self.status, self.totals, self.patches
        for result in ordered:
            program_id = progs[result]
            patch = patches.get(result)
            totals[program_id] = totals.get(program_id, Decimal(0)) + (
                result_totals[result] if patch is None else patch[1])
            counts.setdefault(program_id, {"ok": 0, "ineligible": 0, "error": 0})[_STATUS_NAMES[status[result]]] += 1
        return totals, counts

    def _budget_pieces(self, result: int, patch: tuple[Any, Decimal, int]) -> tuple[bytes, bytes, bytes, int]:
        """What a budget candidate gains: its new total (CSV text), its budget line (CSV row, run.json text).

        The last item is the length of its old total's text in payouts.csv.
        """
        scale, new_total, number = patch
        unit, _, segment, at = self.candidates[number]
        total = self.totals[result]
        places = scale.places
        line = new_line(scale.line(segment.cand_nlines[at] + 1, total, new_total))
        row = _Collector()
        csv.writer(row, lineterminator="\n").writerow(line_row(
            (self.pids[unit], self.periods[unit], self.progs[result]), line, places))
        line_json = (b",\n    " + _LINE_SERIALIZER.to_json(line, indent=1).replace(b"\n", b"\n    ")
                     + _LINES_END + str(new_total).encode())
        return (plain_amount(new_total, places).encode(), row[0].encode(), line_json,
                len(plain_amount(total, places).encode()))

    def _patched(self, result: int, patch: tuple[Any, Decimal, int], pay_text: Any, line_text: Any,
                 json_text: Any) -> tuple[bytes, bytes, bytes]:
        """A budget candidate's rendered pieces with its budget line and scaled total."""
        new_total, budget_row, line_json, old_length = self._budget_pieces(result, patch)
        _, _, segment, at = self.candidates[patch[2]]
        split = segment.cand_pay[at]
        pay = bytes(pay_text)
        lines_end = segment.cand_json[at]
        json_bytes = bytes(json_text)
        total_end = lines_end + len(_LINES_END) + len(str(self.totals[result]).encode())
        return (pay[:split] + new_total + pay[split + old_length:], bytes(line_text) + budget_row,
                json_bytes[:lines_end] + line_json + json_bytes[total_end:])

    # -- the in-order case: every worker finishes its own part ----------------------------

    def in_order(self) -> bool:
        """Whether the output order is the records' order (partner ids strictly ascending, nothing made here)."""
        if len(self.pids) != self.record_units or len(self.order) != self.record_units:
            return False
        pids = self.pids
        return all(a < b for a, b in zip(pids, itertools.islice(pids, 1, None)))

    def _write_parts(self, pay_path: Path, lines_path: Path, json_path: Path,
                     json_head: bytes) -> tuple[dict[str, Decimal], dict[str, dict[str, int]], int]:
        """The three files when records came in output order: one process per segment patches its spill
        files into its part of each file (copying between budget candidates), then the parts are joined."""
        segments = [number for number, segment in enumerate(self.segments) if segment.status]
        context = multiprocessing.get_context("fork")
        children = []
        for number in segments:
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=self._part_worker, args=(number, send), daemon=True,
                                      name=f"incentives-write-{number}")
            process.start()
            send.close()
            children.append((process, receive))
        try:
            totals, counts = self._totals(range(len(self.status)))  # meanwhile, in this process
            for process, receive in children:
                kind, payload = receive.recv()
                if kind != "done":
                    raise RuntimeError(f"a writer process failed: {payload}")
                process.join()
        except EOFError:
            raise RuntimeError("a writer process ended without finishing its part") from None
        finally:
            for process, receive in children:
                if process.is_alive():
                    process.terminate()
                process.join()
                receive.close()
        first = True
        with open(pay_path, "wb") as pay, open(lines_path, "wb") as lines, open(json_path, "wb") as out:
            pay.write(_csv_line(PAYOUT_COLUMNS))
            lines.write(_csv_line(LINE_COLUMNS))
            out.write(json_head)
            for number in segments:
                segment = self.segments[number]
                _append(pay, self._part(segment, "pay"))
                _append(lines, self._part(segment, "lines"))
                _append(out, self._part(segment, "json"), skip=1 if first else 0)
                first = False
            out.write(b"]" if first else b"\n ]")
            for handle in (pay, lines, out):
                handle.flush()
                os.fsync(handle.fileno())
        return totals, counts, len(self.status)

    def _part(self, segment: _Segment, stream: str) -> Path:
        return self.directory / f"{segment.name}.part.{stream}"

    def _part_worker(self, number: int, connection: Any) -> None:
        try:
            segment = self.segments[number]
            base = self.source.index(number)
            count = len(segment.status)
            candidates = sorted(result for result in self.patches if base <= result < base + count)
            (pay_at, lines_at, json_at), (_, lines_end, _) = self.offsets, self.ends
            with _Copier(segment.spill(self.directory, "pay"), self._part(segment, "pay")) as pay, \
                    _Copier(segment.spill(self.directory, "lines"), self._part(segment, "lines")) as lines, \
                    _Copier(segment.spill(self.directory, "json"), self._part(segment, "json")) as out:
                for result in candidates:
                    patch = self.patches[result]
                    new_total, budget_row, line_json, old_length = self._budget_pieces(result, patch)
                    _, _, owner, at = self.candidates[patch[2]]
                    split = pay_at[result] + owner.cand_pay[at]
                    pay.copy_to(split)
                    pay.write(new_total)
                    pay.skip_to(split + old_length)
                    lines.copy_to(lines_end[result])
                    lines.write(budget_row)
                    at_lines = json_at[result] + owner.cand_json[at]
                    out.copy_to(at_lines)
                    out.write(line_json)
                    out.skip_to(at_lines + len(_LINES_END) + len(str(self.totals[result]).encode()))
                pay.copy_rest()
                lines.copy_rest()
                out.copy_rest()
        except BaseException as error:  # noqa: BLE001 - reported to the parent, which re-raises
            connection.send(("crash", f"{type(error).__name__}: {error}"))
        else:
            connection.send(("done", None))
        finally:
            connection.close()
            os._exit(0)


def _append(target: Any, part: Path, skip: int = 0) -> None:
    """Append the file ``part`` (less its first ``skip`` bytes) to the open file ``target``, in the kernel."""
    target.flush()
    with open(part, "rb") as source:
        size = os.fstat(source.fileno()).st_size - skip
        offset = skip
        while size > 0:
            try:
                copied = os.copy_file_range(source.fileno(), target.fileno(), size, offset)
            except OSError:
                copied = 0
            if copied <= 0:  # not supported here: copy through memory
                source.seek(offset)
                shutil.copyfileobj(source, target, 1 << 22)
                target.flush()
                return
            offset += copied
            size -= copied


class _Copier:
    """Copies a spill file to a part file, with pieces written in and spans skipped on the way."""

    def __init__(self, source: Path, target: Path):
        self.source = open(source, "rb")
        self.target = open(target, "wb", buffering=1 << 22)
        self.position = 0

    def copy_to(self, position: int) -> None:
        remaining = position - self.position
        while remaining > 0:
            chunk = self.source.read(min(remaining, 1 << 22))
            if not chunk:
                raise RuntimeError("a spill file is shorter than its index")
            self.target.write(chunk)
            remaining -= len(chunk)
        self.position = position

    def skip_to(self, position: int) -> None:
        self.source.seek(position)
        self.position = position

    def write(self, data: bytes) -> None:
        self.target.write(data)

    def copy_rest(self) -> None:
        shutil.copyfileobj(self.source, self.target, 1 << 22)

    def __enter__(self) -> "_Copier":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.source.close()
        self.target.close()


def _first(item: tuple) -> Any:
    return item[0]


def _program_and_period(item: tuple) -> tuple[str, str]:
    return item[0], item[1]


def _csv_line(columns: Sequence[str]) -> bytes:
    rows = _Collector()
    csv.writer(rows, lineterminator="\n").writerow(columns)
    return rows[0].encode()


def _temporary(target: Path, name: str, temporaries: list[Path]) -> Path:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=target)
    os.close(descriptor)
    path = Path(temporary)
    temporaries.append(path)
    return path


_RESULTS_START, _RESULTS_END = b'\n "results": [', b'\n "totals": '


def _results_section(path: Path) -> Iterator[bytes]:
    """The bytes of a run.json between its "results" key and its "totals" key, in chunks."""
    with open(path, "rb") as handle:
        buffer = b""
        started = False
        while True:
            chunk = handle.read(1 << 22)
            buffer += chunk
            if not started:
                at = buffer.find(_RESULTS_START)
                if at < 0:
                    if not chunk:
                        return
                    buffer = buffer[-len(_RESULTS_START):]
                    continue
                buffer = buffer[at:]
                started = True
            end = buffer.find(_RESULTS_END)
            if end >= 0:
                yield buffer[:end]
                return
            if not chunk:
                yield buffer
                return
            keep = len(_RESULTS_END)
            yield buffer[:-keep]
            buffer = buffer[-keep:]


def _same_results(previous: Path, current: Path) -> bool:
    """Whether an existing run.json holds the same results as the one just written (compared as text)."""
    if not previous.exists():
        return True
    left, right = _results_section(previous), _results_section(current)
    a = b = b""
    while True:
        if not a:
            a = next(left, b"")
        if not b:
            b = next(right, b"")
        if not a or not b:
            return not a and not b
        size = min(len(a), len(b))
        if a[:size] != b[:size]:
            return False
        a, b = a[size:], b[size:]


class _Reader:
    """Byte ranges of a spill file, read through a window so that mostly-sequential reads are cheap."""

    def __init__(self, path: Path):
        self.descriptor = os.open(path, os.O_RDONLY)
        self.start = 0
        self.window = b""

    def get(self, start: int, end: int) -> memoryview | bytes:
        if end == start:
            return b""
        window_start = self.start
        if start >= window_start and end <= window_start + len(self.window):
            return memoryview(self.window)[start - window_start:end - window_start]
        self.window = os.pread(self.descriptor, max(_WINDOW, end - start), start)
        self.start = start
        return memoryview(self.window)[:end - start]

    def close(self) -> None:
        os.close(self.descriptor)


class _Output:
    """A buffered binary output file, flushed and fsync'ed when closed without an error."""

    def __init__(self, path: Path):
        self.handle = open(path, "wb")
        self.parts: list[Any] = []
        self.size = 0

    def write(self, data: Any) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= (8 << 20):
            self.flush()

    def flush(self) -> None:
        self.handle.write(b"".join(self.parts))
        self.parts.clear()
        self.size = 0

    def __enter__(self) -> "_Output":
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self.flush()
                self.handle.flush()
                os.fsync(self.handle.fileno())
        finally:
            self.handle.close()
