"""The engine: orchestration only — versions by period, ``uses`` order, runs, budgets.

``Engine.evaluate`` computes one partner record against every program;
``Engine.run`` computes many, then applies budgets and builds a
:class:`PayoutRun`. Bad records become ``error`` results; nothing is dropped.
"""

from __future__ import annotations

import difflib
import gc
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, Mapping, Sequence

from .compiler import CompiledProgram, error_result
from .history import History, HistoryRead, earlier_facts, history_of, reads_for
from .inputs import Claim, FactRow, fact_row, normalize_claim
from .kinds import KINDS
from .kinds.mdf import OPENING_BALANCE_FACT
from .loading import LoadedProgram, ProgramSet, load_programs
from .periods import Period, PeriodError, parse_period
from .payout_run import PayoutRun
from .result_parts import Reason
from .results import PayoutResult, ProgramInfo
from .run_rules import NO_MDF_PROGRAM, Record, unpack_record
from .rules.registry import make_backend

if TYPE_CHECKING:
    from .ledger import Ledger, LedgerView
    from .measures.compute import MeasuredFacts
    from .ledger.records import ProgramRecord
    from .runs.pipeline import RunSummary

_engine_ids = itertools.count(1)

#: What computes a run to files (:meth:`Engine.run_to`'s ``engine``): by columns, or every record per record.
RUN_ENGINES = ("columnar", "per-record")
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
        return history_of(record if isinstance(record, FactRow) else fact_row(record) for record in records) \
            if self.reads_history else None

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
                       claims: Sequence[Claim], history: History | None = None, *,
                       only: Collection[str] | None = None) -> dict[str, PayoutResult]:
        """Every program's result for one record already read (:func:`~incentives.run_rules.unpack_record`)
        and its claims already normalised: the step :meth:`evaluate` and both kinds of run take per record.
        ``history``: the partner's records by period (see :mod:`incentives.history`), if any program
        reads an earlier period. ``only``: the results of these programs alone (those they use are computed
        too, and left out), each as it is among every program's: what the columnar engine leaves to this
        path of a record whose other programs it computed."""
        if only is not None:
            wanted = self._with_used(period_label, only)
            return {program_id: result for program_id, result in self._evaluate_facts(
                partner_id, period_label, facts, problems, claims, history, wanted).items() if program_id in only}
        return self._evaluate_facts(partner_id, period_label, facts, problems, claims, history, None)

    def _with_used(self, period_label: str, program_ids: Collection[str]) -> set[str]:
        """``program_ids`` and every program they use, through their versions for ``period_label``."""
        wanted = set(program_ids)
        for program_id, selection, _ in reversed(self._plan(period_label)):  # a user comes after what it uses
            if program_id in wanted and selection.version is not None:
                wanted |= set(selection.version.uses)
        return wanted

    def _evaluate_facts(self, partner_id: str, period_label: str, facts: Mapping[str, Any], problems: list[str],
                        claims: Sequence[Claim], history: History | None,
                        wanted: Collection[str] | None) -> dict[str, PayoutResult]:
        results: dict[str, PayoutResult] = {}
        uncovered: list[str] = []
        routed = self.route_claims(claims) if claims else _NO_CLAIMS
        view = self._view
        if problems:
            for program_id in self._programs:
                results[program_id] = error_result(partner_id, period_label, program_id, list(problems))
            self._unroutable(partner_id, period_label, routed, results)
            return results
        for program_id, selection, mdf in self._plan(period_label):
            if wanted is not None and program_id not in wanted:
                continue
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
        # a record no program has a version for says so; one a left-out program covers does not
        if not results and not (wanted is not None and any(
                selection.version is not None or selection.error is not None or (mdf and program_id in routed)
                for program_id, selection, mdf in self._plan(period_label) if program_id not in wanted)):
            for program_id in uncovered:
                not_effective = self._select(program_id, period_label).not_effective
                assert not_effective is not None
                results[program_id] = error_result(partner_id, period_label, program_id, [not_effective])
        self._unroutable(partner_id, period_label, routed, results)
        return results

    def versions_in(self, label: str) -> list[tuple[str, CompiledProgram | None, Period | None]]:
        """Each program's version that computes a record of period ``label``, and the period, in evaluation
        order; ``None`` where :meth:`evaluate_facts` decides otherwise (an error row, no version effective,
        earlier periods to read), and for an MDF program when a ledger gives its funds' opening balances.
        What the columnar engine may compute by columns; anything else it leaves to :meth:`evaluate_facts`."""
        return [(program_id, None if selection.reads or (mdf and self.ledger is not None) else selection.version,
                 selection.period) for program_id, selection, mdf in self._plan(label)]

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

    def route_claims(self, claims: Sequence[Claim]) -> dict[str, list[Claim]]:
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
            period: str | None = None, measured: "MeasuredFacts | None" = None) -> PayoutRun:
        """Evaluate every record, apply budgets, and return the run in output order.

        ``period``: compute only that period's records (and its claims); the records of
        other periods are not computed, and serve as history for ``prior.X`` and
        ``year_ago.X``. Without it every record is computed.

        ``measured``: facts computed from transactions (:func:`incentives.measure_facts`),
        joined to the records by partner and period; a partner and period they have and
        the records lack gets a record of its own (:mod:`incentives.joined_facts`).
        run.json records the measures files and their transaction files' sha256.

        With a ledger, the run reads it as it starts and, unless ``record`` is false,
        is recorded in it as a draft (``ledger.post(run.run_id)`` posts it).
        Python's cyclic garbage collector is paused meanwhile (see :func:`_collector_paused`).
        """
        from .runs.pipeline import run_in_memory

        self._view = None  # what the ledger holds now, not at the previous run
        self._ledger_view()
        with _collector_paused():
            run = run_in_memory(self, records, claims, facts_sha256=facts_sha256, claims_sha256=claims_sha256,
                                progress=progress, period=period, measured=measured)
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

    def period_notes(self, period: str, not_computed: int) -> list[str]:
        """What a run that computes only ``period`` says of the ``not_computed`` records of other periods."""
        if not not_computed:
            return []
        records = f"{not_computed:,} record{'' if not_computed == 1 else 's'} of other periods"
        if self.reads_history:
            return [f"period {period} computed; {records} read as history only (not computed)"]
        return [f"period {period} computed; {records} skipped"]

    def run_to(self, folder: str | Path, facts: Iterable[Record] | str | Path | None,
               claims: Iterable[Mapping[str, Any] | Claim] | str | Path = (), *,
               facts_sha256: str | None = None, claims_sha256: str | None = None, force: bool = False,
               progress: Callable[[int], None] | None = None,
               notes: Callable[[int], Iterable[str]] | None = None, record: bool = True,
               period: str | None = None, engine: str = "columnar",
               measured: "MeasuredFacts | None" = None) -> "RunSummary":
        """Evaluate ``facts`` and write ``payouts.csv``, ``lines.csv``, ``results.jsonl`` and ``run.json``
        into ``folder``.

        The same files as ``write_run(self.run(records, claims), folder)``, byte for byte
        (run id and time aside), written a block of partners at a time: only a block's
        results are in memory at once. ``facts`` is a facts file (``.csv``, ``.jsonl``,
        ``.ndjson``) or an iterable of records; ``claims`` a claims file or an iterable of
        claims. ``progress`` is called with the number of records evaluated so far;
        ``notes``, once every record is evaluated, with their number: the notes it
        returns follow the run's own in run.json. Returns a
        :class:`~incentives.runs.pipeline.RunSummary` (totals, counts, notes and the
        per-program figures a summary table needs). Raises
        :class:`~incentives.output.folder.OutputExistsError` as
        :func:`~incentives.output.files.write_run` does.
        With a ledger, as ``run``: it reads the ledger as it starts and, unless
        ``record`` is false, records the run as a draft once its files are in place.
        ``period``: as for ``run``, only that period's records are computed, the others are history.
        ``measured``: as for ``run``; ``facts`` may then be ``None`` (the measures' records alone).
        ``engine``: ``"columnar"`` (the default) computes a CSV facts file by columns, each record it cannot
        compute so per record (:mod:`incentives.runs.by_columns`); ``"per-record"`` computes every record
        per record. Both write the same files, byte for byte.
        Like ``run``, it pauses the cyclic garbage collector while it runs.
        """
        from .runs.pipeline import run_to_folder

        if engine not in RUN_ENGINES:
            raise ValueError(f"engine must be one of {', '.join(RUN_ENGINES)}, not {engine!r}")

        self._view = None  # what the ledger holds now, not at the previous run
        self._ledger_view()
        recorded = self.ledger_programs() if self.ledger is not None and record else None
        with _collector_paused():
            return run_to_folder(self, folder, facts, claims, facts_sha256=facts_sha256,
                                 claims_sha256=claims_sha256, force=force, progress=progress,
                                 notes=self._with_ledger_notes(notes), record=self._recorder(recorded),
                                 period=period, by_columns=engine == "columnar", measured=measured)

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
        from .ledger.runs import result_records, run_record

        def record_run(summary: "RunSummary", results: Iterable[PayoutResult]) -> None:
            ledger.record(run_record(summary, recorded.values()), result_records(results, recorded))

        return record_run

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


def _unless_paid(view: "LedgerView", program_id: str, claim: Claim) -> Claim:
    """The claim, rejected if the ledger says another period's run paid it (a claim is paid once, ever)."""
    paid = view.already_paid(program_id, claim.claim_id, claim.period)
    return claim if paid is None else claim.with_problem(paid)
