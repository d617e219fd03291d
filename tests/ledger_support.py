"""Ledgers for tests: a SQLite file, and a real PostgreSQL server when one is reachable.

PostgreSQL is found at ``$INCENTIVES_TEST_POSTGRESQL`` (default
``postgresql+psycopg://incentives:incentives@localhost/incentives_test``).
Locally, tests that need it are skipped with a message saying how to start it;
where ``$INCENTIVES_REQUIRE_POSTGRESQL`` is set (CI), an unreachable server
fails them instead. Each test gets an empty database: the public schema is
dropped and made again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

POSTGRESQL_URL = os.environ.get("INCENTIVES_TEST_POSTGRESQL",
                                "postgresql+psycopg://incentives:incentives@localhost/incentives_test")
HOW_TO_START = ("no PostgreSQL server at $INCENTIVES_TEST_POSTGRESQL; start one with `pg_ctlcluster 15 main start` "
                "and create the role and database as .ci/run does")
DATABASES = ("sqlite", "postgresql")


def postgresql_or_skip() -> str:
    """The test server's URL, emptied; a skip (or, in CI, a failure) when it cannot be reached."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(POSTGRESQL_URL)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except OperationalError as error:
        if os.environ.get("INCENTIVES_REQUIRE_POSTGRESQL"):
            pytest.fail(f"PostgreSQL is required here and cannot be reached: {error}")
        pytest.skip(HOW_TO_START)
    finally:
        engine.dispose()
    return POSTGRESQL_URL


def ledger_location(database: str, tmp_path: Path) -> str:
    if database == "sqlite":
        return str(tmp_path / "ledger.db")
    return postgresql_or_skip()
