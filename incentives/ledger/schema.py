"""The ledger's tables (SQLAlchemy Core), the exact amount type, and the kinds of entries.

Entries are append-only: nothing here is ever updated or deleted. A
correction is a new entry (a ``restatement``, an ``adjustment``, a
``reversal`` that names the entry it reverses). A balance is the sum of its
entries. Runs, their programs, results and paid claims are recorded once, as
drafts; what happened to a run since (posted, voided) is an *operation*, also
append-only, and at most one of each kind per run (the database enforces it:
of two concurrent posts of one run, one inserts its operation, the other finds
it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

Account = Literal["payable", "fund"]
EntryKind = Literal["payout", "accrual", "claim", "restatement", "adjustment", "payment", "expiry", "reversal"]
ENTRY_KINDS: tuple[str, ...] = ("payout", "accrual", "claim", "restatement", "adjustment", "payment", "expiry",
                                "reversal")
ACCOUNTS: tuple[str, ...] = ("payable", "fund")


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal amount: NUMERIC (no precision limit) on PostgreSQL, decimal text on SQLite.

    SQLAlchemy's ``Numeric`` on SQLite stores a REAL and goes through binary
    floats; the text of a ``Decimal`` keeps every digit and reads back equal.
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if type(value) is not Decimal or not value.is_finite():
            raise TypeError(f"ledger amounts are finite Decimals, not {value!r}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if dialect.name == "sqlite" else value


metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("number", Integer, nullable=False, unique=True),  # 1, 2, 3... in the order runs were recorded
    Column("created_at", String(40), nullable=False),  # when the run computed its results (run.json)
    Column("recorded_at", String(40), nullable=False),  # when the ledger recorded it, as a draft
    Column("engine_version", String(40), nullable=False),
    Column("facts_sha256", String(64)),
    Column("claims_sha256", String(64)),
    Column("notes", Text, nullable=False),  # JSON list of the run's notes
    # JSON list of the measures files the run read (run.json's "measures": id, file, sha256, source and the
    # transaction file's sha256); schema 0002
    Column("measures", Text, nullable=False, server_default="[]"),
)

run_programs = Table(
    "run_programs", metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id"), primary_key=True),
    Column("program_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period", String(10), nullable=False),  # month | quarter | half | year
    Column("fiscal_year_start", String(5), nullable=False),
    Column("expiry", String(20), nullable=False),  # an MDF fund's expiry: never | fiscal_year
    Column("places", Integer, nullable=False),  # the program's rounding places, for showing its amounts
)

run_results = Table(
    "run_results", metadata,
    Column("result_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.run_id"), nullable=False),
    Column("partner_id", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("program_id", Text, nullable=False),
    Column("program_version", Integer),
    Column("status", String(10), nullable=False),
    Column("total", ExactDecimal(), nullable=False),
    Column("currency", String(3)),
    Column("tier", Text),
    Column("period_start", Date),  # None when the period label could not be read (an error result)
    Column("period_end", Date),
    Column("accrued", ExactDecimal()),  # an MDF result's accrual; None for other kinds
    Index("ix_run_results_run", "run_id", "program_id", "period"),
)

run_claims = Table(
    "run_claims", metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id"), primary_key=True),
    Column("program_id", String(200), primary_key=True),
    Column("claim_id", Text, primary_key=True),
    Column("partner_id", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("amount", ExactDecimal(), nullable=False),
    Index("ix_run_claims_claim", "program_id", "claim_id"),
)

operations = Table(
    "operations", metadata,
    Column("operation_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),  # post | void | adjust | pay
    Column("run_id", String(64), ForeignKey("runs.run_id")),
    Column("period", Text),
    Column("program_id", Text),
    Column("reason", Text),
    Column("created_at", String(40), nullable=False),
    # One post and one void per run, whatever runs at the same time; NULL run ids (adjust, pay) are distinct.
    UniqueConstraint("run_id", "kind", name="uq_operations_run_kind"),
)

entries = Table(
    "entries", metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", Integer, ForeignKey("operations.operation_id"), nullable=False),
    Column("run_id", String(64), ForeignKey("runs.run_id")),
    Column("period", Text, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("partner_id", Text, nullable=False),
    Column("program_id", Text, nullable=False),
    Column("account", String(10), nullable=False),
    Column("amount", ExactDecimal(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("claim_id", Text),
    Column("corrects", Integer, ForeignKey("entries.entry_id")),  # the entry a reversal reverses
    Column("created_at", String(40), nullable=False),
    Index("ix_entries_account", "partner_id", "program_id", "account"),
    Index("ix_entries_program_period", "program_id", "period_end"),
    Index("ix_entries_run", "run_id"),
)
