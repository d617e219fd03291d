"""The ledger: runs (drafts), their programs, results and paid claims; operations; entries.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from incentives.ledger.schema import ExactDecimal

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, nullable=False, unique=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("engine_version", sa.String(40), nullable=False),
        sa.Column("facts_sha256", sa.String(64)),
        sa.Column("claims_sha256", sa.String(64)),
        sa.Column("notes", sa.Text, nullable=False),
    )
    op.create_table(
        "run_programs",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("program_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("fiscal_year_start", sa.String(5), nullable=False),
        sa.Column("expiry", sa.String(20), nullable=False),
        sa.Column("places", sa.Integer, nullable=False),
    )
    op.create_table(
        "run_results",
        sa.Column("result_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("program_id", sa.Text, nullable=False),
        sa.Column("program_version", sa.Integer),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("total", ExactDecimal(), nullable=False),
        sa.Column("currency", sa.String(3)),
        sa.Column("tier", sa.Text),
        sa.Column("period_start", sa.Date),
        sa.Column("period_end", sa.Date),
        sa.Column("accrued", ExactDecimal()),
    )
    op.create_index("ix_run_results_run", "run_results", ["run_id", "program_id", "period"])
    op.create_table(
        "run_claims",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("program_id", sa.String(200), primary_key=True),
        sa.Column("claim_id", sa.Text, primary_key=True),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("amount", ExactDecimal(), nullable=False),
    )
    op.create_index("ix_run_claims_claim", "run_claims", ["program_id", "claim_id"])
    op.create_table(
        "operations",
        sa.Column("operation_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id")),
        sa.Column("period", sa.Text),
        sa.Column("program_id", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("run_id", "kind", name="uq_operations_run_kind"),
    )
    op.create_table(
        "entries",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.Integer, sa.ForeignKey("operations.operation_id"), nullable=False),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id")),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("program_id", sa.Text, nullable=False),
        sa.Column("account", sa.String(10), nullable=False),
        sa.Column("amount", ExactDecimal(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("claim_id", sa.Text),
        sa.Column("corrects", sa.Integer, sa.ForeignKey("entries.entry_id")),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_entries_account", "entries", ["partner_id", "program_id", "account"])
    op.create_index("ix_entries_program_period", "entries", ["program_id", "period_end"])
    op.create_index("ix_entries_run", "entries", ["run_id"])


def downgrade() -> None:
    for name in ("entries", "operations", "run_claims", "run_results", "run_programs", "runs"):
        op.drop_table(name)
