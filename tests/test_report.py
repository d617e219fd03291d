"""The HTML report of a run folder (incentives.report): figures by hand, a page that stands alone, bad folders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import incentives
from incentives.errors import InputError
from incentives.report import write_report
from incentives.report.figures import figures_of
from incentives.report.run_folder import SCALE, read_run_folder

ROOT = Path(__file__).resolve().parent.parent

HEADER = """\
id: {id}
name: {id}
kind: {kind}
version: 1
currency: USD
effective: {{from: 2027-01-01}}
period: quarter
"""
REBATE = HEADER.format(id="rebate", kind="tier") + textwrap.dedent("""\
    eligibility:
      - {id: active, when: "active", description: "an <active> partner"}
    tiers:
      qualify_on: revenue
      levels:
        - {name: Bronze, from: 0, rate: 1%}
        - {name: Silver, from: 1000, rate: 2%}
    """)
FUND = HEADER.format(id="fund", kind="mdf") + textwrap.dedent("""\
    mdf:
      accrual: {on: revenue, rate: 10%}
      claims: {reimbursement: 100%, activities: [event]}
    """)


def units(text: str) -> int:
    return int(Decimal(text).scaleb(SCALE))


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    programs = tmp_path / "programs"
    programs.mkdir()
    (programs / "rebate.yaml").write_text(REBATE, encoding="utf-8")
    (programs / "fund.yaml").write_text(FUND, encoding="utf-8")
    records = [{"partner_id": "P1", "period": "2027-Q1", "revenue": "1500", "active": True},
               {"partner_id": "P2", "period": "2027-Q1", "revenue": "800", "active": True},
               {"partner_id": "P3", "period": "2027-Q1", "revenue": "100", "active": False},
               {"partner_id": "P4", "period": "2027-Q1"}]  # no revenue, no active: errors
    claims = [{"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "40",
               "activity_end": "2027-01-10", "submitted_on": "2027-01-20", "preapproved": True}]
    incentives.Engine(incentives.load_programs(programs)).run_to(tmp_path / "out", records, claims)
    return tmp_path / "out"


def test_the_figures_of_a_run_by_hand(run_folder):
    figures = figures_of(read_run_folder(run_folder))
    # rebate: P1 Silver 1500 × 2% = 30.00, P2 Bronze 800 × 1% = 8.00, P3 not active, P4 no facts
    # fund: accrues 10% (150.00, 80.00, 10.00) and pays C1's 40.00 to P1; P4 no facts
    assert figures.programs.select("program_id", "partners", "ok", "ineligible", "error", "paid").rows() == [
        ("fund", 4, 3, 0, 1, units("40")), ("rebate", 4, 2, 1, 1, units("38"))]
    assert figures.by_tier.rows() == [("rebate", "Silver", 1, units("30")), ("rebate", "Bronze", 1, units("8"))]
    # P2 is 200.00 short of Silver
    assert figures.close.select("program_id", "partner_id", "tier", "next_tier", "next_gap").rows() == [
        ("rebate", "P2", "Bronze", "Silver", units("200"))]
    assert figures.top.rows() == [("P1", "USD", units("70"), 2), ("P2", "USD", units("8"), 1)]
    assert figures.mdf.rows() == [("fund", "USD", units("240"), units("40"), 3)]
    assert figures.ineligible.rows() == [("rebate", "active", "an <active> partner", 1)]
    assert [(program, count) for program, _, count in figures.errors.rows()] == [("fund", 1), ("rebate", 1)]
    assert figures.periods == ["2027-Q1"]
    # the gap's bins: 200.00 in ten round bins (a width of 50.00: 200.00 falls in the fifth)
    assert figures.gaps.rows() == [("rebate", at, 1 if at == 4 else 0, at * units("50"), (at + 1) * units("50"))
                                   for at in range(5)]


def test_the_page_stands_alone_and_shows_the_run(run_folder, tmp_path):
    written = write_report(run_folder, tmp_path / "report.html")
    page = written.path.read_text(encoding="utf-8")
    assert (written.results, written.charts) == (8, 4)  # statuses, payout by tier, gaps, MDF (no attainment)
    assert page.count("<svg") == 4 and "<script" not in page.lower()
    # nothing to fetch: the only URLs are SVG's own namespaces
    assert set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<>)]*", page)) <= {"http://www.w3.org/2000/svg",
                                                                          "http://www.w3.org/1999/xlink"}
    assert "<link" not in page and "src=" not in page and "@import" not in page
    # the run's texts are escaped; the exact amounts are shown
    assert "an &lt;active&gt; partner" in page and "an <active>" not in page
    assert "240.00" in page and "38.00 USD" in page
    run = json.loads((run_folder / "run.json").read_text(encoding="utf-8"))
    assert run["run_id"] in page and all(program["sha256"] in page for program in run["programs"])


def test_the_command_writes_the_report_of_the_bundled_quarter(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "incentives", "run", "--programs", "programs", "--facts",
                           "examples/facts_2027Q1.csv", "--claims", "examples/claims_2027Q1.csv", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "incentives", "report", str(out), "--out", str(tmp_path / "q1.html")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r".*q1\.html: the report of 3,600 results, 5 charts \(\d+ KB\)\n", done.stdout)
    assert (tmp_path / "q1.html").stat().st_size < 10 * 1024 * 1024


def _damaged(folder: Path, how: str) -> None:
    run_json = folder / "run.json"
    run = json.loads(run_json.read_text(encoding="utf-8"))
    if how == "no run.json":
        run_json.unlink()
    elif how == "no results":
        (folder / "results.jsonl").unlink()
    elif how == "fewer results":
        lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "results.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    elif how == "newer":
        run["engine_version"] = "99.0.0"
        run_json.write_text(json.dumps(run), encoding="utf-8")
    elif how == "not json":
        run_json.write_text("{", encoding="utf-8")
    elif how == "not a run":
        run_json.write_text("[1, 2]", encoding="utf-8")


@pytest.mark.parametrize("how, message", [
    ("no run.json", r"not a run folder: no run\.json \(it holds lines\.csv, payouts\.csv, results\.jsonl\)"),
    ("no results", r"an unfinished run: run\.json but no results\.jsonl"),
    ("fewer results", r"results\.jsonl holds 7 results where run\.json says 8: an unfinished or damaged run"),
    ("newer", r"a run of incentives 99\.0\.0, newer than this one \(0\.1\.0\): upgrade incentives"),
    ("not json", r"run\.json cannot be read"),
    ("not a run", r"run\.json is not a run's"),
])
def test_a_folder_that_is_not_a_whole_run_is_one_line_and_nothing_written(run_folder, tmp_path, how, message):
    _damaged(run_folder, how)
    with pytest.raises(InputError, match=message):
        write_report(run_folder, tmp_path / "report.html")
    done = subprocess.run([sys.executable, "-m", "incentives", "report", str(run_folder), "--out",
                           str(tmp_path / "report.html")], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and re.search(message, done.stderr)
    assert not (tmp_path / "report.html").exists() and list(tmp_path.glob(".report.html.*")) == []


def test_a_chart_gets_its_amounts_as_their_exact_text():
    from incentives.report.charts import number, spec_json

    # 12,345,678,901,234.57: more digits than a double keeps, and no float on the way
    value = number(units("12345678901234.57"))
    assert spec_json({"values": [{"paid": value, "label": "x"}], "zero": number(0)}) == \
        '{"values": [{"paid": 12345678901234.57000000, "label": "x"}], "zero": 0.00000000}'
    with pytest.raises(TypeError, match="a chart's data holds set"):
        spec_json({"paid": {1}})
