"""Bulk runs against hostile inputs: records in any order, more period labels or program ids than a short
counts, many copies of one record, and a run killed with its worker processes running."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from pathlib import Path

import pytest

import incentives
from incentives.inputs import read_facts
from test_streaming import (FACT_COLUMNS, GOALS, LATER, MDF, TIER, claims_for, files, sorted_partners, summary_of,
                            write_csv)

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = (TIER, GOALS, MDF, LATER)
REBATE = """\
id: rebate
name: Rebate
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
tiers:
  qualify_on: revenue
  levels:
    - {name: Base, from: 0, rate: 2%}
"""


@pytest.fixture
def engine(engine_for):
    return engine_for(*PROGRAMS)


def programs_folder(tmp_path: Path, texts: tuple[str, ...] = PROGRAMS) -> Path:
    folder = tmp_path / "program_files"
    folder.mkdir()
    for number, text in enumerate(texts):
        (folder / f"program_{number}.yaml").write_text(text, encoding="utf-8")
    return folder


def shuffled_partners(count: int, seed: int) -> list[dict]:
    """Records in no order and without duplicates: one partner in four has a second period, a few records
    have no partner id."""
    records = sorted_partners(count, seed)
    rng = random.Random(seed)
    records += [dict(record, period="2027-Q2" if record["period"] == "2027-Q1" else "2027-Q1")
                for record in records[::4]]
    records += [dict(record, partner_id="") for record in records[1:40:13]]
    rng.shuffle(records)
    return records


# --- records in any order (#10) --------------------------------------------------------------


def test_records_in_any_order_are_assembled_in_bounded_memory(tmp_path):
    # Each result read out of order pinned a 4 MB window of its spill file until 8 MB of results had been
    # gathered: these 3,000 shuffled records took 4.9 GB. The run's own peak resident memory is measured (an
    # address-space limit no longer can be: polars reserves address space for its threads it never touches).
    records = sorted_partners(3000, seed=3)
    random.Random(1).shuffle(records)
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    script = ("import resource, sys\n"
              "import incentives\n"
              "engine = incentives.Engine(incentives.load_programs(sys.argv[1]))\n"
              "summary = engine.run_to(sys.argv[3], sys.argv[2], facts_sha256='f' * 64)\n"
              "print(summary.results, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    programs = programs_folder(tmp_path)
    completed = subprocess.run([sys.executable, "-c", script, programs, facts_file, tmp_path / "stream"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    results, peak_mb = map(int, completed.stdout.split())
    assert results == 3 * len(records)  # the fourth program covers no record's period
    assert peak_mb < 600, peak_mb  # about 210 MB here; the bug took 4.9 GB
    engine = incentives.Engine(incentives.load_programs(programs))
    incentives.write_run(engine.run(read_facts(facts_file), facts_sha256="f" * 64), tmp_path / "memory")
    assert files(tmp_path / "stream") == files(tmp_path / "memory")


def test_records_in_any_order_without_duplicates_give_the_same_files_and_summary(engine, tmp_path):
    # A partner with two periods counts once in the summary.
    records = shuffled_partners(600, seed=5)
    claims = claims_for(records, seed=5)[:-1]  # claims without a facts record too; no duplicate claim id
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    run = engine.run(read_facts(facts_file), claims, facts_sha256="f" * 64)
    incentives.write_run(run, tmp_path / "memory")
    expected = files(tmp_path / "memory")
    assert not any("duplicate record" in error for result in run.results for error in result.errors)
    assert any("budget" in note for note in run.notes)
    assert any("have no facts record" in error for result in run.results for error in result.errors)
    assert any(result.partner_id == "" for result in run.results)
    summary = engine.run_to(tmp_path / "stream", facts_file, claims, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected
    assert {name: getattr(summary, name) for name in summary_of(run)} == summary_of(run)
    two_periods = {result.partner_id for result in run.results if result.period == "2027-Q2"} & \
                  {result.partner_id for result in run.results if result.period == "2027-Q1"}
    assert len(two_periods) > 100
    assert summary.partners["partner_tier"] == len({r.partner_id for r in run.results
                                                    if r.program_id == "partner_tier"}) < len(records)


@pytest.mark.parametrize("duplicated", [False, True])
def test_the_summary_of_records_in_any_order_counts_scaled_totals(engine_for, tmp_path, duplicated):
    # A budget scales results that reach a tier: the paid-by-tier figures hold their final totals, whether or
    # not a duplicate took results out.
    engine = engine_for(TIER + "budget: 20000\n", GOALS)
    records = shuffled_partners(300, seed=11)
    if duplicated:
        records.append(dict(next(record for record in records if record["partner_id"])))
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    run = engine.run(read_facts(facts_file))
    assert any("partner_tier" in note and "budget" in note for note in run.notes)
    summary = engine.run_to(tmp_path / "stream", facts_file)
    assert {name: getattr(summary, name) for name in summary_of(run)} == summary_of(run)
    assert summary.by_tier["partner_tier"]


def test_a_shuffled_file_with_bad_rows_fails_at_its_first_bad_line(engine, tmp_path):
    # Evaluated in partner order, P1's bad row (line 5) comes before P9's (line 3): the file's first is named.
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue\nP5,2027-Q1,1\nP9,2027-Q1,2,extra\nP7,2027-Q1,3\n"
                     "P1,2027-Q1,4,extra\nP3,2027-Q1,5\n", encoding="utf-8")
    with pytest.raises(incentives.InputError) as serial:
        engine.run(read_facts(facts))
    with pytest.raises(incentives.InputError) as streamed:
        engine.run_to(tmp_path / "out", facts)
    assert streamed.value.line == serial.value.line == 3
    assert str(streamed.value) == str(serial.value)
    assert str(facts) in str(streamed.value)


# --- more than 65,535 of something (#13) -----------------------------------------------------


def test_more_than_65535_period_labels_give_one_error_row_each(tmp_path):
    # partner_id and period swapped: 70,000 distinct "periods". Their indexes overflowed an array of
    # shorts (OverflowError); now each record is an error row and the run exits 3.
    count = 70_000
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue\n" + "".join(f"2027-Q1,P{n:05d},100\n" for n in range(count)),
                     encoding="utf-8")
    programs = tmp_path / "programs"
    programs.mkdir()
    (programs / "rebate.yaml").write_text(REBATE, encoding="utf-8")
    completed = subprocess.run([sys.executable, "-m", "incentives", "run", "--programs", programs, "--facts", facts,
                                "--out", tmp_path / "out"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert completed.returncode == 3, completed.stderr
    assert "Traceback" not in completed.stderr
    with open(tmp_path / "out" / "payouts.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == count
    assert {(row["partner_id"], row["status"], row["total"]) for row in rows} == {("2027-Q1", "error", "0.00")}
    assert [row["period"] for row in rows] == [f"P{n:05d}" for n in range(count)]
    results = incentives.read_run(tmp_path / "out").results
    assert results[65_536].errors == [
        "invalid period label 'P65536': expected YYYY (fiscal year), YYYY-H1..YYYY-H2 (fiscal half), "
        "YYYY-Q1..YYYY-Q4 (fiscal quarter) or YYYY-MM (calendar month)"]


def test_claims_naming_more_than_65535_programs(engine_for, tmp_path):
    # Claims without a facts record, each naming a program of its own: 70,000 program ids in one run.
    engine = engine_for(REBATE)
    count = 70_000
    claims = [{"claim_id": f"C{n}", "partner_id": f"P{n:05d}", "period": "2027-Q1", "program_id": f"fund{n}",
               "activity": "event", "amount": "10.00", "activity_end": "2027-01-10", "submitted_on": "2027-01-20",
               "preapproved": "true"} for n in range(count)]
    summary = engine.run_to(tmp_path / "out", [], claims)
    assert summary.results == summary.errors == count
    assert summary.counts["fund69999"] == {"ok": 0, "ineligible": 0, "error": 1}
    with open(tmp_path / "out" / "payouts.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["partner_id"], row["program_id"]) for row in rows[-2:]] == [("P69998", "fund69998"),
                                                                          ("P69999", "fund69999")]


# --- many copies of one record (#14) ---------------------------------------------------------


def test_many_copies_of_one_record_list_a_few_places_and_a_count(engine_for, tmp_path):
    # Each copy's error named every copy's line: 5,000 copies made 5,000 error rows of 5,000 places each,
    # and run.json (its results, now in results.jsonl) grew as the square of the copies (10,000 copies of a 150 KB file: 1.09 GB).
    engine = engine_for(REBATE)
    copies = 5000
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue\nP2,2027-Q1,5\n" + "P1,2027-Q1,100\n" * copies, encoding="utf-8")
    message = ("duplicate record for partner P1 and period 2027-Q1 "
               "(5,000 records: line 3, line 4, line 5, line 6, line 7 and 4,995 more)")
    run = engine.run(read_facts(facts), facts_sha256="f" * 64)
    assert [(r.partner_id, r.status, r.errors) for r in run.results] == \
        [("P1", "error", [message])] * copies + [("P2", "ok", [])]
    incentives.write_run(run, tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == files(tmp_path / "memory")
    # about 400 bytes per copy in results.jsonl; listing every place would take 5,000 x 5,000 x 11 bytes
    assert (tmp_path / "stream" / "results.jsonl").stat().st_size < 600 * copies


def test_a_few_copies_still_name_every_place(engine_for):
    engine = engine_for(REBATE)
    records = [{"partner_id": "P1", "period": "2027-Q1", "revenue": 100}] * 5
    run = engine.run(records)
    assert {error for result in run.results for error in result.errors} == {
        "duplicate record for partner P1 and period 2027-Q1 (record 1, record 2, record 3, record 4, record 5)"}
    run = engine.run(records + records[:1])
    assert {error for result in run.results for error in result.errors} == {
        "duplicate record for partner P1 and period 2027-Q1 "
        "(6 records: record 1, record 2, record 3, record 4, record 5 and 1 more)"}


def test_more_than_65535_copies_of_one_record(engine_for, tmp_path):
    # One partner and period's error results are one unit of the streaming run, one per copy and program:
    # its result count overflowed a short too.
    engine = engine_for(REBATE)
    copies = 70_000
    summary = engine.run_to(tmp_path / "out", [{"partner_id": "P1", "period": "2027-Q1", "revenue": 100}] * copies)
    assert summary.counts == {"rebate": {"ok": 0, "ineligible": 0, "error": copies}}
    assert summary.first_errors[0] == ("P1", "2027-Q1", "rebate", [
        "duplicate record for partner P1 and period 2027-Q1 "
        "(70,000 records: record 1, record 2, record 3, record 4, record 5 and 69,995 more)"])
