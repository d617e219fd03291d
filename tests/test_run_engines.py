"""The two engines of a run to files — by columns and per record — write the same bytes; the pipeline's parts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import incentives
from incentives.columnar.facts import read_csv_blocks
from incentives.inputs import PARTNER_ID, read_facts
from incentives.runs.by_columns import ALONE, NOT_BY_COLUMNS, UNROUTED_CLAIMS
from incentives.runs.order import numbered_in_partner_order, partner_blocks

ROOT = Path(__file__).resolve().parent.parent


def _files(folder: Path) -> dict[str, bytes]:
    out = {name: (folder / name).read_bytes() for name in ("payouts.csv", "lines.csv", "results.jsonl")}
    head = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    out["run.json"] = (folder / "run.json").read_bytes().replace(head["run_id"].encode(), b"RUN").replace(
        head["created_at"].encode(), b"TIME")
    return out


def _both(engine: incentives.Engine, tmp_path: Path, facts: Path, claims: Path | None = None):
    summaries = {}
    for name in ("per-record", "columnar"):
        summaries[name] = engine.run_to(tmp_path / name, facts, claims if claims is not None else (),
                                        facts_sha256="f" * 64, engine=name)
    assert _files(tmp_path / "columnar") == _files(tmp_path / "per-record")
    return summaries


def test_the_example_quarter_is_the_same_by_columns_and_per_record(tmp_path):
    engine = incentives.Engine(ROOT / "programs")
    summaries = _both(engine, tmp_path, ROOT / "examples" / "facts_2027Q1.csv",
                      ROOT / "examples" / "claims_2027Q1.csv")
    assert summaries["per-record"].per_record == {}
    columnar = summaries["columnar"]
    # every record of the quarter is computed by columns, for every program: before a quotient's exponent in
    # results.jsonl was followed by columns (deal_registration_bonus's win_rate, networking_role_tier's
    # value_index), 291 of the 300 records went per record, whole or for those programs
    assert columnar.records == 300 and columnar.per_record == {}


def test_the_benchmark_programs_are_the_same_by_columns_and_per_record(tmp_path):
    from benchmarks import synth

    facts = synth.write_facts_csv(tmp_path / "facts.csv", 3_000, 2027)
    claims = synth.write_claims_csv(tmp_path / "claims.csv", 3_000, 2027)
    engine = incentives.Engine(incentives.load_programs(ROOT / "benchmarks" / "programs"))
    summaries = _both(engine, tmp_path, facts, claims)
    assert summaries["columnar"].totals == summaries["per-record"].totals
    # the claimed records are computed by columns too (their claims paid there, the lines byte-identical): only
    # the goal program of the few records with a value the columns leave to the per-record path (a missing
    # quota) is not; the records' other two programs are
    assert set(summaries["columnar"].per_record) == {ALONE.format(program="sales_goals", why=NOT_BY_COLUMNS)}
    assert sum(summaries["columnar"].per_record.values()) < 3_000 // 100
    assert (tmp_path / "columnar" / "lines.csv").read_text(encoding="utf-8").count(",mdf_claim,claim:") > 500


def test_a_claim_naming_no_mdf_program_sends_its_record_per_record(tmp_path):
    engine = incentives.Engine(ROOT / "programs")
    claims = (ROOT / "examples" / "claims_2027Q1.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    # the first claim names the tier program (program_id is the last column): per record its result reports it
    assert claims[0].endswith(",program_id\n") and claims[1].startswith("C27Q1-0001,P0001,")
    claims[1] = claims[1].replace(",co_marketing_mdf\n", ",networking_role_tier\n")
    named = tmp_path / "claims.csv"
    named.write_text("".join(claims), encoding="utf-8")
    summaries = _both(engine, tmp_path, ROOT / "examples" / "facts_2027Q1.csv", named)
    assert summaries["columnar"].per_record[UNROUTED_CLAIMS] == 1
    results = (tmp_path / "columnar" / "results.jsonl").read_text(encoding="utf-8")
    assert "claims C27Q1-0001 name 'networking_role_tier', a tier program" in results


def test_a_shuffled_file_is_read_by_columns_in_partner_order_in_blocks_of_whole_partners(tmp_path):
    rng = random.Random(7)
    rows = [(f"P{number % 37:03d}", f"2027-Q{1 + number % 2}", number) for number in range(200)]
    rng.shuffle(rows)
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue\n" + "".join(f"{p},{q},{r}\n" for p, q, r in rows),
                     encoding="utf-8")
    blocks = list(read_csv_blocks(facts, rows_per_block=10, in_partner_order=True))
    partners = [block.frame[PARTNER_ID].to_list() for block in blocks]
    flat = [partner for block in partners for partner in block]
    assert flat == sorted(flat)  # in partner order
    assert all(block[-1] != after[0] for block, after in zip(partners, partners[1:]))  # never cut inside one
    assert all(len(block) >= 10 for block in partners[:-1])
    # one partner's rows keep the file's order: their lines ascend
    for block in blocks:
        for partner in set(block.frame[PARTNER_ID]):
            lines = block.frame.filter(block.frame[PARTNER_ID] == partner)["line"].to_list()
            assert lines == sorted(lines)
    # the per-record path orders the same file the same way
    numbered = list(numbered_in_partner_order(facts))
    assert [row.partner_id for _, _, row in numbered] == flat
    assert [len(block) for block in partner_blocks(numbered, size=10)] == [len(block) for block in partners]


def test_a_repeated_record_with_claims_is_the_same_by_columns_and_per_record(tmp_path):
    engine = incentives.Engine(ROOT / "programs")
    facts = (ROOT / "examples" / "facts_2027Q1.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    # P0004 (three claims paid) twice: the run rules make both records errors, whatever the columns computed
    assert facts[4].startswith("P0004,2027-Q1,")
    repeated = tmp_path / "facts.csv"
    repeated.write_text("".join(facts + [facts[4]]), encoding="utf-8")
    _both(engine, tmp_path, repeated, ROOT / "examples" / "claims_2027Q1.csv")


@pytest.mark.parametrize("engine_name", ["columnar", "per-record"])
def test_an_unknown_engine_is_refused_and_a_known_one_runs(tmp_path, engine_name):
    engine = incentives.Engine(ROOT / "programs")
    with pytest.raises(ValueError, match="engine must be one of columnar, per-record, not 'fast'"):
        engine.run_to(tmp_path / "out", ROOT / "examples" / "facts_2027Q1.csv", engine="fast")
    summary = engine.run_to(tmp_path / "out", ROOT / "examples" / "facts_2027Q1.csv", engine=engine_name)
    assert summary.records == 300


TIER = """\
id: t
name: Tier
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
tiers:
  qualify_on: revenue
  levels:
    - {name: Base, from: 0, rate: 1%}
"""

GOAL_WITH_A_PRORATION_DEFAULT = """\
id: g
name: Goal
kind: goal
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
prorate_by: joined_on
defaults: {joined_on: 2026-01-01}
goals:
  targets:
    - {id: revenue, metric: revenue, target: quota, weight: 100%}
  payout:
    on: incentive
    curve:
      - {attainment: 0%, factor: 0%}
      - {attainment: 100%, factor: 100%}
"""


def test_a_program_the_columns_refuse_goes_per_record_alone(tmp_path):
    # the goal program has a date as a default (for its prorate_by fact), which the columns refuse: it is
    # computed per record, the tier program by columns, for every record
    programs = tmp_path / "programs"
    programs.mkdir()
    (programs / "t.yaml").write_text(TIER, encoding="utf-8")
    (programs / "g.yaml").write_text(GOAL_WITH_A_PRORATION_DEFAULT, encoding="utf-8")
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue,quota,incentive\nP1,2027-Q1,800,1000,500\n"
                     "P2,2027-Q1,1500.50,1000,100\n", encoding="utf-8")
    summaries = _both(incentives.Engine(programs), tmp_path, facts)
    refusal = ALONE.format(program="g v1",
                           why="the default of joined_on is neither a number, a text nor a boolean (at offset 0)")
    assert summaries["columnar"].per_record == {refusal: 2}
    payouts = (tmp_path / "columnar" / "payouts.csv").read_text(encoding="utf-8").splitlines()
    # P1: tier 800 × 1% = 8.00; goal: attainment 800 / 1000 = 80%, factor 80% on the linear curve,
    # 500 × 0.8 = 400.00; P2: tier 1500.50 × 1% = 15.005 → 15.01 (half up); goal capped at the curve's top:
    # 150.05% → factor 100%, 100 × 1 = 100.00
    assert payouts[1:] == ["P1,2027-Q1,g,1,ok,,0.800000,400.00,USD", "P1,2027-Q1,t,1,ok,Base,,8.00,USD",
                           "P2,2027-Q1,g,1,ok,,1.500500,100.00,USD", "P2,2027-Q1,t,1,ok,Base,,15.01,USD"]


def test_evaluating_some_programs_gives_their_results_as_among_all():
    # the per-record step a columnar run takes for the programs it left: each program's result as it is among
    # all of them (a program's used programs computed too, left out), and only those
    engine = incentives.Engine(ROOT / "programs")
    rows = list(read_facts(ROOT / "examples" / "facts_2027Q1.csv"))[:40]
    program_ids = engine.program_ids
    chooser = random.Random(7)
    for row in rows:
        everything = engine.evaluate_facts(row.partner_id, row.period, row.facts, list(row.problems), [])
        some = chooser.sample(program_ids, chooser.randint(1, len(program_ids)))
        alone = engine.evaluate_facts(row.partner_id, row.period, row.facts, list(row.problems), [], only=some)
        assert list(alone) == [program_id for program_id in everything if program_id in some]
        for program_id, result in alone.items():
            assert result == everything[program_id], (row.partner_id, program_id)
