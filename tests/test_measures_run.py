"""Measures joined to a run's facts (incentives.joined_facts, read_csv_blocks' ``joined``): values by hand, the
block reader held to the record reader, runs with --transactions by both engines, earlier periods as history."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import incentives
from incentives.columnar.facts import FIRST_COMPUTED_LINE, LINE, read_csv_blocks
from incentives.errors import UsageError
from incentives.inputs import read_facts
from incentives.joined_facts import ComputedFacts, joined_rows

ROOT = Path(__file__).resolve().parent.parent

#: the measures of P1 and P3 in 2027-Q1, of P1 in 2026-Q1; a partner and period without: 0, no largest
COMPUTED = ComputedFacts(pl.DataFrame({"partner_id": ["P1", "P1", "P3"], "period": ["2026-Q1", "2027-Q1", "2027-Q1"],
                                       "deals": ["4", "2", "1"], "largest": ["90.00", "75.50", None]}),
                         {"deals": "0", "largest": None})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_records_get_their_partner_and_period_measures_and_partners_without_a_record_get_one(tmp_path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nP2,2027-Q1,10\nP1,2027-Q1,5.5\n")
    rows = list(joined_rows(read_facts(facts), COMPUTED))
    assert [(row.line, row.partner_id, row.period, row.facts) for row in rows] == [
        # P2 has no deal: 0 deals, no largest
        (2, "P2", "2027-Q1", {"partner_id": "P2", "period": "2027-Q1", "revenue": Decimal("10"), "deals": Decimal(0)}),
        (3, "P1", "2027-Q1", {"partner_id": "P1", "period": "2027-Q1", "revenue": Decimal("5.5"), "deals": Decimal(2),
                              "largest": Decimal("75.50")}),
        # no record of these: one of the measures alone, by partner then period
        (None, "P1", "2026-Q1", {"partner_id": "P1", "period": "2026-Q1", "deals": Decimal(4),
                                 "largest": Decimal("90.00")}),
        (None, "P3", "2027-Q1", {"partner_id": "P3", "period": "2027-Q1", "deals": Decimal(1)})]


def test_a_fact_both_define_is_refused(tmp_path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,deals\nP1,2027-Q1,3\n")
    with pytest.raises(UsageError, match=r"facts.csv has a column deals that a measures file computes too"):
        list(read_csv_blocks(facts, in_partner_order=True, joined=COMPUTED))
    records = [{"partner_id": "P9", "period": "2027-Q1"}, {"partner_id": "P1", "period": "2027-Q1", "largest": 1}]
    from incentives.inputs import fact_row
    with pytest.raises(UsageError, match="has a column largest"):
        list(joined_rows((fact_row(record) for record in records), COMPUTED))


def block_records(path: Path, computed: ComputedFacts, rows_per_block: int) -> list[tuple]:
    """What the columnar reader gives, as (line, partner_id, period, cells) in its order."""
    out = []
    for block in read_csv_blocks(path, in_partner_order=True, joined=computed, rows_per_block=rows_per_block):
        for line, cells in zip(block.frame[LINE], block.cells.iter_rows()):
            out.append((line, *cells))
    return out


def test_the_blocks_carry_the_measures_in_partner_order_each_partner_in_one_block(tmp_path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nP4,2027-Q1,1\n P1 ,2027-Q1,2\nP2,2027-Q1,3\n"
                                          "P1,2027-Q1,4\n,2027-Q1,5\n")
    assert block_records(facts, COMPUTED, rows_per_block=2) == [
        (6, "", "2027-Q1", "5", "0", ""),                 # no partner: what none has (an error row anyway)
        (3, " P1 ", "2027-Q1", "2", "2", "75.50"),        # stripped, as the partner_id the run reads
        (5, "P1", "2027-Q1", "4", "2", "75.50"),          # a duplicate record: the same measures
        (FIRST_COMPUTED_LINE, "P1", "2026-Q1", "", "4", "90.00"),  # P1's block: after its records
        (4, "P2", "2027-Q1", "3", "0", ""),
        (FIRST_COMPUTED_LINE + 1, "P3", "2027-Q1", "", "1", ""),  # between P2 and P4, in P4's block
        (2, "P4", "2027-Q1", "1", "0", "")]
    # partners after the file's last: blocks of their own
    only = write(tmp_path / "only.csv", "partner_id,period,revenue\n")
    assert block_records(only, COMPUTED, rows_per_block=1) == [
        (FIRST_COMPUTED_LINE, "P1", "2026-Q1", "", "4", "90.00"), (FIRST_COMPUTED_LINE + 1, "P1", "2027-Q1", "", "2", "75.50"),
        (FIRST_COMPUTED_LINE + 2, "P3", "2027-Q1", "", "1", "")]


@settings(max_examples=60, deadline=None)
@given(facts=st.lists(st.tuples(st.sampled_from(["P1", "P2", "P3", "P4", " P5", ""]),
                                st.sampled_from(["2026-Q1", "2027-Q1"]), st.sampled_from(["1", "2.5", ""])),
                      max_size=12),
       measured=st.dictionaries(st.tuples(st.sampled_from(["P0", "P1", "P2", "P3", "P5", "P6"]),
                                          st.sampled_from(["2026-Q1", "2027-Q1"])),
                                st.tuples(st.integers(0, 9).map(str), st.sampled_from(["1.25", None])), max_size=8),
       rows_per_block=st.integers(1, 4))
def test_the_block_reader_joins_as_the_record_reader(tmp_path_factory, facts, measured, rows_per_block):
    """Every record the record reader gives, with its measures, and no other, whatever the blocks."""
    folder = tmp_path_factory.mktemp("join")
    path = write(folder / "facts.csv", "partner_id,period,revenue\n" + "".join(f"{p},{q},{r}\n" for p, q, r in facts))
    keys = sorted(measured)
    computed = ComputedFacts(pl.DataFrame({"partner_id": [p for p, _ in keys], "period": [q for _, q in keys],
                                           "deals": [measured[key][0] for key in keys],
                                           "largest": [measured[key][1] for key in keys]},
                                          schema={"partner_id": pl.String, "period": pl.String, "deals": pl.String,
                                                  "largest": pl.String}),
                             {"deals": "0", "largest": None})
    by_records = sorted((row.line or FIRST_COMPUTED_LINE, row.partner_id, row.period,
                         row.facts.get("deals"), row.facts.get("largest")) for row in joined_rows(read_facts(path), computed))
    by_blocks = block_records(path, computed, rows_per_block)
    partners = [cells[1].strip() for cells in by_blocks]
    assert partners == sorted(partners)
    # the computed rows' lines are numbered in their order; the record reader leaves them without
    assert sorted((line if line < FIRST_COMPUTED_LINE else FIRST_COMPUTED_LINE, partner.strip(), period,
                   Decimal(deals) if deals else None, Decimal(largest) if largest else None)
                  for line, partner, period, _, deals, largest in by_blocks) == by_records


# --- runs ------------------------------------------------------------------------------------------------

DEALS = """\
id: deal_measures
kind: measures
source: deals
date: closed_on
period: quarter
measures:
  deals_won: {count: true, where: "stage == 'won'"}
  won_value: {sum: amount, where: "stage == 'won'"}
"""

# pays 10% of this quarter's won deals, and 50 more for growing on the quarter before (none before: 0)
PROGRAM = """\
id: deal_rebate
name: Deal rebate
kind: tier
version: 1
currency: USD
effective: {from: 2026-01-01}
period: quarter
defaults: {prior.won_value: 0}
tiers:
  qualify_on: won_value
  levels:
    - {name: Base, from: 0, rate: 10%}
bonuses:
  - {id: growth, when: "won_value > prior.won_value", amount: "50", description: grew}
"""


@pytest.fixture
def deals_run(tmp_path):
    programs = tmp_path / "programs"
    programs.mkdir()
    write(programs / "measures.yaml", DEALS)
    write(programs / "rebate.yaml", PROGRAM)
    write(tmp_path / "deals.csv", "deal_id,partner_id,closed_on,stage,amount\n"
                                  "D1,P1,2026-11-02,won,400.00\n"     # 2026-Q4: P1's prior quarter
                                  "D2,P1,2027-01-15,won,900.00\n"
                                  "D3,P1,2027-02-01,won,350.50\n"
                                  "D4,P1,2027-03-01,lost,5000\n"
                                  "D5,P2,2027-01-20,won,200\n"
                                  "D6,,2027-01-20,won,200\n")        # rejected: no partner
    write(tmp_path / "facts.csv", "partner_id,period,region\nP1,2027-Q1,EMEA\nP3,2027-Q1,APAC\n")
    return tmp_path


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "incentives", *args], cwd=folder, capture_output=True, text=True)


def test_a_run_reads_the_measures_and_earlier_periods_feed_prior(deals_run):
    done = run_cli(deals_run, "run", "--programs", "programs", "--facts", "facts.csv", "--transactions",
                   "deals=deals.csv", "--period", "2027-Q1", "--out", "out")
    assert done.returncode == 0, done.stderr
    payouts = (deals_run / "out" / "payouts.csv").read_text(encoding="utf-8").splitlines()
    # P1: 900 + 350.50 won; 10% = 125.05, and 1250.50 > 400.00 (2026-Q4) adds 50. P2: no facts record, 200 won
    # (20.00) and no deal before (0): 50 more. P3: a record, no deal: 0 won, no growth.
    rows = {row.split(",")[0]: row.split(",")[4:8] for row in payouts[1:]}
    assert rows == {"P1": ["ok", "Base", "", "175.05"], "P2": ["ok", "Base", "", "70.00"],
                    "P3": ["ok", "Base", "", "0.00"]}
    run = json.loads((deals_run / "out" / "run.json").read_text(encoding="utf-8"))
    [measures] = run["measures"]
    assert (measures["id"], measures["file"], measures["source"]) == ("deal_measures", "programs/measures.yaml", "deals")
    import hashlib
    assert measures["source_sha256"] == hashlib.sha256((deals_run / "deals.csv").read_bytes()).hexdigest()
    assert any(note.startswith("deal_measures: 1 of 6 transactions of deals.csv rejected: row 6: partner_id is "
                               "empty") for note in run["notes"])
    assert (deals_run / "out" / "rejected_transactions.csv").read_text(encoding="utf-8").splitlines()[1] == \
        '6,partner_id is empty,D6,"",2027-01-20,won,200'


def test_both_engines_write_the_same_run_from_transactions(deals_run):
    for engine in ("columnar", "per-record"):
        done = run_cli(deals_run, "run", "--programs", "programs", "--facts", "facts.csv", "--transactions",
                       "deals=deals.csv", "--out", engine, "--engine", engine)
        assert done.returncode == 0, done.stderr
    for name in ("payouts.csv", "lines.csv", "results.jsonl", "rejected_transactions.csv"):
        assert (deals_run / "columnar" / name).read_bytes() == (deals_run / "per-record" / name).read_bytes()
    payouts = (deals_run / "columnar" / "payouts.csv").read_text(encoding="utf-8")
    # every period the transactions or the facts have: P1's 2026-Q4 too (400.00: 40.00, and 50 on nothing before)
    assert payouts.splitlines()[1:] == [
        "P1,2026-Q4,deal_rebate,1,ok,Base,,90.00,USD",
        "P1,2027-Q1,deal_rebate,1,ok,Base,,175.05,USD",
        "P2,2027-Q1,deal_rebate,1,ok,Base,,70.00,USD",
        "P3,2027-Q1,deal_rebate,1,ok,Base,,0.00,USD"]


def test_a_run_of_transactions_alone_and_its_usage_errors(deals_run):
    done = run_cli(deals_run, "run", "--programs", "programs", "--transactions", "deals=deals.csv", "--period",
                   "2027-Q1", "--out", "out")
    assert done.returncode == 0, done.stderr
    assert [row.split(",")[0] for row in (deals_run / "out" / "payouts.csv").read_text().splitlines()[1:]] == \
        ["P1", "P2"]
    done = run_cli(deals_run, "run", "--programs", "programs", "--out", "out2")
    assert (done.returncode, done.stderr) == (1, "incentives run: give the facts: --facts FILE, --transactions "
                                                 "NAME=FILE, or both\n")
    write(deals_run / "clash.csv", "partner_id,period,won_value\nP1,2027-Q1,3\n")
    done = run_cli(deals_run, "run", "--programs", "programs", "--facts", "clash.csv", "--transactions",
                   "deals=deals.csv", "--out", "out3")
    assert done.returncode == 1
    assert "clash.csv has a column won_value that a measures file computes too" in done.stderr
    assert not (deals_run / "out3").exists()


def test_the_python_api_runs_measures(deals_run):
    programs = incentives.load_programs(deals_run / "programs")
    measured = incentives.measure_facts(programs.measures, {"deals": deals_run / "deals.csv"})
    run = incentives.Engine(programs).run([{"partner_id": "P2", "period": "2027-Q1"}], measured=measured,
                                          period="2027-Q1")
    assert [(result.partner_id, str(result.total)) for result in run.results] == [("P1", "175.05"), ("P2", "70.00")]
    assert run.measures[0].source_sha256 is not None


def test_explain_shows_the_measures_and_how_many_transactions_each_covers(deals_run):
    done = run_cli(deals_run, "explain", "--programs", "programs", "--facts", "facts.csv", "--transactions",
                   "deals=deals.csv", "--partner", "P1", "--period", "2027-Q1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        "measures of P1 in 2027-Q1: deal_measures (programs/measures.yaml) over deals.csv\n"
        # the program reads won_value (deals_won it does not): D2 and D3, not D4 (lost)
        "  won_value =        1250.50   sum of amount where stage == 'won': 2 transactions\n"
        "\n"
        # and prior.won_value: the quarter before's, D1
        "measures of P1 in 2026-Q4: deal_measures (programs/measures.yaml) over deals.csv\n"
        "  won_value =         400.00   sum of amount where stage == 'won': 1 transaction\n"
        "\n"
        "list them: incentives measures --programs programs --transactions deals=deals.csv --transactions-of P1\n")
    assert "175.05" in done.stdout


def test_transactions_of_a_partner_lists_what_each_counts_in(deals_run):
    done = run_cli(deals_run, "measures", "--programs", "programs", "--transactions", "deals=deals.csv",
                   "--transactions-of", "P1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "row,in_period,counted_in,why,deal_id,partner_id,closed_on,stage,amount",
        "1,2026-Q4,deals_won;won_value,,D1,P1,2026-11-02,won,400.00",
        "2,2027-Q1,deals_won;won_value,,D2,P1,2027-01-15,won,900.00",
        "3,2027-Q1,deals_won;won_value,,D3,P1,2027-02-01,won,350.50",
        "4,2027-Q1,,,D4,P1,2027-03-01,lost,5000"]                   # counted in nothing


def test_validate_checks_the_transaction_columns_and_the_facts_the_measures_give(deals_run):
    write(deals_run / "renamed.csv", "deal_id,partner_id,closed_on,Stage,amount_usd\n")
    done = run_cli(deals_run, "validate", "programs", "--transactions", "deals=renamed.csv")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "programs/measures.yaml:7:36: reads column 'stage', which renamed.csv does not have; nearest columns: Stage",
        "programs/measures.yaml:8:20: reads column 'amount', which renamed.csv does not have; nearest columns: "
        "amount_usd"]
    # the facts file lacks won_value and deals_won: the measures give them
    done = run_cli(deals_run, "validate", "programs", "--transactions", "deals=deals.csv", "--facts", "facts.csv")
    assert (done.returncode, done.stdout) == (0, "1 program file and 1 measures file valid (1 program, 1 version); "
                                                 "deals.csv has every column its measures read; facts.csv and the "
                                                 "measures have every fact they read\n")
    done = run_cli(deals_run, "validate", "programs", "--facts", "facts.csv")
    assert done.returncode == 1 and "reads fact 'won_value', which facts.csv does not have" in done.stdout
    write(deals_run / "clash.csv", "partner_id,period,won_value,deals_won\n")
    done = run_cli(deals_run, "validate", "programs", "--transactions", "deals=deals.csv", "--facts", "clash.csv")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == ("programs/measures.yaml:7:3: measure 'deals_won' is also a column of "
                                           "clash.csv: a fact is either in the facts file or measured, not both "
                                           "(rename one)")


def test_a_run_folder_of_other_transactions_is_another_run(deals_run):
    args = ["run", "--programs", "programs", "--facts", "facts.csv", "--period", "2027-Q1", "--out", "out"]
    assert run_cli(deals_run, *args, "--transactions", "deals=deals.csv").returncode == 0
    assert (deals_run / "out" / "rejected_transactions.csv").exists()
    # the same inputs again: the folder (its rejected transactions too) is this run's
    assert run_cli(deals_run, *args, "--transactions", "deals=deals.csv").returncode == 0
    write(deals_run / "fixed.csv", "deal_id,partner_id,closed_on,stage,amount\nD1,P1,2027-01-15,won,900.00\n")
    done = run_cli(deals_run, *args, "--transactions", "deals=fixed.csv")
    assert done.returncode == 1 and "holds the output of a different run" in done.stderr
    done = run_cli(deals_run, *args, "--transactions", "deals=fixed.csv", "--force")
    assert done.returncode == 0, done.stderr
    # nothing rejected this time: no rejected transactions file left from the run before
    assert sorted(path.name for path in (deals_run / "out").iterdir()) == \
        ["lines.csv", "payouts.csv", "results.jsonl", "run.json"]
    done = run_cli(deals_run, "measures", "--programs", "programs", "--transactions", "deals=deals.csv",
                   "--transactions-of", "P1", "--out", "facts_out.csv")
    assert done.returncode == 1 and "give --out or --transactions-of, not both" in done.stderr


def test_json_lines_facts_and_parquet_transactions_run_as_csv_ones(deals_run):
    """The per-record join (a JSON Lines facts file) and a Parquet transaction file: the CSV run's payouts."""
    write(deals_run / "facts.jsonl", '{"partner_id": "P1", "period": "2027-Q1", "region": "EMEA"}\n'
                                     '{"partner_id": "P3", "period": "2027-Q1", "region": "APAC"}\n')
    pl.read_csv(deals_run / "deals.csv", infer_schema=False).write_parquet(deals_run / "deals.parquet")
    for facts, deals, out in (("facts.csv", "deals.csv", "csv"), ("facts.jsonl", "deals.parquet", "jsonl")):
        done = run_cli(deals_run, "run", "--programs", "programs", "--facts", facts, "--transactions",
                       f"deals={deals}", "--period", "2027-Q1", "--out", out)
        assert done.returncode == 0, done.stderr
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (deals_run / "csv" / name).read_bytes() == (deals_run / "jsonl" / name).read_bytes()
