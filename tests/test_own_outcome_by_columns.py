"""The program's own outcome (this.tier, this.attainment, this.base, this.subtotal) by columns
(kinds.steps_by_columns, BlockEvaluation.own): hand-computed blocks, and parity with the per-record path's CSV rows
over random programs whose bonuses, deductions, cap and minimum read it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives.columnar.program import BY_COLUMNS, LINE_ROWS, PAYOUT_ROW

from by_columns_support import assert_parity, both, compiled_from, facts_file

HEAD = """\
id: o
name: O
kind: KIND
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
fiscal_year_start: "01-01"
rounding: {places: 2, mode: half_up, ratio_places: 4}
"""

TIERS = HEAD.replace("KIND", "tier") + """\
tiers:
  qualify_on: revenue
  levels:
    - {name: Silver, from: 0, rate: 1%}
    - {name: Gold, from: 5000, rate: 2%}
"""

OWN_TIER = TIERS + """\
bonuses:
  - {id: gold_kick, when: "this.tier == 'Gold'", multiplier: 110%}
  - {id: big, when: "this.subtotal >= 100", amount: "this.subtotal * 0.1", description: ten percent}
  - {id: base_share, when: "this.base > 0", amount: "this.base * 0.05", description: base share}
deductions:
  - {id: over, when: "this.subtotal > 200", amount: "this.subtotal - 200", description: over 200}
cap: "this.base * 1.2"
min_payout: "if(this.subtotal > 0, 5, 0)"
"""


def test_tier_program_reading_its_own_outcome_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, OWN_TIER)
    frame, results = both(compiled, facts_file(tmp_path, (
        "partner_id,period,revenue\n"
        "P1,2027-Q1,10000\n"    # Gold: every step reads its subtotal
        "P2,2027-Q1,3000\n"     # Silver
        "P3,2027-Q1,100\n"      # below the minimum payout
        "P4,2027-Q1,-500\n"     # no tier: this.tier is None, unequal to 'Gold'; no base line
        "P5,2027-Q1,7000\n")))  # capped at this.base × 1.2
    assert assert_parity(frame, results) == 5
    assert results[3].status == "ok" and results[3].tier is None
    # P1: 10000 × 2% = 200.00 (the base); Gold: + 200.00 × 10% = 20.00 → 220.00; the bonuses see 220.00:
    # big 220.00 × 0.1 = 22.00, base_share 200.00 × 0.05 = 10.00 → 252.00; the deduction sees 252.00 > 200:
    # − 52.00 → 200.00; cap 200.00 × 1.2 = 240.00 not reached; minimum 5 not reached
    assert frame.row(0, named=True)[PAYOUT_ROW] == "P1,2027-Q1,o,1,ok,Gold,,200.00,USD\n"
    assert frame.row(0, named=True)[LINE_ROWS] == (
        'P1,2027-Q1,o,1,base,tier:Gold,Gold tier rate on revenue,10000.00,0.02,200.00,"10,000.00 × 2% = 200.00"\n'
        "P1,2027-Q1,o,2,multiplier,gold_kick,gold_kick (this.tier == 'Gold'),200.00,0.1,20.00,"
        "200.00 × (110% − 100%) = 20.00\n"
        "P1,2027-Q1,o,3,bonus,big,ten percent,22.00,,22.00,this.subtotal * 0.1 = 22.00\n"
        "P1,2027-Q1,o,4,bonus,base_share,base share,10.00,,10.00,this.base * 0.05 = 10.00\n"
        "P1,2027-Q1,o,5,deduction,over,over 200,52.00,,-52.00,−(this.subtotal - 200) = -52.00\n")
    # P2: 3000 × 1% = 30.00; base_share 1.50 → 31.50. P3: 1.00 + 0.05 = 1.05 < 5: − 1.05 → 0.
    # P5: 7000 × 2% = 140.00; × 10% → 154.00; big 15.40, base_share 7.00 → 176.40 (no deduction);
    # cap 140.00 × 1.2 = 168.00: 168.00 − 176.40 = −8.40 → 168.00
    # P4: no tier, no line: this.base = this.subtotal = 0, no step fires
    assert frame["total"].to_list() == [20000, 3150, 0, 0, 16800]
    assert frame.row(3, named=True)[PAYOUT_ROW] == "P4,2027-Q1,o,1,ok,,,0.00,USD\n"
    assert frame.row(3, named=True)[LINE_ROWS] == ""
    assert frame.row(4, named=True)[LINE_ROWS].endswith(
        "P5,2027-Q1,o,5,cap,cap,cap of 168.00 per partner and period (this.base * 1.2),176.40,,-8.40,"
        "168.00 − 176.40 = -8.40\n")
    assert frame.row(2, named=True)[LINE_ROWS].endswith(
        "P3,2027-Q1,o,3,minimum,min_payout,\"below the minimum payout of 5.00 (if(this.subtotal > 0, 5, 0))\",1.05,,"
        "-1.05,1.05 < 5.00: pays 0.00 = -1.05\n")


GOAL = HEAD.replace("KIND", "goal") + """\
goals:
  targets:
    - {id: rev, metric: revenue, target: quota, weight: 100%}
  payout:
    on: 1000
    curve:
      - {attainment: 0%, factor: 0%}
      - {attainment: 200%, factor: 200%}
bonuses:
  - {id: beyond, when: "this.attainment > 1", amount: "(this.attainment - 1) * 100", description: beyond}
"""


def test_goal_program_reading_its_attainment_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, GOAL)
    frame, results = both(compiled, facts_file(tmp_path, (
        "partner_id,period,revenue,quota\nP1,2027-Q1,1500,1000\nP2,2027-Q1,800,1000\nP3,2027-Q1,2000,3000\n")))
    assert assert_parity(frame, results) == 3
    # P1: 1500 / 1000 = 1.5: 1000 × 150% = 1500.00; (1.5 − 1) × 100 = 50.00 → 1550.00
    # P2: 0.8: 800.00, no bonus. P3: 2000 / 3000 = 0.6667: 666.70
    assert frame["total"].to_list() == [155000, 80000, 66670]
    assert frame.row(0, named=True)[LINE_ROWS].endswith(
        "P1,2027-Q1,o,2,bonus,beyond,beyond,50.00,,50.00,(this.attainment - 1) * 100 = 50.00\n")


def test_a_step_condition_that_raises_goes_per_record(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, TIERS + """\
bonuses:
  - {id: b, when: "this.subtotal > limit", amount: "1"}
  - {id: c, when: "this.tier < 'H'", amount: "2"}
""")
    frame, results = both(compiled, facts_file(tmp_path, (
        "partner_id,period,revenue,limit\n"
        "P1,2027-Q1,1000,5\nP2,2027-Q1,1000,\nP3,2027-Q1,1000,20\nP4,2027-Q1,6000,0\nP5,2027-Q1,-1,0\n")))
    # P2's limit is missing where the step reads it, P5 has no tier to order: errors per record
    assert assert_parity(frame, results) == 3
    assert frame[BY_COLUMNS].to_list() == [True, False, True, True, False]
    assert [result.status for result in results] == ["ok", "error", "ok", "ok", "error"]
    # P1: 10.00 > 5: + 1.00 → 11.00; P3: 10.00 ≤ 20 → 10.00 ('Silver' < 'H' is false);
    # P4: Gold 6000 × 2% = 120.00 > 0: + 1.00, 'Gold' < 'H': + 2.00 → 123.00
    assert frame["total"].to_list() == [1100, None, 1000, 12300, None]


WHENS = ["this.subtotal > 50", "this.base >= 20", "this.tier == 'Gold'", "this.tier != 'Silver' and x > 1",
         "this.tier in ['Gold', 'Platinum']", "this.tier >= 'H'",
         "x > this.subtotal", "this.subtotal < 0", "true"]
AMOUNTS = ["this.subtotal * 0.015", "this.base", "abs(this.subtotal - x)", "if(this.tier == 'Gold', x, 2.5)",
           "max(this.subtotal, 0) / 3", "x"]
LIMITS = ["", "this.base * 1.5", "this.subtotal + x", "if(this.subtotal > 100, 100, 10)"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(multiplier_when=st.sampled_from(WHENS), bonus_when=st.sampled_from(WHENS), bonus=st.sampled_from(AMOUNTS),
       deduction_when=st.sampled_from(WHENS), deduction=st.sampled_from(AMOUNTS), cap=st.sampled_from(LIMITS),
       minimum=st.sampled_from(LIMITS), negative=st.booleans(),
       rows=st.lists(st.tuples(st.one_of(st.none(), st.decimals(min_value=Decimal("-2000"),
                                                                max_value=Decimal("20000"), places=2)),
                               st.sampled_from(["0", "1.5", "30", "", "-4"])), min_size=1, max_size=12))
def test_random_programs_reading_their_own_outcome_parity(tmp_path_factory, multiplier_when, bonus_when, bonus,
                                                          deduction_when, deduction, cap, minimum, negative,
                                                          rows) -> None:
    tmp_path = tmp_path_factory.mktemp("own")
    program = (TIERS + f"allow_negative: {str(negative).lower()}\n"
               + (f'cap: "{cap}"\n' if cap else "") + (f'min_payout: "{minimum}"\n' if minimum else "")
               + f'bonuses:\n  - {{id: m, when: "{multiplier_when}", multiplier: 125%}}\n'
               + f'  - {{id: a, when: "{bonus_when}", amount: "{bonus}"}}\n'
               + f'deductions:\n  - {{id: d, when: "{deduction_when}", amount: "{deduction}", description: d}}\n')
    compiled = compiled_from(tmp_path, program)
    facts = facts_file(tmp_path, "partner_id,period,revenue,x\n" + "".join(
        f"P{index},2027-Q1,{'' if revenue is None else revenue},{x}\n" for index, (revenue, x) in enumerate(rows)))
    frame, results = both(compiled, facts)
    computed = assert_parity(frame, results)
    # a row with a revenue and an x is computed unless a step raises on it per record (a negative amount or
    # limit, an ordering of no tier); or, with '/', its quotient's 28 digits do not fit the expression's scale
    for row, result, (revenue, x) in zip(frame.iter_rows(named=True), results, rows):
        if revenue is not None and x != "" and result.status != "error" and "/" not in program:
            assert row[BY_COLUMNS], (row["partner_id"], result)
    assert computed <= len(rows)
