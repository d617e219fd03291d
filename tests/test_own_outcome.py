"""Deductions, and a program's own outcome (``this.*``) read by bonuses, deductions, cap and min_payout.

Every case runs on both rule backends: conditions that read ``this.*`` are matched at their step,
by a matcher of their own, and both backends must match them alike.
"""

from decimal import Decimal as D

import pytest

from conftest import program_text
from incentives.compiler import CompiledProgram
from incentives.loading import load_programs
from incentives.models import Program
from incentives.rules.compiled import CompiledBackend
from test_parity import DURABLE_MISSING

BACKENDS = ["compiled", pytest.param("durable", marks=pytest.mark.skipif(DURABLE_MISSING is not None,
                                                                       reason=str(DURABLE_MISSING)))]

# The distributor volume rebate: retroactive tiers on net sales (returns netted), a growth
# kicker for Gold partners only (it no longer repeats the Gold threshold), a cap.
VOLUME_REBATE = """
metrics:
  net_sales: "sales - returns"
tiers:
  qualify_on: net_sales
  levels:
    - {name: Silver, from: 0,      rate: 2%}
    - {name: Gold,   from: 500000, rate: 3%}
bonuses:
  - {id: growth_kicker, when: "this.tier == 'Gold' and sales >= 110% * sales_last_year", multiplier: 120%}
cap: 20000
"""


def partner(partner_id="P1", **facts):
    return {"partner_id": partner_id, "period": "2027-Q1", **{k: D(v) for k, v in facts.items()}}


def lines(result):
    return [(line.kind, line.rule_id, line.amount) for line in result.lines]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bonus_reads_its_own_programs_tier(engine_for, backend):
    engine = engine_for(program_text(VOLUME_REBATE), backend=backend)
    # net 700,000 − 50,000 = 650,000: Gold, 3% = 19,500.00; 700,000 ≥ 110% × 550,000 = 605,000: kicker
    # 19,500 × 20% = 3,900.00; 23,400.00 over the cap of 20,000 → −3,400.00
    gold = engine.evaluate(partner(sales=700000, returns=50000, sales_last_year=550000))["test"]
    assert lines(gold) == [("base", "tier:Gold", D("19500.00")), ("multiplier", "growth_kicker", D("3900.00")),
                           ("cap", "cap", D("-3400.00"))]
    assert gold.total == D("20000.00")
    # net 470,000: Silver, 2% = 9,400.00; growth of 380% but not Gold: no kicker
    silver = engine.evaluate(partner(sales=480000, returns=10000, sales_last_year=100000))["test"]
    assert lines(silver) == [("base", "tier:Silver", D("9400.00"))]
    # Gold (600,000 × 3% = 18,000.00) without growth: 600,000 < 660,000
    flat = engine.evaluate(partner(sales=600000, returns=0, sales_last_year=600000))["test"]
    assert lines(flat) == [("base", "tier:Gold", D("18000.00"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_step_sees_the_subtotal_before_it(engine_for, backend):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Gold, from: 0, rate: 10%}
        bonuses:
          - {id: doubled,  when: "this.subtotal >= 1000", multiplier: 150%}
          - {id: again,    when: "this.subtotal >= 1500", multiplier: 200%}
          - {id: reward,   when: "this.subtotal >= 1500", amount: "this.subtotal - this.base"}
        deductions:
          - {id: reserve, when: "this.subtotal >= 2000", amount: "10% * this.subtotal", description: reserve}
        min_payout: "this.subtotal + 1"
        """), backend=backend)
    result = engine.evaluate(partner(revenue=10000))["test"]
    # base 10% × 10,000 = 1,000.00. Multipliers both see the base (1,000): 'doubled' adds 500.00, 'again'
    # (≥ 1,500) does not fire although the subtotal reaches 1,500 after 'doubled'. The additive bonus sees
    # 1,500: fires, 1,500 − 1,000 = 500.00 → 2,000.00. The deduction sees 2,000: 10% = 200.00 → 1,800.00.
    # min_payout sees 1,800 (after the cap step): 1,801 > 1,800 → −1,800.00, total 0.
    assert lines(result) == [("base", "tier:Gold", D("1000.00")), ("multiplier", "doubled", D("500.00")),
                             ("bonus", "reward", D("500.00")), ("deduction", "reserve", D("-200.00")),
                             ("minimum", "min_payout", D("-1800.00"))]
    assert result.lines[2].inputs == {"this.base": D("1000.00"), "this.subtotal": D("1500.00")}
    assert result.lines[3].formula == "−(10% * this.subtotal) = -200.00"
    assert result.lines[4].description == "below the minimum payout of 1,801.00 (this.subtotal + 1)"
    assert result.total == D("0.00")


@pytest.mark.parametrize("backend", BACKENDS)
def test_deductions_come_after_bonuses_and_before_the_floor_and_cap(engine_for, backend):
    body = """
        tiers:
          qualify_on: revenue
          levels:
            - {name: Gold, from: 0, rate: 10%}
        bonuses:
          - {id: logo, when: "new_logos >= 1", amount: "100 * new_logos"}
        deductions:
          - {id: returns_reserve, amount: "2% * returns", description: Returns reserve}
          - {id: chargeback, when: "chargebacks > 0", amount: chargebacks, description: Chargebacks}
        cap: 1000
        """
    engine = engine_for(program_text(body), backend=backend)
    # base 10% × 10,000 = 1,000.00; bonus 2 × 100 = 200.00 → 1,200.00; 2% × 5,000 = 100.00 → 1,100.00;
    # chargebacks 0: no line; the cap (1,000) comes after the deductions: −100.00
    capped = engine.evaluate(partner(revenue=10000, new_logos=2, returns=5000, chargebacks=0))["test"]
    assert lines(capped) == [("base", "tier:Gold", D("1000.00")), ("bonus", "logo", D("200.00")),
                             ("deduction", "returns_reserve", D("-100.00")), ("cap", "cap", D("-100.00"))]
    assert capped.lines[2].description == "Returns reserve"
    assert capped.lines[2].formula == "−(2% * returns) = -100.00"
    assert capped.lines[2].inputs == {"returns": D(5000)}
    assert capped.total == D("1000.00")
    # base 100.00; deductions 2% × 1,000 = 20.00 and 300.00 → −220.00: the floor brings it to 0
    floored = engine.evaluate(partner(revenue=1000, new_logos=0, returns=1000, chargebacks=300))["test"]
    assert lines(floored) == [("base", "tier:Gold", D("100.00")), ("deduction", "returns_reserve", D("-20.00")),
                              ("deduction", "chargeback", D("-300.00")), ("floor", "floor", D("220.00"))]
    assert floored.total == D("0.00")
    # with allow_negative the −220.00 stands: a clawback
    clawback = engine_for(program_text(body, "allow_negative: true"), backend=backend)
    assert clawback.evaluate(partner(revenue=1000, new_logos=0, returns=1000, chargebacks=300))["test"].total \
        == D("-220.00")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_negative_deduction_amount_is_an_error_naming_it(engine_for, backend):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Gold, from: 0, rate: 10%}
        deductions:
          - {id: returns_reserve, amount: "2% * returns", description: Returns reserve}
        """), backend=backend)
    result = engine.evaluate(partner(revenue=1000, returns=-500))["test"]
    assert result.status == "error"
    assert result.errors == ["deduction 'returns_reserve' amount (2% * returns) is negative: -10.00"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_goal_program_reads_its_attainment_and_base(engine_for, backend):
    engine = engine_for(program_text("""
        goals:
          targets:
            - {id: revenue, metric: revenue, target: quota, weight: 100%}
          payout:
            on: target_incentive
            curve:
              - {attainment: 100%, factor: 100%}
              - {attainment: 150%, factor: 150%}
        bonuses:
          - {id: overachiever, when: "this.attainment >= 120%", amount: "10% * this.base"}
        deductions:
          - {id: draw, when: "this.attainment < 110%", amount: draw, description: Advance already paid}
        cap: "this.base * 105%"
        """, kind="goal"), backend=backend)
    # attainment 130,000 / 100,000 = 130%: factor 130% (linear), base 10,000 × 130% = 13,000.00;
    # bonus 10% × 13,000 = 1,300.00 → 14,300.00; no draw (130% ≥ 110%);
    # cap 13,000 × 105% = 13,650.00 → −650.00
    high = engine.evaluate(partner(revenue=130000, quota=100000, target_incentive=10000, draw=2000))["test"]
    assert lines(high) == [("base", "goal:payout", D("13000.00")), ("bonus", "overachiever", D("1300.00")),
                           ("cap", "cap", D("-650.00"))]
    assert high.lines[2].description == "cap of 13,650.00 per partner and period (this.base * 105%)"
    assert high.lines[2].inputs == {"cap": D("13650.00"), "this.base": D("13000.00")}
    # attainment 105%: base 10,500.00; no bonus; draw 2,000.00 → 8,500.00 (under the cap 11,025.00)
    low = engine.evaluate(partner(revenue=105000, quota=100000, target_incentive=10000, draw=2000))["test"]
    assert lines(low) == [("base", "goal:payout", D("10500.00")), ("deduction", "draw", D("-2000.00"))]
    assert low.total == D("8500.00")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_mdf_program_deducts_from_its_paid_claims(engine_for, backend):
    engine = engine_for(program_text("""
        mdf:
          accrual: {on: revenue, rate: 2%}
          claims: {reimbursement: 50%, activities: [event]}
        deductions:
          - {id: agency_fee, when: "this.base >= 1000", amount: "5% * this.base", description: Agency fee}
        """, kind="mdf"), backend=backend)
    claims = [{"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "3000",
               "activity_end": "2027-01-20", "submitted_on": "2027-02-01", "preapproved": True}]
    # accrued 100,000 × 2% = 2,000 available; the claim pays 50% × 3,000 = 1,500.00 (the base);
    # 1,500 ≥ 1,000: the fee is 5% × 1,500 = 75.00 → 1,425.00
    result = engine.evaluate(partner(revenue=100000), claims=claims)["test"]
    assert lines(result) == [("mdf_claim", "claim:C1", D("1500.00")), ("deduction", "agency_fee", D("-75.00"))]
    assert result.total == D("1425.00")


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_tier_reached_reads_as_none(engine_for, backend):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Gold, from: 500000, rate: 3%}
        bonuses:
          - {id: not_gold, when: "this.tier != 'Gold'", amount: 50}
        """), backend=backend)
    # no level reached: base 0 and this.tier is none, which is not 'Gold': the bonus pays 50.00
    result = engine.evaluate(partner(revenue=1000))["test"]
    assert result.status == "ok"
    assert result.tier is None
    assert lines(result) == [("bonus", "not_gold", D("50.00"))]


def test_an_expression_cap_is_not_prorated_a_number_cap_is(engine_for):
    body = """
        goals:
          targets:
            - {id: revenue, metric: revenue, target: quota, weight: 100%}
          payout:
            on: target_incentive
            curve:
              - {attainment: 0%, factor: 0%}
              - {attainment: 200%, factor: 200%}
        prorate_by: joined_on
        """
    record = {**partner(revenue=100000, quota=100000, target_incentive=10000), "joined_on": "2027-02-15"}
    # joined 2027-02-15: active 45 of the quarter's 90 days, f = 1/2. Target 50,000: attainment 200%,
    # factor 200%; basis 10,000 × 1/2 = 5,000; base 10,000.00.
    fixed = engine_for(program_text(body, "cap: 8000", kind="goal")).evaluate(record)["test"]
    # a number cap is prorated: 8,000 × 1/2 = 4,000.00 → −6,000.00
    assert lines(fixed) == [("base", "goal:payout", D("10000.00")), ("cap", "cap", D("-6000.00"))]
    # an expression is the cap as written: it reads values that are prorated already (8,000 here)
    written = engine_for(program_text(body, "cap: '4000 + 4000'", kind="goal")).evaluate(record)["test"]
    assert lines(written) == [("base", "goal:payout", D("10000.00")), ("cap", "cap", D("-2000.00"))]


def test_a_cap_expression_that_is_negative_is_an_error(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Gold, from: 0, rate: 10%}
        cap: "allowance - 100"
        """))
    result = engine.evaluate(partner(revenue=1000, allowance=40))["test"]
    assert result.status == "error"
    assert result.errors == ["cap (allowance - 100) is negative: -60"]


def test_own_outcome_names_are_not_required_facts(engine_for):
    engine = engine_for(program_text(VOLUME_REBATE))
    result = engine.evaluate(partner(sales=1, returns=0))["test"]
    assert result.errors == ["missing facts: sales_last_year"]


class CountingBackend(CompiledBackend):
    """The compiled backend, counting the matchers it compiles."""

    def __init__(self):
        self.compiled = 0

    def compile(self, conditions, *, ruleset_name):
        self.compiled += 1
        return super().compile(conditions, ruleset_name=ruleset_name)


def test_a_program_without_this_names_compiles_one_matcher(write_program):
    plain = write_program(program_text(VOLUME_REBATE.replace("this.tier == 'Gold' and ", "")), "plain.yaml")
    backend = CountingBackend()
    CompiledProgram(load_programs(plain)[0], backend, "plain")
    assert backend.compiled == 1
    # the kicker reads this.tier: the multipliers' step gets a matcher of its own
    own = write_program(program_text(VOLUME_REBATE, id="own"), "own.yaml")
    backend = CountingBackend()
    CompiledProgram(load_programs(own)[0], backend, "own")
    assert backend.compiled == 2


def test_the_schema_shows_deductions_and_cap_as_number_or_expression():
    # what `incentives schema` prints: the models' JSON Schema
    schema = Program.model_json_schema(by_alias=True)
    deduction = schema["$defs"]["Deduction"]
    assert set(deduction["properties"]) == {"id", "when", "amount", "description"}
    assert set(deduction["required"]) == {"id", "amount", "description"}
    assert deduction["additionalProperties"] is False
    for key in ("cap", "min_payout"):
        number_or_text = schema["properties"][key]["anyOf"][0]["anyOf"]
        assert number_or_text == [{"type": "number", "minimum": 0}, {"type": "string"}]
