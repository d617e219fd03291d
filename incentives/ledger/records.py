"""What the ledger takes in and gives back: plain, frozen records (no database types leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..money import exact_subtract


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    """A program version a run used, with what the ledger needs of it: its calendar, currency and expiry."""

    program_id: str
    version: int
    sha256: str
    kind: str
    currency: str
    period: str
    fiscal_year_start: str
    expiry: str = "never"
    places: int = 2


@dataclass(frozen=True, slots=True)
class PaidClaim:
    program_id: str
    claim_id: str
    partner_id: str
    period: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One result of a run as the ledger keeps it: its final total (budget applied) and, for an MDF
    result, its accrual and the claims it paid."""

    partner_id: str
    period: str
    program_id: str
    program_version: int | None
    status: str
    total: Decimal
    currency: str | None
    tier: str | None
    period_start: date | None
    period_end: date | None
    accrued: Decimal | None = None
    claims: tuple[PaidClaim, ...] = ()


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    created_at: str
    engine_version: str
    facts_sha256: str | None
    claims_sha256: str | None
    notes: tuple[str, ...]
    programs: tuple[ProgramRecord, ...]
    #: the measures files the run read, as run.json records them (``MeasuresInfo``'s fields)
    measures: tuple[dict[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class LedgerRun:
    """A run the ledger knows, with its state: ``draft``, ``posted`` or ``voided``."""

    run_id: str
    created_at: str
    recorded_at: str
    state: str
    periods: tuple[str, ...]
    programs: tuple[str, ...]
    results: int
    posted_at: str | None = None
    voided_at: str | None = None
    void_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    partner_id: str
    program_id: str
    account: str
    currency: str
    balance: Decimal


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: int
    created_at: str
    run_id: str | None
    period: str
    partner_id: str
    program_id: str
    account: str
    kind: str
    amount: Decimal
    currency: str
    reason: str
    claim_id: str | None = None
    corrects: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One partner's result in two runs (``ledger diff``): ``None`` where a run has no result for it."""

    partner_id: str
    program_id: str
    period: str
    old: Decimal | None
    new: Decimal | None
    old_version: int | None
    new_version: int | None

    @property
    def delta(self) -> Decimal:
        return exact_subtract(self.new or Decimal(0), self.old or Decimal(0))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an operation did, in words a person reads (the CLI prints ``message``), and its figures."""

    message: str
    entries: int = 0
    done: bool = True
