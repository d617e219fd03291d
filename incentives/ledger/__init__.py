"""The ledger: what was accrued, posted, paid, adjusted and clawed back, period after period.

``incentives.Ledger(url)`` opens a ledger in a real database through
SQLAlchemy (Core) — a SQLite file by default, PostgreSQL by URL — with its
schema managed by Alembic migrations (:meth:`Ledger.init`). See
``docs/ledger.md`` for how runs, posting, restatements, payments, adjustments,
voids and fund expiry fit together.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from ..periods import Period
from . import book
from ..errors import LedgerError, LedgerUsageError
from .database import (
    DEFAULT_FILE,
    ENVIRONMENT_VARIABLE,
    check_schema,
    ledger_url,
    open_engine,
    shown,
    upgrade,
    writing,
)
from .records import (
    Balance,
    Change,
    Entry,
    LedgerRun,
    Outcome,
    PaidClaim,
    ProgramRecord,
    ResultRecord,
    RunRecord,
)
from .schema import ENTRY_KINDS

__all__ = ["Balance", "Change", "Entry", "Ledger", "LedgerError", "LedgerRun", "LedgerUsageError", "LedgerView",
           "Outcome", "PaidClaim", "ProgramRecord", "ResultRecord", "RunRecord", "ENTRY_KINDS"]


class Ledger:
    """A ledger at ``location``: a path (a SQLite file) or a URL (``postgresql+psycopg://...``).

    Without a location, ``$INCENTIVES_LEDGER`` or ``incentives-ledger.db`` in the
    working folder. Every method but :meth:`init` refuses a ledger whose schema
    is not exactly this library's (:class:`LedgerError`); operations on things
    that do not exist, or that cannot be done, raise :class:`LedgerUsageError`.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None):
        if location is None:
            location = os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_FILE
        self.url = ledger_url(location)
        self.engine = open_engine(self.url)
        self._checked = False

    @property
    def shown(self) -> str:
        """The ledger's URL as it may be printed (no password)."""
        return shown(self.url)

    def __repr__(self) -> str:
        return f"Ledger({self.shown!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def init(self) -> Outcome:
        """Create the ledger's schema, or upgrade it to this library's."""
        if self.url.get_backend_name() == "sqlite" and self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        before, after = upgrade(self.engine)
        self._checked = True
        if before is None:
            return Outcome(f"created the ledger {self.shown} (schema {after})")
        if before == after:
            return Outcome(f"the ledger {self.shown} is up to date (schema {after})", done=False)
        return Outcome(f"upgraded the ledger {self.shown} from schema {before} to {after}")

    def _ready(self) -> None:
        if not self._checked:
            check_schema(self.engine)
            self._checked = True

    # --- runs -------------------------------------------------------------------------------

    def view(self, program_ids: Iterable[str]) -> "LedgerView":
        """What a run of these programs reads from the ledger (fund openings, claims already paid)."""
        self._ready()
        return LedgerView(self, list(program_ids))

    def record(self, run: RunRecord, results: Iterable[ResultRecord]) -> int:
        """Record a run as a draft (its results, paid claims and inputs); returns its number of results."""
        self._ready()
        with writing(self.engine) as connection:
            return book.record(connection, run, results)

    def post(self, run_id: str) -> Outcome:
        """Post a draft: payable entries for its results, fund entries for accruals and paid claims, its claims
        paid — in one transaction. A period and program posted before is restated by differences."""
        return self._write(book.post, run_id)

    def void(self, run_id: str, reason: str) -> Outcome:
        """Reverse a posted run with opposite entries and release its claims (a draft: never to be posted)."""
        return self._write(book.void, run_id, reason)

    def pay(self, period: str, program_id: str | None = None) -> Outcome:
        """Record the payment of what is payable for ``period`` and every earlier period."""
        return self._write(book.pay, period, program_id)

    def adjust(self, partner_id: str, program_id: str, period: str, amount: Decimal, reason: str,
               account: str = "payable") -> Outcome:
        """A manual entry on a partner's ``payable`` or ``fund`` account; a reason is required."""
        if type(amount) is not Decimal or not amount.is_finite():
            raise LedgerUsageError(f"an adjustment's amount must be a decimal number, not {amount!r}")
        return self._write(book.adjust, partner_id, program_id, period, amount, reason, account)

    def _write(self, operation: Any, *args: Any) -> Outcome:
        self._ready()
        with writing(self.engine) as connection:
            return operation(connection, *args)

    # --- reading ------------------------------------------------------------------------------

    def _read(self, query: Any, *args: Any) -> Any:
        self._ready()
        with self.engine.begin() as connection:
            return query(connection, *args)

    def balances(self, period: str | None = None, partner_id: str | None = None,
                 program_id: str | None = None) -> list[Balance]:
        """Balances per partner, program, account and currency, as of the end of ``period`` if given."""
        return self._read(book.balances, period, partner_id, program_id)

    def history(self, partner_id: str, program_id: str | None = None) -> list[Entry]:
        return self._read(book.history, partner_id, program_id)

    def runs(self) -> list[LedgerRun]:
        return self._read(book.runs_list)

    def diff(self, run_a: str, run_b: str) -> list[Change]:
        return self._read(book.diff, run_a, run_b)

    def programs(self) -> dict[str, ProgramRecord]:
        """The programs the ledger knows (the latest recorded version of each), by id."""
        return self._read(book.known_programs)

    def register(self, period: str) -> list[dict[str, Any]]:
        """The accrual register of ``period``: opening, movements by kind and closing per partner, program and
        account (what ``incentives ledger export`` writes)."""
        return self._read(book.register, period)


class LedgerView:
    """What one run reads from the ledger: each MDF fund's opening balance per partner, program and period, and
    the claims already paid. Paid claims are read once; openings once per program and period."""

    def __init__(self, ledger: Ledger, program_ids: list[str]):
        self._ledger = ledger
        self._process = os.getpid()
        with ledger.engine.begin() as connection:
            self._paid = book.paid_claims(connection, program_ids)
        self._openings: dict[tuple[str, str], dict[str, Decimal]] = {}

    def opening(self, program_id: str, period: Period, partner_id: str) -> Decimal:
        key = (program_id, period.label)
        openings = self._openings.get(key)
        if openings is None:
            if os.getpid() != self._process:
                # a worker process forked from the run: the pooled connections are its parent's, whose
                # database session (a SQLite handle, a PostgreSQL socket) must not be shared
                self._ledger.engine.dispose(close=False)
                self._process = os.getpid()
            with self._ledger.engine.begin() as connection:
                openings = self._openings[key] = book.fund_openings(connection, program_id, period)
        return openings.get(partner_id, book.ZERO)

    def already_paid(self, program_id: str, claim_id: str, period: str) -> str | None:
        """Why a claim cannot be paid again, or ``None``: a run restating the period it was paid in may."""
        paid = self._paid.get((program_id, claim_id))
        if paid is None or paid[1] == period:
            return None
        return f"already paid in run {paid[0]} (period {paid[1]})"
