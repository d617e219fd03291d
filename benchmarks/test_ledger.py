"""The ledger's numbers: recording and posting a whole run, one partner's balances among a million entries,
and what reading the ledger adds to a run — on SQLite and on PostgreSQL.

Bars (issue #11): posting a 100k-partner × 3-program run under 30 s on each database; ``ledger balances
--partner P`` on a ledger of 1M entries under 50 ms; the ledger adds under 10% to a 100k run. The 10k size
runs in CI (``-k 10k``); the others by hand, figures in ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import OperationalError

import incentives
from incentives.ledger import Ledger
from incentives.ledger.schema import entries, operations

from .conftest import PROGRAMS, dataset, end_to_end, note, record

POSTGRESQL = os.environ.get("INCENTIVES_TEST_POSTGRESQL",
                            "postgresql+psycopg://incentives:incentives@localhost/incentives_test")


def _location(database: str, tmp_path: Path) -> str:
    if database == "sqlite":
        return str(tmp_path / "ledger.db")
    engine = create_engine(POSTGRESQL)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except OperationalError:
        pytest.skip("no PostgreSQL server at $INCENTIVES_TEST_POSTGRESQL (`pg_ctlcluster 15 main start`)")
    finally:
        engine.dispose()
    return POSTGRESQL


@pytest.mark.parametrize("size_id", ["10k", "100k"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_record_and_post_a_run(benchmark, tmp_path, database, size_id):
    data = dataset(size_id)
    with Ledger(_location(database, tmp_path)) as ledger:
        ledger.init()
        engine = incentives.Engine(incentives.load_programs(PROGRAMS), ledger=ledger)
        run = engine.run(data.rows, data.claim_rows, record=False)
        programs = engine.ledger_programs()
        from incentives.ledger.runs import result_records, run_record

        started = time.perf_counter()
        results = ledger.record(run_record(run, programs.values()), result_records(run.results, programs))
        recording = time.perf_counter() - started
        outcomes = []
        benchmark.group = f"ledger post {size_id}"
        benchmark.pedantic(lambda: outcomes.append(ledger.post(run.run_id)), rounds=1, iterations=1)
    assert outcomes[0].done and outcomes[0].entries > 3 * data.size
    record(benchmark, f"ledger post ({database})", size_id, results=results, entries=outcomes[0].entries,
           record_seconds=round(recording, 2))
    note(f"ledger record ({database})", size_id, recording, results=results)


@pytest.mark.parametrize("size_id", ["10k", "1m"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_balances_of_one_partner_among_many_entries(benchmark, tmp_path, database, size_id):
    # ``size_id`` entries over 10 programs and 12 quarters: about 3 per partner, program and quarter.
    count = {"10k": 10_000, "1m": 1_000_000}[size_id]
    partners = max(1, count // 360)
    with Ledger(_location(database, tmp_path)) as ledger:
        ledger.init()
        _fill(ledger, count, partners)
        wanted = f"P{partners // 2:07d}"
        shown = []
        benchmark.group = f"ledger balances {size_id}"
        benchmark.pedantic(lambda: shown.append(ledger.balances(partner_id=wanted)), rounds=20, iterations=1,
                           warmup_rounds=1)
    mine = [number for number in range(count) if number % partners == partners // 2]
    assert len(shown[-1]) == len({(number // partners) % 10 for number in mine})
    assert sum(balance.balance for balance in shown[-1]) == Decimal(len(mine))
    record(benchmark, f"ledger balances of a partner ({database})", size_id, entries=count)


def _fill(ledger: Ledger, count: int, partners: int) -> None:
    """``count`` entries straight into the table (posting them run by run would take the benchmark's time)."""
    with ledger.engine.begin() as connection:
        operation = connection.execute(insert(operations).returning(operations.c.operation_id), [{
            "kind": "adjust", "created_at": "2027-01-01T00:00:00+00:00"}]).scalar_one()
        rows = []
        for number in range(count):
            partner = number % partners
            program = (number // partners) % 10
            quarter = (number // (partners * 10)) % 12
            year, month = 2025 + quarter // 4, 1 + 3 * (quarter % 4)
            rows.append({"operation_id": operation, "run_id": None, "period": f"{year}-Q{quarter % 4 + 1}",
                         "period_start": date(year, month, 1), "period_end": date(year, month, 28),
                         "partner_id": f"P{partner:07d}", "program_id": f"program_{program}",
                         "account": "payable", "amount": Decimal("1.00"), "currency": "USD",
                         "kind": "adjustment", "reason": "benchmark", "created_at": "2027-01-01T00:00:00+00:00"})
            if len(rows) == 20_000:
                connection.execute(insert(entries), rows)
                rows = []
        if rows:
            connection.execute(insert(entries), rows)


@pytest.mark.parametrize("size_id", ["10k", "100k"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_what_the_ledger_adds_to_a_run(benchmark, tmp_path, database, size_id):
    """``incentives run`` end to end without a ledger, reading one (the previous quarter posted: every fund's
    balance and every claim paid), and reading it and recording the run: fresh processes, three rounds, the
    order turned each round; each ratio is taken within its round, and the median round is kept. The runs
    that read the ledger also time the reading from inside (``LedgerClock``): its share of the run is what
    the ledger adds, measured where the machine's swings from one run to the next cannot hide it. Memory is
    not sampled: the sampler's CPU grows with the processes' size, which a ledger's run adds to."""
    location = _location(database, tmp_path)
    _previous_quarter_posted(location, size_id)
    options = {"none": ("--no-memory",), "read": ("--no-memory", "--ledger", location),
               "record": ("--no-memory", "--ledger", location, "--record")}
    rounds_seen: list[dict[str, dict]] = []

    def rounds() -> None:
        for turn in range(3):
            names = list(options)[turn:] + list(options)[:turn]
            rounds_seen.append({name: end_to_end(size_id, *options[name]) for name in names})

    benchmark.group = f"ledger run {size_id} ({database})"
    benchmark.pedantic(rounds, rounds=1, iterations=1)
    read_ratio = statistics.median(seen["read"]["seconds"] / seen["none"]["seconds"] for seen in rounds_seen)
    record_ratio = statistics.median(seen["record"]["seconds"] / seen["none"]["seconds"] for seen in rounds_seen)
    shares = [seen["read"]["ledger_seconds"]["share_of_run"] for seen in rounds_seen]
    record(benchmark, f"run with a ledger ({database})", size_id,
           seconds={name: [seen[name]["seconds"] for seen in rounds_seen] for name in options},
           read_ratio=round(read_ratio, 3), record_ratio=round(record_ratio, 3),
           reading_share_of_run=statistics.median(shares),
           reading_seconds=[seen["read"]["ledger_seconds"] for seen in rounds_seen])


def _previous_quarter_posted(location: str, size_id: str) -> None:
    """The benchmark's partners and claims as 2026-Q4 (claims renamed), run and posted in the ledger."""
    import dataclasses

    data = dataset(size_id)
    rows = [dataclasses.replace(row, period="2026-Q4", facts={**row.facts, "period": "2026-Q4"})
            for row in data.rows]
    claims = [dataclasses.replace(claim, period="2026-Q4", claim_id=f"Q4-{claim.claim_id}")
              for claim in data.claim_rows]
    with Ledger(location) as ledger:
        ledger.init()
        run = incentives.Engine(incentives.load_programs(PROGRAMS), ledger=ledger).run(rows, claims)
        ledger.post(run.run_id)
