"""The example programs in programs/ and the example data in examples/, with values computed by hand.

Each program is exercised through the public API on small, readable partner
records; the numbers in the comments are the hand calculation. The bundled
quarter (examples/*.csv) is checked for being reproducible and clean.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

import incentives

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
EXAMPLES = ROOT / "examples"

EXPECTED_PROGRAMS = {
    "networking_role_tier", "cloud_partner_incentive", "co_marketing_mdf", "solution_provider_track",
    "cloud_service_provider_track", "distributor_track", "goal_based_rebate", "certification_tier",
    "deal_registration_bonus", "service_provider_tier", "service_provider_goal_rebate", "service_provider_mdf",
}


@pytest.fixture(scope="module")
def engine():
    with incentives.Engine(incentives.load_programs(PROGRAMS)) as built:
        yield built


def partner(**overrides):
    """A solution-provider integrator with every fact the example programs read; override what a test needs."""
    record = {
        "partner_id": "T1", "period": "2027-Q1", "role": "integrator", "track": "solution_provider",
        "sp_member": False, "joined_on": date(2020, 1, 1), "compliance_ok": True,
        "revenue": D("600000"), "revenue_prior_year": D("500000"), "revenue_quota": D("600000"),
        "cloud_revenue": D("150000"), "security_revenue": D("60000"), "ai_revenue": D("10000"),
        "recurring_revenue": D("120000"), "recurring_target": D("0"), "gross_margin": D("0.20"),
        "leads": 40, "opportunities": 15, "deals_won": 6, "pipeline_count": 9, "pipeline_value": D("500000"),
        "new_logos": 2, "renewal_rate": D("0.90"), "churn_rate": D("0.03"), "csat": D("4.1"), "nps": 40,
        "adoption_rate": D("0.70"), "certifications": {"sales": 2, "technical": 2}, "certified_staff": 4,
        "specializations": 1, "designations": 1, "marketing_plan_approved": True, "registered_deals": 5,
        "registered_deals_won": 2, "registered_deal_value": D("120000"),
    }
    record.update(overrides)
    return record


def amounts(result):
    return [(line.kind, line.rule_id, line.amount) for line in result.lines]


def test_every_example_program_loads_and_is_covered_here(engine):
    programs = incentives.load_programs(PROGRAMS)
    assert set(programs.ids) == EXPECTED_PROGRAMS
    # goal_based_rebate has two version files; deal_registrations.yaml is a measures file
    assert len(list(PROGRAMS.glob("*.yaml"))) == 14
    assert [loaded.measures.id for loaded in programs.measures] == ["deal_registrations"]
    assert [loaded.program.version for loaded in programs.versions("goal_based_rebate")] == [1, 2]
    for loaded in programs:  # one calendar: the bundled quarter runs every program
        assert (loaded.program.period, loaded.program.fiscal_year_start) == ("quarter", "01-01")


# --- networking_role_tier (Cisco-style role/tier) ---------------------------------------------


def test_role_tier_select_integrator(engine):
    # value index = 600,000/1,000 + 15 × 4 + 200 × 0.70 = 800: Select (250), not Premier (1,000)
    result = engine.evaluate(partner())["networking_role_tier"]
    assert result.tier == "Select"
    assert amounts(result) == [("base", "tier:Select", D("6000.00"))]  # 600,000 × 1%
    assert (result.next_tier.name, result.next_tier.gap, result.next_tier.unmet) == ("Premier", D("200"), [])


def test_role_tier_gold_integrator_gets_the_lifecycle_multiplier(engine):
    # value index = 2,000 + 15 × 10 + 200 × 0.8 = 2,310 >= 2,000; Gold requirements all hold
    record = partner(revenue=D("2000000"), certified_staff=10, adoption_rate=D("0.80"), csat=D("4.5"),
                     certifications={"sales": 3, "technical": 5})
    result = engine.evaluate(record)["networking_role_tier"]
    assert result.tier == "Gold" and result.next_tier is None
    assert amounts(result) == [("base", "tier:Gold", D("60000.00")),                      # 2,000,000 × 3%
                               ("multiplier", "integrator_lifecycle", D("3000.00"))]      # 60,000 × 5%
    assert result.total == D("63000.00")


def test_role_tier_provider_kicker_and_cap(engine):
    provider = engine.evaluate(partner(role="provider", recurring_revenue=D("80000")))["networking_role_tier"]
    assert amounts(provider) == [("base", "tier:Select", D("6000.00")),
                                 ("bonus", "provider_recurring", D("1600.00"))]           # 2% × 80,000
    # 10,000,000 × 3% = 300,000 + advisor 0.25% × 2,000,000 = 5,000, capped at 250,000
    big = partner(role="advisor", revenue=D("10000000"), certified_staff=10, csat=D("4.5"),
                  certifications={"sales": 3, "technical": 5}, pipeline_value=D("2000000"))
    capped = engine.evaluate(big)["networking_role_tier"]
    assert amounts(capped) == [("base", "tier:Gold", D("300000.00")), ("bonus", "advisor_influence", D("5000.00")),
                               ("cap", "cap", D("-55000.00"))]
    assert capped.total == D("250000.00")


def test_role_tier_compliance_finding_makes_the_partner_ineligible(engine):
    result = engine.evaluate(partner(compliance_ok=False))["networking_role_tier"]
    assert result.status == "ineligible" and result.total == 0
    assert [(r.rule_id, r.values) for r in result.reasons] == [("good_standing", {"compliance_ok": False})]


# --- cloud_partner_incentive (Microsoft-style, incremental bands and product kickers) ----------


def test_cloud_incentive_bands_and_product_kickers(engine):
    record = partner(cloud_revenue=D("650000"), security_revenue=D("150000"), ai_revenue=D("30000"))
    result = engine.evaluate(record)["cloud_partner_incentive"]
    assert result.tier == "Strategic"
    assert amounts(result) == [
        ("band", "band:Core", D("1000.00")),          # 100,000 × 1%
        ("band", "band:Expanded", D("8000.00")),      # 400,000 × 2%
        ("band", "band:Strategic", D("4500.00")),     # 150,000 × 3%
        ("multiplier", "security_focus", D("1350.00")),  # security mix 25% >= 20%: 13,500 × 10%
        ("bonus", "ai_workloads", D("1200.00")),      # 4% × 30,000
    ]
    assert result.total == D("16050.00")


def test_cloud_incentive_minimum_payout(engine):
    result = engine.evaluate(partner(cloud_revenue=D("20000")))["cloud_partner_incentive"]
    assert amounts(result) == [("band", "band:Core", D("200.00")), ("minimum", "min_payout", D("-200.00"))]
    assert result.total == D("0.00")


# --- co_marketing_mdf (IBM-PartnerWorld-style co-marketing MDF) -------------------------------


def claim(claim_id, activity, amount, submitted_on, program_id="co_marketing_mdf", preapproved=True,
          activity_end="2027-02-01"):
    return {"claim_id": claim_id, "partner_id": "T1", "period": "2027-Q1", "activity": activity,
            "amount": amount, "activity_end": activity_end, "submitted_on": submitted_on,
            "preapproved": preapproved, "program_id": program_id}


def test_co_marketing_fund_accrues_by_tier_and_pays_claims_in_order(engine):
    claims = [claim("C3", "webinar", "4000", "2027-02-20"), claim("C1", "event", "4000", "2027-02-05"),
              claim("C2", "digital", "6000", "2027-02-10"), claim("C4", "trade_show", "1000", "2027-02-11"),
              claim("C5", "event", "1000", "2027-04-12")]
    result = engine.evaluate(partner(mdf_balance=D("500")), claims=claims)["co_marketing_mdf"]
    # Select tier accrues 1%: 600,000 × 1% = 6,000; available 500 + 6,000 = 6,500
    assert (result.details["accrued"], result.details["available"]) == (D("6000.00"), D("6500.00"))
    assert amounts(result) == [("mdf_claim", "claim:C1", D("2000.00")),    # 4,000 × 50%
                               ("mdf_claim", "claim:C2", D("3000.00")),    # 6,000 × 50%
                               ("mdf_claim", "claim:C3", D("1500.00"))]    # 2,000 due, 1,500 left
    assert "partial" in result.lines[2].description
    rejected = {item["claim_id"]: item["reasons"] for item in result.details["rejected_claims"]}
    assert rejected == {
        "C4": ["activity 'trade_show' is not eligible (eligible: event, digital, webinar, content, telemarketing)"],
        "C5": ["submitted 70 days after the activity ended (limit 60)"],
    }
    assert (result.total, result.details["closing"]) == (D("6500.00"), D("0.00"))


def test_co_marketing_needs_a_plan_and_leads(engine):
    result = engine.evaluate(partner(marketing_plan_approved=False, leads=3))["co_marketing_mdf"]
    assert result.status == "ineligible"
    assert [r.rule_id for r in result.reasons] == ["plan_on_file", "reports_leads"]


# --- Dell-style multi-track: solution provider, cloud service provider, distributor -----------


def test_solution_provider_track_growth_and_large_deals(engine):
    result = engine.evaluate(partner())["solution_provider_track"]
    assert amounts(result) == [("base", "tier:Authorized", D("3000.00")),   # 600,000 × 0.5%
                               ("multiplier", "growth", D("300.00")),       # 600,000 >= 110% × 500,000
                               ("bonus", "large_deals", D("1500.00"))]      # avg 100,000: 250 × 6 deals
    assert result.total == D("4800.00")


def test_solution_provider_titanium_revenue_without_specializations_pays_gold(engine):
    result = engine.evaluate(partner(revenue=D("2500000"), certified_staff=6))["solution_provider_track"]
    assert result.tier == "Gold"
    assert (result.next_tier.name, result.next_tier.gap) == ("Titanium", D("0"))
    assert result.next_tier.unmet == ["certified_staff >= 6 and specializations >= 2"]
    assert result.total == D("42750.00")  # 37,500 (1.5%) + 3,750 (growth) + 1,500 (6 large deals)


def test_other_tracks_are_ineligible_for_a_solution_provider(engine):
    results = engine.evaluate(partner())
    for program_id in ("cloud_service_provider_track", "distributor_track"):
        assert results[program_id].status == "ineligible"
        assert results[program_id].reasons[0].values == {"track": "solution_provider"}


def test_cloud_service_provider_track(engine):
    csp = partner(track="cloud_service_provider", recurring_revenue=D("450000"))
    assert amounts(engine.evaluate(csp)["cloud_service_provider_track"]) == [
        ("base", "tier:Premier", D("13500.00"))]                            # 450,000 × 3%
    churning = engine.evaluate({**csp, "churn_rate": D("0.06")})["cloud_service_provider_track"]
    assert churning.tier == "Preferred" and churning.total == D("9000.00")  # Premier needs churn <= 5%
    assert churning.next_tier.unmet == ["churn_rate <= 5%"]
    loyal = engine.evaluate({**csp, "churn_rate": D("0.015")})["cloud_service_provider_track"]
    assert amounts(loyal)[1] == ("multiplier", "retention", D("675.00"))   # 13,500 × 5%


def test_distributor_track_linear_curve(engine):
    record = partner(track="distributor", revenue=D("1100000"), revenue_quota=D("1000000"))
    result = engine.evaluate(record)["distributor_track"]
    # weighted = 70% × 110% + 30% × (2 / 5) = 89%; factor = 50% + 50% × (89 − 85) / 15 = 63.33...%
    assert result.attainment == D("0.89")
    assert amounts(result) == [("base", "goal:payout", D("6333.33"))]      # 1% × 1,000,000 × 63.33...%


# --- goal_based_rebate (HP-style, two versions) -----------------------------------------------


def test_goal_rebate_fy2027_pays_each_goal_with_profitability_kicker(engine):
    result = engine.evaluate(partner(gross_margin=D("0.30")))["goal_based_rebate"]
    assert result.program_version == 2
    # per goal, target incentive 1.5% × 600,000 = 9,000: revenue 600,000 / 600,000 = 100% → factor 100%,
    # 9,000 × 60% × 100% = 5,400; new logos 2 / 3 = 66.67% is below the 80% threshold → 0; renewals
    # 90% / 90% = 100% → 9,000 × 20% × 100% = 1,800. Base 7,200; kicker 7,200 × 5% = 360
    assert amounts(result) == [("base", "goal:revenue", D("5400.00")), ("base", "goal:new_logos", D("0.00")),
                               ("base", "goal:renewals", D("1800.00")), ("multiplier", "profitable_mix", D("360.00"))]
    assert [goal["id"] for goal in result.details["goals"]] == ["revenue", "new_logos", "renewals"]
    # weighted attainment: 60% × 1 + 20% × 0.6666666667 + 20% × 1 = 0.93333333334 (ratios to 10 places)
    assert result.attainment == D("0.93333333334")


def test_goal_rebate_prorates_a_partner_who_joined_mid_quarter(engine):
    # joined 2027-02-15: 45 of 90 days active, f = 0.5; targets and the 9,000 basis halve (4,500).
    # revenue 600,000 / 300,000 = 200%, capped at 150% → factor 175%: 4,500 × 60% × 175% = 4,725
    # new logos 2 / 1.5 = 133.33% → 100% + 75% × 33.33 / 50 = 150% (the factor rounds to 10 places,
    # half-even: 1.49999999995 → 1.5): 4,500 × 20% × 150% = 1,350
    # renewals 90% / 45% = 200%, capped at its own 110% → 100% + 75% × 10 / 50 = 115%: 4,500 × 20% × 115% = 1,035
    result = engine.evaluate(partner(joined_on=date(2027, 2, 15)))["goal_based_rebate"]
    assert result.details["proration"] == D("0.5")
    assert amounts(result) == [("base", "goal:revenue", D("4725.00")), ("base", "goal:new_logos", D("1350.00")),
                               ("base", "goal:renewals", D("1035.00"))]


def test_goal_rebate_fy2026_quarter_uses_version_1(engine):
    results = engine.evaluate(partner(period="2026-Q4", new_logos=3))
    assert set(results) == {"goal_based_rebate"}  # the other programs start in 2027
    result = results["goal_based_rebate"]
    assert result.program_version == 1
    assert amounts(result) == [("base", "goal:payout", D("6000.00"))]      # 1% × 600,000 × 100% (step)


# --- certification_tier (Oracle-style) ---------------------------------------------------------


def test_certification_tier_requirements_hold_the_partner_at_silver(engine):
    result = engine.evaluate(partner())["certification_tier"]
    assert result.tier == "Silver"  # Gold revenue, but only 4 certified people
    assert (result.next_tier.name, result.next_tier.gap) == ("Gold", D("0"))
    assert result.next_tier.unmet == ["certified_staff >= 5 and specializations >= 1"]
    assert amounts(result) == [("base", "tier:Silver", D("6000.00"))]


def test_certification_tier_platinum_with_specialization_bonus(engine):
    record = partner(revenue=D("2500000"), certified_staff=12, specializations=3, csat=D("4.5"))
    result = engine.evaluate(record)["certification_tier"]
    assert amounts(result) == [("base", "tier:Platinum", D("75000.00")),     # 2,500,000 × 3%
                               ("bonus", "specialized", D("3000.00"))]       # 1,000 × 3
    assert result.total == D("78000.00")


# --- deal_registration_bonus (SAP-PCM-style) ---------------------------------------------------


def test_deal_registration_bonus(engine):
    result = engine.evaluate(partner())["deal_registration_bonus"]
    assert amounts(result) == [("base", "tier:Bronze", D("1200.00")),       # 2 won: 1% × 120,000
                               ("bonus", "new_logo", D("1000.00"))]          # 500 × 2
    low = engine.evaluate(partner(registered_deals=10, registered_deals_won=1))["deal_registration_bonus"]
    assert low.status == "ineligible"
    assert [(r.rule_id, r.values) for r in low.reasons] == [("converts", {"win_rate": D("0.1")})]


# --- service provider program (Nutanix-Elevate-style) ------------------------------------------


def sp_partner(**overrides):
    return partner(track="cloud_service_provider", sp_member=True, recurring_revenue=D("200000"),
                   recurring_target=D("180000"), **overrides)


def test_service_provider_professional_tier_goal_rebate_and_proposal_mdf(engine):
    claims = [claim("S1", "event", "3000", "2027-02-20", program_id="service_provider_mdf"),
              claim("S2", "content", "2000", "2027-02-21", program_id="service_provider_mdf", preapproved=False)]
    results = engine.evaluate(sp_partner(), claims=claims)
    tier = results["service_provider_tier"]
    assert tier.tier == "Professional" and tier.total == D("4000.00")         # 200,000 × 2%
    rebate = results["service_provider_goal_rebate"]
    # consumption 200,000 / 180,000 = 111.1%, retention 97% / 97% = 100%: weighted 107.8% → step 100%
    assert amounts(rebate) == [("base", "goal:payout", D("9000.00"))]         # 5% × 180,000
    mdf = results["service_provider_mdf"]
    assert mdf.details["accrued"] == D("8000.00")                             # 200,000 × 4%
    assert amounts(mdf) == [("mdf_claim", "claim:S1", D("3000.00"))]          # funded 100%
    assert mdf.details["rejected_claims"] == [{"claim_id": "S2", "reasons": ["the activity was not pre-approved"]}]
    assert mdf.details["closing"] == D("5000.00")


def test_service_provider_authorized_gets_no_goal_rebate(engine):
    results = engine.evaluate(sp_partner(nps=20))
    tier = results["service_provider_tier"]
    assert tier.tier == "Authorized" and tier.total == D("2000.00")           # 200,000 × 1%
    assert tier.next_tier.unmet == ["certified_staff >= 2 and nps >= 30"]
    rebate = results["service_provider_goal_rebate"]
    assert rebate.status == "ineligible"
    assert rebate.reasons[0].values == {"service_provider_tier.tier": "Authorized"}
    assert results["service_provider_mdf"].details["accrued"] == D("4000.00")  # Authorized: 2%


def test_a_claim_without_program_id_is_rejected_when_two_mdf_programs_are_loaded(engine):
    unnamed = claim("U1", "event", "1000", "2027-02-20", program_id="")
    result = engine.evaluate(partner(), claims=[unnamed])["co_marketing_mdf"]
    assert result.lines == []
    assert result.details["rejected_claims"][0]["reasons"] == [
        "the claim names no program_id and 2 MDF programs are loaded"]


# --- the bundled quarter -----------------------------------------------------------------------


def _generator():
    spec = importlib.util.spec_from_file_location("generate_facts", EXAMPLES / "generate_facts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_files(tmp_path):
    _generator().main(["--out-dir", str(tmp_path)])
    for name in ("facts_2027Q1.csv", "claims_2027Q1.csv", "facts_2027Q2.csv", "claims_2027Q2.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_bundled_quarter_is_clean_and_exercises_every_program(engine):
    from incentives.inputs import read_claims, read_facts

    run = engine.run(read_facts(EXAMPLES / "facts_2027Q1.csv"), read_claims(EXAMPLES / "claims_2027Q1.csv"))
    assert len({r.partner_id for r in run.results}) == 300
    for program_id, counts in run.counts.items():
        assert counts["error"] == 0, program_id
        assert counts["ok"] > 0 and run.totals[program_id] > 0, program_id
    assert run.totals["deal_registration_bonus"] == D("550000.00")  # the budget binds
    lines = [line for r in run.results if r.program_id.endswith("_mdf") for line in r.lines]
    assert any("partial" in line.description for line in lines)
    # service_provider_mdf's limits bind: C27Q1-0030 content 5,436.89 × 100%, capped at 5,000.00 per content claim
    [capped] = [line for line in lines if line.rule_id == "claim:C27Q1-0030"]
    assert (capped.amount, capped.formula) == (
        D("5000.00"), "5,436.89 × 100% = 5,436.89, capped at 5,000.00 per content claim")
    assert any(r.details.get("rejected_claims") for r in run.results)


def test_quarterly_payout_script(tmp_path):
    out = tmp_path / "q1"
    done = subprocess.run([sys.executable, str(EXAMPLES / "quarterly_payout.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"payouts.csv", "lines.csv", "results.jsonl", "run.json"}
    row = next(line for line in done.stdout.splitlines() if line.startswith("deal_registration_bonus"))
    assert row.split()[-2:] == ["550,000.00", "USD"]


def test_quarterly_payout_script_with_a_ledger_two_quarters_in_a_row(tmp_path):
    def payout(*args: str) -> str:
        done = subprocess.run([sys.executable, str(EXAMPLES / "quarterly_payout.py"), "--ledger",
                               str(tmp_path / "ledger.db"), "--post", *args], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = payout("--out", str(tmp_path / "q1"))
    assert "posted run" in first and "3984 entries" in first
    second = payout("--out", str(tmp_path / "q2"), "--facts", str(EXAMPLES / "facts_2027Q2.csv"),
                    "--claims", str(EXAMPLES / "claims_2027Q2.csv"))
    assert "posted run" in second
    results = incentives.read_run(tmp_path / "q2").results
    [fund] = [r for r in results if r.partner_id == "P0001" and r.program_id == "co_marketing_mdf"]
    assert fund.details["opening"] == D("19450.11")  # Q1: accrued 20,368.11 less claim C27Q1-0001's 918.00
    assert fund.details["rejected_claims"][0]["claim_id"] == "C27Q1-0001"
    assert fund.details["rejected_claims"][0]["reasons"][0].startswith("already paid in run ")


# --- the README ----------------------------------------------------------------------------------


def _readme_blocks(language: str) -> list[str]:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_readme_quick_start_is_what_ci_runs():
    setup, tests = _readme_blocks("sh")[:2]
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && ")
    payout = setup.strip().split(" && ")[-1]
    assert payout.startswith("incentives run --programs programs --facts examples/facts_2027Q1.csv ")
    assert tests.strip() == "python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert payout in ci and "python -m pytest -q" in ci


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    [code] = _readme_blocks("python")
    monkeypatch.chdir(ROOT)
    exec(compile(code.replace('"out/2027-Q1"', repr(str(tmp_path / "out"))), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == ["ok Select 6000.00", "200 more value points reach Premier"]
    assert (tmp_path / "out" / "payouts.csv").exists()


def test_readme_ledger_flow_runs_as_written(tmp_path):
    """The README's two quarters with a ledger, command by command, in a fresh folder."""
    [flow] = [block for block in _readme_blocks("sh") if "incentives ledger init" in block]
    for name in ("programs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ)
    outputs = []
    for line in flow.strip().splitlines():
        command = line.split("#")[0].strip()
        if command.startswith("export "):
            name, value = command.removeprefix("export ").split("=", 1)
            env[name] = value
            continue
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    explained = next(out for out in outputs if "co_marketing_mdf v1 · 2027-Q2" in out)
    assert "fund: opening 19,450.11 + accrued 20,250.34" in explained
    assert "rejected claim C27Q1-0001: already paid in run " in explained
    assert (tmp_path / "register-2027Q2.csv").read_text(encoding="utf-8").startswith(
        "partner_id,program_id,account,currency,opening,payout,accrual,claim,restatement,adjustment,payment,"
        "expiry,reversal,closing\n")


def test_the_bundled_deals_give_the_registered_deals_of_the_bundled_quarter(tmp_path):
    """examples/deals_2026_2027.csv through programs/deal_registrations.yaml: its 2027-Q1 measures are the
    registered_* facts of examples/facts_2027Q1.csv, for every partner (none registered: no row, all zero)."""
    import csv

    from incentives.measures.compute import measure_facts

    programs = incentives.load_programs(PROGRAMS)
    measured = measure_facts(programs.measures,
                             {"deals": ROOT / "examples" / "deals_2026_2027.csv"})
    assert measured.rejected == 0
    assert sorted(set(measured.frame["period"])) == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"]
    quarter = {row["partner_id"]: row for row in measured.frame.filter(pl.col("period") == "2027-Q1")
               .iter_rows(named=True)}
    with open(ROOT / "examples" / "facts_2027Q1.csv", newline="", encoding="utf-8") as handle:
        facts = list(csv.DictReader(handle))
    columns = ("registered_deals", "registered_deals_won", "registered_deal_value")
    none = dict(zip(columns, ("0", "0", "0.00")))
    assert [tuple(quarter.get(row["partner_id"], none)[column] for column in columns) for row in facts] == \
        [tuple(row[column] for column in columns) for row in facts]
    assert 200 < len(quarter) < len(facts)  # some partners registered nothing


def test_the_deals_generator_reproduces_the_committed_files(tmp_path):
    spec = importlib.util.spec_from_file_location("generate_deals", EXAMPLES / "generate_deals.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out", str(tmp_path / "deals.csv"), "--facts-out", str(tmp_path / "facts.csv")])
    assert (tmp_path / "deals.csv").read_bytes() == (EXAMPLES / "deals_2026_2027.csv").read_bytes()
    assert (tmp_path / "facts.csv").read_bytes() == (EXAMPLES / "facts_2027Q1_without_deals.csv").read_bytes()


def test_the_readme_run_from_deals_pays_what_the_bundled_quarter_pays(tmp_path):
    """README "Facts from transactions": the facts without the registered_* columns and the deals they come from
    give the bundled quarter's files, byte for byte (run.json aside: it records the measures)."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "incentives", *args], cwd=ROOT, capture_output=True, text=True)

    common = ["--programs", "programs", "--claims", "examples/claims_2027Q1.csv", "--period", "2027-Q1"]
    done = run("run", *common, "--facts", "examples/facts_2027Q1.csv", "--out", str(tmp_path / "facts"))
    assert done.returncode == 0, done.stderr
    done = run("run", *common, "--facts", "examples/facts_2027Q1_without_deals.csv", "--transactions",
               "deals=examples/deals_2026_2027.csv", "--out", str(tmp_path / "deals"))
    assert done.returncode == 0, done.stderr
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (tmp_path / "facts" / name).read_bytes() == (tmp_path / "deals" / name).read_bytes(), name
    done = run("explain", "--programs", "programs", "--facts", "examples/facts_2027Q1_without_deals.csv",
               "--transactions", "deals=examples/deals_2026_2027.csv", "--partner", "P0001", "--period", "2027-Q1",
               "--program", "deal_registration_bonus")
    assert done.returncode == 0, done.stderr
    # P0001's 2027-Q1 row of examples/facts_2027Q1.csv: 13 registered, 3 won, 49,076.87 won
    assert ("  registered_deal_value =       49076.87   sum of amount where stage == 'won': 3 transactions\n"
            in done.stdout)
    assert "  registered_deals      =             13   count: 13 transactions\n" in done.stdout
