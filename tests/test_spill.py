"""Fact blocks kept on disk between a run's two passes (incentives.columnar.spill), and the run that keeps them."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import incentives
from incentives.columnar import facts as facts_by_columns
from incentives.columnar.facts import read_csv_blocks
from incentives.columnar.spill import SpilledBlocks
from incentives.errors import InputError
from incentives.runs import pipeline

ROOT = Path(__file__).resolve().parent.parent


def test_blocks_read_back_equal_the_blocks_written_and_their_files_go(tmp_path):
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,revenue,flag,joined,region,note\n"
                     "P3,2027-Q1,1234.5,true,2026-01-05,EMEA,Zürich\n"
                     "P1,2027-Q1, 7 ,FALSE,2026-02-28,  APAC ,\n"
                     "P2,2027-Q1,1e5,,2026-02-30,x,\n"         # per record: an exponent, an invalid date
                     "P1,2027-Q2,-.25,True,,a,b\n"
                     "P4,2027-Q1,,,,,\n", encoding="utf-8")
    spill = SpilledBlocks(tmp_path / "spill")
    (tmp_path / "spill").mkdir()
    written = list(spill.write_through(read_csv_blocks(facts, in_partner_order=True, rows_per_block=2)))
    # whole partners: P1's two rows, then P2 and P3, then P4
    assert [block.frame["partner_id"].to_list() for block in written] == [["P1", "P1"], ["P2", "P3"], ["P4"]]
    assert len(list((tmp_path / "spill").iterdir())) == 3 * 3  # frame, decimals and cells of each
    read = list(spill.read_back())
    assert len(read) == 3
    for before, after in zip(written, read):
        assert_frame_equal(after.frame, before.frame)
        assert_frame_equal(after.cells, before.cells)
        assert after.columns == before.columns
        assert list(after.decimals) == list(before.decimals)
        for name, series in before.decimals.items():
            assert after.decimals[name].to_list() == series.to_list()
            assert after.decimals[name].dtype == series.dtype == pl.UInt8
    assert list(written[0].decimals) == ["revenue"]
    assert written[0].decimals["revenue"].to_list() == [0, 2]  # 7 and -.25 as written
    # a column of empty cells only is a number column (the first kind, for a tie)
    assert list(written[2].decimals) == ["revenue", "flag", "joined", "region", "note"]
    assert written[1].frame["per_record"].to_list() == [True, False]
    assert list((tmp_path / "spill").iterdir()) == []
    assert list(spill.read_back()) == []  # read once


def test_a_block_without_numbers_reads_back_without_decimals(tmp_path):
    facts = tmp_path / "facts.csv"
    facts.write_text("partner_id,period,region\nP1,2027-Q1,EMEA\n", encoding="utf-8")
    spill = SpilledBlocks(tmp_path)
    [before] = spill.write_through(read_csv_blocks(facts))
    [after] = spill.read_back()
    assert before.decimals == after.decimals == {}
    assert_frame_equal(after.frame, before.frame)


def _counting_reads(monkeypatch) -> list[Path]:
    opened: list[Path] = []
    real = facts_by_columns.csv_fact_cells

    def counting(path):
        opened.append(Path(path))
        return real(path)

    monkeypatch.setattr(facts_by_columns, "csv_fact_cells", counting)
    return opened


def test_a_run_with_a_budget_reads_its_facts_file_once_by_columns_and_twice_per_record(tmp_path, monkeypatch):
    from benchmarks import synth

    facts = synth.write_facts_csv(tmp_path / "facts.csv", 400, 2027)
    claims = synth.write_claims_csv(tmp_path / "claims.csv", 400, 2027)
    engine = incentives.Engine(incentives.load_programs(ROOT / "benchmarks" / "programs"))
    assert pipeline.BudgetPlan(engine)  # the benchmark programs have a budget: two passes
    opened = _counting_reads(monkeypatch)
    engine.run_to(tmp_path / "columnar", facts, claims, facts_sha256="f" * 64, engine="columnar")
    # the columns' description of the file is read once more (its header: fact_columns), not its blocks
    assert opened == [facts]
    engine.run_to(tmp_path / "per-record", facts, claims, facts_sha256="f" * 64, engine="per-record")
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (tmp_path / "columnar" / name).read_bytes() == (tmp_path / "per-record" / name).read_bytes()
    # the spilled blocks went with the scratch folder, before the switch
    assert sorted(path.name for path in (tmp_path / "columnar").iterdir()) == ["lines.csv", "payouts.csv",
                                                                                "results.jsonl", "run.json"]


def test_a_bad_claims_file_stops_the_run_while_the_facts_are_read_and_leaves_nothing(tmp_path):
    from benchmarks import synth

    facts = synth.write_facts_csv(tmp_path / "facts.csv", 400, 2027)
    claims = tmp_path / "claims.csv"
    claims.write_text("claim_id,partner_id\nC1,P1\n", encoding="utf-8")  # columns missing
    engine = incentives.Engine(incentives.load_programs(ROOT / "benchmarks" / "programs"))
    with pytest.raises(InputError, match="claims.csv"):
        engine.run_to(tmp_path / "out", facts, claims, facts_sha256="f" * 64, engine="columnar")
    assert not (tmp_path / "out").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == [".out.lock", "claims.csv", "facts.csv"]
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("incentives-reader")]


def test_a_budget_on_the_mdf_program_scales_the_claims_paid_the_same_by_columns_and_per_record(tmp_path):
    from benchmarks import synth

    facts = synth.write_facts_csv(tmp_path / "facts.csv", 300, 2027)
    claims = synth.write_claims_csv(tmp_path / "claims.csv", 300, 2027)
    programs = tmp_path / "programs"
    programs.mkdir()
    for path in (ROOT / "benchmarks" / "programs").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "co_marketing.yaml":
            text += "budget: 50000\n"  # the claims paid total 87,149.74
        (programs / path.name).write_text(text, encoding="utf-8")
    engine = incentives.Engine(incentives.load_programs(programs))
    summaries = {name: engine.run_to(tmp_path / name, facts, claims, facts_sha256="f" * 64, engine=name)
                 for name in ("columnar", "per-record")}
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (tmp_path / "columnar" / name).read_bytes() == (tmp_path / "per-record" / name).read_bytes()
    # the budget binds: the first pass (over the spilled blocks' records) saw the claims
    assert summaries["columnar"].totals["co_marketing"] == Decimal("50000.00")
    assert any("co_marketing" in note and "budget" in note for note in summaries["columnar"].notes)


def test_a_full_disk_while_the_blocks_are_kept_stops_the_run_and_leaves_the_folder_as_it_was(tmp_path):
    import resource
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    command = [sys.executable, "-m", "incentives", "run", "--programs", str(ROOT / "programs"), "--facts",
               str(ROOT / "examples" / "facts_2027Q1.csv"), "--claims", str(ROOT / "examples" / "claims_2027Q1.csv"),
               "--out", str(out)]
    assert subprocess.run(command, capture_output=True).returncode == 0  # a run to keep
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def small_files() -> None:  # the first block's spilled cells are larger than this: the first pass fails
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))

    failed = subprocess.run([*command, "--force"], capture_output=True, text=True, preexec_fn=small_files)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"incentives run: cannot write to {out}: File too large"), failed.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [".out.lock", "out"]


def test_numbers_ended_from_a_kept_frame_are_those_computed_afresh(tmp_path):
    """The fast path of a run's second pass over its budgets (ProgramByColumns.finish of numbers a first pass
    collected and kept on disk) pinned to the general one (ProgramByColumns.evaluate), with and without the
    budget's line, and a kept state finished twice is left as it was."""
    from benchmarks import synth
    from incentives.columnar.program import ProgramByColumns
    from incentives.compiler import CompiledProgram
    from incentives.kinds.steps import BudgetScale
    from incentives.kinds.steps_by_columns import BUDGET_TOTAL, BudgetByColumns
    from incentives.loading import load_programs
    from incentives.periods import parse_period
    from incentives.rules.registry import make_backend

    [goal] = [loaded for loaded in load_programs(ROOT / "benchmarks" / "programs")
              if loaded.program.id == "sales_goals"]
    program = ProgramByColumns(CompiledProgram(goal, make_backend("compiled"), "test"))
    facts = synth.write_facts_csv(tmp_path / "facts.csv", 300, 2027)
    period = parse_period("2027-Q1")
    block = next(read_csv_blocks(facts, in_partner_order=True))
    block = block.rows(block.frame["period"] == "2027-Q1")
    # a budget that halves the first ten partners' totals
    partners = block.frame["partner_id"].head(10)
    first = program.evaluate(block, period, texts=False)
    totals = first.filter(pl.col("partner_id").is_in(partners.implode()))["total"]
    budget = BudgetByColumns(BudgetScale.of(Decimal("1000"), Decimal("2000"), 2),
                             pl.DataFrame({"partner_id": partners, BUDGET_TOTAL: totals // 2}))

    prepared = program.prepare(block, period)
    collected = prepared.frame.collect()
    collected.write_ipc(tmp_path / "numbers.arrow")
    kept = prepared.over(pl.scan_ipc(tmp_path / "numbers.arrow"))
    assert_frame_equal(program.finish(prepared.over(collected.lazy()), texts=False), first)
    for budget_given in (None, budget, None):
        ended = program.finish(kept, budget=budget_given)
        assert_frame_equal(ended, program.evaluate(block, period, budget=budget_given))
    # the budget's line closes the results it scales, and only theirs
    scaled = ended.join(program.finish(kept, budget=budget), on="line", suffix=":budgeted")
    changed = scaled.filter(pl.col("total") != pl.col("total:budgeted"))["partner_id"]
    assert set(changed) <= set(partners) and changed.len() > 0
    budgeted_lines = scaled.filter(pl.col("partner_id").is_in(changed.implode()))["line_rows:budgeted"]
    assert all(",budget,budget," in text for text in budgeted_lines)


def test_a_run_over_its_budgets_computes_the_kept_numbers_once_and_removes_them(tmp_path, monkeypatch):
    from benchmarks import synth
    from incentives.columnar.program import ProgramByColumns

    facts = synth.write_facts_csv(tmp_path / "facts.csv", 400, 2027)
    claims = synth.write_claims_csv(tmp_path / "claims.csv", 400, 2027)
    engine = incentives.Engine(incentives.load_programs(ROOT / "benchmarks" / "programs"))
    prepared: list[str] = []
    real_prepare = ProgramByColumns.prepare

    def counting(self, *args, **kwargs):
        prepared.append(self._compiled.id)
        return real_prepare(self, *args, **kwargs)

    monkeypatch.setattr(ProgramByColumns, "prepare", counting)
    monkeypatch.setattr(pipeline, "ROWS_PER_BLOCK", 150)  # several blocks, each with its kept numbers
    engine.run_to(tmp_path / "columnar", facts, claims, facts_sha256="f" * 64, engine="columnar")
    blocks_and_labels = prepared.count("co_marketing")  # computed in the second pass only, once a block and label
    assert blocks_and_labels > 2
    # the budgeted goal program: prepared in the first pass, then ended from what it kept; the others once each
    assert prepared.count("sales_goals") == prepared.count("partner_tier") == blocks_and_labels
    engine.run_to(tmp_path / "per-record", facts, claims, facts_sha256="f" * 64, engine="per-record")
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (tmp_path / "columnar" / name).read_bytes() == (tmp_path / "per-record" / name).read_bytes()
    assert sorted(path.name for path in (tmp_path / "columnar").iterdir()) == ["lines.csv", "payouts.csv",
                                                                                "results.jsonl", "run.json"]
