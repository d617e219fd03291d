"""results.jsonl and run.json: the results one compact object a line, the run's metadata beside them;
``read_run`` reads a folder back into the run that was written, and the folder guard knows the four files
(and a folder of the previous version, three files with the results inside run.json)."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal as D
from pathlib import Path

import pytest

import incentives
from incentives.inputs import read_claims, read_facts
from incentives.output.folder import OutputExistsError
from test_streaming import FACT_COLUMNS, GOALS, LATER, MDF, TIER, claims_for, partners, write_csv

CLAIM_COLUMNS = ("claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on",
                 "preapproved")


@pytest.fixture
def sample(engine_for, tmp_path):
    """An engine, a facts and a claims file, and their run in memory: ok, ineligible and error results,
    duplicates, claims without a record, a budget and MDF funds."""
    engine = engine_for(TIER, GOALS, MDF, LATER)
    records = partners(120)
    facts = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    claims = write_csv(tmp_path / "claims.csv", CLAIM_COLUMNS, claims_for(records))
    run = engine.run(read_facts(facts), read_claims(claims), facts_sha256="f" * 64)
    return engine, facts, claims, run


def test_a_written_run_reads_back_equal(sample, tmp_path):
    _, _, _, run = sample
    # what the sample must hold for the comparison to mean something
    assert {result.status for result in run.results} == {"ok", "ineligible", "error"}
    assert any(line.kind == "budget" for result in run.results for line in result.lines)
    assert any(line.kind == "mdf_claim" for result in run.results for line in result.lines)
    assert any(result.details.get("rejected_claims") and "accrual_inputs" in result.details
               for result in run.results)  # MDF details: typed back from JSON text
    assert any(result.details.get("goals") for result in run.results)
    assert any(any("duplicate record" in error for error in result.errors) for result in run.results)
    assert any(result.reasons for result in run.results) and run.notes
    run.write(tmp_path / "out")
    back = incentives.read_run(tmp_path / "out")
    assert back == run
    assert (back.results, back.totals, back.counts, back.notes) == (run.results, run.totals, run.counts, run.notes)


def test_results_jsonl_holds_one_compact_object_a_line_and_run_json_the_rest(engine_for, tmp_path):
    engine = engine_for(TIER)
    records = [{"partner_id": "P2", "period": "2027-Q1", "status": "active", "revenue": "60000", "certs": "2"},
               {"partner_id": "P1", "period": "2027-Q1", "status": "suspended", "revenue": "1", "certs": "0"},
               {"partner_id": "P3", "period": "2027-Q1", "status": "active", "revenue": "x", "certs": "0"}]
    run = engine.run(records)
    run.write(tmp_path / "out")
    lines = (tmp_path / "out" / "results.jsonl").read_bytes().split(b"\n")
    assert lines.pop() == b""  # every line ends with \n, the last one too
    assert [json.loads(line)["partner_id"] for line in lines] == ["P1", "P2", "P3"]  # output order
    assert [json.loads(line)["status"] for line in lines] == ["ineligible", "ok", "error"]
    assert lines == [result.model_dump_json().encode() for result in run.results]  # compact: no indent
    assert b"\n" not in b"".join(lines) and not lines[0].startswith(b"{\n")
    written = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert list(written) == ["run_id", "created_at", "engine_version", "programs", "facts_sha256", "claims_sha256",
                             "measures", "results_file", "results_count", "totals", "counts", "notes"]
    assert written["measures"] == []  # a run of facts alone read no measures file
    assert (written["results_file"], written["results_count"]) == ("results.jsonl", 3)
    assert written["run_id"] == run.run_id and written["programs"][0]["id"] == "partner_tier"
    # the one ok result: Gold, 60,000.00 × 3.5% = 2,100.00, the program's total
    assert written["totals"] == {"partner_tier": "2100.00"}
    assert written["counts"] == {"partner_tier": {"ok": 1, "ineligible": 1, "error": 1}}


def test_an_empty_run_writes_an_empty_results_file(engine_for, tmp_path):
    run = engine_for(TIER).run([])
    run.write(tmp_path / "out")
    assert (tmp_path / "out" / "results.jsonl").read_bytes() == b""
    assert json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))["results_count"] == 0
    assert incentives.read_run(tmp_path / "out") == run


def test_a_streamed_run_reads_back_as_the_run_in_memory(sample, tmp_path):
    engine, facts, claims, run = sample
    engine.run_to(tmp_path / "stream", facts, claims, facts_sha256="f" * 64)
    streamed = incentives.read_run(tmp_path / "stream")
    assert streamed.run_id != run.run_id
    assert streamed.model_copy(update={"run_id": run.run_id, "created_at": run.created_at}) == run


def test_a_results_file_of_another_length_than_run_json_says_is_refused(sample, tmp_path):
    run = sample[3]
    run.write(tmp_path / "out")
    results = tmp_path / "out" / "results.jsonl"
    results.write_bytes(b"".join(results.read_bytes().splitlines(keepends=True)[:-1]))
    with pytest.raises(ValueError, match=f"holds {len(run.results) - 1} results, run.json says {len(run.results)}"):
        incentives.read_run(tmp_path / "out")


def test_a_run_json_naming_no_results_file_is_not_a_run(tmp_path):
    (tmp_path / "run.json").write_text('{"run_id": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="names no results file"):
        incentives.read_run(tmp_path)


def test_results_jsonl_without_run_json_is_replaced_only_when_forced(sample, tmp_path):
    run = sample[3]
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="holds results.jsonl but no run.json"):
        run.write(out)
    run.write(out, force=True)
    assert incentives.read_run(out) == run
    (out / "run.json").unlink()
    with pytest.raises(OutputExistsError, match="holds payouts.csv, lines.csv and results.jsonl but no run.json"):
        run.write(out)


# --- a folder written by the previous version: three files, the results inside run.json ---------


def _previous_version(run: incentives.PayoutRun, folder: Path) -> None:
    """``run``'s folder as the version before results.jsonl wrote it."""
    run.write(folder)
    (folder / "results.jsonl").unlink()
    (folder / "run.json").write_text(run.model_dump_json(indent=1) + "\n", encoding="utf-8")


def test_a_folder_of_the_previous_version_reads_back(sample, tmp_path):
    run = sample[3]
    _previous_version(run, tmp_path / "old")
    assert sorted(path.name for path in (tmp_path / "old").iterdir()) == ["lines.csv", "payouts.csv", "run.json"]
    assert incentives.read_run(tmp_path / "old") == run


def test_a_folder_of_the_previous_version_is_a_runs_folder_for_the_guard(sample, engine_for, tmp_path):
    engine, facts, claims, run = sample
    old = tmp_path / "old"
    _previous_version(run, old)
    # the same inputs and results: replaced by the new version's four files, in memory or streamed
    again = engine.run(read_facts(facts), read_claims(claims), facts_sha256="f" * 64)
    again.write(old)
    assert incentives.read_run(old) == again
    _previous_version(run, old)
    engine.run_to(old, facts, claims, facts_sha256="f" * 64)
    assert (old / "results.jsonl").is_file() and incentives.read_run(old).results == run.results
    # other inputs: another run, replaced only when forced
    _previous_version(run, old)
    other = engine.run(read_facts(facts), read_claims(claims), facts_sha256="e" * 64)
    with pytest.raises(OutputExistsError, match="holds the output of a different run"):
        other.write(old)
    assert "results" in json.loads((old / "run.json").read_text(encoding="utf-8"))  # left as it was
    other.write(old, force=True)
    assert incentives.read_run(old) == other


def test_the_same_inputs_with_other_results_in_an_old_folder_are_another_run(engine_for, tmp_path):
    # records given through the API have no sha256: only the results tell two such runs apart
    engine = engine_for(TIER)
    record = {"partner_id": "P1", "period": "2027-Q1", "status": "active", "revenue": "60000", "certs": "2"}
    first = engine.run([record])
    _previous_version(first, tmp_path / "old")
    shutil.copytree(tmp_path / "old", tmp_path / "kept")
    other = engine.run([dict(record, revenue="60001")])
    # Gold: 60,000 × 3.5% = 2,100.00 against 60,001 × 3.5% = 2,100.035, rounded half up to 2,100.04
    assert (first.results[0].total, other.results[0].total) == (D("2100.00"), D("2100.04"))
    with pytest.raises(OutputExistsError, match="holds the output of a different run"):
        other.write(tmp_path / "old")
    assert {path.name: path.read_bytes() for path in (tmp_path / "old").iterdir()} == {
        path.name: path.read_bytes() for path in (tmp_path / "kept").iterdir()}
    more = engine.run([record, dict(record, partner_id="P2")])  # the old results, and one more
    with pytest.raises(OutputExistsError, match="holds the output of a different run"):
        more.write(tmp_path / "old")
    engine.run([record]).write(tmp_path / "old")  # the same results: the same run, written again
    assert incentives.read_run(tmp_path / "old").results == first.results
    assert json.loads((tmp_path / "old" / "run.json").read_text(encoding="utf-8"))["totals"] == {
        "partner_tier": "2100.00"}
