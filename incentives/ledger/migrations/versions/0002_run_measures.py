"""Runs record the measures files whose facts they read, and their transaction files' sha256.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a JSON list, as run.json's "measures"; the runs recorded before read none
    op.add_column("runs", sa.Column("measures", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:  # SQLite drops a column by copying the table
        runs.drop_column("measures")
