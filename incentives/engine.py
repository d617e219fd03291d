"""The engine: orchestration only — versions by period, ``uses`` order, runs, budgets.

``Engine.evaluate`` computes one partner record against every program;
``Engine.run`` computes many, then applies budgets and builds a
:class:`PayoutRun`. Bad records become ``error`` results; nothing is dropped.
"""

from __future__ import annotations

import difflib
import gc
import itertools
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from .compiler import CompiledProgram, error_result
from .history import (History, HistoryRead, ReadCounter, earlier_facts, history_of, in_partner_order,
                      numbered_rows, partner_groups, reads_for)
from .inputs import Claim, FactRow, fact_row, normalize_claim
from .kinds import KINDS
from .kinds.mdf import OPENING_BALANCE_FACT
from .kinds.steps import apply_budget
from .loading import LoadedProgram, ProgramSet, load_programs
from .money import exact_add, exact_subtract
from .periods import Period, PeriodError, parse_period
from .payout_run import PayoutRun
from .result_parts import Reason
from .results import PayoutResult, ProgramInfo
from .run_rules import (DUPLICATE_PLACES, NO_MDF_PROGRAM, Record, budget_note, coverage_text, duplicate_results,
                        group_claims, orphan_claim_results, place_text, unpack_record)
from .rules.registry import make_backend
from .version import __version__

if TYPE_CHECKING:
    from .ledger import Ledger, LedgerView
    from .ledger.records import ProgramRecord, ResultRecord
    from .streaming import RunSummary

_engine_ids = itertools.count(1)
_NOTHING_USED: Mapping[str, Any] = {}
_NO_CLAIMS: Mapping[str, list[Claim]] = {}


def _not_effective(program_id: str, label: str, versions: list[CompiledProgram]) -> str:
    """Why no version of a program applies: the period's dates and every version's effective window."""
    first = versions[0].program
    period = parse_period(label, first.fiscal_year_start)  # every version parsed the label already
    windows = ", ".join(f"v{compiled.program.version} effective from {compiled.program.effective.from_}"
                        + (f" to {compiled.program.effective.to}" if compiled.program.effective.to else "")
                        for compiled in versions)
    return (f"no version of '{program_id}' is effective in period {label} ({period.start} to {period.end}); "
            f"versions: {windows}")


@dataclass(frozen=True, slots=True)
class _Selection:
    """Which version of a program applies to a period label, or why none does."""

    version: CompiledProgram | None
    period: Period | None
    error: str | None = None
    #: when no version covers the period: what the error row says if no other program covers the record either
    not_effective: str | None = None
    #: what the version reads of earlier periods' records for this period (``prior.X``, ``year_ago.X``)
    reads: tuple[HistoryRead, ...] = ()


class Engine:
    """Evaluates partner records against loaded programs."""

    def __init__(self, programs: ProgramSet | Sequence[LoadedProgram] | str | Path,
                 backend: str = "compiled", *, ledger: "Ledger | None" = None):
        """``ledger``: each MDF fund's opening balance (per partner and program) and the claims already paid
        are read from it, and :meth:`run` / :meth:`run_to` record their run in it as a draft."""
        if isinstance(programs, (str, Path)):
            programs = load_programs(programs)
        self.backend_name = backend
        self._backend = make_backend(backend)
        engine_id = next(_engine_ids)
        self._programs: dict[str, list[CompiledProgram]] = {}
        for loaded in programs:
            name = f"incentives_{engine_id}_{loaded.program.id}_v{loaded.program.version}"
            compiled = CompiledProgram(loaded, self._backend, name)
            self._programs.setdefault(loaded.program.id, []).append(compiled)
        self._selections: dict[tuple[str, str], _Selection] = {}
        self._plans: dict[str, tuple[tuple[str, _Selection, bool], ...]] = {}
        self._mdf_ids = [pid for pid, versions in self._programs.items()
                         if KINDS[versions[0].program.kind].takes_claims]
        # the MDF program a claim without program_id goes to, when there is exactly one
        self._sole_mdf_id = self._mdf_ids[0] if len(self._mdf_ids) == 1 else None
        self.ledger = ledger
        self._view: LedgerView | None = None  # read from the ledger at the start of each run
        #: whether a program reads earlier periods (``prior.X``, ``year_ago.X``): then runs read each
        #: partner's records together, and the records of periods not computed serve as history
        self.reads_history = any(compiled.history_names for versions in self._programs.values()
                                 for compiled in versions)

    def _ledger_view(self) -> "LedgerView | None":
        if self.ledger is not None and self._view is None:
            self._view = self.ledger.view(self._mdf_ids)
        return self._view

    @property
    def program_ids(self) -> list[str]:
        """Program ids in evaluation (``uses``) order."""
        return list(self._programs)

    @property
    def mdf_program_ids(self) -> list[str]:
        """The ids of the MDF programs loaded (those that take claims), in evaluation order."""
        return list(self._mdf_ids)

    def close(self) -> None:
        for versions in self._programs.values():
            for compiled in versions:
                compiled.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one record --------------------------------------------------------------------

    def evaluate(self, record: Record, claims: Iterable[Mapping[str, Any] | Claim] = (), *,
                 history: Iterable[Record] = ()) -> dict[str, PayoutResult]:
        """Every program's result for one partner-period record, by program id.

        ``history``: the same partner's records of other periods, which ``prior.X`` and
        ``year_ago.X`` read; without them a program that reads an earlier period finds
        those facts missing (unless its defaults give them).
        """
        partner_id, period_label, facts, problems = unpack_record(record)
        claim_list = [c if isinstance(c, Claim) else normalize_claim(c) for c in claims]
        self._ledger_view()
        return self.evaluate_facts(partner_id, period_label, facts, problems, claim_list, self._history(history))

    def _history(self, records: Iterable[Record]) -> History | None:
        """A partner's records of other periods by period, when a program reads them."""
        return history_of(row for _, _, row in numbered_rows(records)) if self.reads_history else None

    def not_fired(self, record: Record, results: Mapping[str, PayoutResult],
                  history: Iterable[Record] = ()) -> dict[str, list[Reason]]:
        """For ``explain``: the bonuses and conditional deductions of each program that paid ``record`` (its
        ``results``, by program id) which did not fire, with the values their conditions saw (``this.*`` as
        the step saw it). Computed again here, so a run pays nothing. ``history``: as for :meth:`evaluate`,
        the partner's records of other periods."""
        _, period_label, facts, _ = unpack_record(record)
        earlier = self._history(history)
        not_fired: dict[str, list[Reason]] = {}
        for program_id, selection, _ in self._plan(period_label):
            compiled, result = selection.version, results.get(program_id)
            if compiled is None or result is None or result.status != "ok":
                continue
            used = self._used(compiled, results, period_label)[0] if compiled.uses else _NOTHING_USED
            seen = facts
            if selection.reads:
                found = earlier_facts(selection.reads, earlier or {})
                if not isinstance(found, str):  # its result is ok, so the history was there
                    seen = {**found, **facts}
            reasons = compiled.not_fired(seen, used, result)
            if reasons:
                not_fired[program_id] = reasons
        return not_fired

    def evaluate_facts(self, partner_id: str, period_label: str, facts: Mapping[str, Any], problems: list[str],
                       claims: Sequence[Claim], history: History | None = None) -> dict[str, PayoutResult]:
        """Every program's result for one record already read (:func:`~incentives.run_rules.unpack_record`)
        and its claims already normalised: the step :meth:`evaluate` and both kinds of run take per record.
        ``history``: the partner's records by period (see :mod:`incentives.history`), if any program
        reads an earlier period."""
        results: dict[str, PayoutResult] = {}
        uncovered: list[str] = []
        routed = self._route_claims(claims) if claims else _NO_CLAIMS
        view = self._view
        if problems:
            for program_id in self._programs:
                results[program_id] = error_result(partner_id, period_label, program_id, list(problems))
            self._unroutable(partner_id, period_label, routed, results)
            return results
        for program_id, selection, mdf in self._plan(period_label):
            compiled = selection.version
            if compiled is None:
                if selection.error is not None:
                    results[program_id] = error_result(partner_id, period_label, program_id, [selection.error])
                elif mdf and program_id in routed:
                    ids = ", ".join(claim.claim_id for claim in routed[program_id])
                    results[program_id] = error_result(
                        partner_id, period_label, program_id,
                        [f"claims {ids} are for '{program_id}', which has no version effective in period "
                         f"{period_label}"])
                else:
                    uncovered.append(program_id)
                continue
            if compiled.uses:
                used, used_error = self._used(compiled, results, period_label)
                if used_error is not None:
                    results[program_id] = compiled.error(partner_id, period_label, used_error)
                    continue
            else:
                used = _NOTHING_USED
            program_claims = routed.get(program_id, ()) if mdf else ()
            assert selection.period is not None
            if mdf and view is not None:  # the ledger's fund balance opens the period, not the fact
                used = {**used, OPENING_BALANCE_FACT: view.opening(program_id, selection.period, partner_id)}
            if selection.reads:
                earlier = earlier_facts(selection.reads, history or {})
                if isinstance(earlier, str):
                    results[program_id] = compiled.error(partner_id, period_label, earlier)
                    continue
                # a prior.X the record itself holds stands: history fills only what the record lacks
                results[program_id] = compiled.evaluate(partner_id, selection.period, {**earlier, **facts}, used,
                                                        program_claims)
                continue
            results[program_id] = compiled.evaluate(partner_id, selection.period, facts, used, program_claims)
        if not results:
            for program_id in uncovered:
                not_effective = self._select(program_id, period_label).not_effective
                assert not_effective is not None
                results[program_id] = error_result(partner_id, period_label, program_id, [not_effective])
        self._unroutable(partner_id, period_label, routed, results)
        return results

    def _plan(self, label: str) -> tuple[tuple[str, _Selection, bool], ...]:
        """Each program's version for a period label, in evaluation order, and whether it is an MDF program."""
        plan = self._plans.get(label)
        if plan is None:
            plan = self._plans[label] = tuple(
                (program_id, self._select(program_id, label), program_id in self._mdf_ids)
                for program_id in self._programs)
        return plan

    def _select(self, program_id: str, label: str) -> _Selection:
        key = (program_id, label)
        selection = self._selections.get(key)
        if selection is None:
            selection = self._selections[key] = self._find_version(program_id, label)
        return selection

    def _find_version(self, program_id: str, label: str) -> _Selection:
        for compiled in self._programs[program_id]:
            try:
                period = parse_period(label, compiled.program.fiscal_year_start)
            except PeriodError as error:
                return _Selection(None, None, str(error))
            if compiled.covers(period):
                if period.granularity != compiled.program.period:
                    return _Selection(None, period, f"'{program_id}' is evaluated per {compiled.program.period}; "
                                                    f"period '{label}' is a {period.granularity}")
                if compiled.history_names:
                    return _Selection(compiled, period, reads=reads_for(compiled.history_names, period))
                return _Selection(compiled, period)
        return _Selection(None, None, not_effective=_not_effective(program_id, label, self._programs[program_id]))

    def _used(self, compiled: CompiledProgram, results: Mapping[str, PayoutResult],
              period_label: str) -> tuple[dict[str, Any], str | None]:
        """What ``compiled`` reads of the results of the programs it uses, or why it cannot read them."""
        used: dict[str, Any] = {}
        for used_id, tier, total, eligible in compiled.used_names:
            result = results.get(used_id)
            if result is None:
                return used, f"uses '{used_id}', which has no version effective in period {period_label}"
            values = result.__dict__
            status = values["status"]
            if status == "error":
                return used, f"uses '{used_id}', whose result for this record is an error"
            used[tier] = values["tier"]
            used[total] = values["total"]
            used[eligible] = status == "ok"
        return used, None

    def _route_claims(self, claims: Sequence[Claim]) -> dict[str, list[Claim]]:
        """One record's claims by the program they go to, every claim somewhere.

        A claim goes to the MDF program it names, or without a ``program_id`` to
        the only MDF program loaded; with several loaded it goes to each of them,
        rejected for naming none. A claim naming a program that is not a loaded
        MDF program is kept under that name, for :meth:`_unroutable` to report.
        """
        sole = self._sole_mdf_id
        routed: dict[str, list[Claim]] = {}
        for claim in claims:
            program_id = claim.program_id
            if program_id is not None:
                routed.setdefault(program_id, []).append(claim)
            elif sole is not None:
                routed.setdefault(sole, []).append(claim)
            else:
                unnamed = claim.with_problem(
                    f"the claim names no program_id and {len(self._mdf_ids)} MDF programs are loaded")
                for mdf_id in self._mdf_ids:
                    routed.setdefault(mdf_id, []).append(unnamed)
                if not self._mdf_ids:
                    routed.setdefault(NO_MDF_PROGRAM, []).append(claim)
        view = self._view
        if view is not None:
            for program_id in self._mdf_ids:
                if program_id in routed:
                    routed[program_id] = [_unless_paid(view, program_id, claim) for claim in routed[program_id]]
        return routed

    def _unroutable(self, partner_id: str, period_label: str, routed: Mapping[str, list[Claim]],
                    results: dict[str, PayoutResult]) -> None:
        """An error result for each program that claims name but that is not a loaded MDF program.

        Such claims (a typo in ``program_id``, a tier program's id) would otherwise
        reach no program and vanish from the run.
        """
        for program_id, program_claims in routed.items():
            if program_id in self._mdf_ids:
                continue
            ids = ", ".join(claim.claim_id for claim in program_claims)
            # keyed apart: a loaded program of another kind keeps its own result (or its coverage note)
            results[f"claims:{program_id}"] = error_result(partner_id, period_label, program_id,
                                        [f"claims {ids} {self._not_an_mdf_program(program_id)}"])

    def _not_an_mdf_program(self, program_id: str) -> str:
        if program_id == NO_MDF_PROGRAM:
            return "are for an MDF program, and none is loaded"
        versions = self._programs.get(program_id)
        if versions is not None:
            return f"name '{program_id}', a {versions[0].program.kind} program: only MDF programs take claims"
        loaded = ", ".join(self._mdf_ids) or "none"
        near = difflib.get_close_matches(program_id, self._mdf_ids, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return f"name program '{program_id}', which is not loaded (MDF programs loaded: {loaded}){hint}"

    # --- a run -------------------------------------------------------------------------

    def run(self, records: Iterable[Record], claims: Iterable[Mapping[str, Any] | Claim] = (), *,
            facts_sha256: str | None = None, claims_sha256: str | None = None,
            progress: Callable[[int], None] | None = None, record: bool = True,
            period: str | None = None) -> PayoutRun:
        """Evaluate every record, apply budgets, and return the run in output order.

        ``period``: compute only that period's records (and its claims); the records of
        other periods are not computed, and serve as history for ``prior.X`` and
        ``year_ago.X``. Without it every record is computed.

        With a ledger, the run reads it as it starts and, unless ``record`` is false,
        is recorded in it as a draft (``ledger.post(run.run_id)`` posts it).
        Python's cyclic garbage collector is paused meanwhile (see :func:`_collector_paused`).
        """
        self._view = None  # what the ledger holds now, not at the previous run
        self._ledger_view()
        with _collector_paused():
            run = self._run(records, claims, facts_sha256, claims_sha256, progress, period)
        run.notes.extend(self._ledger_notes())
        if self.ledger is not None and record:
            from .ledger.runs import result_records, run_record

            programs = self.ledger_programs()
            self.ledger.record(run_record(run, programs.values()), result_records(run.results, programs))
        return run

    def ledger_programs(self) -> dict[tuple[str, int], "ProgramRecord"]:
        """What the ledger records of each program version, by id and version."""
        from .ledger.runs import program_record

        return {(compiled.id, compiled.version): program_record(compiled.program, compiled.loaded.sha256)
                for versions in self._programs.values() for compiled in versions}

    def _ledger_notes(self) -> list[str]:
        """What a run says of the ledger in its notes (nothing without one)."""
        if self.ledger is None or not self._mdf_ids:
            return []
        return [f"MDF funds open with their balance in the ledger, per partner and program: "
                f"the {OPENING_BALANCE_FACT} fact is not read"]

    def _run(self, records: Iterable[Record], claims: Iterable[Mapping[str, Any] | Claim],
             facts_sha256: str | None, claims_sha256: str | None,
             progress: Callable[[int], None] | None, period: str | None) -> PayoutRun:
        claims_by_key = group_claims(claims, period)
        by_key: dict[tuple[str, str], dict[str, PayoutResult]] = {}
        where: dict[tuple[str, str], tuple[int | None, int | None]] = {}  # the first place of each key
        repeated: dict[tuple[str, str], list[tuple[int | None, int | None]]] = {}  # every place, once repeated
        unkeyed: list[dict[str, PayoutResult]] = []
        notes: list[str] = []
        evaluate = self.evaluate_facts
        no_claims = ()
        counter = ReadCounter()
        if period is not None:
            records = counter.counting(records)
        for index, record, history in self.records_to_compute(records, period):
            partner_id, period_label, facts, problems = unpack_record(record)
            key = (partner_id, period_label)
            if not partner_id or not period_label:
                # Lacking an id, a record matches no claims and duplicates no other: it keeps its own errors.
                unkeyed.append(evaluate(partner_id, period_label, facts, problems, no_claims, history))
                if progress is not None:
                    progress(index)
                continue
            place = (record.line, None) if isinstance(record, FactRow) else (None, index)
            if key in by_key:
                places = repeated.get(key)
                if places is None:
                    places = repeated[key] = [where[key]]
                places.append(place)
            else:
                where[key] = place
                by_key[key] = evaluate(partner_id, period_label, facts, problems, claims_by_key.get(key, no_claims),
                                       history)
            if progress is not None:
                progress(index)
        for key, places in repeated.items():  # made once every record is read: the message counts them all
            by_key[key] = duplicate_results(key, [place_text(*at) for at in places[:DUPLICATE_PLACES]],
                                            len(places), self._programs)
        coverage = self._coverage_notes(by_key)  # of the records only, not of the orphan claims below
        for key, key_claims in claims_by_key.items():
            if key not in by_key:
                by_key[key] = orphan_claim_results(key, key_claims, self._mdf_ids)
        results = sorted((result for per_key in [*by_key.values(), *unkeyed] for result in per_key.values()),
                         key=_output_order)
        totals, counts, budget_notes = self._totals_and_budgets(results)
        notes += budget_notes
        notes += coverage
        if period is not None:
            computed = len(unkeyed) + len(where) + sum(len(places) - 1 for places in repeated.values())
            notes += self.period_notes(period, counter.read - computed)
        return PayoutRun.model_construct(
            run_id=uuid.uuid4().hex, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            engine_version=__version__, programs=self.program_infos(), facts_sha256=facts_sha256,
            claims_sha256=claims_sha256, results=results, totals=totals, counts=counts, notes=notes)

    def records_to_compute(self, records: Iterable[Record], period: str | None, *, grouped: bool = False,
                           first_index: int = 1) -> Iterator[tuple[int, Record, History | None]]:
        """``(index, record, history)`` for each record a run computes: every record, or with ``period`` that
        period's (and those without a partner or period, which become error rows). ``history`` is the
        partner's records by period when a program reads earlier periods, else None. ``grouped``: each
        partner's records are already next to each other (then only one partner's are held at a time);
        otherwise they are put so, in memory."""
        if self.reads_history:
            numbered = numbered_rows(records, first_index) if grouped else in_partner_order(records, first_index)
            return partner_groups(numbered, period)
        numbered_records = zip(itertools.count(first_index), records, itertools.repeat(None))
        if period is None:
            return numbered_records
        return ((index, record, None) for index, record, _ in numbered_records
                if _period_of(record) in (period, ""))

    def period_notes(self, period: str, not_computed: int) -> list[str]:
        """What a run that computes only ``period`` says of the ``not_computed`` records of other periods."""
        if not not_computed:
            return []
        records = f"{not_computed:,} record{'' if not_computed == 1 else 's'} of other periods"
        if self.reads_history:
            return [f"period {period} computed; {records} read as history only (not computed)"]
        return [f"period {period} computed; {records} skipped"]

    def run_to(self, folder: str | Path, facts: Iterable[Record] | str | Path,
               claims: Iterable[Mapping[str, Any] | Claim] | str | Path = (), *,
               facts_sha256: str | None = None, claims_sha256: str | None = None, force: bool = False,
               progress: Callable[[int], None] | None = None, workers: int | None = None,
               notes: Callable[[int], Iterable[str]] | None = None, record: bool = True,
               period: str | None = None) -> "RunSummary":
        """Evaluate ``facts`` and write ``payouts.csv``, ``lines.csv``, ``results.jsonl`` and ``run.json``
        into ``folder``.

        The streaming form of ``write_run(self.run(records, claims), folder)``: the same
        files byte for byte (run id and time aside), with a few numbers per result
        in memory instead of every result. ``facts`` is a facts file (``.csv``,
        ``.jsonl``, ``.ndjson``) or an iterable of records; ``claims`` a claims file
        or an iterable of claims. A large facts file is split over ``workers``
        processes (default: one per CPU core; ``1`` evaluates in this process).
        ``progress`` is called with the number of records evaluated so far;
        ``notes``, once every record is evaluated, with their number: the notes it
        returns follow the run's own in run.json. Returns a
        :class:`~incentives.streaming.RunSummary` (totals, counts, notes and the
        per-program figures a summary table needs). Raises
        :class:`~incentives.output.folder.OutputExistsError` as
        :func:`~incentives.output.files.write_run` does.
        With a ledger, as ``run``: it reads the ledger as it starts and, unless
        ``record`` is false, records the run as a draft once its files are in place.
        ``period``: as for ``run``, only that period's records are computed, the others are history.
        Like ``run``, it pauses the cyclic garbage collector while it runs.
        """
        # Imported when a streamed run starts, not with every ``import incentives``: it brings
        # multiprocessing and builds its serialisers as it loads.
        from .streaming import run_to

        self._view = None  # what the ledger holds now, not at the previous run
        self._ledger_view()
        recorded = self.ledger_programs() if self.ledger is not None and record else None
        # Paused here, the collector is also paused in the worker processes forked meanwhile.
        with _collector_paused():
            return run_to(self, folder, facts, claims, facts_sha256=facts_sha256, claims_sha256=claims_sha256,
                          force=force, progress=progress, workers=workers, notes=self._with_ledger_notes(notes),
                          record=self._recorder(recorded), ledger_programs=recorded, period=period)

    def _with_ledger_notes(self, notes: Callable[[int], Iterable[str]] | None
                           ) -> Callable[[int], Iterable[str]] | None:
        """``notes`` (what a caller adds to run.json) followed by what the ledger says, if there is one."""
        if self.ledger is None:
            return notes

        def with_ledger(evaluated: int) -> list[str]:
            return [*(notes(evaluated) if notes is not None else []), *self._ledger_notes()]

        return with_ledger

    def _recorder(self, recorded: Mapping[tuple[str, int], "ProgramRecord"] | None) -> Callable[..., None] | None:
        """What records a streamed run in the ledger once its files are in place (``None``: nothing)."""
        ledger = self.ledger
        if ledger is None or recorded is None:
            return None
        from .ledger.runs import run_record

        def record_run(summary: "RunSummary", results: Iterable["ResultRecord"]) -> None:
            ledger.record(run_record(summary, recorded.values()), results)

        return record_run

    def _totals_and_budgets(self, results: list[PayoutResult]) -> tuple[dict[str, Decimal],
                                                                        dict[str, dict[str, int]], list[str]]:
        """Each program's totals and counts per status, with its budgets applied, in one pass over the results.

        Totals are summed before the budgets scale results; a scaled group then
        sums to its budget exactly, so its program's total moves by budget −
        requested. Returns the totals, the counts and the budget notes.
        """
        budgeted = {program_id for program_id, versions in self._programs.items()
                    if any(compiled.budget is not None for compiled in versions)}
        totals = {program_id: Decimal(0) for program_id in self._programs}
        counts = {program_id: {"ok": 0, "ineligible": 0, "error": 0} for program_id in self._programs}
        groups: dict[tuple[str, int | None, str], list[PayoutResult]] = defaultdict(list)
        for result in results:
            values = result.__dict__
            program_id = values["program_id"]
            if program_id not in totals:  # a program only claims name: no default built per result
                totals[program_id] = Decimal(0)
                counts[program_id] = {"ok": 0, "ineligible": 0, "error": 0}
            totals[program_id] = exact_add(totals[program_id], values["total"])
            counts[program_id][values["status"]] += 1
            if program_id in budgeted:
                groups[(program_id, values["program_version"], values["period"])].append(result)
        notes = []
        for (program_id, version, period), group in sorted(groups.items(), key=lambda item: str(item[0])):
            compiled = self.program_version(program_id, version)
            if compiled is None or compiled.budget is None:
                continue
            scale = apply_budget(group, compiled.budget, compiled.rounding.places)
            if scale is not None:
                totals[program_id] = exact_add(totals[program_id], exact_subtract(scale.budget, scale.requested))
                notes.append(budget_note(program_id, version, period, compiled, scale.factor))
        return self.in_program_order(totals), self.in_program_order(counts), notes

    def in_program_order(self, per_program: dict[str, Any]) -> dict[str, Any]:
        """``per_program`` keyed in run.json's order: loaded programs in evaluation order, then the names
        only claims gave (not loaded, or not MDF programs), sorted."""
        loaded = self._programs
        return {**{program_id: per_program[program_id] for program_id in loaded if program_id in per_program},
                **{program_id: per_program[program_id] for program_id in sorted(per_program)
                   if program_id not in loaded}}

    def program_version(self, program_id: str, version: int | None) -> CompiledProgram | None:
        """The compiled version ``version`` of program ``program_id``, if it is loaded."""
        for compiled in self._programs.get(program_id, ()):
            if compiled.version == version:
                return compiled
        return None

    def _coverage_notes(self, by_key: Mapping[tuple[str, str], dict[str, PayoutResult]]) -> list[str]:
        missing: dict[tuple[str, str], int] = defaultdict(int)
        for (_, period), per_program in by_key.items():
            for program_id in self._programs:
                if program_id not in per_program and not any(k.startswith(program_id + "#") for k in per_program):
                    missing[(program_id, period)] += 1
        return coverage_text(missing)

    def program_infos(self) -> list[ProgramInfo]:
        """Every loaded program version as run.json lists it, in evaluation order."""
        return [ProgramInfo.model_construct(id=c.id, version=c.version, file=c.loaded.file, sha256=c.loaded.sha256)
                for versions in self._programs.values() for c in versions]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a run builds its results, if it was running.

    A run keeps every result it builds (or, streaming, a few numbers per
    result), so each collection traverses more live objects than the last: with
    the collector running, ``Engine.run`` over 100k partners took about twice as
    long as evaluating the same records and dropping the results. Results hold
    no reference cycles, so reference counting frees everything a run discards;
    any cycle made meanwhile (by a progress callback, say) is collected once the
    collector runs again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _period_of(record: Record) -> str:
    """A record's period label as read (``""`` when it has none)."""
    return (record if isinstance(record, FactRow) else fact_row(record)).period


_output_order = attrgetter("partner_id", "program_id", "period")


def _unless_paid(view: "LedgerView", program_id: str, claim: Claim) -> Claim:
    """The claim, rejected if the ledger says another period's run paid it (a claim is paid once, ever)."""
    paid = view.already_paid(program_id, claim.claim_id, claim.period)
    return claim if paid is None else claim.with_problem(paid)
