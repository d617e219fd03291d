"""The rules of a run (:mod:`incentives.runs` applies them once, for ``Engine.run`` and ``Engine.run_to``
alike): duplicate records, claims without a record, coverage and budget
notes; and :class:`RunEngine`, what a run asks of the engine.

They live here, below the runs, so that a run takes them without reaching into
:class:`~incentives.engine.Engine`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Collection, Iterable, Mapping, Protocol, Sequence

from .compiler import CompiledProgram, error_result
from .history import History
from .inputs import Claim, FactRow, fact_row
from .periods import Period
from .results import PayoutResult, ProgramInfo

__all__ = ["DUPLICATE_PLACES", "NO_MDF_PROGRAM", "Record", "RunEngine", "budget_note", "coverage_text",
           "duplicate_message", "duplicate_results", "orphan_claim_results", "place_text",
           "unpack_record"]

#: A partner-period record as a run takes it: a row read from a facts file, or a mapping given through the API.
Record = Mapping[str, Any] | FactRow

#: Where claims without a program_id go when no MDF program is loaded at all.
NO_MDF_PROGRAM = "(no MDF program)"

#: How many of a duplicated record's places its message lists; the others are counted.
DUPLICATE_PLACES = 5


class RunEngine(Protocol):
    """What a run needs of the engine it runs (:class:`~incentives.engine.Engine` is one)."""

    reads_history: bool

    @property
    def program_ids(self) -> list[str]: ...

    @property
    def mdf_program_ids(self) -> list[str]: ...

    def evaluate_facts(self, partner_id: str, period_label: str, facts: Mapping[str, Any], problems: list[str],
                       claims: Sequence[Claim], history: History | None = None, *,
                       only: Collection[str] | None = None) -> dict[str, PayoutResult]: ...

    def versions_in(self, label: str) -> list[tuple[str, CompiledProgram | None, Period | None]]: ...


    def period_notes(self, period: str, not_computed: int) -> list[str]: ...

    def program_version(self, program_id: str, version: int | None) -> CompiledProgram | None: ...

    def program_infos(self) -> list[ProgramInfo]: ...

    def in_program_order(self, per_program: dict[str, Any]) -> dict[str, Any]: ...


def unpack_record(record: Record) -> tuple[str, str, Mapping[str, Any], list[str]]:
    """A record's partner_id, period label, facts and problems (a copy of the list: evaluation adds to it)."""
    row = record if isinstance(record, FactRow) else fact_row(record)
    return row.partner_id, row.period, row.facts, list(row.problems)


def duplicate_results(key: tuple[str, str], places: Sequence[str], count: int,
                      program_ids: Iterable[str]) -> dict[str, PayoutResult]:
    """The error results of ``count`` records of one partner and period, one per record and program;
    ``places``: where the first few of them are (see :func:`duplicate_message`)."""
    message = duplicate_message(key, places, count)
    return {f"{program_id}#{n}": error_result(key[0], key[1], program_id, [message])
            for program_id in program_ids for n in range(count)}


def orphan_claim_results(key: tuple[str, str], claims: list[Claim],
                         mdf_program_ids: Sequence[str]) -> dict[str, PayoutResult]:
    """The error results of claims that no facts record of their partner and period came with: one per
    program they name, or, naming none, per MDF program loaded."""
    results = {}
    named = {claim.program_id for claim in claims if claim.program_id is not None}
    targets = sorted(named) if named else (mdf_program_ids or [NO_MDF_PROGRAM])
    for program_id in targets:
        ids = ", ".join(claim.claim_id for claim in claims
                        if claim.program_id in (program_id, None))
        results[program_id] = error_result(
            key[0], key[1], program_id,
            [f"claims {ids} have no facts record for partner {key[0]} and period {key[1]}"])
    return results


def coverage_text(missing: Mapping[tuple[str, str], int]) -> list[str]:
    """The coverage notes for ``(program_id, period) -> records without a result``."""
    return [f"{program_id}: no version effective in period {period} ({count} records without a result)"
            for (program_id, period), count in sorted(missing.items())]


def budget_note(program_id: str, version: int | None, period: str, compiled: CompiledProgram,
                factor: Decimal) -> str:
    """The note of a budget that scaled a program version's results of one period by ``factor``."""
    return (f"{program_id} v{version} {period}: budget {compiled.budget} applied, "
            f"totals scaled by {factor:.6f}")


def duplicate_message(key: tuple[str, str], places: Sequence[str], count: int) -> str:
    """The error of ``count`` records of one partner and period, whose first places are ``places`` (at most
    :data:`DUPLICATE_PLACES` are listed: with many copies, a message naming them all would make each
    copy's results as long as the file, and run.json grow as the square of the copies)."""
    listed = ", ".join(places[:DUPLICATE_PLACES])
    where = listed if count <= DUPLICATE_PLACES else (
        f"{count:,} records: {listed} and {count - DUPLICATE_PLACES:,} more")
    return f"duplicate record for partner {key[0]} and period {key[1]} ({where})"


def place_text(line: int | None, index: int | None) -> str:
    """Where a record came from, for duplicate messages: ``line 12`` (a file) or ``record 3`` (the API)."""
    return f"line {line}" if index is None else f"record {index}"
