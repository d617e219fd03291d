"""Goal programs: weighted attainment, per-goal cap, curves, proration (values computed by hand)."""

from datetime import date
from decimal import Decimal as D

import pytest

from conftest import program_text

GOALS = """
goals:
  targets:
    - {{id: revenue, metric: revenue,   target: revenue_quota, weight: 70%}}
    - {{id: logos,   metric: new_logos, target: 4,             weight: 30%}}
  attainment_cap: 150%
  payout:
    on: target_incentive
    interpolation: {interpolation}
    curve:
      - {{attainment: 80%,  factor: 50%}}
      - {{attainment: 100%, factor: 100%}}
      - {{attainment: 150%, factor: 200%}}
"""


def partner(revenue, logos, **facts):
    return {"partner_id": "P1", "period": "2027-Q1", "revenue": D(revenue), "revenue_quota": D("1000000"),
            "new_logos": D(logos), "target_incentive": D("10000"), **facts}


@pytest.fixture
def linear(engine_for):
    return engine_for(program_text(GOALS.format(interpolation="linear"), kind="goal"))


@pytest.fixture
def step(engine_for):
    return engine_for(program_text(GOALS.format(interpolation="step"), kind="goal"))


def test_on_target_pays_target_incentive(linear):
    result = linear.evaluate(partner("1000000", "4"))["test"]
    assert result.attainment == D("1")
    assert result.total == D("10000.00")
    assert result.lines[0].formula == "10,000.00 × 100% = 10,000.00"


def test_between_knots_interpolates_linearly(linear):
    # weighted = 70% × 0.9 + 30% × 1.0 = 0.93; factor = 50% + 50% × (0.93 − 0.80) / 0.20 = 82.5%
    result = linear.evaluate(partner("900000", "4"))["test"]
    assert result.attainment == D("0.93")
    assert result.details["factor"] == D("0.825")
    assert result.total == D("8250.00")
    assert [goal["attainment"] for goal in result.details["goals"]] == [D("0.9"), D("1")]


def test_step_takes_the_point_at_or_below(step):
    assert step.evaluate(partner("900000", "4"))["test"].total == D("5000.00")


def test_exactly_on_first_knot(linear, step):
    # 70% × 0.8 + 30% × (3.2 / 4) = 0.8 → factor 50%
    assert linear.evaluate(partner("800000", "3.2"))["test"].total == D("5000.00")
    assert step.evaluate(partner("800000", "3.2"))["test"].total == D("5000.00")


def test_below_first_knot_pays_nothing(linear):
    result = linear.evaluate(partner("700000", "3"))["test"]  # 0.49 + 0.225 = 0.715
    assert result.attainment == D("0.715")
    assert result.total == D("0.00")


def test_attainment_cap_per_goal_and_flat_after_last_point(linear):
    result = linear.evaluate(partner("2000000", "8"))["test"]  # 200% each, capped at 150%
    assert result.attainment == D("1.5")
    assert result.total == D("20000.00")


def test_zero_target_is_an_error_for_that_partner(linear):
    record = partner("1000000", "4")
    record["revenue_quota"] = D("0")
    result = linear.evaluate(record)["test"]
    assert result.status == "error"
    assert "goal 'revenue' has a target of zero" in result.errors[0]


def test_mid_period_join_prorates_targets_basis_and_cap(engine_for):
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "prorate_by: joined_on\ncap: 4000",
                                     kind="goal"))
    # 2027-Q1 has 90 days; joined 2027-02-15 → active 45 days → f = 0.5
    # targets 500,000 and 2 are met exactly → factor 100%; basis 10,000 × 0.5 = 5,000; cap 4,000 × 0.5 = 2,000
    result = engine.evaluate(partner("500000", "2", joined_on="2027-02-15"))["test"]
    assert result.details["proration"] == D("0.5")
    assert result.attainment == D("1")
    assert [(line.kind, line.amount) for line in result.lines] == [("base", D("5000.00")), ("cap", D("-3000.00"))]
    assert result.total == D("2000.00")


def test_joined_before_period_is_not_prorated(engine_for):
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "prorate_by: joined_on", kind="goal"))
    result = engine.evaluate(partner("1000000", "4", joined_on="2026-05-01"))["test"]
    assert result.details["proration"] == D("1")
    assert result.total == D("10000.00")


def test_a_repeating_factor_is_shown_rounded_and_kept_exact(linear):
    # revenue 2.8M of 3M = 0.9333…; weighted 0.65333… + 0.3 = 0.95333…; factor 0.5 + 0.5 × 0.15333… / 0.2 = 0.88333…
    result = linear.evaluate(partner("2800000", "4", revenue_quota=D("3000000")))["test"]
    line = result.lines[0]
    assert line.rate == result.details["factor"] == D("0.8833333333333333333333333332")  # 28 significant digits
    assert line.formula == "10,000.00 × ≈88.3333% = 8,833.33"


def test_a_partner_who_joins_after_the_period_is_ineligible_for_it(engine_for):
    # Issue #10, case 5: targets prorated to 0 used to end in "arithmetic error (DivisionByZero)".
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "prorate_by: joined_on", kind="goal"))
    result = engine.evaluate(partner("500000", "2", joined_on="2027-04-01"))["test"]  # Q1 ends 2027-03-31
    assert (result.status, result.total, result.lines, result.errors) == ("ineligible", D("0"), [], [])
    assert result.details["proration"] == D("0")
    assert [(r.rule_id, r.when, r.values) for r in result.reasons] == [
        ("prorate_by", "joined_on <= 2027-03-31", {"joined_on": date(2027, 4, 1)})]
    assert result.reasons[0].description == "joined after the period ended (2027-03-31): active for none of it"


def test_joining_after_the_period_is_listed_with_every_failed_eligibility_rule(engine_for):
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "prorate_by: joined_on",
                                     "eligibility:\n  - {id: has_quota, when: 'revenue_quota > 0'}", kind="goal"))
    result = engine.evaluate(partner("500000", "2", joined_on="2027-06-30", revenue_quota=D("0")))["test"]
    assert [r.rule_id for r in result.reasons] == ["prorate_by", "has_quota"]


def test_joining_on_the_last_day_is_one_day_of_the_period(engine_for):
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "prorate_by: joined_on", kind="goal"))
    # 1 of 90 days: targets 1,000,000/90 and 4/90 are met 90 times over, capped at 150% → factor 200%;
    # basis 10,000 / 90 = 111.11… × 200% = 222.22
    result = engine.evaluate(partner("1000000", "4", joined_on="2027-03-31"))["test"]
    assert result.status == "ok"
    assert result.total == D("222.22")
