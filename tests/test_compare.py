"""What-if comparisons (incentives compare): two program sets on the same facts, values by hand, bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEADER = """\
id: {id}
name: {id}
kind: tier
version: {version}
currency: USD
effective: {{from: 2027-01-01}}
period: quarter
eligibility:
  - {{id: active, when: "active", description: an active partner}}
"""
OLD = HEADER.format(id="rebate", version=1) + textwrap.dedent("""\
    tiers:
      qualify_on: revenue
      levels:
        - {name: Bronze, from: 0, rate: 1%}
        - {name: Silver, from: 1000, rate: 2%}
    """)
# the proposal: Silver from 700, at 2.5%
NEW = HEADER.format(id="rebate", version=2) + textwrap.dedent("""\
    tiers:
      qualify_on: revenue
      levels:
        - {name: Bronze, from: 0, rate: 1%}
        - {name: Silver, from: 700, rate: 2.5%}
    """)
EXTRA = HEADER.format(id="kicker", version=1) + textwrap.dedent("""\
    tiers:
      qualify_on: revenue
      levels:
        - {name: Base, from: 0, rate: 0.5%}
    """)


@pytest.fixture
def sets(tmp_path: Path) -> Path:
    for name, files in (("old", {"rebate.yaml": OLD}), ("new", {"rebate.yaml": NEW, "kicker.yaml": EXTRA})):
        (tmp_path / name).mkdir()
        for file, text in files.items():
            (tmp_path / name / file).write_text(text, encoding="utf-8")
    (tmp_path / "facts.csv").write_text("partner_id,period,revenue,active\nP1,2027-Q1,1500,true\n"
                                        "P2,2027-Q1,800,true\nP3,2027-Q1,100,false\n", encoding="utf-8")
    return tmp_path


def compare(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "incentives", "compare", "--programs", "old", "--programs", "new",
                           "--facts", "facts.csv", "--out", "what_if", *args], cwd=folder, capture_output=True,
                          text=True)


def test_a_proposal_with_ten_percent_growth_by_hand(sets):
    done = compare(sets, "--scale", "revenue=1.10")
    assert done.returncode == 0, done.stderr
    # revenue × 1.10: P1 1650 (Silver either way: 2% = 33.00, 2.5% = 41.25), P2 880 (Bronze 1% = 8.80; Silver
    # from 700 at 2.5% = 22.00), P3 not active
    assert (sets / "what_if" / "compare.csv").read_text(encoding="utf-8").splitlines() == [
        "partner_id,period,program_id,old,new,delta,old_tier,new_tier,old_status,new_status,currency",
        "P1,2027-Q1,rebate,33.00,41.25,8.25,Silver,Silver,ok,ok,USD",
        "P2,2027-Q1,rebate,8.80,22.00,13.20,Bronze,Silver,ok,ok,USD",
        "P3,2027-Q1,rebate,0.00,0.00,0.00,,,ineligible,ineligible,USD"]
    assert (sets / "what_if" / "compare_summary.csv").read_text(encoding="utf-8").splitlines() == [
        "program_id,currency,old,new,change,better,worse,unchanged",
        "rebate,USD,41.80,63.25,21.45,2,0,1"]
    assert (sets / "what_if" / "tier_moves.csv").read_text(encoding="utf-8").splitlines() == [
        "program_id,old_tier,new_tier,results", "rebate,Bronze,Silver,1", "rebate,Silver,Silver,1"]
    # the matrix on the terminal: P2 Bronze → Silver, P1 stays Silver
    assert "│ Bronze │      1 │" in done.stdout and "│ Silver │      1 │" in done.stdout
    assert "note: only in the new programs, not compared: kicker" in done.stdout
    assert "3 results compared" in done.stdout
    # each side is a run folder of its own, on the scaled facts
    assert (sets / "what_if" / "old" / "run.json").exists() and (sets / "what_if" / "new" / "run.json").exists()


def test_without_scale_the_facts_are_run_as_they_are(sets):
    done = compare(sets)
    assert done.returncode == 0, done.stderr
    # P1 1500: 30.00 → 37.50; P2 800: 8.00 → 20.00
    assert (sets / "what_if" / "compare_summary.csv").read_text(encoding="utf-8").splitlines()[1] == \
        "rebate,USD,38.00,57.50,19.50,2,0,1"


@pytest.mark.parametrize("args, message", [
    (["--scale", "turnover=1.1"], "--scale: turnover is not a fact of facts.csv"),
    (["--scale", "revenue=abc"], "--scale revenue=: the factor 'abc' is not a decimal number"),
    (["--scale", "revenue=1e2"], "--scale revenue=: the factor '1e2' is not a decimal number"),
    (["--scale", "revenue"], "--scale takes FACT=FACTOR"),
    (["--scale", "revenue=1.1", "--scale", "revenue=1.2"], "--scale revenue is given twice"),
])
def test_bad_scales_are_one_line_and_nothing_is_written(sets, args, message):
    done = compare(sets, *args)
    assert (done.returncode, done.stderr) == (1, f"incentives compare: {message}" + done.stderr.split(message, 1)[1])
    assert len(done.stderr.splitlines()) == 1
    assert not (sets / "what_if").exists()


def test_two_sets_without_a_program_in_common(sets):
    (sets / "new" / "rebate.yaml").unlink()
    done = compare(sets)
    assert done.returncode == 1
    assert done.stderr == ("incentives compare: the two program sets have no program in common (old: rebate; new: "
                           "kicker): there is nothing to compare\n")
    assert not (sets / "what_if").exists()
    done = subprocess.run([sys.executable, "-m", "incentives", "compare", "--programs", "old", "--facts",
                           "facts.csv", "--out", "what_if"], cwd=sets, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (1, "incentives compare: give --programs twice (the old set, then the "
                                                 "new one), not 1 time\n")


def test_the_readme_comparison_of_the_bundled_goal_based_rebate(tmp_path):
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "incentives", "compare", "--programs", "examples/what_if", "--programs",
               "programs/goal_based_rebate.yaml", "--facts", "examples/facts_2027Q1.csv", "--out",
               str(tmp_path / "what_if")]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # the FY2027 version's total is the bundled quarter's (README: 2,238,710.76)
    assert (tmp_path / "what_if" / "compare_summary.csv").read_text(encoding="utf-8").splitlines()[1] == \
        "goal_based_rebate,USD,592380.00,2238710.76,1646330.76,290,3,7"
    # again into the same folder: the runs are of the same inputs, so it is replaced
    assert subprocess.run(command, cwd=root, capture_output=True, text=True).returncode == 0


def test_an_earlier_comparison_of_other_programs_needs_force(sets):
    assert compare(sets).returncode == 0
    (sets / "new" / "rebate.yaml").write_text(NEW.replace("2.5%", "3%"), encoding="utf-8")
    done = compare(sets)
    assert done.returncode == 1 and "holds the output of a different run" in done.stderr
    assert "--force replaces it" in done.stderr
    assert compare(sets, "--force").returncode == 0


def test_the_report_of_a_comparison(sets):
    done = compare(sets, "--scale", "revenue=1.10", "--report")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("compare.csv, compare_summary.csv, tier_moves.csv and compare.html "
                                         "written to what_if")
    page = (sets / "what_if" / "compare.html").read_text(encoding="utf-8")
    # the costs, who gains and loses, the tier moves; no script, nothing to fetch
    assert page.count("<svg") == 3 and "<script" not in page.lower() and "<link" not in page
    assert "old → new" in page and "scaled: revenue=1.10" in page
    # the table of costs (41.80 → 63.25, +21.45) and the gains: P2 13.20 before P1 8.25
    assert "41.80 USD" in page and "63.25 USD" in page and "+21.45 USD" in page
    gains = page[page.index("results that gain most"):page.index("results that lose most")]
    assert gains.index("13.20") < gains.index("8.25")
    assert "only in the new programs, not compared: kicker" in page


@pytest.mark.parametrize("args, message", [(["--facts", "missing.csv"], "missing.csv: no such file"),
                                           (["--claims", "missing.csv"], "missing.csv: no such file")])
def test_missing_inputs_are_one_line_and_nothing_is_written(sets, args, message):
    done = compare(sets, *args)
    assert (done.returncode, done.stderr) == (2, message + "\n")
    assert not (sets / "what_if").exists()
