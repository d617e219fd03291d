"""The ledger's bookkeeping: recording drafts, posting, restating, voiding, paying, adjusting, expiring funds.

Every function here takes a connection inside a write transaction
(:func:`incentives.ledger.database.writing`), so what one operation writes is
all committed or none of it, and no other writer runs beside it.

Amounts on the ledger, per partner, program and account:

* ``payable`` — what is owed to the partner: ``payout`` (a posted result's
  total), ``restatement`` (a later run's difference for the same period and
  program), ``adjustment``, ``payment`` (what was paid out, negative),
  ``reversal`` (a voided run's entries, reversed).
* ``fund`` (MDF programs) — ``accrual``, ``claim`` (each paid claim, negative),
  ``restatement``, ``adjustment``, ``expiry`` (what is left at the end of a
  fiscal year, for ``mdf.expiry: fiscal_year``), ``reversal``.

The *effective* run of a program and period is the one posted last and not
voided: its results are what the ledger holds for that period, its claims are
the ones paid.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Date, bindparam, func, insert, select, text

from ..money import exact_add, exact_negate, exact_subtract, exact_sum
from ..periods import Period, PeriodError, fiscal_year_of, parse_period
from ..errors import LedgerError, LedgerUsageError
from .database import insert_rows
from .records import (
    Balance,
    Change,
    Entry,
    LedgerRun,
    Outcome,
    ProgramRecord,
    ResultRecord,
    RunRecord,
)
from .schema import ENTRY_KINDS, entries, operations, run_claims, run_programs, run_results, runs

ZERO = Decimal(0)
_BATCH = 5000  # rows per INSERT ... VALUES batch
#: The entry kinds that make up what a posted run put on the ledger for its period (what a restatement compares).
_POSTED_PAYABLE = ("payout", "restatement", "reversal")
_POSTED_FUND = ("accrual", "claim", "restatement", "reversal")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- recording a draft --------------------------------------------------------------------------


def record(connection: Connection, run: RunRecord, results: Iterable[ResultRecord]) -> int:
    """Record ``run`` as a draft with its results and paid claims; returns how many results it holds."""
    if connection.execute(select(runs.c.run_id).where(runs.c.run_id == run.run_id)).first() is not None:
        raise LedgerUsageError(f"run {run.run_id} is already recorded in the ledger")
    number = (connection.execute(select(func.max(runs.c.number))).scalar() or 0) + 1
    connection.execute(insert(runs), [{
        "run_id": run.run_id, "number": number, "created_at": run.created_at, "recorded_at": now(),
        "engine_version": run.engine_version, "facts_sha256": run.facts_sha256,
        "claims_sha256": run.claims_sha256, "notes": json.dumps(list(run.notes), ensure_ascii=False),
        "measures": json.dumps(list(run.measures), ensure_ascii=False)}])
    connection.execute(insert(run_programs), [{
        "run_id": run.run_id, "program_id": program.program_id, "version": program.version,
        "sha256": program.sha256, "kind": program.kind, "currency": program.currency, "period": program.period,
        "fiscal_year_start": program.fiscal_year_start, "expiry": program.expiry, "places": program.places}
        for program in run.programs])
    count = 0
    claim_rows: list[dict[str, Any]] = []
    for batch in _batches(results):
        count += len(batch)
        insert_rows(connection, run_results, [{
            "run_id": run.run_id, "partner_id": result.partner_id, "period": result.period,
            "program_id": result.program_id, "program_version": result.program_version, "status": result.status,
            "total": result.total, "currency": result.currency, "tier": result.tier,
            "period_start": result.period_start, "period_end": result.period_end, "accrued": result.accrued}
            for result in batch])
        claim_rows += [{"run_id": run.run_id, "program_id": claim.program_id, "claim_id": claim.claim_id,
                        "partner_id": claim.partner_id, "period": claim.period, "amount": claim.amount}
                       for result in batch for claim in result.claims]
        if len(claim_rows) >= _BATCH:
            insert_rows(connection, run_claims, claim_rows)
            claim_rows = []
    insert_rows(connection, run_claims, claim_rows)
    return count


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# --- what the ledger knows of runs -----------------------------------------------------------------


def run_state(connection: Connection, run_id: str) -> tuple[str, dict[str, Any]]:
    """``draft``, ``posted`` or ``voided``, with the run's operations by kind; unknown runs are refused."""
    if connection.execute(select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is None:
        raise LedgerUsageError(f"there is no run {run_id} in the ledger (`incentives ledger runs` lists them)")
    done = {row.kind: row for row in connection.execute(
        select(operations.c.kind, operations.c.created_at, operations.c.reason, operations.c.operation_id)
        .where(operations.c.run_id == run_id))}
    state = "voided" if "void" in done else "posted" if "post" in done else "draft"
    return state, done


def _live_posts(connection: Connection) -> dict[str, int]:
    """Runs posted and not voided, with their post's operation id (later posts have larger ids)."""
    voided = select(operations.c.run_id).where(operations.c.kind == "void")
    return {row.run_id: row.operation_id for row in connection.execute(
        select(operations.c.run_id, operations.c.operation_id)
        .where(operations.c.kind == "post", operations.c.run_id.not_in(voided)))}


def effective_runs(connection: Connection, program_ids: Iterable[str] | None = None) -> dict[tuple[str, str], str]:
    """The effective run of each (program, period): posted last and not voided."""
    live = _live_posts(connection)
    if not live:
        return {}
    query = select(run_results.c.run_id, run_results.c.program_id, run_results.c.period).distinct().where(
        run_results.c.run_id.in_(list(live)))
    if program_ids is not None:
        query = query.where(run_results.c.program_id.in_(list(program_ids)))
    best: dict[tuple[str, str], str] = {}
    for row in connection.execute(query):
        key = (row.program_id, row.period)
        if key not in best or live[row.run_id] > live[best[key]]:
            best[key] = row.run_id
    return best


def paid_claims(connection: Connection, program_ids: Iterable[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """``(program_id, claim_id) -> (run_id, period)`` for every claim an effective run paid."""
    effective = effective_runs(connection, program_ids)
    if not effective:
        return {}
    paid: dict[tuple[str, str], tuple[str, str]] = {}
    # every claim of the runs, fetched at once and unpacked as tuples: a run may hold 100,000 claims
    for run_id, program_id, claim_id, period in connection.execute(
            select(run_claims.c.run_id, run_claims.c.program_id, run_claims.c.claim_id, run_claims.c.period)
            .where(run_claims.c.run_id.in_(set(effective.values())))).all():
        if effective.get((program_id, period)) == run_id:
            paid[(program_id, claim_id)] = (run_id, period)
    return paid


def known_program(connection: Connection, program_id: str) -> ProgramRecord:
    """The latest recorded version of a program (its calendar, currency, kind, expiry)."""
    row = connection.execute(
        select(run_programs).where(run_programs.c.program_id == program_id)
        .order_by(run_programs.c.version.desc()).limit(1)).first()
    if row is None:
        raise LedgerUsageError(f"program '{program_id}' is not in the ledger: no recorded run used it")
    return _program(row)


def _program(row: Any) -> ProgramRecord:
    return ProgramRecord(row.program_id, row.version, row.sha256, row.kind, row.currency, row.period,
                         row.fiscal_year_start, row.expiry, row.places)


def known_programs(connection: Connection) -> dict[str, ProgramRecord]:
    latest: dict[str, ProgramRecord] = {}
    for row in connection.execute(select(run_programs).order_by(run_programs.c.version)):
        latest[row.program_id] = _program(row)
    return latest


def period_of(label: str, program: ProgramRecord) -> Period:
    try:
        return parse_period(label, program.fiscal_year_start)
    except PeriodError as error:
        raise LedgerUsageError(str(error)) from None


# --- opening balances for a run --------------------------------------------------------------------


def fund_openings(connection: Connection, program_id: str, period: Period) -> dict[str, Decimal]:
    """Each partner's fund balance for ``program_id`` when ``period`` opens: every fund entry of an earlier
    period, and the fund adjustments made for this one.

    Read once per run, program and period for every partner, so the rows come back as the database keeps
    them (no per-value processing: an amount is text on SQLite, a Decimal on PostgreSQL), fetched at once.
    """
    sums: dict[str, Decimal] = {}
    get = sums.get
    queries = ((_EARLIER_FUND_ENTRIES, {"program_id": program_id, "start": period.start}),
               (_FUND_ADJUSTMENTS_OF_THE_PERIOD, {"program_id": program_id, "label": period.label}))
    for query, parameters in queries:  # each on an index, not one OR that reads every entry
        for partner_id, amount in connection.execute(query, parameters).all():
            amount = Decimal(amount) if type(amount) is str else amount
            held = get(partner_id)
            sums[partner_id] = amount if held is None else exact_add(held, amount)
    return sums


_EARLIER_FUND_ENTRIES = text(
    "SELECT partner_id, amount FROM entries WHERE program_id = :program_id AND account = 'fund' "
    "AND period_end < :start").bindparams(bindparam("start", type_=Date))
_FUND_ADJUSTMENTS_OF_THE_PERIOD = text(
    "SELECT partner_id, amount FROM entries WHERE program_id = :program_id AND account = 'fund' "
    "AND period = :label AND kind = 'adjustment'")


# --- posting ------------------------------------------------------------------------------------------


def post(connection: Connection, run_id: str) -> Outcome:
    state, done = run_state(connection, run_id)
    if state == "posted":
        return Outcome(f"run {run_id} is already posted (at {done['post'].created_at}); nothing to do", done=False)
    if state == "voided":
        return Outcome(f"run {run_id} was voided (at {done['void'].created_at}) and cannot be posted; "
                       "post a new run instead", done=False)
    programs = {(row.program_id, row.version): _program(row)
                for row in connection.execute(select(run_programs).where(run_programs.c.run_id == run_id))}
    results = list(connection.execute(select(run_results).where(run_results.c.run_id == run_id)))
    claims = list(connection.execute(select(run_claims).where(run_claims.c.run_id == run_id)))
    _refuse_claims_paid_elsewhere(connection, run_id, claims)
    # the program periods another run holds now: this run restates them (posts the differences)
    superseded = effective_runs(connection, {result.program_id for result in results})
    created_at = now()
    operation_id = connection.execute(insert(operations).returning(operations.c.operation_id), [{
        "kind": "post", "run_id": run_id, "created_at": created_at}]).scalar_one()
    writer = _EntryWriter(connection, operation_id, run_id, created_at)
    claims_by_result: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for claim in claims:
        claims_by_result[(claim.partner_id, claim.period, claim.program_id)].append(claim)
    skipped = 0
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for result in results:
        if result.status == "error" or result.period_start is None:
            skipped += 1  # an error row posts nothing: fix its input and post a restating run
            continue
        groups[(result.program_id, result.period)].append(result)
    for (program_id, period_label), group in groups.items():
        previous = superseded.get((program_id, period_label))
        if previous is not None:
            _restate(connection, writer, program_id, period_label, group, claims_by_result,
                     f"restates {period_label} (run {previous})")
        else:
            for result in group:
                _first_post(writer, result, claims_by_result.get((result.partner_id, result.period, program_id), ()))
    _expire_funds(connection, writer, programs, groups)
    writer.check()
    restatements = sum(1 for key in groups if key in superseded)
    words = [f"posted run {run_id}: {writer.count} entries"]
    if restatements:
        words.append(f"restating {restatements} program period(s) posted before")
    if skipped:
        words.append(f"{skipped} error result(s) post nothing (correct their input and post a new run)")
    return Outcome("; ".join(words), entries=writer.count)


def _refuse_claims_paid_elsewhere(connection: Connection, run_id: str, claims: Sequence[Any]) -> None:
    """A claim is paid once, ever: refuse a run that pays one another period's effective run paid meanwhile."""
    if not claims:
        return
    paid = paid_claims(connection, {claim.program_id for claim in claims})
    for claim in claims:
        earlier = paid.get((claim.program_id, claim.claim_id))
        if earlier is not None and earlier[1] != claim.period:
            raise LedgerUsageError(f"run {run_id} pays claim {claim.claim_id} of {claim.program_id}, already paid in "
                                   f"run {earlier[0]} (period {earlier[1]}) since this run was computed: run the "
                                   "period again with the ledger")


def _first_post(writer: "_EntryWriter", result: Any, claims: Sequence[Any]) -> None:
    where = _Where.of(result)
    writer.add(where, "payable", result.total, "payout", "posted result")
    if result.accrued is not None:
        writer.add(where, "fund", result.accrued, "accrual", "fund accrual")
        for claim in sorted(claims, key=lambda claim: claim.claim_id):
            writer.add(where, "fund", exact_negate(claim.amount), "claim", f"claim {claim.claim_id} paid",
                       claim_id=claim.claim_id)


def _restate(connection: Connection, writer: "_EntryWriter", program_id: str, period_label: str,
             group: Sequence[Any], claims_by_result: Mapping[tuple[str, str, str], list[Any]], reason: str) -> None:
    """Post per partner the difference between this run's results and what the ledger holds for the period."""
    held = _held(connection, program_id, period_label)
    new: dict[str, tuple[Any, Decimal, Decimal | None]] = {}
    for result in group:
        claims = claims_by_result.get((result.partner_id, result.period, program_id), ())
        fund = None if result.accrued is None else exact_subtract(
            result.accrued, exact_sum(claim.amount for claim in claims))
        previous = new.get(result.partner_id)
        if previous is not None:  # two results of one partner (duplicates are errors, so rarely): add up
            total = exact_add(previous[1], result.total)
            fund = fund if previous[2] is None else exact_add(previous[2], fund or ZERO)
            new[result.partner_id] = (result, total, fund)
        else:
            new[result.partner_id] = (result, result.total, fund)
    template = group[0]
    for partner_id in sorted(set(new) | set(held)):
        result, total, fund = new.get(partner_id, (None, ZERO, None))
        old_payable, old_fund, currency = held.get(partner_id, (ZERO, ZERO, template.currency))
        # a partner the new run has no result for (its result went away) is restated to nothing
        where = _Where.of(result) if result is not None else _Where.like(template, partner_id, currency)
        payable_delta = exact_subtract(total, old_payable)
        if payable_delta:
            writer.add(where, "payable", payable_delta, "restatement", reason)
        fund_delta = exact_subtract(fund if fund is not None else ZERO, old_fund)
        if fund_delta:
            writer.add(where, "fund", fund_delta, "restatement", reason)


def _held(connection: Connection, program_id: str, period_label: str) -> dict[str, tuple[Decimal, Decimal, str]]:
    """What the ledger holds per partner for a program's period: (payable, fund, currency) of posted runs."""
    rows = connection.execute(select(entries.c.partner_id, entries.c.account, entries.c.kind, entries.c.amount,
                                     entries.c.currency)
                              .where(entries.c.program_id == program_id, entries.c.period == period_label,
                                     entries.c.run_id.is_not(None)))
    payable: dict[str, list[Decimal]] = defaultdict(list)
    fund: dict[str, list[Decimal]] = defaultdict(list)
    currency: dict[str, str] = {}
    for row in rows:
        currency[row.partner_id] = row.currency
        if row.account == "payable" and row.kind in _POSTED_PAYABLE:
            payable[row.partner_id].append(row.amount)
        elif row.account == "fund" and row.kind in _POSTED_FUND:
            fund[row.partner_id].append(row.amount)
    return {partner: (exact_sum(payable.get(partner, ())), exact_sum(fund.get(partner, ())), currency[partner])
            for partner in currency}


def _expire_funds(connection: Connection, writer: "_EntryWriter", programs: Mapping[tuple[str, int], ProgramRecord],
                  groups: Mapping[tuple[str, str], Sequence[Any]]) -> None:
    """After the last period of a fiscal year is posted, what is left in each fund of a program with
    ``expiry: fiscal_year`` expires (an ``expiry`` entry brings the balance to zero)."""
    writer.flush()
    by_id = {program.program_id: program for program in programs.values()}
    for (program_id, period_label), group in groups.items():
        program = by_id[program_id]
        if program.expiry != "fiscal_year" or program.kind != "mdf":
            continue
        period = period_of(period_label, program)
        fiscal_year = fiscal_year_of(period, program.fiscal_year_start)
        if fiscal_year.end != period.end:
            continue
        for partner_id, (balance, expired, currency) in _fund_balances_at(connection, program_id, period).items():
            if balance > ZERO:
                amount = exact_negate(balance)
            elif balance < ZERO and expired < ZERO:  # a restatement lowered a fund that had expired: give back
                amount = min(exact_negate(balance), exact_negate(expired))
            else:
                continue
            writer.add(_Where.like(group[0], partner_id, currency), "fund", amount, "expiry",
                       f"unspent funds expire at the end of fiscal year {fiscal_year.label}")


def _fund_balances_at(connection: Connection, program_id: str,
                      period: Period) -> dict[str, tuple[Decimal, Decimal, str]]:
    """Each partner's fund balance at the end of ``period``, with what already expired in it."""
    rows = connection.execute(select(entries.c.partner_id, entries.c.amount, entries.c.kind, entries.c.period,
                                     entries.c.currency)
                              .where(entries.c.program_id == program_id, entries.c.account == "fund",
                                     entries.c.period_end <= period.end))
    balance: dict[str, list[Decimal]] = defaultdict(list)
    expired: dict[str, list[Decimal]] = defaultdict(list)
    currency: dict[str, str] = {}
    for row in rows:
        balance[row.partner_id].append(row.amount)
        currency[row.partner_id] = row.currency
        if row.kind == "expiry" and row.period == period.label:
            expired[row.partner_id].append(row.amount)
    return {partner: (exact_sum(amounts), exact_sum(expired.get(partner, ())), currency[partner])
            for partner, amounts in balance.items()}


@dataclass(frozen=True, slots=True)
class _Where:
    """Whose and which period's an entry is."""

    partner_id: str
    program_id: str
    period: str
    period_start: date
    period_end: date
    currency: str

    @classmethod
    def of(cls, row: Any) -> "_Where":
        """Where a result (or an entry) is."""
        return cls(row.partner_id, row.program_id, row.period, row.period_start, row.period_end, row.currency)

    @classmethod
    def like(cls, row: Any, partner_id: str, currency: str) -> "_Where":
        """Another partner's place in the same program and period as ``row``."""
        return cls(partner_id, row.program_id, row.period, row.period_start, row.period_end, currency)

    @classmethod
    def at(cls, partner_id: str, program_id: str, period: Period, currency: str) -> "_Where":
        return cls(partner_id, program_id, period.label, period.start, period.end, currency)


class _EntryWriter:
    """Entries of one operation, inserted in batches."""

    def __init__(self, connection: Connection, operation_id: int, run_id: str | None, created_at: str):
        self.connection = connection
        self.operation_id = operation_id
        self.run_id = run_id
        self.created_at = created_at
        self.rows: list[dict[str, Any]] = []
        self.count = 0

    def add(self, where: _Where, account: str, amount: Decimal, kind: str, reason: str, *,
            claim_id: str | None = None, corrects: int | None = None) -> None:
        self.rows.append({
            "operation_id": self.operation_id, "run_id": self.run_id, "period": where.period,
            "period_start": where.period_start, "period_end": where.period_end, "partner_id": where.partner_id,
            "program_id": where.program_id, "account": account, "amount": amount, "currency": where.currency,
            "kind": kind, "reason": reason, "claim_id": claim_id, "corrects": corrects,
            "created_at": self.created_at})
        self.count += 1
        if len(self.rows) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            insert_rows(self.connection, entries, self.rows)
            self.rows = []

    def check(self) -> None:
        """Flush, then make sure the database holds every entry written (bulk paths bypass SQLAlchemy)."""
        self.flush()
        held = self.connection.execute(select(func.count()).select_from(entries)
                                       .where(entries.c.operation_id == self.operation_id)).scalar_one()
        if held != self.count:
            raise LedgerError(f"the ledger holds {held} of the {self.count} entries just written: nothing is posted")


# --- voiding, paying, adjusting ------------------------------------------------------------------------


def void(connection: Connection, run_id: str, reason: str) -> Outcome:
    if not reason.strip():
        raise LedgerUsageError("a void needs a reason (--reason TEXT)")
    state, done = run_state(connection, run_id)
    if state == "voided":
        return Outcome(f"run {run_id} is already voided (at {done['void'].created_at}); nothing to do", done=False)
    if state == "posted":
        _refuse_superseded(connection, run_id)
    created_at = now()
    operation_id = connection.execute(insert(operations).returning(operations.c.operation_id), [{
        "kind": "void", "run_id": run_id, "reason": reason, "created_at": created_at}]).scalar_one()
    writer = _EntryWriter(connection, operation_id, run_id, created_at)
    for entry in connection.execute(select(entries).where(entries.c.run_id == run_id,
                                                           entries.c.kind != "reversal")
                                    .order_by(entries.c.entry_id)):
        writer.add(_Where.of(entry), entry.account, exact_negate(entry.amount), "reversal",
                   f"reverses entry {entry.entry_id} ({entry.kind}): {reason}", claim_id=entry.claim_id,
                   corrects=entry.entry_id)
    writer.check()
    if state == "draft":
        return Outcome(f"voided draft run {run_id}: it can no longer be posted", entries=0)
    return Outcome(f"voided run {run_id}: {writer.count} entries reversed, its claims released", entries=writer.count)


def _refuse_superseded(connection: Connection, run_id: str) -> None:
    """Only the effective run of each of its program periods can be voided: a later run restated it."""
    effective = effective_runs(connection)
    mine = {(row.program_id, row.period) for row in connection.execute(
        select(run_results.c.program_id, run_results.c.period).distinct().where(run_results.c.run_id == run_id))}
    later = sorted({effective[key] for key in mine if key in effective and effective[key] != run_id})
    if later:
        raise LedgerUsageError(f"run {run_id} was restated by run {', '.join(later)}, posted later for the same "
                               "period: void that run first")


def pay(connection: Connection, period_label: str, program_id: str | None) -> Outcome:
    """Payment entries that bring every positive payable balance of ``period_label`` and earlier to zero."""
    programs = known_programs(connection)
    if program_id is not None:
        programs = {program_id: known_program(connection, program_id)}
    created_at = now()
    operation_id = connection.execute(insert(operations).returning(operations.c.operation_id), [{
        "kind": "pay", "period": period_label, "program_id": program_id, "created_at": created_at}]).scalar_one()
    writer = _EntryWriter(connection, operation_id, None, created_at)
    paid: dict[str, list[Decimal]] = defaultdict(list)
    carried = 0
    for program in programs.values():
        period = period_of(period_label, program)
        for (partner_id, currency), balance in _payable_at(connection, program.program_id, period).items():
            if balance > ZERO:
                writer.add(_Where.at(partner_id, program.program_id, period, currency), "payable",
                           exact_negate(balance), "payment", f"paid for {period_label} and earlier")
                paid[currency].append(balance)
            elif balance < ZERO:
                carried += 1
    writer.check()
    totals = ", ".join(f"{exact_sum(amounts)} {currency}" for currency, amounts in sorted(paid.items()))
    message = f"recorded {writer.count} payments for {period_label} and earlier" + (f": {totals}" if totals else "")
    if carried:
        message += f"; {carried} negative balance(s) carried forward, not paid"
    return Outcome(message, entries=writer.count)


def _payable_at(connection: Connection, program_id: str, period: Period) -> dict[tuple[str, str], Decimal]:
    rows = connection.execute(select(entries.c.partner_id, entries.c.currency, entries.c.amount).where(
        entries.c.program_id == program_id, entries.c.account == "payable", entries.c.period_end <= period.end))
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for row in rows:
        sums[(row.partner_id, row.currency)].append(row.amount)
    return {key: exact_sum(amounts) for key, amounts in sums.items()}


def adjust(connection: Connection, partner_id: str, program_id: str, period_label: str, amount: Decimal,
           reason: str, account: str) -> Outcome:
    if not reason.strip():
        raise LedgerUsageError("an adjustment needs a reason (--reason TEXT)")
    if account not in ("payable", "fund"):
        raise LedgerUsageError(f"account must be payable or fund, not {account!r}")
    if not partner_id.strip():
        raise LedgerUsageError("an adjustment needs a partner (--partner ID)")
    program = known_program(connection, program_id)
    if account == "fund" and program.kind != "mdf":
        raise LedgerUsageError(f"'{program_id}' is a {program.kind} program: only MDF programs have a fund")
    period = period_of(period_label, program)
    created_at = now()
    operation_id = connection.execute(insert(operations).returning(operations.c.operation_id), [{
        "kind": "adjust", "period": period_label, "program_id": program_id, "reason": reason,
        "created_at": created_at}]).scalar_one()
    writer = _EntryWriter(connection, operation_id, None, created_at)
    writer.add(_Where.at(partner_id, program_id, period, program.currency), account, amount, "adjustment", reason)
    writer.check()
    return Outcome(f"adjusted {partner_id} {program_id} {account} for {period_label} by {amount} "
                   f"{program.currency}", entries=1)


# --- reading -------------------------------------------------------------------------------------------


def balances(connection: Connection, period_label: str | None, partner_id: str | None,
             program_id: str | None) -> list[Balance]:
    """Balances per partner, program, account and currency (as of the end of ``period_label`` if given)."""
    programs = known_programs(connection)
    query = select(entries.c.partner_id, entries.c.program_id, entries.c.account, entries.c.currency,
                   entries.c.amount, entries.c.period_end)
    if partner_id is not None:
        query = query.where(entries.c.partner_id == partner_id)
    if program_id is not None:
        query = query.where(entries.c.program_id == program_id)
    ends: dict[str, date] = {}
    if period_label is not None:
        for known_id, program in programs.items():
            ends[known_id] = period_of(period_label, program).end
    sums: dict[tuple[str, str, str, str], list[Decimal]] = defaultdict(list)
    for row in connection.execute(query):
        if period_label is not None and row.period_end > ends[row.program_id]:
            continue
        sums[(row.partner_id, row.program_id, row.account, row.currency)].append(row.amount)
    return [Balance(*key, exact_sum(amounts)) for key, amounts in sorted(sums.items())]


def history(connection: Connection, partner_id: str, program_id: str | None) -> list[Entry]:
    query = select(entries).where(entries.c.partner_id == partner_id).order_by(entries.c.entry_id)
    if program_id is not None:
        query = query.where(entries.c.program_id == program_id)
    return [Entry(row.entry_id, row.created_at, row.run_id, row.period, row.partner_id, row.program_id,
                  row.account, row.kind, row.amount, row.currency, row.reason, row.claim_id, row.corrects)
            for row in connection.execute(query)]


def runs_list(connection: Connection) -> list[LedgerRun]:
    done: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in connection.execute(select(operations).where(operations.c.run_id.is_not(None))):
        done[row.run_id][row.kind] = row
    summary: dict[str, tuple[set[str], set[str], int]] = {}
    for row in connection.execute(select(run_results.c.run_id, run_results.c.period, run_results.c.program_id,
                                         func.count().label("count"))
                                  .group_by(run_results.c.run_id, run_results.c.period, run_results.c.program_id)):
        periods, program_ids, count = summary.setdefault(row.run_id, (set(), set(), 0))
        periods.add(row.period)
        program_ids.add(row.program_id)
        summary[row.run_id] = (periods, program_ids, count + row.count)
    listed = []
    for row in connection.execute(select(runs).order_by(runs.c.number)):
        ops = done.get(row.run_id, {})
        periods, program_ids, count = summary.get(row.run_id, (set(), set(), 0))
        state = "voided" if "void" in ops else "posted" if "post" in ops else "draft"
        listed.append(LedgerRun(
            row.run_id, row.created_at, row.recorded_at, state, tuple(sorted(periods)), tuple(sorted(program_ids)),
            count, ops["post"].created_at if "post" in ops else None,
            ops["void"].created_at if "void" in ops else None, ops["void"].reason if "void" in ops else None))
    return listed


def diff(connection: Connection, run_a: str, run_b: str) -> list[Change]:
    """Every partner, program and period whose total differs between two runs (missing counts as none)."""
    run_state(connection, run_a)
    run_state(connection, run_b)
    totals: dict[str, dict[tuple[str, str, str], tuple[list[Decimal], int | None]]] = {run_a: {}, run_b: {}}
    for row in connection.execute(select(run_results).where(run_results.c.run_id.in_([run_a, run_b]))):
        key = (row.partner_id, row.program_id, row.period)
        amounts, _ = totals[row.run_id].setdefault(key, ([], row.program_version))
        amounts.append(row.total)
    changes = []
    for key in sorted(set(totals[run_a]) | set(totals[run_b])):
        old = totals[run_a].get(key)
        new = totals[run_b].get(key)
        old_total = None if old is None else exact_sum(old[0])
        new_total = None if new is None else exact_sum(new[0])
        old_version = None if old is None else old[1]
        new_version = None if new is None else new[1]
        if old_total != new_total or old_version != new_version or (old is None) != (new is None):
            changes.append(Change(key[0], key[1], key[2], old_total, new_total, old_version, new_version))
    return changes


def register(connection: Connection, period_label: str) -> list[dict[str, Any]]:
    """The accrual register of a period: per partner, program and account, the opening balance, the
    movements of the period by kind and the closing balance (= opening + movements)."""
    programs = known_programs(connection)
    periods = {program_id: period_of(period_label, program) for program_id, program in programs.items()}
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in connection.execute(select(entries.c.partner_id, entries.c.program_id, entries.c.account,
                                         entries.c.currency, entries.c.kind, entries.c.amount,
                                         entries.c.period_start, entries.c.period_end)):
        period = periods[row.program_id]
        if row.period_end > period.end:
            continue
        key = (row.partner_id, row.program_id, row.account, row.currency)
        line = rows.setdefault(key, {"opening": [], **{kind: [] for kind in ENTRY_KINDS}})
        if row.period_end < period.start:
            line["opening"].append(row.amount)
        else:
            line[row.kind].append(row.amount)
    register_rows = []
    for key, line in sorted(rows.items()):
        sums = {name: exact_sum(amounts) for name, amounts in line.items()}
        closing = exact_sum(sums.values())
        register_rows.append({"partner_id": key[0], "program_id": key[1], "account": key[2], "currency": key[3],
                              **sums, "closing": closing})
    return register_rows

