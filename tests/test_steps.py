"""The shared steps in the SPEC's order: eligibility, multipliers, bonuses, cap, minimum, budget."""

from decimal import Decimal as D

from conftest import program_text

GOLD_ONLY = """
tiers:
  qualify_on: revenue
  levels:
    - {name: Gold, from: 0, rate: 3.5%}
"""


def partner(partner_id="P1", revenue="612500", **facts):
    return {"partner_id": partner_id, "period": "2027-Q1", "revenue": D(revenue), **facts}


def test_failed_eligibility_lists_every_failed_rule_with_values(engine_for):
    engine = engine_for(program_text("""
        eligibility:
          - {id: active, when: "status == 'active'", description: Partner agreement active}
          - {id: trained, when: "trained_reps >= 2"}
          - {id: solvent, when: "dso <= 90"}
        """, GOLD_ONLY))
    result = engine.evaluate(partner(status="suspended", trained_reps=1, dso=30))["test"]
    assert result.status == "ineligible"
    assert result.total == D("0")
    assert result.lines == []
    assert [(r.rule_id, r.when, r.values) for r in result.reasons] == [
        ("active", "status == 'active'", {"status": "suspended"}),
        ("trained", "trained_reps >= 2", {"trained_reps": D("1")}),
    ]
    assert result.reasons[0].description == "Partner agreement active"


def test_multiplier_then_bonus_then_cap_in_order(engine_for):
    engine = engine_for(program_text(GOLD_ONLY, """
        bonuses:
          - {id: new_logo,   when: "new_logos >= 1", amount: "500 * new_logos"}
          - {id: nps_kicker, when: "nps >= 50",      multiplier: 110%}
        cap: 25000
        """))
    result = engine.evaluate(partner(nps=D(55), new_logos=D(3)))["test"]
    # base 21,437.50; multiplier 10% of it = 2,143.75 (multipliers come before additive bonuses
    # whatever their file order); bonus 1,500.00; subtotal 25,081.25 → cap line −81.25
    assert [(l.n, l.kind, l.rule_id, l.amount) for l in result.lines] == [
        (1, "base", "tier:Gold", D("21437.50")),
        (2, "multiplier", "nps_kicker", D("2143.75")),
        (3, "bonus", "new_logo", D("1500.00")),
        (4, "cap", "cap", D("-81.25")),
    ]
    assert result.lines[1].formula == "21,437.50 × (110% − 100%) = 2,143.75"
    assert result.lines[2].formula == "500 * new_logos = 1,500.00"
    assert result.lines[2].inputs == {"new_logos": D(3)}
    assert result.total == D("25000.00")


def test_unmatched_bonus_adds_no_line(engine_for):
    engine = engine_for(program_text(GOLD_ONLY, """
        bonuses:
          - {id: nps_kicker, when: "nps >= 50", multiplier: 110%}
        """))
    result = engine.evaluate(partner(nps=D(49)))["test"]
    assert [line.kind for line in result.lines] == ["base"]


def test_cap_reached_exactly_adds_no_line(engine_for):
    engine = engine_for(program_text(GOLD_ONLY, "cap: 21437.50"))
    result = engine.evaluate(partner())["test"]
    assert [line.kind for line in result.lines] == ["base"]
    assert result.total == D("21437.50")


def test_minimum_payout_zeroes_a_small_total(engine_for):
    engine = engine_for(program_text(GOLD_ONLY, "min_payout: 100"))
    result = engine.evaluate(partner(revenue="2000"))["test"]  # 70.00 < 100
    assert [(line.kind, line.amount) for line in result.lines] == [("base", D("70.00")), ("minimum", D("-70.00"))]
    assert result.total == D("0.00")
    at_minimum = engine.evaluate(partner(revenue="2857.15"))["test"]  # 100.00025 → 100.00
    assert at_minimum.total == D("100.00")


def test_budget_scales_by_largest_remainder_with_ties_by_partner_id(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Only, from: 0, rate: 10%}
        budget: 2000
        """))
    run = engine.run([partner("P2", "10000"), partner("P10", "10000"), partner("P1", "10000")])
    # each requested 1,000.00; 2,000 / 3,000 → 666.666… each; floors sum to 1,999.98 and the two
    # remaining cents go to the equal remainders in partner_id order: "P1" < "P10" < "P2"
    totals = {result.partner_id: result.total for result in run.results}
    assert totals == {"P1": D("666.67"), "P10": D("666.67"), "P2": D("666.66")}
    assert run.totals["test"] == D("2000.00")
    budget_line = run.results[0].lines[-1]
    assert (budget_line.kind, budget_line.amount) == ("budget", D("-333.33"))
    assert sum(line.amount for line in run.results[2].lines) == run.results[2].total


def test_budget_not_exceeded_leaves_totals(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Only, from: 0, rate: 10%}
        budget: 5000
        """))
    run = engine.run([partner("P1", "10000"), partner("P2", "10000")])
    assert [result.total for result in run.results] == [D("1000.00"), D("1000.00")]
    assert all(line.kind != "budget" for result in run.results for line in result.lines)


def test_computed_metrics_and_defaults(engine_for):
    engine = engine_for(program_text("""
        defaults: {services_revenue: 0}
        metrics:
          total_revenue: "product_revenue + services_revenue"
        tiers:
          qualify_on: total_revenue
          levels:
            - {name: Only, from: 0, rate: 1%}
        """))
    result = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "product_revenue": "1000"})["test"]
    assert result.total == D("10.00")
    result = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "product_revenue": "1000",
                              "services_revenue": "500"})["test"]
    assert result.total == D("15.00")


def test_missing_facts_make_an_error_naming_them(engine_for):
    engine = engine_for(program_text(GOLD_ONLY, """
        bonuses:
          - {id: nps_kicker, when: "nps >= 50 and csat > 4", multiplier: 110%}
        """))
    result = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": 100})["test"]
    assert result.status == "error"
    assert result.errors == ["missing facts: csat, nps"]


def test_type_error_in_a_rule_is_an_error_result(engine_for):
    engine = engine_for(program_text(GOLD_ONLY, """
        bonuses:
          - {id: nps_kicker, when: "nps >= 50", multiplier: 110%}
        """))
    result = engine.evaluate(partner(nps="high"))["test"]
    assert result.status == "error"
    assert result.errors == ["rule 'bonus:nps_kicker': cannot compare text 'high' >= number 50: "
                             "only two numbers, two texts or two dates can be ordered"]


# --- a negative subtotal (issue #10, case 4) ------------------------------------------------

NET_SALES = """
tiers:
  qualify_on: gross_sales
  pay_on: "gross_sales - returns"
  levels:
    - {name: Gold, from: 0, rate: 2%}
"""


def net(partner_id, gross, returns):
    return {"partner_id": partner_id, "period": "2027-Q1", "gross_sales": D(gross), "returns": D(returns)}


def test_a_negative_base_is_floored_at_zero_with_a_floor_line(engine_for):
    engine = engine_for(program_text(NET_SALES))
    # net sales 10,000 − 20,000 = −10,000 × 2% = −200.00; the floor line brings the total to 0
    result = engine.evaluate(net("P1", "10000", "20000"))["test"]
    assert result.status == "ok"
    assert [(l.n, l.kind, l.rule_id, l.amount) for l in result.lines] == [
        (1, "base", "tier:Gold", D("-200.00")), (2, "floor", "floor", D("200.00"))]
    assert result.lines[1].formula == "-200.00 < 0: pays 0.00 = 200.00"
    assert result.lines[1].basis == D("-200.00")
    assert result.total == D("0.00")


def test_the_floor_comes_after_bonuses_and_before_the_minimum(engine_for):
    engine = engine_for(program_text(NET_SALES, """
        bonuses:
          - {id: loyal, when: "true", amount: "50"}
        min_payout: 100
        """))
    # −200.00 + 50.00 = −150.00 → floor +150.00 → 0.00, which the minimum leaves alone
    result = engine.evaluate(net("P1", "10000", "20000"))["test"]
    assert [(l.kind, l.amount) for l in result.lines] == [
        ("base", D("-200.00")), ("bonus", D("50.00")), ("floor", D("150.00"))]
    assert result.total == D("0.00")


def test_allow_negative_keeps_a_negative_total_and_a_budget_scales_only_what_is_paid(engine_for):
    engine = engine_for(program_text(NET_SALES, "allow_negative: true\nbudget: 100"))
    run = engine.run([net("P1", "10000", "20000"), net("P2", "10000", "0"), net("P3", "5000", "0")])
    # P1: −200.00 stands (a clawback); P2 200.00 and P3 100.00 ask 300.00 of a budget of 100.00:
    # scaled by 1/3 → 66.666… and 33.333…; the cent left goes to the larger remainder (P2)
    totals = {result.partner_id: result.total for result in run.results}
    assert totals == {"P1": D("-200.00"), "P2": D("66.67"), "P3": D("33.33")}
    assert [line.kind for line in run.results[0].lines] == ["base"]
    assert run.totals["test"] == D("-100.00") == sum(totals.values())


def test_copied_values_keep_short_texts_and_lists_and_cut_long_ones():
    from incentives.kinds.base import copied

    assert copied("a" * 200) == "a" * 200
    assert copied("a" * 201) == "'" + "a" * 100 + "…' (201 characters)"
    assert copied("it's" * 60) == '"' + "it's" * 25 + '…" (240 characters)'  # repr's quotes
    assert copied(D("1E+100")) == D("1E+100")
    assert copied(tuple(range(20))) == tuple(range(20))
    assert copied(tuple(range(21))) == (*range(20), "… (21 items)")
    # at most 20 items at any depth: each tuple where they run out says how long it was
    # (1, 2) takes 3 of the 20, the second tuple 1 and then its first 16
    assert copied(((1, 2), tuple(range(30)), 3)) == ((1, 2), (*range(16), "… (30 items)"), "… (3 items)")
    assert copied(((),) * 25) == (*((),) * 20, "… (25 items)")
    assert copied((("x" * 300,),)) == (("'" + "x" * 100 + "…' (300 characters)",),)


def test_inputs_copy_long_values_cut():
    from incentives.kinds.base import inputs_from

    long_text = "x" * 300
    assert inputs_from(("a",), {"a": long_text}) == {"a": "'" + "x" * 100 + "…' (300 characters)"}
    assert inputs_from(("a", "b", "c"), {"a": D("1.50"), "b": tuple(range(25)), "d": long_text}) == {
        "a": D("1.50"), "b": (*range(20), "… (25 items)"), "c": None}
