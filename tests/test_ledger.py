"""The ledger on SQLite and on a real PostgreSQL server: every number below is computed by hand.

The programs: ``rebate`` (tier, 10% of revenue) and ``fund`` (MDF, accrues 10% of
revenue, reimburses 100% of event claims, unspent funds expire at the end of the
fiscal year), quarterly, fiscal year from January.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select, text

import incentives
from incentives.errors import LedgerError, LedgerUsageError
from incentives.ledger import Ledger
from incentives.ledger.schema import entries
from ledger_support import DATABASES, ledger_location

HEADER = """\
id: {id}
name: {id}
kind: {kind}
version: {version}
currency: USD
effective: {{from: 2027-01-01}}
period: quarter
"""
REBATE = HEADER.format(id="rebate", kind="tier", version=1) + textwrap.dedent("""\
    tiers:
      qualify_on: revenue
      levels:
        - {name: Base, from: 0, rate: 10%}
    """)
FUND = HEADER.format(id="fund", kind="mdf", version=1) + textwrap.dedent("""\
    mdf:
      accrual: {on: revenue, rate: 10%}
      claims: {reimbursement: 100%, activities: [event]}
      expiry: fiscal_year
    """)
SECOND_FUND = HEADER.format(id="second_fund", kind="mdf", version=1) + textwrap.dedent("""\
    mdf:
      accrual: {on: revenue, rate: 5%}
      claims: {reimbursement: 50%, activities: [event]}
    """)


@pytest.fixture(params=DATABASES)
def ledger(request, tmp_path: Path):
    with Ledger(ledger_location(request.param, tmp_path)) as opened:
        opened.init()
        yield opened


@pytest.fixture
def programs(tmp_path: Path):
    folder = tmp_path / "programs"
    folder.mkdir()
    for name, body in (("rebate", REBATE), ("fund", FUND)):
        (folder / f"{name}.yaml").write_text(body, encoding="utf-8")
    return incentives.load_programs(folder)


def facts(period: str, **revenue: str) -> list[dict]:
    return [{"partner_id": partner, "period": period, "revenue": amount} for partner, amount in revenue.items()]


def claim(claim_id: str, partner: str, period: str, amount: str, activity: str = "event",
          program: str | None = None) -> dict:
    record = {"claim_id": claim_id, "partner_id": partner, "period": period, "activity": activity,
              "amount": amount, "activity_end": "2027-01-10", "submitted_on": "2027-01-20", "preapproved": True}
    if program is not None:
        record["program_id"] = program
    return record


def run(programs, ledger, records, claims=()):
    return incentives.Engine(programs, ledger=ledger).run(records, claims)


def balances(ledger, **where) -> dict[tuple[str, str, str], D]:
    return {(b.partner_id, b.program_id, b.account): b.balance for b in ledger.balances(**where)}


def result(run_, partner, program):
    [found] = [r for r in run_.results if r.partner_id == partner and r.program_id == program]
    return found


def test_quarter_after_quarter(ledger, programs):
    # Q1: P1's revenue 1,000 → rebate 100.00; the fund accrues 100.00 and pays claim C1 (30.00): 70.00 left.
    q1 = run(programs, ledger, facts("2027-Q1", P1="1000"), [claim("C1", "P1", "2027-Q1", "30")])
    assert "posted run" in ledger.post(q1.run_id).message
    assert balances(ledger) == {("P1", "fund", "fund"): D("70.00"), ("P1", "fund", "payable"): D("30.00"),
                                ("P1", "rebate", "payable"): D("100.00")}
    again = ledger.post(q1.run_id)
    assert not again.done and "already posted" in again.message

    # Q2: the fund opens with its 70.00 from the ledger (the mdf_balance fact is not read), accrues 50.00;
    # C1 sent again is rejected, C2 (80.00) is paid from the 120.00 available: 40.00 left.
    q2 = run(programs, ledger, [dict(record, mdf_balance="9999") for record in facts("2027-Q2", P1="500")],
             [claim("C1", "P1", "2027-Q2", "30"), claim("C2", "P1", "2027-Q2", "80")])
    fund_q2 = result(q2, "P1", "fund")
    assert (fund_q2.details["opening"], fund_q2.details["available"], fund_q2.total) == (
        D("70.00"), D("120.00"), D("80.00"))
    assert fund_q2.details["rejected_claims"] == [
        {"claim_id": "C1", "reasons": [f"already paid in run {q1.run_id} (period 2027-Q1)"]}]
    assert any("the mdf_balance fact is not read" in note for note in q2.notes)
    ledger.post(q2.run_id)

    # Q1 restated (revenue 1,200): the rebate 120.00 (+20.00), the accrual 120.00 (+20.00 on the fund);
    # C1 is Q1's own claim, so it is paid again in the restatement, not "already paid".
    q1b = run(programs, ledger, facts("2027-Q1", P1="1200"), [claim("C1", "P1", "2027-Q1", "30")])
    assert result(q1b, "P1", "fund").details["rejected_claims"] == []
    assert [(c.partner_id, c.program_id, c.old, c.new, c.delta) for c in ledger.diff(q1.run_id, q1b.run_id)] == [
        ("P1", "rebate", D("100.00"), D("120.00"), D("20.00"))]
    assert "restating 2 program period(s)" in ledger.post(q1b.run_id).message
    restatements = [(e.program_id, e.account, e.amount, e.period) for e in ledger.history("P1")
                    if e.kind == "restatement"]
    assert restatements == [("fund", "fund", D("20.00"), "2027-Q1"), ("rebate", "payable", D("20.00"), "2027-Q1")]

    # An adjustment, then the payment of Q2 and everything before it.
    with pytest.raises(LedgerUsageError, match="needs a reason"):
        ledger.adjust("P1", "rebate", "2027-Q2", D("-15.00"), " ")
    ledger.adjust("P1", "rebate", "2027-Q2", D("-15.00"), "goods returned")
    # rebate: 100 + 20 + 50 − 15 = 155.00; the fund's payable: 30 (C1) + 80 (C2) = 110.00
    paid = ledger.pay("2027-Q2")
    assert "265.00 USD" in paid.message
    assert balances(ledger, period="2027-Q2") == {
        ("P1", "fund", "fund"): D("60.00"), ("P1", "fund", "payable"): D("0.00"),
        ("P1", "rebate", "payable"): D("0.00")}

    # Q2 voided after it was paid: its entries reversed (−50 rebate, −80 fund payable, the fund gets back C2's 80
    # and loses Q2's accrual 50); what was paid for it becomes a negative payable, carried, never paid out.
    with pytest.raises(LedgerUsageError, match="needs a reason"):
        ledger.void(q2.run_id, "")
    assert "voided run" in ledger.void(q2.run_id, "wrong quarter").message
    assert not ledger.void(q2.run_id, "again").done
    assert balances(ledger) == {("P1", "fund", "fund"): D("90.00"), ("P1", "fund", "payable"): D("-80.00"),
                                ("P1", "rebate", "payable"): D("-50.00")}
    carried = ledger.pay("2027-Q2")
    assert carried.entries == 0 and "2 negative balance(s) carried forward" in carried.message

    # Q4 (the fiscal year's last quarter): the fund opens with 90.00 (C2 was released with the void, so it can
    # be paid now), accrues 10.00 and pays C2 (80.00): 20.00 left, which expires when Q4 is posted.
    q4 = run(programs, ledger, facts("2027-Q4", P1="100"), [claim("C2", "P1", "2027-Q4", "80")])
    assert (result(q4, "P1", "fund").details["opening"], result(q4, "P1", "fund").total) == (D("90.00"), D("80.00"))
    ledger.post(q4.run_id)
    expiry = [(e.amount, e.period, e.reason) for e in ledger.history("P1", "fund") if e.kind == "expiry"]
    assert expiry == [(D("-20.00"), "2027-Q4", "unspent funds expire at the end of fiscal year 2027")]
    next_year = run(programs, ledger, facts("2028-Q1", P1="0"))
    assert result(next_year, "P1", "fund").details["opening"] == D("0")

    # The accrual register of Q4: each account's opening, movements by kind, closing = opening + movements.
    register = {(row["program_id"], row["account"]): row for row in ledger.register("2027-Q4")}
    fund_account = register[("fund", "fund")]
    assert (fund_account["opening"], fund_account["accrual"], fund_account["claim"], fund_account["expiry"],
            fund_account["closing"]) == (D("90.00"), D("10.00"), D("-80.00"), D("-20.00"), D("0.00"))
    rebate_account = register[("rebate", "payable")]
    assert (rebate_account["opening"], rebate_account["payout"], rebate_account["closing"]) == (
        D("-50.00"), D("10.00"), D("-40.00"))
    assert [(run_.run_id, run_.state) for run_ in ledger.runs()] == [
        (q1.run_id, "posted"), (q2.run_id, "voided"), (q1b.run_id, "posted"), (q4.run_id, "posted"),
        (next_year.run_id, "draft")]


def test_each_mdf_fund_opens_with_its_own_balance(ledger, tmp_path: Path):
    # Issue #11: one mdf_balance fact used to open every fund of a partner.
    folder = tmp_path / "two_funds"
    folder.mkdir()
    (folder / "fund.yaml").write_text(FUND, encoding="utf-8")
    (folder / "second.yaml").write_text(SECOND_FUND, encoding="utf-8")
    programs = incentives.load_programs(folder)
    q1 = run(programs, ledger, facts("2027-Q1", P1="1000"),
             [claim("C1", "P1", "2027-Q1", "30", program="fund"),
              claim("C9", "P1", "2027-Q1", "20", program="second_fund")])
    ledger.post(q1.run_id)
    # fund: 100.00 − 30.00 = 70.00; second_fund: 50.00 − 50% × 20.00 = 40.00
    q2 = run(programs, ledger, facts("2027-Q2", P1="0"))
    assert result(q2, "P1", "fund").details["opening"] == D("70.00")
    assert result(q2, "P1", "second_fund").details["opening"] == D("40.00")


def test_a_voided_run_releases_its_claims_and_a_restated_run_cannot_be_voided_before_its_restatement(
        ledger, programs):
    q1 = run(programs, ledger, facts("2027-Q1", P1="1000"), [claim("C1", "P1", "2027-Q1", "30")])
    ledger.post(q1.run_id)
    q1b = run(programs, ledger, facts("2027-Q1", P1="1000"), [claim("C1", "P1", "2027-Q1", "30")])
    ledger.post(q1b.run_id)
    with pytest.raises(LedgerUsageError, match=f"restated by run {q1b.run_id}"):
        ledger.void(q1.run_id, "mistake")
    ledger.void(q1b.run_id, "mistake")
    ledger.void(q1.run_id, "mistake")
    assert balances(ledger) == {("P1", "fund", "fund"): D("0.00"), ("P1", "fund", "payable"): D("0.00"),
                                ("P1", "rebate", "payable"): D("0.00")}
    q2 = run(programs, ledger, facts("2027-Q2", P1="1000"), [claim("C1", "P1", "2027-Q2", "30")])
    assert result(q2, "P1", "fund").details["rejected_claims"] == []


def test_a_claim_paid_meanwhile_by_another_period_refuses_the_post(ledger, programs):
    q1 = run(programs, ledger, facts("2027-Q1", P1="1000"), [claim("C1", "P1", "2027-Q1", "30")])
    q2 = run(programs, ledger, facts("2027-Q2", P1="1000"), [claim("C1", "P1", "2027-Q2", "30")])
    ledger.post(q1.run_id)
    with pytest.raises(LedgerUsageError, match=f"already paid in run {q1.run_id} .period 2027-Q1."):
        ledger.post(q2.run_id)
    assert [run_.state for run_ in ledger.runs()] == ["posted", "draft"]


def test_a_draft_can_be_voided_and_is_then_never_posted(ledger, programs):
    q1 = run(programs, ledger, facts("2027-Q1", P1="1000"))
    assert "voided draft run" in ledger.void(q1.run_id, "not this one").message
    outcome = ledger.post(q1.run_id)
    assert not outcome.done and "was voided" in outcome.message
    assert ledger.balances() == []


def test_unknown_runs_programs_and_accounts_are_refused(ledger, programs):
    with pytest.raises(LedgerUsageError, match="there is no run nope in the ledger"):
        ledger.post("nope")
    with pytest.raises(LedgerUsageError, match="program 'rebate' is not in the ledger"):
        ledger.adjust("P1", "rebate", "2027-Q1", D("1"), "why")
    run(programs, ledger, facts("2027-Q1", P1="1000"))
    with pytest.raises(LedgerUsageError, match="'rebate' is a tier program: only MDF programs have a fund"):
        ledger.adjust("P1", "rebate", "2027-Q1", D("1"), "why", account="fund")
    with pytest.raises(LedgerUsageError, match="invalid period label '2027-Q5'"):
        ledger.adjust("P1", "rebate", "2027-Q5", D("1"), "why")
    with pytest.raises(LedgerUsageError, match="must be a decimal number"):
        ledger.adjust("P1", "rebate", "2027-Q1", 1.5, "why")  # type: ignore[arg-type]


def test_amounts_are_exact_decimals_in_the_database(ledger, programs):
    # 30 significant digits, and a claim with 3 decimal places: nothing goes through a binary float.
    q1 = run(programs, ledger, facts("2027-Q1", P1="12345678901234567890123456.78"),
             [claim("C1", "P1", "2027-Q1", "0.015")])
    ledger.post(q1.run_id)
    ledger.adjust("P1", "rebate", "2027-Q1", D("0.0000000001"), "a tiny correction")
    # read back through SQLAlchemy's own column types: NUMERIC on PostgreSQL, text on SQLite
    with ledger.engine.connect() as connection:
        stored = [row.amount for row in connection.execute(
            select(entries.c.amount).order_by(entries.c.entry_id))]
    assert all(type(amount) is D for amount in stored)
    # fund: claim 0.015 × 100% = 0.02 payable, accrual 10% of revenue, the claim −0.02; rebate: 10% of revenue
    assert [str(amount) for amount in stored] == [
        "0.02", "1234567890123456789012345.68", "-0.02", "1234567890123456789012345.68", "1E-10"]
    assert balances(ledger)[("P1", "rebate", "payable")] == D("1234567890123456789012345.6800000001")


def test_init_refuses_a_schema_newer_than_the_library(ledger):
    with ledger.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    stale = Ledger(ledger.url.render_as_string(hide_password=False))
    with pytest.raises(LedgerError, match="has schema 9999, newer than this library knows"):
        stale.runs()
    with pytest.raises(LedgerError, match="newer than this library knows"):
        stale.init()
    stale.close()


def test_a_ledger_not_initialised_says_how(tmp_path: Path):
    with Ledger(tmp_path / "empty.db") as empty:
        with pytest.raises(LedgerError, match="is not an incentives ledger yet: run `incentives ledger init`"):
            empty.runs()


def _recorded(ledger, run_id) -> list[tuple]:
    from incentives.ledger.schema import run_claims, run_results

    with ledger.engine.connect() as connection:
        results = [tuple(row)[2:] for row in connection.execute(
            select(run_results).where(run_results.c.run_id == run_id).order_by(run_results.c.result_id))]
        claims = sorted(tuple(row)[1:] for row in connection.execute(
            select(run_claims).where(run_claims.c.run_id == run_id)))
    return results + claims


def test_a_streamed_run_records_what_a_run_in_memory_records(tmp_path: Path, programs):
    # Budgets scale totals, duplicates and claims without a record make results at the end, and records
    # come in any order: the streamed run's records must still be the in-memory run's, in output order.
    budgeted = tmp_path / "budgeted"
    budgeted.mkdir()
    (budgeted / "rebate.yaml").write_text(REBATE + "budget: 150\n", encoding="utf-8")
    (budgeted / "fund.yaml").write_text(FUND, encoding="utf-8")
    programs = incentives.load_programs(budgeted)
    records = facts("2027-Q1", P3="700", P1="1000", P2="333.33") + facts("2027-Q1", P2="5")
    claims = [claim("C1", "P1", "2027-Q1", "30"), claim("C2", "P9", "2027-Q1", "10"),
              claim("C3", "P3", "2027-Q1", "70.005")]
    with Ledger(tmp_path / "memory.db") as memory, Ledger(tmp_path / "streamed.db") as streamed:
        memory.init()
        streamed.init()
        in_memory = incentives.Engine(programs, ledger=memory).run(records, claims)
        summary = incentives.Engine(programs, ledger=streamed).run_to(tmp_path / "out", records, claims)
        assert any("budget" in note for note in in_memory.notes)
        assert _recorded(memory, in_memory.run_id) == _recorded(streamed, summary.run_id)
        # 9 results (P1 and P3: 2 each; P2, twice: 4; the claim without a record: 1) and 2 paid claims (C1, C3)
        assert len(_recorded(memory, in_memory.run_id)) == 11


def test_the_library_knows_the_revisions_of_its_migrations():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from incentives.ledger.database import REVISIONS

    config = Config()
    config.set_main_option("script_location", str(Path(incentives.__file__).parent / "ledger" / "migrations"))
    scripts = ScriptDirectory.from_config(config)
    assert tuple(reversed([script.revision for script in scripts.walk_revisions()])) == REVISIONS


def test_a_run_of_another_program_version_is_posted_and_diff_shows_the_version(ledger, programs, tmp_path: Path):
    q1 = run(programs, ledger, facts("2027-Q1", P1="1000"))
    ledger.post(q1.run_id)
    newer = tmp_path / "v2"
    newer.mkdir()
    (newer / "rebate.yaml").write_text(REBATE.replace("version: 1", "version: 2").replace("rate: 10%", "rate: 12%"),
                                       encoding="utf-8")
    (newer / "fund.yaml").write_text(FUND, encoding="utf-8")
    q1b = run(incentives.load_programs(newer), ledger, facts("2027-Q1", P1="1000"))
    assert "restating 2 program period(s)" in ledger.post(q1b.run_id).message
    [change] = ledger.diff(q1.run_id, q1b.run_id)
    assert (change.program_id, change.old, change.new, change.delta, change.old_version, change.new_version) == (
        "rebate", D("100.00"), D("120.00"), D("20.00"), 1, 2)
    [restatement] = [e for e in ledger.history("P1", "rebate") if e.kind == "restatement"]
    assert (restatement.amount, restatement.reason) == (D("20.00"), f"restates 2027-Q1 (run {q1.run_id})")


def test_a_run_to_files_opens_every_fund_with_its_ledger_balance(ledger, programs, tmp_path: Path):
    partners = {f"P{number:03d}": str(number * 100) for number in range(1, 41)}
    previous = run(programs, ledger, facts("2027-Q1", **partners),
                   [claim(f"C{number}", f"P{number:03d}", "2027-Q1", "5") for number in range(1, 41)])
    ledger.post(previous.run_id)
    facts_file = tmp_path / "q2.csv"
    facts_file.write_text("partner_id,period,revenue\n" + "".join(
        f"{partner},2027-Q2,1\n" for partner in partners), encoding="utf-8")
    engine = incentives.Engine(programs, ledger=ledger)
    engine.run_to(tmp_path / "out", facts_file, record=False)
    results = incentives.read_run(tmp_path / "out").results
    # each fund opens with what Q1 left: 10% of revenue less the 5.00 claim
    openings = {r.partner_id: r.details["opening"] for r in results if r.program_id == "fund"}
    assert openings == {partner: D(revenue) / 10 - 5 for partner, revenue in partners.items()}


def test_a_run_of_measures_records_them_and_their_transactions(ledger, programs, tmp_path: Path):
    programs_folder = tmp_path / "programs"  # the rebate and the fund, and a measures file of invoices
    programs_folder.joinpath("measures.yaml").write_text(
        "id: revenue_measures\nkind: measures\nsource: invoices\ndate: day\nperiod: quarter\n"
        "measures:\n  revenue: {sum: amount}\n", encoding="utf-8")
    with_measures = incentives.load_programs(programs_folder)
    invoices = tmp_path / "invoices.csv"
    invoices.write_text("partner_id,day,amount\nP1,2027-01-05,600\nP1,2027-02-05,400.00\n", encoding="utf-8")
    measured = incentives.measure_facts(with_measures.measures, {"invoices": invoices})
    recorded = incentives.Engine(with_measures, ledger=ledger).run([], measured=measured)
    # 600 + 400.00: 10% rebate 100.00, the fund accrues 100.00
    assert [(r.program_id, r.total) for r in recorded.results] == [("fund", D("0.00")), ("rebate", D("100.00"))]
    from incentives.ledger.schema import runs

    with ledger.engine.connect() as connection:
        [stored] = connection.execute(select(runs.c.measures).where(runs.c.run_id == recorded.run_id)).scalars()
    import hashlib
    import json
    assert json.loads(stored) == [{"id": "revenue_measures", "file": str(programs_folder / "measures.yaml"),
                                   "sha256": with_measures.measures[0].sha256, "source": "invoices",
                                   "source_sha256": hashlib.sha256(invoices.read_bytes()).hexdigest()}]


@pytest.mark.parametrize("database", DATABASES)
def test_a_ledger_of_schema_0001_is_upgraded_and_its_runs_read_no_measures(database, tmp_path: Path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = ledger_location(database, tmp_path)
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(Path(incentives.__file__).parent / "ledger" / "migrations"))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO runs (run_id, number, created_at, recorded_at, engine_version, notes) "
                                "VALUES ('old', 1, '2027-04-01', '2027-04-01', '0.1.0', '[]')"))
    engine.dispose()
    with Ledger(url) as old:
        with pytest.raises(LedgerError, match="has schema 0001, older than this library's"):
            old.runs()
        assert old.init().message.startswith("upgraded the ledger")
        from incentives.ledger.schema import runs

        with old.engine.connect() as connection:
            assert connection.execute(select(runs.c.measures).where(runs.c.run_id == "old")).scalar() == "[]"
