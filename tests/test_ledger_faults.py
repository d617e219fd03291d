"""The ledger under faults, with real processes: posts killed mid-transaction, two posts racing, unreachable
ledgers — on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

import incentives
from incentives.ledger import Ledger
from incentives.ledger.database import writing
from incentives.ledger.schema import entries, operations
from ledger_support import DATABASES, ledger_location

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
FACTS = ROOT / "examples" / "facts_2027Q1.csv"
CLAIMS = ROOT / "examples" / "claims_2027Q1.csv"

# Runs the command line in a process that SIGKILLs itself at one moment of the post's transaction: just
# after a statement that starts with argv[1] ran (uncommitted), or, for "COMMIT", when the connection that
# wrote the entries goes back to the pool (its transaction committed). The entries themselves go in by
# COPY on PostgreSQL, which SQLAlchemy does not see: the count of them that the post checks right after
# ("SELECT count(*) ...") marks that moment on both databases.
KILLER = textwrap.dedent("""
    import os, signal, sys
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    moment = sys.argv[1]
    ENTRIES_WRITTEN = "SELECT COUNT(*) AS COUNT_1"
    wrote = False

    def after_execute(connection, cursor, statement, *rest):
        global wrote
        wrote = wrote or statement.lstrip().upper().startswith(ENTRIES_WRITTEN)
        if statement.lstrip().upper().startswith(moment):
            os.kill(os.getpid(), signal.SIGKILL)

    def checked_in(dbapi_connection, record):
        if moment == "COMMIT" and wrote:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Engine, "after_cursor_execute", after_execute)
    event.listen(Pool, "checkin", checked_in)
    from incentives.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "incentives", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture(params=DATABASES)
def location(request, tmp_path: Path) -> str:
    return ledger_location(request.param, tmp_path)


def bundled_draft(location: str) -> str:
    """The bundled quarter, run with the ledger: its draft's run id."""
    with Ledger(location) as ledger:
        ledger.init()
        engine = incentives.Engine(incentives.load_programs(PROGRAMS), ledger=ledger)
        from incentives.inputs import read_claims, read_facts

        return engine.run(read_facts(FACTS), read_claims(CLAIMS)).run_id


def posted_entries(location: str, run_id: str) -> tuple[int, int]:
    """How many entries and post operations the ledger holds for a run."""
    with Ledger(location) as ledger, ledger.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(entries)
                                   .where(entries.c.run_id == run_id)).scalar_one()
        posts = connection.execute(select(func.count()).select_from(operations)
                                   .where(operations.c.run_id == run_id, operations.c.kind == "post")).scalar_one()
    return count, posts


ENTRIES_OF_THE_BUNDLED_QUARTER = 3984  # 3,600 results' payouts, 300 + 300 fund accruals less the ineligible, claims


@pytest.mark.parametrize("moment", ["INSERT INTO OPERATIONS", "SELECT COUNT(*) AS COUNT_1"])
def test_a_post_killed_in_its_transaction_leaves_nothing_and_the_next_post_completes(location, moment):
    run_id = bundled_draft(location)
    killed = subprocess.run([sys.executable, "-c", KILLER, moment, "ledger", "post", run_id,
                             "--ledger", location], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9
    assert posted_entries(location, run_id) == (0, 0)
    done = cli("ledger", "post", run_id, "--ledger", location)
    assert done.returncode == 0, done.stderr
    assert posted_entries(location, run_id) == (ENTRIES_OF_THE_BUNDLED_QUARTER, 1)


def test_a_post_killed_just_after_its_commit_is_whole_and_a_second_post_says_so(location):
    run_id = bundled_draft(location)
    killed = subprocess.run([sys.executable, "-c", KILLER, "COMMIT", "ledger", "post", run_id,
                             "--ledger", location], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9
    assert posted_entries(location, run_id) == (ENTRIES_OF_THE_BUNDLED_QUARTER, 1)
    again = cli("ledger", "post", run_id, "--ledger", location)
    assert again.returncode == 0 and "is already posted" in again.stdout


def test_two_posts_of_one_run_at_once_post_it_once(location):
    run_id = bundled_draft(location)
    with Ledger(location) as ledger, writing(ledger.engine) as holder:
        # Hold the ledger's write lock so that both posts start, block on it, and race when it is let go.
        transaction = holder.get_transaction()
        racers = [subprocess.Popen([sys.executable, "-m", "incentives", "ledger", "post", run_id,
                                    "--ledger", location], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(2)
        assert all(racer.poll() is None for racer in racers)  # both are waiting for the lock
        transaction.rollback()
        outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    said = sorted("already posted" in out for out, _ in outputs)
    assert said == [False, True], outputs
    assert posted_entries(location, run_id) == (ENTRIES_OF_THE_BUNDLED_QUARTER, 1)


def test_an_unreachable_ledger_exits_2_without_its_password(tmp_path: Path):
    done = cli("ledger", "runs", "--ledger", "postgresql://finance:s3cret@127.0.0.1:9/ledger")
    assert done.returncode == 2
    assert done.stderr.startswith("incentives ledger: cannot reach the ledger "
                                  "postgresql+psycopg://finance:***@127.0.0.1:9/ledger: ")
    assert "s3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_ledger_of_another_database_kind_or_not_initialised_exits_2(tmp_path: Path):
    done = cli("ledger", "runs", "--ledger", "mysql://user:pw@host/db")
    assert done.returncode == 2 and "the ledger runs on SQLite or PostgreSQL, not mysql" in done.stderr
    assert "pw@" not in done.stderr
    done = cli("ledger", "runs", "--ledger", str(tmp_path / "none.db"))
    assert done.returncode == 2 and "is not an incentives ledger yet: run `incentives ledger init`" in done.stderr


def test_incentives_ledger_in_the_environment_is_the_ledger(tmp_path: Path):
    location = str(tmp_path / "env.db")
    assert cli("ledger", "init", env={"INCENTIVES_LEDGER": location}).returncode == 0
    assert Path(location).is_file()
    done = cli("ledger", "runs", env={"INCENTIVES_LEDGER": location})
    assert done.returncode == 0 and "(nothing)" in done.stdout


def test_bad_ledger_commands_say_so_in_one_line(location):
    assert cli("ledger", "init", "--ledger", location).returncode == 0
    cases = [
        (["post", "no-such-run"], "there is no run no-such-run in the ledger"),
        (["adjust", "--partner", "P1", "--program", "x", "--period", "2027-Q1", "--amount", "12.5x",
          "--reason", "r"], "--amount must be a decimal number such as 250.00 or -75.5, not '12.5x'"),
        (["adjust", "--partner", "P1", "--program", "x", "--period", "2027-Q1", "--amount", "1e999",
          "--reason", "r"], "--amount: '1e999' is outside the supported range"),
        (["adjust", "--partner", "P1", "--program", "x", "--period", "2027-Q1", "--amount", "5",
          "--reason", " "], "an adjustment needs a reason"),
        (["void", "no-such-run", "--reason", "r"], "there is no run no-such-run in the ledger"),
    ]
    for args, message in cases:
        done = cli("ledger", *args, "--ledger", location)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith("incentives ledger: ") and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_wrong_password_exits_2_without_printing_it():
    from ledger_support import POSTGRESQL_URL, postgresql_or_skip

    postgresql_or_skip()
    wrong = POSTGRESQL_URL.replace("incentives:incentives@", "incentives:not-the-password@")
    done = cli("ledger", "runs", "--ledger", wrong)
    assert done.returncode == 2
    assert "cannot reach the ledger postgresql+psycopg://incentives:***@" in done.stderr
    assert "password authentication failed" in done.stderr and "not-the-password" not in done.stderr
