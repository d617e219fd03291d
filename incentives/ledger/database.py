"""Where the ledger lives: its URL, the engine, the schema's version, and write transactions that exclude
each other.

A plain path is a SQLite file; ``postgresql://`` (or ``postgresql+psycopg://``)
is PostgreSQL through psycopg 3. The schema is managed by Alembic: ``init``
creates or upgrades it; every other use checks that it is exactly the
library's (a newer one is refused: this library cannot know what it holds).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ..errors import LedgerError, LedgerUsageError

DEFAULT_FILE = "incentives-ledger.db"
ENVIRONMENT_VARIABLE = "INCENTIVES_LEDGER"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant: every process writing one PostgreSQL ledger takes this advisory lock first.
_WRITE_LOCK = 7_305_131_902
#: The schema revisions of this library's migrations, oldest first (tests/test_ledger.py checks them against
#: the migration scripts): a ledger stamped with another one is newer than this library.
REVISIONS = ("0001", "0002")

__all__ = ["DEFAULT_FILE", "ENVIRONMENT_VARIABLE", "LedgerError", "LedgerUsageError", "check_schema", "insert_rows",
           "ledger_url", "open_engine", "reachable", "shown", "upgrade", "writing", "WRITER"]


def ledger_url(location: str | os.PathLike[str]) -> URL:
    """The SQLAlchemy URL of a ledger location: a path is a SQLite file; PostgreSQL goes through psycopg 3."""
    text_location = os.fspath(location)
    if "://" not in text_location:
        return URL.create("sqlite", database=str(Path(text_location).expanduser().resolve()))
    try:
        url = make_url(text_location)
    except ArgumentError:
        raise LedgerError(f"{text_location!r} is not a ledger URL: give a file path (SQLite) or "
                          "postgresql+psycopg://user:password@host/database") from None
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        return url
    raise LedgerError(f"{shown(url)}: the ledger runs on SQLite or PostgreSQL, not {url.get_backend_name()}")


def shown(url: URL) -> str:
    """The URL as it may be printed: the password hidden."""
    return url.render_as_string(hide_password=True)


def open_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by _sqlite_begin, not by the driver's own guess at when one is needed.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys = ON")
    dbapi_connection.execute("PRAGMA journal_mode = WAL")


def _sqlite_begin(connection: Connection) -> None:
    # A writer's transaction is IMMEDIATE: the write lock is taken when it starts, so two writers never both
    # read the ledger and then both write what they decided from it. Readers (a run's worker processes
    # reading fund balances at once, say) begin as usual and never wait for each other.
    writer = connection.get_execution_options().get(WRITER, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


#: The execution option that marks a connection as the ledger's writer (see :func:`writing`).
WRITER = "incentives_ledger_writer"


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction that no other writer of the ledger runs beside: all of it is committed, or none."""
    with engine.connect() as plain, plain.execution_options(**{WRITER: True}) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})
        yield connection


def reachable(engine: Engine) -> None:
    """Raise a :class:`LedgerError` naming the URL and the cause when the database cannot be used."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as error:
        raise LedgerError(f"cannot reach the ledger {shown(engine.url)}: {_cause(error)}") from None


def _cause(error: DBAPIError) -> str:
    original = str(getattr(error, "orig", error) or error).strip()
    return original.splitlines()[0] if original else type(error).__name__


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create the schema or bring it to the library's; returns the revision before and after."""
    from alembic import command

    reachable(engine)
    with writing(engine) as connection:
        before = _current(connection)
        _refuse_newer(engine, connection, before)
        command.upgrade(_alembic_config(connection), "head")
        return before, _head(connection)


def check_schema(engine: Engine) -> None:
    """Raise unless the ledger's schema is exactly the library's.

    Reads the revision Alembic stamped without loading Alembic: every command but
    ``init`` pays only for one query.
    """
    reachable(engine)
    with engine.connect() as connection:
        current = _stamped(connection)
    head = REVISIONS[-1]
    if current is None:
        raise LedgerError(f"{shown(engine.url)} is not an incentives ledger yet: run `incentives ledger init`")
    if current not in REVISIONS:
        raise _newer(engine, current)
    if current != head:
        raise LedgerError(f"the ledger {shown(engine.url)} has schema {current}, older than this library's "
                          f"({head}): run `incentives ledger init` to upgrade it")


def _stamped(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _newer(engine: Engine, current: str) -> LedgerError:
    return LedgerError(f"the ledger {shown(engine.url)} has schema {current}, newer than this library knows: "
                       "upgrade incentives to use it")


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _head(connection: Connection) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    assert head is not None
    return head


def _refuse_newer(engine: Engine, connection: Connection, current: str | None) -> None:
    if current is not None and current not in REVISIONS:
        raise _newer(engine, current)


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows at the driver's own speed: PostgreSQL's COPY, SQLite's executemany of plain tuples.

    SQLAlchemy's executemany processes every parameter of every row in Python,
    which is most of the time of recording a run of 300,000 results; here each
    value is only made what the column stores (an amount's exact text on
    SQLite, a date's ISO text), as :class:`ExactDecimal` and ``Date`` would.
    """
    if not rows:
        return
    names = list(rows[0])
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        columns = ", ".join(names)
        with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_postgresql_value(row[name]) for name in names])
        return
    placeholders = ", ".join("?" for _ in names)
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})",
                               [tuple(_sqlite_value(row[name]) for name in names) for row in rows])


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is Decimal:
        if not value.is_finite():
            raise TypeError(f"ledger amounts are finite Decimals, not {value!r}")
        return str(value)
    if kind is date:
        return value.isoformat()
    return value


def _postgresql_value(value: Any) -> Any:
    if type(value) is Decimal and not value.is_finite():
        raise TypeError(f"ledger amounts are finite Decimals, not {value!r}")
    return value
