"""Hostile text in payouts.csv and lines.csv (issue #10, cases 15 and 16), through every way a run is written:
``Engine.run(...).write``, ``Engine.run_to`` (records in output order and not) and the command line.

Text cells that a spreadsheet would read as a formula (first character = + - @, TAB or CR) are written with a
leading ``'``; number cells never are (``-6.00`` stays); a carriage return inside a cell is quoted, so a CSV
reader reads every row whole. The run summary shows the real values, not the neutralised cells.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

import incentives
from conftest import ROOT, program_text

TIERS = """
    tiers:
      qualify_on: revenue
      pay_on: returns
      levels:
        - {name: Base, from: 0, rate: 1%}
        - {name: "@Gold", from: 1000, rate: 3%}
    bonuses:
      - {id: kicker, when: "revenue >= 5000", amount: 100, description: "=cmd|' /C calc'!A0"}
    cap: 150
    allow_negative: true
    """
REBATE = program_text(TIERS, id="rebate")
REBATE_WITH_BUDGET = program_text(TIERS, "budget: 100", id="rebate")
MDF = program_text("""
    mdf:
      accrual: {on: revenue, rate: 10%}
      claims: {reimbursement: 50%, activities: ["@event", digital]}
    """, id="co_marketing", kind="mdf")
FACT_COLUMNS = ("partner_id", "period", "revenue", "returns")
CLAIM_COLUMNS = ("claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on",
                 "preapproved")
PATHS = ("write", "run_to in order", "run_to out of order", "cli")


def _record(partner_id: str, revenue: str, returns: str, period: str = "2027-Q1") -> dict[str, str]:
    return {"partner_id": partner_id, "period": period, "revenue": revenue, "returns": returns}


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:  # csv.writer's "\r\n" rows quote a lone \r
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([row[column] for column in columns] for row in rows)
    return path


def _run(path: str, engine: incentives.Engine, records: list[dict], claims: list[dict], tmp_path: Path) -> Any:
    """Write the run into tmp_path/path; return the folder, with what the run reported."""
    out = tmp_path / path.replace(" ", "_")
    if path == "write":
        incentives.write_run(engine.run(records, claims), out)
        return out, None
    if path.startswith("run_to"):
        ordered = sorted(records, key=lambda record: record["partner_id"].strip())
        summary = engine.run_to(out, ordered if path == "run_to in order" else ordered[::-1], claims)
        return out, summary
    facts = _write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    claims_option = ["--claims", _write_csv(tmp_path / "claims.csv", CLAIM_COLUMNS, claims)] if claims else []
    done = subprocess.run([sys.executable, "-m", "incentives", "run", "--programs", tmp_path / "programs",
                           "--facts", facts, *claims_option, "--out", out],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    return out, done


def _cells(folder: Path, name: str) -> list[list[str]]:
    with open(folder / name, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, strict=True))


PAYOUT_HEADER = ["partner_id", "period", "program_id", "program_version", "status", "tier", "attainment", "total",
                 "currency"]
LINE_HEADER = ["partner_id", "period", "program_id", "n", "kind", "rule_id", "description", "basis", "rate",
               "amount", "formula"]


@pytest.mark.parametrize("path", PATHS)
def test_partner_ids_that_start_formulas_or_hold_a_carriage_return(engine_for, tmp_path, path):
    engine = engine_for(REBATE)
    records = [_record('=HYPERLINK("x")', "1000", "-200"), _record("+1", "500", "500"), _record("-P", "500", "500"),
               _record("@SUM(A1)", "500", "500"), _record("\tX", "500", "500"), _record("\rY", "500", "500"),
               _record("P\r1", "500", "500"), _record("P,2", "500", "500"), _record('P"3', "500", "500"),
               _record("'=Q", "500", "500"), _record("P9", "5000", "5000"), _record("Z", "1", "1", period="=1+1")]
    out, reported = _run(path, engine, records, [], tmp_path)

    def base(partner_id: str) -> list[str]:
        return [partner_id, "2027-Q1", "rebate", "1", "ok", "Base", "", "5.00", "USD"]

    # ids are trimmed when read (so \tX and \rY arrive as X and Y); = + - @ starts get a ', an own ' stays single
    assert _cells(out, "payouts.csv") == [
        PAYOUT_HEADER, base("'=Q"), base("'+1"), base("'-P"),
        ["'=HYPERLINK(\"x\")", "2027-Q1", "rebate", "1", "ok", "'@Gold", "", "-6.00", "USD"],
        base("'@SUM(A1)"), base("P\r1"), base('P"3'), base("P,2"),
        ["P9", "2027-Q1", "rebate", "1", "ok", "'@Gold", "", "150.00", "USD"],
        base("X"), base("Y"),
        ["Z", "'=1+1", "rebate", "", "error", "", "", "0.00", ""]]

    def base_line(partner_id: str) -> list[str]:
        return [partner_id, "2027-Q1", "rebate", "1", "base", "tier:Base", "Base tier rate on returns", "500.00",
                "0.01", "5.00", "500.00 × 1% = 5.00"]

    p9 = ["P9", "2027-Q1", "rebate"]
    assert _cells(out, "lines.csv") == [
        LINE_HEADER, base_line("'=Q"), base_line("'+1"), base_line("'-P"),
        # a negative basis makes a formula start with "-": a text cell, so it is neutralised; the numbers are not
        ["'=HYPERLINK(\"x\")", "2027-Q1", "rebate", "1", "base", "tier:@Gold", "'@Gold tier rate on returns",
         "-200.00", "0.03", "-6.00", "'-200.00 × 3% = -6.00"],
        base_line("'@SUM(A1)"), base_line("P\r1"), base_line('P"3'), base_line("P,2"),
        [*p9, "1", "base", "tier:@Gold", "'@Gold tier rate on returns", "5000.00", "0.03", "150.00",
         "5,000.00 × 3% = 150.00"],
        [*p9, "2", "bonus", "kicker", "'=cmd|' /C calc'!A0", "100.00", "", "100.00", "100 = 100.00"],
        [*p9, "3", "cap", "cap", "cap of 150.00 per partner and period", "250.00", "", "-100.00",
         "150.00 − 250.00 = -100.00"],
        base_line("X"), base_line("Y")]
    if path.startswith("run_to"):
        assert reported.by_tier == {"rebate": {"Base": (9, D("45.00")), "@Gold": (2, D("144.00"))}}
        assert reported.partners == {"rebate": 12}
        assert reported.periods == ["2027-Q1", "=1+1"]
        assert [error[:3] for error in reported.first_errors] == [("Z", "=1+1", "rebate")]
    if path == "cli":
        assert reported.returncode == 3, reported.stderr
        assert "@Gold (2): 144.00" in reported.stdout and "'@Gold" not in reported.stdout
        assert "  Z =1+1 rebate: invalid period label '=1+1'" in reported.stderr


@pytest.mark.parametrize("path", PATHS)
def test_program_texts_claim_ids_and_budget_rows_that_start_formulas(engine_for, tmp_path, path):
    engine = engine_for(REBATE_WITH_BUDGET, MDF)
    records = [_record("@P2", "2000", "2000"), _record("=P1", "5000", "5000")]
    claim = {"period": "2027-Q1", "activity": "@event", "activity_end": "2027-01-10", "submitted_on": "2027-01-20",
             "preapproved": ""}
    claims = [dict(claim, claim_id="=C1", partner_id="=P1", amount="300.00"),
              dict(claim, claim_id="C2", partner_id="=O1", amount="10.00")]  # =O1 has no facts record
    out, reported = _run(path, engine, records, claims, tmp_path)

    assert _cells(out, "payouts.csv") == [
        PAYOUT_HEADER,
        ["'=O1", "2027-Q1", "co_marketing", "", "error", "", "", "0.00", ""],
        ["'=P1", "2027-Q1", "co_marketing", "1", "ok", "", "", "150.00", "USD"],
        # 150.00 and 60.00 requested, 100 to share: 71.43 and 28.57
        ["'=P1", "2027-Q1", "rebate", "1", "ok", "'@Gold", "", "71.43", "USD"],
        ["'@P2", "2027-Q1", "co_marketing", "1", "ok", "", "", "0.00", "USD"],
        ["'@P2", "2027-Q1", "rebate", "1", "ok", "'@Gold", "", "28.57", "USD"]]
    p1, p2 = ["'=P1", "2027-Q1", "rebate"], ["'@P2", "2027-Q1", "rebate"]
    scaled = "program budget 100.00 over 210.00 requested: scaled by 47.619%"
    factor = "0.4761904761904761904761904762"  # 100 / 210 to 28 digits
    assert _cells(out, "lines.csv") == [
        LINE_HEADER,
        # the claim id is not at the start of rule_id or description; the activity is at the description's
        ["'=P1", "2027-Q1", "co_marketing", "1", "mdf_claim", "claim:=C1", "'@event claim =C1", "300.00", "0.5",
         "150.00", "300.00 × 50% = 150.00"],
        [*p1, "1", "base", "tier:@Gold", "'@Gold tier rate on returns", "5000.00", "0.03", "150.00",
         "5,000.00 × 3% = 150.00"],
        [*p1, "2", "bonus", "kicker", "'=cmd|' /C calc'!A0", "100.00", "", "100.00", "100 = 100.00"],
        [*p1, "3", "cap", "cap", "cap of 150.00 per partner and period", "250.00", "", "-100.00",
         "150.00 − 250.00 = -100.00"],
        [*p1, "4", "budget", "budget", scaled, "150.00", factor, "-78.57",
         "150.00 × 100.00 / 210.00 → 71.43 (largest remainder) = -78.57"],
        [*p2, "1", "base", "tier:@Gold", "'@Gold tier rate on returns", "2000.00", "0.03", "60.00",
         "2,000.00 × 3% = 60.00"],
        [*p2, "2", "budget", "budget", scaled, "60.00", factor, "-31.43",
         "60.00 × 100.00 / 210.00 → 28.57 (largest remainder) = -31.43"]]
    if path.startswith("run_to"):
        assert reported.by_tier == {"rebate": {"@Gold": (2, D("100.00"))}}
        assert reported.partners == {"co_marketing": 3, "rebate": 2}
        assert [error[:3] for error in reported.first_errors] == [("=O1", "2027-Q1", "co_marketing")]
    if path == "cli":
        assert reported.returncode == 3, reported.stderr
        assert "@Gold (2): 100.00" in reported.stdout and "  =O1 2027-Q1 co_marketing: " in reported.stderr


@pytest.mark.parametrize("in_order", [True, False])
def test_the_summary_tells_apart_values_whose_cells_read_the_same(engine_for, tmp_path, in_order):
    """'=Q and =Q are both written '=Q, and so are the tiers '@Gold and @Gold: the summary keeps them apart."""
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Base, from: 0, rate: 1%}
            - {name: "'@Gold", from: 1000, rate: 2%}
            - {name: "@Gold", from: 3000, rate: 3%}
        """, id="rebate"))
    records = [{"partner_id": "'=Q", "period": "2027-Q1", "revenue": "5000"},
               {"partner_id": "=Q", "period": "2027-Q1", "revenue": "1000"}]
    summary = engine.run_to(tmp_path / "out", records if in_order else records[::-1])
    assert [row[:6] for row in _cells(tmp_path / "out", "payouts.csv")[1:]] == [
        ["'=Q", "2027-Q1", "rebate", "1", "ok", "'@Gold"], ["'=Q", "2027-Q1", "rebate", "1", "ok", "'@Gold"]]
    assert summary.partners == {"rebate": 2}
    assert summary.by_tier == {"rebate": {"@Gold": (1, D("150.00")), "'@Gold": (1, D("20.00"))}}
