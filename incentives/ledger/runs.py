"""A run as the ledger records it: its programs, and each result's final total, accrual and paid claims."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Protocol, Sequence

from ..kinds.mdf import CLAIM_RULE_PREFIX
from ..periods import PeriodError, parse_period
from .records import PaidClaim, ProgramRecord, ResultRecord, RunRecord

if TYPE_CHECKING:
    from ..models import Program
    from ..results import MeasuresInfo, PayoutResult, ProgramInfo


class RunFacts(Protocol):
    """What the ledger records of a run itself: a run in memory (``PayoutRun``) or the summary of one
    written to files (``RunSummary``) both have it."""

    run_id: str
    created_at: str
    engine_version: str
    facts_sha256: str | None
    claims_sha256: str | None
    notes: Sequence[str]
    programs: Sequence["ProgramInfo"]
    measures: Sequence["MeasuresInfo"]


def program_record(program: "Program", sha256: str) -> ProgramRecord:
    """What the ledger keeps of a program version: its calendar, currency, kind, places and fund expiry."""
    return ProgramRecord(program.id, program.version, sha256, program.kind, program.currency, program.period,
                         program.fiscal_year_start, program.mdf.expiry if program.mdf is not None else "never",
                         program.rounding.places)


def run_record(run: RunFacts, programs: Iterable[ProgramRecord]) -> RunRecord:
    """The run's own facts: id, time, engine, input hashes, notes; ``programs``: what it ran."""
    used = {(program.id, program.version) for program in run.programs}
    return RunRecord(run.run_id, run.created_at, run.engine_version, run.facts_sha256, run.claims_sha256,
                     tuple(run.notes), tuple(program for program in programs
                                             if (program.program_id, program.version) in used),
                     tuple(info.model_dump() for info in run.measures))


def result_records(results: Iterable["PayoutResult"],
                   programs: Mapping[tuple[str, int], ProgramRecord]) -> Iterator[ResultRecord]:
    """The ledger's record of each result (``programs`` by id and version give the periods' dates)."""
    for result in results:
        yield result_record(result, programs.get((result.program_id, result.program_version)))


def result_record(result: "PayoutResult", program: ProgramRecord | None) -> ResultRecord:
    start = end = None
    if program is not None:
        try:
            period = parse_period(result.period, program.fiscal_year_start)
            start, end = period.start, period.end
        except PeriodError:
            pass  # an error result for a period label that cannot be read: it posts nothing
    accrued = result.details.get("accrued")
    claims: tuple[PaidClaim, ...] = ()
    if accrued is not None:
        claims = tuple(PaidClaim(result.program_id, line.rule_id[len(CLAIM_RULE_PREFIX):], result.partner_id,
                                 result.period, line.amount)
                       for line in result.lines
                       if line.kind == "mdf_claim" and line.amount > Decimal(0))
    return ResultRecord(result.partner_id, result.period, result.program_id, result.program_version,
                        result.status, result.total, result.currency, result.tier, start, end, accrued, claims)
