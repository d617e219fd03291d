#!/usr/bin/env python3
"""Generate the bundled example quarters: partner facts and MDF claims for 2027-Q1 and 2027-Q2.

    python examples/generate_facts.py            # rewrites examples/facts_2027Q{1,2}.csv and claims_2027Q{1,2}.csv

The output is deterministic: the same seed and partner count always give
byte-identical files (the committed files were made with the defaults). The
population is meant to look like a real channel:

* revenue is log-normal (a long tail of small partners, a few very large ones);
  distributors are bigger, cloud service providers mostly recurring revenue;
* certifications and specializations are skewed and grow with partner size;
* some partners are ineligible somewhere on purpose: no quota assigned, an open
  compliance finding, no designation, too little adoption, another track;
* every record carries every fact the programs in ``programs/`` read, and every
  claim belongs to a partner in the facts file, so the quick start has no
  ``error`` rows (exit code 0). Claims include a few that the programs reject
  (late, not pre-approved, an activity the program does not fund): rejections
  are part of an ``ok`` result, not errors.
* 2027-Q2 is the same partners a quarter later: their figures move by a
  seeded growth factor, their Q1 fund balances are left to the ledger (no
  ``mdf_balance``), and one Q1 claim (``C27Q1-0001``) is sent again, which a run
  with the ledger rejects as already paid.

Only the standard library is used, so finance can run it anywhere.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
PERIOD = "2027-Q1"
QUARTER_START = date(2027, 1, 1)
QUARTER_END = date(2027, 3, 31)
SECOND_PERIOD = "2027-Q2"
SECOND_QUARTER_START = date(2027, 4, 1)
RESUBMITTED = "C27Q1-0001"  # a Q1 claim sent again with the Q2 claims

FACT_COLUMNS = (
    "partner_id", "period", "partner_name", "region", "role", "track", "sp_member", "joined_on",
    "compliance_ok", "revenue", "revenue_prior_year", "revenue_quota", "cloud_revenue", "security_revenue",
    "ai_revenue", "recurring_revenue", "recurring_target", "gross_margin", "leads", "opportunities",
    "deals_won", "pipeline_count", "pipeline_value", "new_logos", "renewal_rate", "churn_rate", "csat", "nps",
    "adoption_rate", "certifications.sales", "certifications.technical", "certified_staff", "specializations",
    "designations", "marketing_plan_approved", "registered_deals", "registered_deals_won",
    "registered_deal_value", "mdf_balance",
)
CLAIM_COLUMNS = ("claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on",
                 "preapproved", "program_id")

_FIRST = ("Northwind", "Bluewater", "Summit", "Redwood", "Ironbridge", "Silverline", "Harbor", "Crestview",
          "Granite", "Lakeside", "Brightpath", "Keystone", "Pinnacle", "Riverbend", "Stonegate", "Clearsky",
          "Evergreen", "Foxhill", "Oakmont", "Westbay")
_SECOND = ("Systems", "Networks", "Technologies", "Data", "Cloud", "Solutions", "Digital", "Integration",
           "Consulting", "IT Services")


def _money(value: float) -> str:
    return f"{max(value, 0.0):.2f}"


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def partner(rng: random.Random, number: int) -> dict[str, str]:
    """One partner's facts for the quarter."""
    role = rng.choices(("integrator", "provider", "developer", "advisor"), (45, 25, 15, 15))[0]
    track = rng.choices(("solution_provider", "cloud_service_provider", "distributor"), (70, 20, 10))[0]
    sp_member = rng.random() < (0.8 if track == "cloud_service_provider" else 0.08)
    if rng.random() < 0.08:  # joined during the quarter: prorated in the goal-based rebate
        joined_on = QUARTER_START + timedelta(days=rng.randint(1, 85))
    else:
        joined_on = date(2015, 1, 1) + timedelta(days=rng.randint(0, 4000))

    revenue = rng.lognormvariate(math.log(300_000), 1.1) * (4 if track == "distributor" else 1)
    size = _clamp(math.log10(max(revenue, 1) / 50_000), 0, 3)          # 0 (small) .. 3 (very large)
    growth = _clamp(rng.gauss(1.05, 0.15), 0.6, 1.8)
    attainment = _clamp(rng.gauss(0.97, 0.22), 0.3, 1.8)
    quota = 0.0 if rng.random() < 0.03 else round(revenue / attainment, -3)

    security_share = rng.betavariate(1.5, 6)
    ai_share = rng.betavariate(1, 12) * (1 - security_share)
    cloud_share = rng.betavariate(2, 3) * (1 - security_share - ai_share)
    recurring_share = rng.uniform(0.5, 0.95) if track == "cloud_service_provider" else rng.betavariate(1.2, 4)
    recurring = revenue * recurring_share
    recurring_target = round(recurring / _clamp(rng.gauss(1.0, 0.15), 0.5, 1.6), -3) if sp_member else 0.0

    avg_deal = rng.lognormvariate(math.log(60_000), 0.5)
    deals_won = max(0, round(revenue / avg_deal))
    opportunities = round(deals_won / rng.uniform(0.25, 0.6)) + rng.randint(0, 3)   # win rate 25-60%
    leads = round(opportunities / rng.uniform(0.3, 0.7)) + rng.randint(0, 5)      # lead conversion 30-70%
    pipeline_count = round(opportunities * rng.uniform(0.6, 1.4))
    pipeline_value = pipeline_count * avg_deal * rng.uniform(0.7, 1.3)

    registered_deals = round(deals_won * rng.uniform(0.0, 0.6))
    registered_won = min(registered_deals, round(registered_deals * rng.uniform(0.15, 0.8)))
    registered_value = registered_won * avg_deal * rng.uniform(0.8, 1.3)

    certified_staff = int(size * 3 + rng.expovariate(0.5))
    return {
        "partner_id": f"P{number:04d}",
        "period": PERIOD,
        "partner_name": f"{rng.choice(_FIRST)} {rng.choice(_SECOND)} {number:03d}",
        "region": rng.choices(("AMER", "EMEA", "APJ"), (50, 30, 20))[0],
        "role": role,
        "track": track,
        "sp_member": _flag(sp_member),
        "joined_on": joined_on.isoformat(),
        "compliance_ok": _flag(rng.random() < 0.97),
        "revenue": _money(revenue),
        "revenue_prior_year": _money(revenue / growth),
        "revenue_quota": _money(quota),
        "cloud_revenue": _money(revenue * cloud_share),
        "security_revenue": _money(revenue * security_share),
        "ai_revenue": _money(revenue * ai_share),
        "recurring_revenue": _money(recurring),
        "recurring_target": _money(recurring_target),
        "gross_margin": f"{_clamp(rng.gauss(0.20, 0.06), 0.02, 0.45):.3f}",
        "leads": str(leads),
        "opportunities": str(opportunities),
        "deals_won": str(deals_won),
        "pipeline_count": str(pipeline_count),
        "pipeline_value": _money(pipeline_value),
        "new_logos": str(rng.choices(range(9), (30, 25, 17, 10, 7, 5, 3, 2, 1))[0]),
        "renewal_rate": f"{_clamp(rng.gauss(0.88, 0.07), 0.5, 1.0):.3f}",
        "churn_rate": f"{_clamp(rng.gauss(0.03, 0.02), 0.002, 0.15):.3f}",
        "csat": f"{_clamp(rng.gauss(4.2, 0.35), 2.5, 5.0):.1f}",
        "nps": str(round(_clamp(rng.gauss(35, 22), -60, 90))),
        "adoption_rate": f"{rng.betavariate(5, 3):.2f}",
        "certifications.sales": str(min(8, int(size + rng.expovariate(0.7)))),
        "certifications.technical": str(min(12, int(size * 1.5 + rng.expovariate(0.5)))),
        "certified_staff": str(certified_staff),
        "specializations": str(min(6, int(size + rng.expovariate(1.2)))),
        "designations": str(rng.choices(range(5), (25, 35, 25, 10, 5))[0]),
        "marketing_plan_approved": _flag(rng.random() < 0.7),
        "registered_deals": str(registered_deals),
        "registered_deals_won": str(registered_won),
        "registered_deal_value": _money(registered_value),
        # A carried-over fund balance for some partners; an empty cell is a missing fact (opening balance 0).
        "mdf_balance": _money(rng.uniform(500, 8000)) if rng.random() < 0.3 else "",
    }


def claims_for(rng: random.Random, facts: dict[str, str], next_id: list[int], period: str = PERIOD,
               quarter_start: date = QUARTER_START) -> list[dict[str, str]]:
    """MDF claims of one partner in one quarter: co-marketing claims and service-provider proposals."""
    claims = []
    plans = []
    if facts["marketing_plan_approved"] == "true" and int(facts["leads"]) >= 10 and rng.random() < 0.5:
        plans.append(("co_marketing_mdf", ("event", "digital", "webinar", "content", "telemarketing"), 60,
                      rng.randint(1, 3)))
    if facts["sp_member"] == "true" and rng.random() < 0.6:
        plans.append(("service_provider_mdf", ("event", "digital", "webinar", "content"), 45, rng.randint(1, 2)))
    for program_id, activities, window, count in plans:
        for _ in range(count):
            activity = "trade_show" if rng.random() < 0.04 else rng.choice(activities)  # trade shows are not funded
            activity_end = quarter_start + timedelta(days=rng.randint(5, 85))
            late = rng.random() < 0.05
            submitted = activity_end + timedelta(days=rng.randint(window + 1, window + 30) if late
                                                 else rng.randint(3, window))
            claims.append({
                "claim_id": f"C{period[2:4]}{period[5:]}-{next_id[0]:04d}",
                "partner_id": facts["partner_id"],
                "period": period,
                "activity": activity,
                "amount": _money(round(rng.lognormvariate(math.log(4_000), 0.6), 2)),
                "activity_end": activity_end.isoformat(),
                "submitted_on": submitted.isoformat(),
                "preapproved": _flag(rng.random() < 0.93),
                "program_id": program_id,
            })
            next_id[0] += 1
    return claims


def generate(partners: int = 300, seed: int = 2027) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rng = random.Random(seed)
    facts = [partner(rng, number) for number in range(1, partners + 1)]
    next_id = [1]
    claims = [claim for row in facts for claim in claims_for(rng, row, next_id)]
    return facts, claims


# The Q1 figures of a partner that move with its growth into Q2 (counts are rounded again).
_AMOUNTS = ("revenue", "revenue_prior_year", "cloud_revenue", "security_revenue", "ai_revenue", "recurring_revenue",
            "pipeline_value", "registered_deal_value")
_COUNTS = ("leads", "opportunities", "deals_won", "pipeline_count", "registered_deals", "registered_deals_won")


def next_quarter(facts: list[dict[str, str]], seed: int = 2027) -> tuple[list[dict[str, str]],
                                                                          list[dict[str, str]]]:
    """2027-Q2: the same partners a quarter later, their claims, and one Q1 claim sent again."""
    rng = random.Random(seed + 2)
    second = []
    for row in facts:
        moved = dict(row, period=SECOND_PERIOD, mdf_balance="")
        growth = _clamp(rng.gauss(1.02, 0.12), 0.6, 1.6)
        for name in _AMOUNTS:
            moved[name] = _money(float(row[name]) * growth)
        for name in _COUNTS:
            moved[name] = str(round(int(row[name]) * growth))
        moved["registered_deals_won"] = str(min(int(moved["registered_deals"]), int(moved["registered_deals_won"])))
        moved["new_logos"] = str(rng.choices(range(9), (30, 25, 17, 10, 7, 5, 3, 2, 1))[0])
        moved["nps"] = str(round(_clamp(float(row["nps"]) + rng.gauss(0, 8), -60, 90)))
        second.append(moved)
    next_id = [1]
    claims = [claim for row in second
              for claim in claims_for(rng, row, next_id, SECOND_PERIOD, SECOND_QUARTER_START)]
    return second, claims


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=300, help="number of partners (default 300)")
    parser.add_argument("--seed", type=int, default=2027, help="random seed (default 2027)")
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write the two CSV files")
    args = parser.parse_args(argv)
    facts, claims = generate(args.partners, args.seed)
    second, second_claims = next_quarter(facts, args.seed)
    resubmitted = next((claim for claim in claims if claim["claim_id"] == RESUBMITTED), None)
    if resubmitted is not None:
        second_claims.insert(0, dict(resubmitted, period=SECOND_PERIOD))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for quarter, quarter_facts, quarter_claims in (("2027Q1", facts, claims), ("2027Q2", second, second_claims)):
        _write(args.out_dir / f"facts_{quarter}.csv", FACT_COLUMNS, quarter_facts)
        _write(args.out_dir / f"claims_{quarter}.csv", CLAIM_COLUMNS, quarter_claims)
        print(f"wrote {len(quarter_facts)} partners to {args.out_dir / f'facts_{quarter}.csv'} "
              f"and {len(quarter_claims)} claims to {args.out_dir / f'claims_{quarter}.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
