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


def test_a_repeating_factor_is_rounded_to_ratio_places_when_computed(linear):
    # revenue 2.8M of 3M = 0.9333333333 (10 places); weighted 0.7 × 0.9333333333 + 0.3 = 0.95333333331;
    # factor 0.5 + 0.5 × 0.15333333331 / 0.2 = 0.883333333275 → 0.8833333333 (half-even, 10 places)
    result = linear.evaluate(partner("2800000", "4", revenue_quota=D("3000000")))["test"]
    line = result.lines[0]
    assert result.details["goals"][0]["attainment"] == D("0.9333333333")
    assert result.attainment == D("0.95333333331")
    assert line.rate == result.details["factor"] == D("0.8833333333")
    assert line.formula == "10,000.00 × ≈88.3333% = 8,833.33"  # 10,000 × 0.8833333333 = 8,833.333333


@pytest.mark.parametrize(("revenue", "attainment"), [
    ("125000", D("0.12")),  # 0.125: a half, rounded to the even 0.12 (half-up would give 0.13)
    ("135000", D("0.14")),  # 0.135: a half, rounded to the even 0.14
    ("133333", D("0.13")),  # 0.133333
])
def test_ratio_places_rounds_attainments_half_even(engine_for, revenue, attainment):
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "rounding: {ratio_places: 2}",
                                     kind="goal"))
    result = engine.evaluate(partner(revenue, "4"))["test"]
    assert result.details["goals"][0]["attainment"] == attainment


def test_a_repeating_active_fraction_is_rounded_to_ratio_places(engine_for):
    engine = engine_for(program_text(GOALS.format(interpolation="linear"), "prorate_by: joined_on",
                                     "rounding: {ratio_places: 4}", kind="goal"))
    # 2027-Q1 has 90 days; joined 2027-03-02 → 30 active days: 30 / 90 = 0.3333 (4 places)
    result = engine.evaluate(partner("1000000", "4", joined_on="2027-03-02"))["test"]
    assert result.details["proration"] == D("0.3333")
    # targets 1,000,000 × 0.3333 = 333,300 and 4 × 0.3333 = 1.3332: both capped at 150%;
    # basis 10,000 × 0.3333 = 3,333 × factor 200% = 6,666
    assert result.total == D("6666.00")


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


# --- per-goal payouts (payout.per_goal) ---------------------------------------------------------

# The MBO rebate: three weighted goals, each with an 80% threshold, a 150% cap and a 1.5×
# accelerator above 100% (factor = attainment up to 100%, then 100% + 1.5 × the excess).
MBO = """
goals:
  targets:
    - {id: revenue, metric: revenue,         target: revenue_quota, weight: 50%, threshold: 80%}
    - {id: margin,  metric: gross_margin,    target: margin_target, weight: 30%, threshold: 80%}
    - {id: certs,   metric: certified_staff, target: 5,             weight: 20%, threshold: 80%}
  attainment_cap: 150%
  payout:
    on: target_incentive
    per_goal: true
    curve:
      - {attainment: 0%,   factor: 0%}
      - {attainment: 100%, factor: 100%}
      - {attainment: 150%, factor: 175%}
"""


def mbo_partner(partner_id, revenue, margin, certs, revenue_quota="1000000"):
    return {"partner_id": partner_id, "period": "2027-Q1", "revenue": D(revenue), "revenue_quota": D(revenue_quota),
            "gross_margin": D(margin), "margin_target": D("200000"), "certified_staff": D(certs),
            "target_incentive": D("10000")}


@pytest.fixture
def mbo(engine_for):
    return engine_for(program_text(MBO, kind="goal"))


def goal_lines(result):
    return [(line.rule_id, line.amount) for line in result.lines]


@pytest.mark.parametrize(("record", "lines", "total", "weighted"), [
    # every goal at 100%: 10,000 × 50% = 5,000; × 30% = 3,000; × 20% = 2,000
    (mbo_partner("P1", "1000000", "200000", "5"),
     [("goal:revenue", D("5000.00")), ("goal:margin", D("3000.00")), ("goal:certs", D("2000.00"))],
     D("10000.00"), D("1")),
    # revenue 79% is under its threshold → 0; margin 110% → 100% + 1.5 × 10% = 115%: 10,000 × 30% × 115% = 3,450;
    # certs 4 / 5 = 80%, exactly the threshold → factor 80%: 10,000 × 20% × 80% = 1,600.
    # weighted 50% × 0.79 + 30% × 1.1 + 20% × 0.8 = 0.395 + 0.33 + 0.16 = 0.885
    (mbo_partner("P2", "790000", "220000", "4"),
     [("goal:revenue", D("0.00")), ("goal:margin", D("3450.00")), ("goal:certs", D("1600.00"))],
     D("5050.00"), D("0.885")),
    # revenue 200% is capped at 150% → 175%: 8,750; margin 125% → 137.5%: 4,125; certs 6 / 5 = 120% → 130%: 2,600.
    # weighted 50% × 1.5 + 30% × 1.25 + 20% × 1.2 = 0.75 + 0.375 + 0.24 = 1.365
    (mbo_partner("P3", "2000000", "250000", "6"),
     [("goal:revenue", D("8750.00")), ("goal:margin", D("4125.00")), ("goal:certs", D("2600.00"))],
     D("15475.00"), D("1.365")),
    # revenue 90% → 4,500; margin 85% → 2,550; certs 3 / 5 = 60% is under the threshold → 0.
    # weighted 0.45 + 0.255 + 0.12 = 0.825
    (mbo_partner("P4", "900000", "170000", "3"),
     [("goal:revenue", D("4500.00")), ("goal:margin", D("2550.00")), ("goal:certs", D("0.00"))],
     D("7050.00"), D("0.825")),
    # revenue 1,100,000 / 900,000 = 1.2222222222 (10 places) → 100% + 1.5 × 0.2222222222 = 1.3333333333:
    # 10,000 × 50% × 1.3333333333 = 6,666.6666665 → 6,666.67; margin and certs on target: 3,000 + 2,000.
    # weighted 0.6111111111 + 0.3 + 0.2 = 1.1111111111
    (mbo_partner("P5", "1100000", "200000", "5", revenue_quota="900000"),
     [("goal:revenue", D("6666.67")), ("goal:margin", D("3000.00")), ("goal:certs", D("2000.00"))],
     D("11666.67"), D("1.1111111111")),
])
def test_per_goal_mbo_rebate_pays_each_goal_on_its_own_attainment(mbo, record, lines, total, weighted):
    result = mbo.evaluate(record)["test"]
    assert goal_lines(result) == lines
    assert result.total == total
    assert result.attainment == weighted


def test_a_per_goal_line_shows_the_goal_attainment_factor_and_weight(mbo):
    result = mbo.evaluate(mbo_partner("P5", "1100000", "200000", "4", revenue_quota="900000"))["test"]
    revenue, _, certs = result.lines
    assert revenue.formula == "10,000.00 × weight 50% × factor ≈133.3333% (attainment ≈122.2222%) = 6,666.67"
    assert revenue.description == "goal 'revenue' at factor ≈133.3333% for attainment ≈122.2222%, weight 50%"
    assert (revenue.basis, revenue.rate, revenue.inputs) == (D("10000"), D("0.66666666665"),
                                                             {"revenue": D("1.2222222222")})
    assert certs.formula == "10,000.00 × weight 20% × factor 80% (attainment 80%) = 1,600.00"
    assert [goal["factor"] for goal in result.details["goals"]] == [D("1.3333333333"), D("1"), D("0.8")]
    assert "factor" not in result.details  # no single curve factor in a per-goal program


def test_a_goal_below_its_threshold_says_so(mbo):
    result = mbo.evaluate(mbo_partner("P2", "790000", "220000", "4"))["test"]
    assert result.lines[0].description == "goal 'revenue' at factor 0% below its threshold 80%, weight 50%"
    assert result.lines[0].formula == "10,000.00 × weight 50% × factor 0% (attainment 79%) = 0.00"


PER_GOAL_OVERRIDES = """
goals:
  targets:
    - {{id: revenue, metric: revenue,   target: revenue_quota, weight: 60%}}
    - {{id: logos,   metric: new_logos, target: 4,             weight: 40%, cap: 110%,
       curve: [{{attainment: 50%, factor: 25%}}, {{attainment: 100%, factor: 100%}}]}}
  attainment_cap: 150%
  payout:
    on: target_incentive
    per_goal: true
    interpolation: {interpolation}
    curve:
      - {{attainment: 80%,  factor: 50%}}
      - {{attainment: 100%, factor: 100%}}
      - {{attainment: 150%, factor: 200%}}
"""


@pytest.mark.parametrize(("interpolation", "revenue", "logos", "lines"), [
    # revenue 120% on the program's curve: 100% + 100% × 20 / 50 = 140%: 10,000 × 60% × 140% = 8,400;
    # logos 6 / 4 = 150% is capped at its own 110%, flat after its own curve's last point: 100% → 4,000
    ("linear", "1200000", "6", [("goal:revenue", D("8400.00")), ("goal:logos", D("4000.00"))]),
    # revenue 70% is below the program curve's first point → 0; logos 3 / 4 = 75% on its own curve:
    # 25% + 75% × 25 / 50 = 62.5%: 10,000 × 40% × 62.5% = 2,500
    ("linear", "700000", "3", [("goal:revenue", D("0.00")), ("goal:logos", D("2500.00"))]),
    # step: logos 75% takes its own curve's point at or below, 50% → 25%: 10,000 × 40% × 25% = 1,000;
    # revenue 120% takes 100%: 6,000
    ("step", "1200000", "3", [("goal:revenue", D("6000.00")), ("goal:logos", D("1000.00"))]),
])
def test_a_goal_may_carry_its_own_cap_and_curve(engine_for, interpolation, revenue, logos, lines):
    engine = engine_for(program_text(PER_GOAL_OVERRIDES.format(interpolation=interpolation), kind="goal"))
    result = engine.evaluate(partner(revenue, logos))["test"]
    assert goal_lines(result) == lines


def test_a_goal_cap_also_caps_the_weighted_attainment(engine_for):
    engine = engine_for(program_text(PER_GOAL_OVERRIDES.format(interpolation="linear"), kind="goal"))
    # revenue 120%, logos 150% capped at its own 110%: 60% × 1.2 + 40% × 1.1 = 0.72 + 0.44 = 1.16
    assert engine.evaluate(partner("1200000", "6"))["test"].attainment == D("1.16")
