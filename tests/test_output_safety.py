"""Output safety: payout files are written atomically, and another run's folder is never overwritten silently.

The atomicity test kills real runs with SIGKILL at random moments while they
write (a child process running ``Engine.run(...).write(out)`` over a few thousand
records) and then checks the folder: it holds one run's files, complete and
byte for byte those of a full run, or (before a first run) nothing. The kill at
every step of the commit, races, full disks and folder rules are in
``test_output_folder.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

import incentives
from conftest import program_text
from incentives.inputs import read_facts
from incentives.output.folder import OUTPUT_FILES, OutputExistsError

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

PROGRAM = program_text("""
    tiers:
      qualify_on: revenue
      mode: incremental
      levels:
        - {name: Registered, from: 0,       rate: 1%}
        - {name: Silver,     from: 100000,  rate: 2%}
        - {name: Gold,       from: 500000,  rate: 3.5%}
        - {name: Platinum,   from: 2000000, rate: 5%}
    bonuses:
      - {id: nps_kicker, when: "nps >= 50", multiplier: 110%}
      - {id: new_logo,   when: "new_logos >= 1", amount: "500 * new_logos"}
    cap: 150000
    """, id="partner_tier")
RECORDS = 1200

CHILD = """
import hashlib, sys
import incentives
from incentives.inputs import read_facts

programs, facts, out, mode = sys.argv[1:5]
engine = incentives.Engine(incentives.load_programs(programs))
with open(facts, "rb") as handle:
    sha256 = hashlib.sha256(handle.read()).hexdigest()
if mode == "stream":  # the streaming form, with worker processes even for a small file
    print("ready", flush=True)
    engine.run_to(out, facts, facts_sha256=sha256, force=True)
    print("done", flush=True)
    sys.exit()
run = engine.run(read_facts(facts), facts_sha256=sha256)
print("ready", flush=True)
if mode == "loop":
    while True:
        incentives.write_run(run, out)
incentives.write_run(run, out, force=True)
print("done", flush=True)
"""


def _facts(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    rows = ["partner_id,period,revenue,nps,new_logos"]
    rows += [f"P{index:05d},2027-Q1,{rng.randint(0, 3_000_000)}.{rng.randint(0, 99):02d},{rng.randint(0, 100)},"
             f"{rng.randint(0, 3)}" for index in range(RECORDS)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _run(engine: incentives.Engine, facts: Path) -> incentives.PayoutRun:
    return engine.run(read_facts(facts), facts_sha256=hashlib.sha256(facts.read_bytes()).hexdigest())


def _stable(run_json: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in run_json.items() if key not in ("run_id", "created_at")}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Programs, two facts files (runs A and B) and the files of a full run of each."""
    root = tmp_path_factory.mktemp("safety")
    programs = root / "programs"
    programs.mkdir()
    (programs / "partner_tier.yaml").write_text(PROGRAM, encoding="utf-8")
    child = root / "child.py"
    child.write_text(CHILD, encoding="utf-8")
    engine = incentives.Engine(incentives.load_programs(programs))
    expected = {}
    for name, seed in (("A", 1), ("B", 2)):
        facts = _facts(root / f"facts_{name}.csv", seed)
        run = _run(engine, facts)
        folder = root / f"reference_{name}"
        started = time.perf_counter()
        incentives.write_run(run, folder)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        engine.run_to(root / f"streamed_{name}", facts, facts_sha256=run.facts_sha256)
        stream_seconds = time.perf_counter() - started
        expected[name] = {
            "facts": facts, "run": run, "write_seconds": elapsed, "stream_seconds": stream_seconds,
            "payouts.csv": (folder / "payouts.csv").read_bytes(), "lines.csv": (folder / "lines.csv").read_bytes(),
            "results.jsonl": (folder / "results.jsonl").read_bytes(),
            "run.json": _stable(json.loads((folder / "run.json").read_text(encoding="utf-8"))),
        }
    return {"root": root, "programs": programs, "child": child, "engine": engine, "expected": expected}


def _which_run(setup: dict[str, Any], name: str, data: bytes) -> str:
    """The run ('A' or 'B') whose complete file ``name`` is ``data``; fails on anything else."""
    for run in ("A", "B"):
        expected = setup["expected"][run][name]
        if name == "run.json":
            if _stable(json.loads(data.decode("utf-8"))) == expected:
                return run
        elif data == expected:
            return run
    if name.endswith(".csv"):
        list(csv.reader(io.StringIO(data.decode("utf-8"))))  # at least say whether it even parses
    raise AssertionError(f"{name} is neither run's complete file ({len(data)} bytes)")


def _check_folder(setup: dict[str, Any], folder: Path, allowed: set[str]) -> dict[str, str]:
    """Which run each output file in ``folder`` is of: one run's files, or nothing (no folder yet)."""
    if not folder.exists():
        return {}
    present = {}
    for entry in folder.iterdir():
        assert entry.name in OUTPUT_FILES, entry.name  # temporaries live beside the folder, never in it
        present[entry.name] = _which_run(setup, entry.name, entry.read_bytes())
    assert set(present.values()) <= allowed, present
    assert set(present) == set(OUTPUT_FILES) and len(set(present.values())) == 1, present
    return present


def _watch(setup: dict[str, Any], folder: Path, until: float) -> int:
    """Read the output files again and again while a run rewrites them: a reader never sees half a file."""
    reads = 0
    while time.perf_counter() < until:
        for name in OUTPUT_FILES:
            try:
                data = (folder / name).read_bytes()
            except FileNotFoundError:  # not written yet
                continue
            reads += 1
            if name == "run.json":
                assert json.loads(data.decode("utf-8"))["results_count"], "run.json without results"
            else:
                assert data == setup["expected"]["A"][name], f"a reader saw {len(data)} bytes of {name}"
    return reads


def _kill_later(setup: dict[str, Any], process: subprocess.Popen, mode: str, delay: float,
                log: dict[str, Any]) -> None:
    assert process.stdout is not None
    try:
        log["ready"] = process.stdout.readline().strip()
        if mode == "loop":
            log["reads"] = _watch(setup, log["folder"], time.perf_counter() + delay)
        else:
            time.sleep(delay)
    except AssertionError as error:
        log["failure"] = str(error)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and any worker processes it started
        log["rest"] = process.stdout.read()
        process.wait()


def _trials(setup: dict[str, Any], plan: list[tuple[str, Path, str, float]]) -> list[dict[str, Any]]:
    """Start every child at once; each is killed ``delay`` seconds after it has computed its run."""
    logs: list[dict[str, Any]] = []
    threads = []
    for mode, folder, facts, delay in plan:
        process = subprocess.Popen(
            [sys.executable, str(setup["child"]), str(setup["programs"]), facts, str(folder), mode],
            stdout=subprocess.PIPE, text=True, cwd=setup["root"], start_new_session=True)
        log: dict[str, Any] = {"delay": delay, "folder": folder}
        logs.append(log)
        threads.append(threading.Thread(target=_kill_later, args=(setup, process, mode, delay, log)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=120)
    for log in logs:
        assert log["ready"] == "ready" and "failure" not in log, log
    return logs


def test_a_run_killed_while_writing_never_leaves_a_half_written_file(setup: dict[str, Any]) -> None:
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    write_seconds = setup["expected"]["A"]["write_seconds"]
    root = setup["root"] / f"killed_{seed}"
    plan = []
    for trial in range(2):  # rewriting the same run over and over, read meanwhile, killed anywhere in the cycle
        plan.append(("loop", root / f"loop_{trial}", str(setup["expected"]["A"]["facts"]),
                     rng.uniform(1, 1.5)))
    for trial in range(4):  # replacing run B with run A (force), killed before, during or after
        folder = root / f"force_{trial}"
        incentives.write_run(setup["expected"]["B"]["run"], folder)
        plan.append(("force", folder, str(setup["expected"]["A"]["facts"]), rng.uniform(0, 2 * write_seconds)))
    for trial in range(2):  # the streaming run (Engine.run_to) replacing run B, killed at any moment
        folder = root / f"stream_{trial}"
        incentives.write_run(setup["expected"]["B"]["run"], folder)
        plan.append(("stream", folder, str(setup["expected"]["A"]["facts"]),
                     rng.uniform(0, 1 + 4 * setup["expected"]["A"]["stream_seconds"])))
    for log in _trials(setup, plan):
        folder = log["folder"]
        context = f"seed {seed}, delay {log['delay']:.3f}s, {folder.name}"
        present = _check_folder(setup, folder, {"A"} if folder.name.startswith("loop") else {"A", "B"})
        if "done" in log["rest"]:
            assert present == {name: "A" for name in OUTPUT_FILES}, context
        if not folder.name.startswith("loop"):  # run B was there: it stays until run A replaces it whole
            assert present in ({name: "A" for name in OUTPUT_FILES}, {name: "B" for name in OUTPUT_FILES}), context


def test_a_folder_holding_another_run_is_not_overwritten_unless_forced(setup: dict[str, Any], tmp_path: Path) -> None:
    run_a, run_b = setup["expected"]["A"]["run"], setup["expected"]["B"]["run"]
    out = tmp_path / "out"
    incentives.write_run(run_b, out)
    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    with pytest.raises(OutputExistsError, match="holds the output of a different run"):
        incentives.write_run(run_a, out)
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert sorted(path.name for path in out.iterdir()) == sorted(OUTPUT_FILES)  # nothing left behind
    incentives.write_run(run_a, out, force=True)
    assert _check_folder(setup, out, {"A"}) == {name: "A" for name in OUTPUT_FILES}


def test_csv_outputs_without_a_run_json_are_not_overwritten_unless_forced(setup: dict[str, Any],
                                                                            tmp_path: Path) -> None:
    run_a = setup["expected"]["A"]["run"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "payouts.csv").write_text("someone else's payouts\n", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="holds payouts.csv but no run.json"):
        incentives.write_run(run_a, out)
    with pytest.raises(OutputExistsError, match="holds payouts.csv but no run.json"):
        setup["engine"].run_to(out, setup["expected"]["A"]["facts"])
    assert (out / "payouts.csv").read_text(encoding="utf-8") == "someone else's payouts\n"
    assert sorted(path.name for path in out.iterdir()) == ["payouts.csv"]  # nothing left behind
    assert sorted(path.name for path in tmp_path.iterdir()) == [".out.lock", "out"]
    incentives.write_run(run_a, out, force=True)
    assert _check_folder(setup, out, {"A"}) == {name: "A" for name in OUTPUT_FILES}


def test_the_same_run_may_be_written_again(setup: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    incentives.write_run(setup["expected"]["A"]["run"], out)
    again = _run(setup["engine"], setup["expected"]["A"]["facts"])  # a new run id, the same inputs
    incentives.write_run(again, out)
    assert _check_folder(setup, out, {"A"}) == {name: "A" for name in OUTPUT_FILES}
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["run_id"] == again.run_id


def test_runs_of_other_claims_or_other_api_records_are_other_runs(tmp_path: Path) -> None:
    folder = tmp_path / "programs"
    folder.mkdir()
    (folder / "fund.yaml").write_text(program_text("""
        mdf:
          accrual: {on: revenue, rate: 2%}
          claims: {reimbursement: 50%, activities: [event]}
        """, id="fund", kind="mdf"), encoding="utf-8")
    engine = incentives.Engine(incentives.load_programs(folder))
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": "100000"}
    claim = {"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "300",
             "activity_end": "2027-01-10", "submitted_on": "2027-01-20", "preapproved": True}
    out = tmp_path / "out"
    incentives.write_run(engine.run([record], [claim], facts_sha256="same facts file"), out)
    # The same facts file with another claims file: another run.
    other_claims = engine.run([record], [{**claim, "amount": "900"}], facts_sha256="same facts file")
    with pytest.raises(OutputExistsError):
        incentives.write_run(other_claims, out)
    # API records have no facts file to fingerprint: other records are another run.
    other_records = engine.run([{**record, "revenue": "5"}], [claim])
    api_out = tmp_path / "api"
    incentives.write_run(engine.run([record], [claim]), api_out)
    with pytest.raises(OutputExistsError):
        incentives.write_run(other_records, api_out)
    incentives.write_run(engine.run([record], [claim]), api_out)  # the same records again: allowed
    rows = list(csv.DictReader(io.StringIO((api_out / "payouts.csv").read_text(encoding="utf-8"))))
    assert [(row["partner_id"], row["total"]) for row in rows] == [("P1", "150.00")]


def test_cli_refuses_another_run_and_force_overwrites(setup: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from incentives.cli import main

    out = tmp_path / "out"
    base = ["run", "--programs", str(setup["programs"]), "--out", str(out)]
    assert main([*base, "--facts", str(setup["expected"]["B"]["facts"])]) == 0
    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    capsys.readouterr()
    assert main([*base, "--facts", str(setup["expected"]["A"]["facts"])]) == 1
    assert "holds the output of a different run" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert main([*base, "--facts", str(setup["expected"]["A"]["facts"]), "--force"]) == 0
    payouts = list(csv.DictReader(io.StringIO((out / "payouts.csv").read_text(encoding="utf-8"))))
    assert len(payouts) == RECORDS
    assert sum(D(row["total"]) for row in payouts) == setup["expected"]["A"]["run"].totals["partner_tier"]
