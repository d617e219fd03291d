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
