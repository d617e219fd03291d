"""MDF programs: accrual, claims in order, partial payment, every rejection reason (computed by hand)."""

from datetime import date
from decimal import Decimal as D

from conftest import program_text

MDF = """
mdf:
  accrual:
    on: revenue
    rate: 2%
    cap: 50000
  claims:
    reimbursement: 50%
    activities: [event, digital]
    requires_preapproval: true
    submit_within_days: 60
"""


def claim(claim_id, activity, amount, submitted_on, activity_end="2027-01-20", preapproved=True):
    return {"claim_id": claim_id, "partner_id": "P1", "period": "2027-Q1", "activity": activity,
            "amount": amount, "activity_end": activity_end, "submitted_on": submitted_on,
            "preapproved": preapproved}


RECORD = {"partner_id": "P1", "period": "2027-Q1", "revenue": D("100000"), "mdf_balance": D("500")}


def test_claims_paid_in_order_partial_and_rejected(engine_for):
    engine = engine_for(program_text(MDF, kind="mdf"))
    claims = [
        claim("C4", "event", "100", "2027-03-01"),
        claim("C2", "digital", "4000", "2027-02-10"),
        claim("C1", "event", "3000", "2027-02-01"),
        claim("C3", "trade_show", "-5", "2027-04-20", preapproved=False),
    ]
    result = engine.evaluate(RECORD, claims=claims)["test"]
    # accrued 100,000 × 2% = 2,000; available 500 + 2,000 = 2,500
    # C1 (submitted first) 3,000 × 50% = 1,500 paid; C2 4,000 × 50% = 2,000 but only 1,000 left;
    # C4 50 due, nothing left; C3 rejected four times over
    assert [(l.rule_id, l.amount) for l in result.lines] == [
        ("claim:C1", D("1500.00")), ("claim:C2", D("1000.00")), ("claim:C4", D("0"))]
    assert "partial" in result.lines[1].description
    assert result.lines[1].formula == "4,000.00 × 50% = 2,000.00, limited to the 1,000.00 still available"
    assert result.total == D("2500.00")
    details = result.details
    assert (details["opening"], details["accrued"], details["available"], details["paid"], details["closing"]) == (
        D("500"), D("2000.00"), D("2500.00"), D("2500.00"), D("0.00"))
    [rejected] = details["rejected_claims"]
    assert rejected["claim_id"] == "C3"
    assert rejected["reasons"] == [
        "activity 'trade_show' is not eligible (eligible: event, digital)",
        "the activity was not pre-approved",
        "submitted 90 days after the activity ended (limit 60)",
        "amount -5 is not positive",
    ]


def test_accrual_cap_and_rate_by_tier(engine_for):
    tier = program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Silver, from: 0,       rate: 1%}
            - {name: Gold,   from: 1000000, rate: 2%}
        """, id="partner_tier")
    mdf = program_text("""
        uses: [partner_tier]
        mdf:
          accrual:
            on: revenue
            rate_by: partner_tier.tier
            rates: {Silver: 1%, Gold: 3%}
            cap: 50000
          claims:
            reimbursement: 100%
            activities: [event]
        """, id="co_marketing", kind="mdf")
    engine = engine_for(tier, mdf)
    gold = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": D("2000000")})
    assert gold["partner_tier"].tier == "Gold"
    assert gold["co_marketing"].details["accrued"] == D("50000")  # 60,000 capped at 50,000
    assert gold["co_marketing"].details["accrual_rate"] == D("0.03")
    silver = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": D("100000")},
                             claims=[claim("C1", "event", "5000", "2027-02-01")])
    assert silver["co_marketing"].details["accrued"] == D("1000.00")
    assert silver["co_marketing"].total == D("1000.00")  # 5,000 due, 1,000 available


def test_claim_without_facts_record_is_an_error_row(engine_for):
    engine = engine_for(program_text(MDF, kind="mdf"))
    orphan = dict(claim("C9", "event", "100", "2027-02-01"), partner_id="P404")
    run = engine.run([RECORD], claims=[orphan])
    statuses = {(r.partner_id, r.status) for r in run.results}
    assert statuses == {("P1", "ok"), ("P404", "error")}
    [error] = [r for r in run.results if r.partner_id == "P404"]
    assert "C9" in error.errors[0]


def test_claims_dates_are_compared_in_days(engine_for):
    engine = engine_for(program_text(MDF, kind="mdf"))
    on_limit = claim("C1", "event", "100", "2027-03-21", activity_end="2027-01-20")  # 60 days
    over = claim("C2", "event", "100", "2027-03-22", activity_end="2027-01-20")  # 61 days
    result = engine.evaluate(RECORD, claims=[on_limit, over])["test"]
    assert [line.rule_id for line in result.lines] == ["claim:C1"]
    assert result.details["rejected_claims"][0]["reasons"] == ["submitted 61 days after the activity ended (limit 60)"]


def test_numeric_claim_ids_survive_json_and_back(engine_for):
    engine = engine_for(program_text(MDF, kind="mdf"))
    result = engine.evaluate(RECORD, claims=[claim("1001", "event", "300", "2027-02-01"),
                                             claim("1002", "webinar", "300", "2027-02-01")])["test"]
    assert result.lines[0].rule_id == "claim:1001"
    assert result.lines[0].inputs == {"amount": D("300"), "still_available": D("2500.00"),
                                      "activity_end": date(2027, 1, 20), "submitted_on": date(2027, 2, 1)}
    assert result.details["rejected_claims"][0]["claim_id"] == "1002"
    again = type(result).model_validate_json(result.model_dump_json())
    assert again == result


def test_claims_for_an_mdf_program_with_no_version_in_the_period_are_an_error_row(engine_for):
    # The MDF program starts in Q2; the tier program covers Q1, so the record is evaluated and the
    # fund's claims used to vanish with nothing but a coverage note.
    later_fund = program_text(MDF, header="""
        id: fund
        name: Fund
        kind: mdf
        version: 1
        currency: USD
        effective: {from: 2027-04-01}
        period: quarter
        """)
    tier = program_text("tiers:\n  qualify_on: revenue\n  levels:\n    - {name: Only, from: 0, rate: 1%}\n", id="tier")
    engine = engine_for(tier, later_fund)
    run = engine.run([RECORD], claims=[dict(claim("C1", "event", "100", "2027-02-01"), program_id="fund"),
                                       claim("C2", "event", "100", "2027-02-01")])
    assert [(r.program_id, r.status, r.errors) for r in run.results] == [
        ("fund", "error", ["claims C1, C2 are for 'fund', which has no version effective in period 2027-Q1"]),
        ("tier", "ok", [])]
    assert run.notes == []


# --- claim limits ---------------------------------------------------------------------------------

LIMITED = """
mdf:
  accrual:
    on: revenue
    rate: 10%
  claims:
    reimbursement: 50%
    activities: [event, digital, webinar]
    max_per_claim: 15000
    max_by_activity: {event: 8000, webinar: 20000}
"""


def test_a_claim_pays_the_lowest_of_reimbursed_limit_and_fund_left(engine_for):
    engine = engine_for(program_text(LIMITED, kind="mdf"))
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": D("300000")}  # accrues 30,000.00
    claims = [
        claim("C1", "digital", "40000", "2027-02-01"),   # 20,000 due, capped at 15,000 (per claim)
        claim("C2", "event", "20000", "2027-02-02"),     # 10,000 due, capped at 8,000 (the event limit is lower)
        claim("C3", "webinar", "50000", "2027-02-03"),   # 25,000 due; max_per_claim 15,000 is lower than
                                                         # webinar's 20,000, then only 7,000 is left
        claim("C4", "event", "6000", "2027-02-04"),      # 3,000 due, under every limit, nothing left
    ]
    result = engine.evaluate(record, claims=claims)["test"]
    # 30,000 - 15,000 - 8,000 = 7,000 left for C3; then 0 for C4
    assert [(line.rule_id, line.amount) for line in result.lines] == [
        ("claim:C1", D("15000.00")), ("claim:C2", D("8000.00")), ("claim:C3", D("7000.00")), ("claim:C4", D("0"))]
    c1, c2, c3, c4 = result.lines
    assert c1.formula == "40,000.00 × 50% = 20,000.00, capped at 15,000.00 per claim"
    assert c1.description == "digital claim C1 (capped at the limit per claim)"
    assert c2.formula == "20,000.00 × 50% = 10,000.00, capped at 8,000.00 per event claim"
    assert c2.description == "event claim C2 (capped at the limit per event claim)"
    assert c3.formula == ("50,000.00 × 50% = 25,000.00, capped at 15,000.00 per claim, "
                          "limited to the 7,000.00 still available")
    assert c3.description == "webinar claim C3 (capped at the limit per claim) (partial: fund exhausted)"
    assert c4.formula == "6,000.00 × 50% = 3,000.00, limited to the 0.00 still available"
    assert c1.inputs["claim_limit"] == D("15000") and c2.inputs["claim_limit"] == D("8000")
    assert result.total == D("30000.00")
    assert result.details["closing"] == D("0.00")


def test_a_claim_limit_is_inclusive_and_an_activity_limit_works_alone(engine_for):
    engine = engine_for(program_text("""
        mdf:
          accrual: {on: revenue, rate: 10%}
          claims:
            reimbursement: 100%
            activities: [event, digital]
            max_by_activity: {event: 5000}
        """, kind="mdf"))
    record = {"partner_id": "P1", "period": "2027-Q1", "revenue": D("1000000")}  # accrues 100,000.00
    result = engine.evaluate(record, claims=[
        claim("C1", "event", "5000", "2027-02-01"),      # exactly the limit: paid in full, not capped
        claim("C2", "digital", "90000", "2027-02-02"),   # digital has no limit
        claim("C3", "event", "5000.01", "2027-02-03"),   # one cent over: capped at 5,000
    ])["test"]
    assert [(line.amount, line.formula) for line in result.lines] == [
        (D("5000.00"), "5,000.00 × 100% = 5,000.00"),
        (D("90000.00"), "90,000.00 × 100% = 90,000.00"),
        (D("5000.00"), "5,000.01 × 100% = 5,000.01, capped at 5,000.00 per event claim")]
    assert "claim_limit" not in result.lines[1].inputs  # no limit applies to digital claims


PROPOSAL_BASED_MDF = """
# the issue's proposal-based MDF: accrual by tier, pre-approval, a 60-day window, 50% co-op,
# at most 25,000 per claim, unspent funds expire at the end of the fiscal year
id: proposal_mdf
name: Proposal-based MDF
kind: mdf
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
fiscal_year_start: "01-01"
mdf:
  accrual:
    on: revenue
    rate_by: tier
    rates: {Silver: 2%, Gold: 4%}
  claims:
    reimbursement: 50%
    activities: [event, digital]
    requires_preapproval: true
    submit_within_days: 60
    max_per_claim: 25000
  expiry: fiscal_year
"""


def test_the_issues_proposal_based_mdf_is_one_program_file(engine_for, write_program):
    import incentives

    [loaded] = incentives.load_programs(write_program(PROPOSAL_BASED_MDF)).versions("proposal_mdf")
    assert loaded.program.mdf.expiry == "fiscal_year"  # the ledger expires the fund at the fiscal year's end
    engine = engine_for(PROPOSAL_BASED_MDF)
    gold = {"partner_id": "P1", "period": "2027-Q1", "revenue": D("2000000"), "tier": "Gold"}  # 80,000 accrued
    silver = {"partner_id": "P2", "period": "2027-Q1", "revenue": D("500000"), "tier": "Silver"}  # 10,000
    claims = [
        dict(claim("G1", "event", "80000", "2027-03-01", activity_end="2027-02-15"), partner_id="P1"),
        dict(claim("G2", "digital", "30000", "2027-03-02", activity_end="2027-02-15"), partner_id="P1"),
        dict(claim("G3", "digital", "10000", "2027-03-03", activity_end="2027-02-15", preapproved=False),
             partner_id="P1"),
        dict(claim("S1", "event", "8000", "2027-03-01", activity_end="2026-12-20"), partner_id="P2"),  # 71 days
        dict(claim("S2", "event", "30000", "2027-03-02", activity_end="2027-02-20"), partner_id="P2"),
    ]
    run = engine.run([gold, silver], claims=claims)
    by_partner = {result.partner_id: result for result in run.results}
    # P1: G1 80,000 × 50% = 40,000 (paid in full before limits) now 25,000; G2 30,000 × 50% = 15,000;
    # G3 not pre-approved. Paid 40,000 of the 80,000 accrued; 40,000 stays in the fund (until year end).
    assert [(line.rule_id, line.amount) for line in by_partner["P1"].lines] == [
        ("claim:G1", D("25000.00")), ("claim:G2", D("15000.00"))]
    assert by_partner["P1"].total == D("40000.00")
    assert by_partner["P1"].details["closing"] == D("40000.00")
    # P2: accrued 500,000 × 2% = 10,000; S1 submitted 71 days after the activity; S2 30,000 × 50% = 15,000,
    # under the limit but only 10,000 in the fund
    assert [(line.rule_id, line.amount) for line in by_partner["P2"].lines] == [("claim:S2", D("10000.00"))]
    assert by_partner["P2"].details["rejected_claims"] == [
        {"claim_id": "S1", "reasons": ["submitted 71 days after the activity ended (limit 60)"]}]
    assert run.totals["proposal_mdf"] == D("50000.00")  # 40,000 + 10,000
