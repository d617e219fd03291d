"""Earlier periods: ``prior.X`` and ``year_ago.X`` read the partner's records of other periods in the same input.

Expected values are computed by hand in the comments.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal as D
from pathlib import Path

import pytest

import incentives
from conftest import program_text
from incentives.history import earlier_label
from incentives.inputs import read_facts
from incentives.periods import parse_period

# 2% of revenue, and a growth kicker of 1% of revenue when revenue grew 10% on the same quarter last year.
KICKER = program_text("""
    tiers:
      qualify_on: revenue
      levels:
        - {name: Base, from: 0, rate: 2%}
    bonuses:
      - {id: growth, when: "revenue >= 1.1 * year_ago.revenue", amount: "1% * revenue", description: growth}
    """, header="""
    id: volume
    name: Volume rebate
    kind: tier
    version: 1
    currency: USD
    effective: {from: 2026-01-01}
    period: quarter
    """)
# pays 10% of the growth on the previous quarter (0 when it shrank)
QUARTER_ON_QUARTER = program_text("""
    tiers:
      qualify_on: revenue
      pay_on: "max(revenue - prior.revenue, 0)"
      levels:
        - {name: Base, from: 0, rate: 10%}
    """, header="""
    id: growth
    name: Growth
    kind: tier
    version: 1
    currency: USD
    effective: {from: 2026-01-01}
    fiscal_year_start: "07-01"
    period: quarter
    """)
PLAIN = program_text("""
    tiers:
      qualify_on: revenue
      levels:
        - {name: Base, from: 0, rate: 1%}
    """, header="""
    id: plain
    name: Plain
    kind: tier
    version: 1
    currency: USD
    effective: {from: 2026-01-01}
    period: quarter
    """)


def by_key(run: incentives.PayoutRun) -> dict[tuple[str, str, str], incentives.PayoutResult]:
    return {(r.partner_id, r.period, r.program_id): r for r in run.results}


RECORDS = [
    {"partner_id": "P1", "period": "2026-Q1", "revenue": 100000},
    {"partner_id": "P1", "period": "2027-Q1", "revenue": 120000},  # grew 20%: kicker
    {"partner_id": "P2", "period": "2026-Q1", "revenue": 100000},
    {"partner_id": "P2", "period": "2027-Q1", "revenue": 105000},  # grew 5%: no kicker
    {"partner_id": "P3", "period": "2027-Q1", "revenue": 50000},  # no history
]


def test_the_growth_kicker_reads_the_same_quarter_last_year(engine_for):
    run = engine_for(KICKER).run(RECORDS, period="2027-Q1")
    results = by_key(run)
    assert sorted(results) == [("P1", "2027-Q1", "volume"), ("P2", "2027-Q1", "volume"),
                               ("P3", "2027-Q1", "volume")]  # 2026-Q1 is history only
    p1 = results[("P1", "2027-Q1", "volume")]
    # 120,000 >= 1.1 × 100,000 = 110,000: 2% × 120,000 = 2,400 + 1% × 120,000 = 1,200
    assert p1.total == D("3600.00")
    assert [line.rule_id for line in p1.lines if line.kind == "bonus"] == ["growth"]
    # 105,000 < 110,000: 2% × 105,000 = 2,100 only
    assert results[("P2", "2027-Q1", "volume")].total == D("2100.00")
    p3 = results[("P3", "2027-Q1", "volume")]
    assert (p3.status, p3.errors) == ("error", ["missing facts: year_ago.revenue"])


def test_without_a_period_every_record_is_computed_and_is_history_for_later_ones(engine_for):
    results = by_key(engine_for(KICKER).run(RECORDS))
    assert len(results) == 5
    assert results[("P1", "2027-Q1", "volume")].total == D("3600.00")
    # 2026-Q1 has no 2025-Q1 record
    assert results[("P1", "2026-Q1", "volume")].errors == ["missing facts: year_ago.revenue"]


def test_defaults_can_give_a_missing_earlier_fact(engine_for):
    program = KICKER.replace("period: quarter\n", "period: quarter\ndefaults: {year_ago.revenue: 0}\n")
    results = by_key(engine_for(program).run(RECORDS, period="2027-Q1"))
    # P3 has no 2026-Q1 record: 50,000 >= 1.1 × 0, so 2% × 50,000 = 1,000 + 1% × 50,000 = 500
    assert results[("P3", "2027-Q1", "volume")].total == D("1500.00")
    # a record of the earlier period wins over the default: P2 as before
    assert results[("P2", "2027-Q1", "volume")].total == D("2100.00")


def test_prior_crosses_the_fiscal_year_on_the_programs_calendar(engine_for):
    # fiscal year from 07-01: 2027-Q1 is Jul-Sep 2026 and its prior quarter is 2026-Q4 (Apr-Jun 2026)
    records = [{"partner_id": "P1", "period": "2026-Q4", "revenue": 40000},
               {"partner_id": "P1", "period": "2027-Q1", "revenue": 55000},
               {"partner_id": "P2", "period": "2026-Q4", "revenue": 40000},
               {"partner_id": "P2", "period": "2027-Q1", "revenue": 30000}]
    results = by_key(engine_for(QUARTER_ON_QUARTER).run(records, period="2027-Q1"))
    assert results[("P1", "2027-Q1", "growth")].total == D("1500.00")  # 10% × (55,000 − 40,000)
    assert results[("P2", "2027-Q1", "growth")].total == D("0.00")  # 10% × max(30,000 − 40,000, 0)


@pytest.mark.parametrize("label, prior, year_ago", [
    ("2027-Q1", "2026-Q4", "2026-Q1"), ("2027-Q3", "2027-Q2", "2026-Q3"),
    ("2027-01", "2026-12", "2026-01"), ("2027-07", "2027-06", "2026-07"),
    ("2027-H1", "2026-H2", "2026-H1"), ("2027-H2", "2027-H1", "2026-H2"),
    ("2027", "2026", "2026"), ("0001-01", None, None),
])
def test_earlier_labels(label, prior, year_ago):
    period = parse_period(label, "07-01")
    assert (earlier_label(period, "prior"), earlier_label(period, "year_ago")) == (prior, year_ago)


def test_history_from_a_duplicated_period_is_an_error_not_a_pick(engine_for):
    records = [*RECORDS, {"partner_id": "P1", "period": "2026-Q1", "revenue": 90000}]
    results = by_key(engine_for(KICKER, PLAIN).run(records, period="2027-Q1"))
    p1 = results[("P1", "2027-Q1", "volume")]
    assert (p1.status, p1.errors) == ("error", [
        "year_ago.revenue: 2 records for period 2026-Q1 (duplicates); which one is the history cannot be told"])
    # a program that does not read that period is not affected: 1% × 120,000
    assert results[("P1", "2027-Q1", "plain")].total == D("1200.00")
    # without --period the duplicated records are computed, and are errors themselves
    everything = engine_for(KICKER).run(records)
    assert [r.status for r in everything.results if r.period == "2026-Q1" and r.partner_id == "P1"] == [
        "error", "error"]


def test_history_from_a_record_with_problems_is_an_error(engine_for):
    records = [{"partner_id": "P1", "period": "2026-Q1", "revenue": "NaN"},
               {"partner_id": "P1", "period": "2027-Q1", "revenue": 120000}]
    result = by_key(engine_for(KICKER).run(records, period="2027-Q1"))[("P1", "2027-Q1", "volume")]
    assert result.errors == ["year_ago.revenue: the record for period 2026-Q1 has errors: "
                             "revenue: 'NaN' is not a number"]


def test_a_prior_fact_the_record_holds_itself_stands(engine_for):
    records = [{"partner_id": "P1", "period": "2026-Q1", "revenue": 100000},
               {"partner_id": "P1", "period": "2027-Q1", "revenue": 120000, "year_ago.revenue": 115000}]
    result = by_key(engine_for(KICKER).run(records, period="2027-Q1"))[("P1", "2027-Q1", "volume")]
    assert result.total == D("2400.00")  # 120,000 < 1.1 × 115,000 = 126,500: 2% × 120,000 only


def test_records_in_any_order_give_the_same_run(engine_for):
    engine = engine_for(KICKER, QUARTER_ON_QUARTER)
    records = [{"partner_id": f"P{n % 7}", "period": f"{2026 + q // 4}-Q{q % 4 + 1}", "revenue": 1000 * n}
               for n, q in zip(range(1, 57), [q for q in range(8) for _ in range(7)])]
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    in_order = [r.model_dump() for r in engine.run(records).results]
    assert [r.model_dump() for r in engine.run(shuffled).results] == in_order
    assert any(r["total"] > 0 and any(line["rule_id"] == "growth" for line in r["lines"]) for r in in_order)


def test_evaluate_reads_the_history_it_is_given(engine_for):
    engine = engine_for(KICKER)
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": 120000}
    assert engine.evaluate(record)["volume"].errors == ["missing facts: year_ago.revenue"]
    history = [{"partner_id": "P1", "period": "2026-Q1", "revenue": 100000}]
    assert engine.evaluate(record, history=history)["volume"].total == D("3600.00")  # as in the run above


def test_a_program_that_reads_no_history_does_not_group_records(engine_for):
    engine = engine_for(PLAIN)
    assert not engine.reads_history
    run = engine.run(RECORDS, period="2027-Q1")
    # only 2027-Q1 is computed: 1% × 120,000, 105,000 and 50,000
    assert [(r.partner_id, r.total) for r in run.results] == [("P1", D("1200.00")), ("P2", D("1050.00")),
                                                              ("P3", D("500.00"))]
    assert run.notes == ["period 2027-Q1 computed; 2 records of other periods skipped"]


def test_claims_of_periods_not_computed_are_left_out(write_program):
    program = program_text("""
        mdf:
          accrual: {on: revenue, rate: 2%}
          claims: {reimbursement: 50%, activities: [event]}
        bonuses:
          - {id: growth, when: "revenue > prior.revenue", amount: "100", description: grew}
        """, id="fund", kind="mdf")
    engine = incentives.Engine(incentives.load_programs(write_program(program)))
    records = [{"partner_id": "P1", "period": "2027-Q1", "revenue": 1000},
               {"partner_id": "P1", "period": "2027-Q2", "revenue": 2000}]
    claims = [{"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": 100,
               "activity_end": "2027-02-01", "submitted_on": "2027-02-10", "preapproved": "true"}]
    run = engine.run(records, claims, period="2027-Q2")
    assert [(r.period, r.status) for r in run.results] == [("2027-Q2", "ok")]
    # the 2027-Q1 claim is left out (not an orphan error row); the fund accrues 2% × 2,000 = 40 and pays
    # no claim, so the total is the bonus of 100 for growing on 1,000
    assert (run.results[0].total, run.results[0].details["closing"]) == (D("100.00"), D("40.00"))


# --- load errors --------------------------------------------------------------------------------

def load_problems(write_program, text: str) -> list[str]:
    path = write_program(text)
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs(path)
    return [str(problem).removeprefix(f"{path}:") for problem in caught.value.problems]


def test_this_under_prior_is_a_located_error(write_program):
    text = program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Base, from: 0, rate: 2%}
        bonuses:
          - {id: more, when: "revenue > 0", amount: "prior.this.base", description: more}
        """)
    assert ("13:46: 'prior.this.base': prior. reads facts of an earlier period's record, not metrics or results; "
            "'this.' is this program's outcome in the period computed (read the facts it is computed from, e.g. "
            "prior.revenue)") in load_problems(write_program, text)


# --- streaming: the same files as in memory ------------------------------------------------------

def history_records(partners: int, seed: int = 5) -> list[dict]:
    """Eight quarters per partner (some missing, a few duplicated), in partner order."""
    rng = random.Random(seed)
    records = []
    for number in range(1, partners + 1):
        for year in (2026, 2027):
            for quarter in range(1, 5):
                if rng.random() < 0.1:
                    continue
                records.append({"partner_id": f"P{number:04d}", "period": f"{year}-Q{quarter}",
                                "revenue": f"{rng.randrange(1000, 90000)}.{rng.randrange(0, 100):02d}"})
                if rng.random() < 0.03:
                    records.append(dict(records[-1], revenue="1.00"))
    return records


def files(folder: Path) -> dict[str, str]:
    out = {name: (folder / name).read_text(encoding="utf-8") for name in ("payouts.csv", "lines.csv",
                                                                            "results.jsonl")}
    text = (folder / "run.json").read_text(encoding="utf-8")
    head = json.loads(text)
    out["run.json"] = text.replace(head["run_id"], "RUN").replace(head["created_at"], "TIME")
    return out


def write_facts(path: Path, records: list[dict]) -> Path:
    path.write_text("partner_id,period,revenue\n" + "".join(
        f"{r['partner_id']},{r['period']},{r['revenue']}\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("period", [None, "2027-Q2"])
def test_streaming_gives_the_same_files_with_history(engine_for, tmp_path, shuffled, period):
    engine = engine_for(KICKER, QUARTER_ON_QUARTER, PLAIN)
    records = history_records(90)
    if shuffled:
        random.Random(9).shuffle(records)
    facts = write_facts(tmp_path / "facts.csv", records)
    incentives.write_run(engine.run(read_facts(facts), facts_sha256="f" * 64, period=period), tmp_path / "memory")
    summary = engine.run_to(tmp_path / "stream", facts, facts_sha256="f" * 64, period=period)
    expected = files(tmp_path / "memory")
    assert files(tmp_path / "stream") == expected
    results = [json.loads(line) for line in expected["results.jsonl"].splitlines()]
    assert any(line["rule_id"] == "growth" for r in results for line in r["lines"])  # the kicker fired
    assert any("duplicates" in error for r in results for error in r["errors"])
    if period is not None:
        assert {r["period"] for r in results} == {period}
        others = sum(record["period"] != period for record in records)
        assert json.loads(expected["run.json"])["notes"] == [
            f"period {period} computed; {others:,} records of other periods read as history only (not computed)"]
        assert summary.records == len(records) - others


def test_a_streamed_api_run_with_history_in_any_order(engine_for, tmp_path):
    engine = engine_for(KICKER)
    records = history_records(30, seed=8)
    random.Random(2).shuffle(records)
    incentives.write_run(engine.run(records), tmp_path / "memory")
    engine.run_to(tmp_path / "stream", iter(records))
    assert files(tmp_path / "stream") == files(tmp_path / "memory")


def test_the_guides_worked_example(engine_for):
    # docs/programs.md, "Earlier periods"
    program = program_text("""
        tiers:
          qualify_on: net_sales
          levels:
            - {name: Base, from: 0, rate: 2%}
        bonuses:
          - id: growth_kicker
            when: "net_sales >= 1.1 * year_ago.net_sales"
            amount: "1% * net_sales"
            description: Growth kicker
        """, header="""
        id: distributor_volume
        name: Distributor volume
        kind: tier
        version: 1
        currency: USD
        effective: {from: 2025-07-01}
        period: quarter
        fiscal_year_start: "07-01"
        """)
    records = [{"partner_id": "D1", "period": "2026-Q1", "net_sales": D("100000.00")},
               {"partner_id": "D1", "period": "2026-Q4", "net_sales": D("130000.00")},
               {"partner_id": "D1", "period": "2027-Q1", "net_sales": D("120000.00")},
               {"partner_id": "D2", "period": "2026-Q1", "net_sales": D("100000.00")},
               {"partner_id": "D2", "period": "2027-Q1", "net_sales": D("105000.00")}]
    run = engine_for(program).run(records, period="2027-Q1")
    # D1: 2% × 120,000 = 2,400 + 1% × 120,000 = 1,200; D2: 105,000 < 110,000, 2% × 105,000 = 2,100
    assert [(r.partner_id, r.total) for r in run.results] == [("D1", D("3600.00")), ("D2", D("2100.00"))]
    # with prior. instead, D1 compares with 2026-Q4: 120,000 < 1.1 × 130,000, no kicker
    prior = engine_for(program.replace("year_ago.", "prior.")).run(records, period="2027-Q1")
    assert prior.results[0].total == D("2400.00")


@pytest.mark.parametrize("shuffled", [False, True])
def test_a_json_lines_file_split_between_partners_gives_the_same_files(engine_for, tmp_path, shuffled):
    engine = engine_for(KICKER, QUARTER_ON_QUARTER)
    records = history_records(60, seed=4)
    if shuffled:
        random.Random(1).shuffle(records)
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    incentives.write_run(engine.run(read_facts(facts), facts_sha256="f" * 64), tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == files(tmp_path / "memory")


def test_a_quoted_csv_file_out_of_order_is_read_in_one_pass_with_history(engine_for, tmp_path):
    # a quote may hide a line break: the file cannot be cut, so its records are put in partner order in memory
    engine = engine_for(KICKER)
    records = history_records(30, seed=6)
    random.Random(4).shuffle(records)
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue\n" + "".join(
        f'"{r["partner_id"]}",{r["period"]},{r["revenue"]}\n' for r in records), encoding="utf-8")
    incentives.write_run(engine.run(read_facts(facts), facts_sha256="f" * 64), tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == files(tmp_path / "memory")
    growth = [r for r in engine.run(read_facts(facts)).results if any(l.rule_id == "growth" for l in r.lines)]
    assert growth  # history was read although the records came out of order


def test_records_given_in_python_are_read_whole_then_computed_in_partner_order(engine_for):
    # a run puts records given in Python in partner order before it computes them (a sorted file is streamed:
    # tests/test_run_engines.py), whether or not a program reads history
    def counted(read: list) -> object:
        for record in RECORDS:
            read.append(record)
            yield record

    for program in (PLAIN, KICKER):
        read: list = []
        seen: list = []
        engine_for(program).run(counted(read), progress=lambda index: seen.append(len(read)))
        assert seen == [5, 5, 5, 5, 5]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_one_partner_written_differently_is_not_cut_apart(engine_for, tmp_path, suffix):
    # One partner's records give one partner_id once read, though their bytes differ: a JSON escape or spaces
    # inside the quotes, a non-ASCII space around a CSV cell. Their bytes sort at both ends of the file, and a
    # cut between them would lose the partner's history.
    engine = engine_for(KICKER, QUARTER_ON_QUARTER)
    records = history_records(60, seed=4)
    random.Random(3).shuffle(records)
    if suffix == ".jsonl":
        partner, spelled = "P0060", ['"P\\u00300060"', '"P0060"', '" P0060 "']
    else:
        partner, spelled = "P0001", ["P0001\u00a0", "\u2003P0001"]
    written = 0
    lines = []
    for record in records:
        if suffix == ".jsonl":
            text = json.dumps(record)
            if record["partner_id"] == partner:
                text = text.replace(f'"{partner}"', spelled[written % len(spelled)])
        else:
            cell = spelled[written % len(spelled)] if record["partner_id"] == partner else record["partner_id"]
            text = f"{cell},{record['period']},{record['revenue']}"
        written += record["partner_id"] == partner
        lines.append(text + "\n")
    assert written >= 6
    facts = tmp_path / f"facts{suffix}"
    facts.write_text(("partner_id,period,revenue\n" if suffix == ".csv" else "") + "".join(lines), encoding="utf-8")
    memory = engine.run(read_facts(facts), facts_sha256="f" * 64)
    incentives.write_run(memory, tmp_path / "memory")
    assert {r.partner_id for r in memory.results if partner in r.partner_id} == {partner}
    engine.run_to(tmp_path / "stream", facts, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == files(tmp_path / "memory")
