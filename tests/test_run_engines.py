"""The two engines of a run to files — by columns and per record — write the same bytes; the pipeline's parts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import incentives
from incentives.columnar.facts import read_csv_blocks
from incentives.inputs import PARTNER_ID
from incentives.runs.by_columns import NOT_BY_COLUMNS, UNROUTED_CLAIMS
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
    # every record of the quarter is computed by columns, for every program: a record goes per record when one
    # program needs it, and before a quotient's exponent in results.jsonl was followed by columns
    # (deal_registration_bonus's win_rate, networking_role_tier's value_index) 291 of the 300 did
    assert columnar.records == 300 and columnar.per_record == {}


def test_the_benchmark_programs_are_the_same_by_columns_and_per_record(tmp_path):
    from benchmarks import synth

    facts = synth.write_facts_csv(tmp_path / "facts.csv", 3_000, 2027)
    claims = synth.write_claims_csv(tmp_path / "claims.csv", 3_000, 2027)
    engine = incentives.Engine(incentives.load_programs(ROOT / "benchmarks" / "programs"))
    summaries = _both(engine, tmp_path, facts, claims)
    assert summaries["columnar"].totals == summaries["per-record"].totals
    # the claimed records are computed by columns too (their claims paid there, the lines byte-identical): only
    # the few records with a value the columns leave to the per-record path (a missing fact...) are not
    assert set(summaries["columnar"].per_record) == {NOT_BY_COLUMNS}
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
