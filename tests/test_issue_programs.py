"""Issue #12's distributor volume rebate as ONE program file, its features together, on both backends.

Retroactive tiers on net sales (revenue − returns), a growth kicker against the same quarter last year that reads
the program's own tier (``this.tier``, ``year_ago.revenue``), a returns reserve as a deduction, and a cap. Every
total below is computed by hand.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

import incentives

VOLUME_REBATE = """\
id: volume_rebate
name: Distributor volume rebate
kind: tier
version: 1
currency: USD
effective: {from: 2026-01-01}
period: quarter
metrics:
  net_sales: "revenue - returns"
tiers:
  qualify_on: net_sales
  mode: retroactive
  levels:
    - {name: Base,   from: 0,       rate: 1%}
    - {name: Silver, from: 500000,  rate: 2%}
    - {name: Gold,   from: 1000000, rate: 3%}
bonuses:
  - {id: growth_kicker, when: "this.tier == 'Gold' and revenue >= 1.1 * year_ago.revenue",
     amount: "0.5% * net_sales", description: Gold growth kicker}
deductions:
  - {id: returns_reserve, when: "returns > 0", amount: "if(returns > 100000, 1% * returns, 0)",
     description: reserve on heavy returns}
cap: 40000
"""


def record(partner: str, period: str, revenue: str, returns: str) -> dict:
    return {"partner_id": partner, "period": period, "revenue": D(revenue), "returns": D(returns)}


HISTORY = [record("P1", "2026-Q1", "1000000", "0"), record("P2", "2026-Q1", "1000000", "0"),
           record("P3", "2026-Q1", "400000", "0"), record("P4", "2026-Q1", "1000000", "0")]
QUARTER = [
    # net 1,150,000: Gold 3% = 34,500.00; 1,200,000 >= 1.1 × 1,000,000: kicker 0.5% × 1,150,000 = 5,750.00;
    # returns 50,000 are not over 100,000: reserve 0.00; 40,250.00 capped at 40,000.00
    record("P1", "2027-Q1", "1200000", "50000"),
    # net 1,050,000: Gold 31,500.00; 1,050,000 < 1,100,000: no kicker; reserve 0.00 (no returns, no line)
    record("P2", "2027-Q1", "1050000", "0"),
    # net 700,000 (Silver 2% = 14,000.00); grew, but not Gold: no kicker; reserve 1% × 200,000 = 2,000.00
    record("P3", "2027-Q1", "900000", "200000"),
    # net 2,000,000: Gold 60,000.00, kicker 10,000.00 (2,200,000 >= 1,100,000), reserve 2,000.00:
    # 68,000.00 capped at 40,000.00
    record("P4", "2027-Q1", "2200000", "200000"),
]


@pytest.fixture(params=["compiled", "durable"])
def engine(request, tmp_path: Path):
    path = tmp_path / "volume_rebate.yaml"
    path.write_text(VOLUME_REBATE, encoding="utf-8")
    with incentives.Engine(incentives.load_programs(path), backend=request.param) as opened:
        yield opened


def test_the_volume_rebate_by_hand(engine):
    run = engine.run(HISTORY + QUARTER, period="2027-Q1")
    got = {result.partner_id: (result.tier, result.total, [(line.kind, line.rule_id, line.amount)
                                                           for line in result.lines])
           for result in run.results}
    assert got == {
        "P1": ("Gold", D("40000.00"), [("base", "tier:Gold", D("34500.00")),
                                       ("bonus", "growth_kicker", D("5750.00")),
                                       ("deduction", "returns_reserve", D("0.00")),
                                       ("cap", "cap", D("-250.00"))]),
        "P2": ("Gold", D("31500.00"), [("base", "tier:Gold", D("31500.00"))]),
        "P3": ("Silver", D("12000.00"), [("base", "tier:Silver", D("14000.00")),
                                         ("deduction", "returns_reserve", D("-2000.00"))]),
        "P4": ("Gold", D("40000.00"), [("base", "tier:Gold", D("60000.00")),
                                       ("bonus", "growth_kicker", D("10000.00")),
                                       ("deduction", "returns_reserve", D("-2000.00")),
                                       ("cap", "cap", D("-28000.00"))]),
    }
    assert {result.period for result in run.results} == {"2027-Q1"}  # 2026-Q1 is history only


def test_explain_lists_a_this_bonus_as_not_fired_only_when_it_did_not_fire(engine):
    # the kicker reads this.tier, so it is matched at its step, not up front: its line tells whether it fired
    run = engine.run(HISTORY + QUARTER, period="2027-Q1")
    not_fired = {}
    for row in QUARTER:
        results = {r.program_id: r for r in run.results if r.partner_id == row["partner_id"]}
        history = [h for h in HISTORY if h["partner_id"] == row["partner_id"]]
        reasons = engine.not_fired(row, results, history).get("volume_rebate", [])
        not_fired[row["partner_id"]] = [(reason.rule_id, reason.values) for reason in reasons]
    assert not_fired == {
        "P1": [],
        "P2": [("growth_kicker", {"this.tier": "Gold", "revenue": D("1050000"), "year_ago.revenue": D("1000000")}),
               ("returns_reserve", {"returns": D("0")})],  # no returns: the reserve's condition did not hold
        "P3": [("growth_kicker", {"this.tier": "Silver", "revenue": D("900000"), "year_ago.revenue": D("400000")})],
        "P4": []}
