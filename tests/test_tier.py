"""Tier programs: achieved level, retroactive and incremental lines, next tier (values computed by hand)."""

from decimal import Decimal as D

import pytest

from conftest import program_text

TIERS = """
tiers:
  qualify_on: revenue
  levels:
    - {name: Registered, from: 0,       rate: 0%}
    - {name: Silver,     from: 100000,  rate: 2%,   requires: "certifications.sales >= 1"}
    - {name: Gold,       from: 500000,  rate: 3.5%, requires: "certifications.technical >= 2"}
    - {name: Platinum,   from: 2000000, rate: 5%}
"""


def partner(revenue, sales=1, technical=2, **facts):
    return {"partner_id": "P1", "period": "2027-Q1", "revenue": D(revenue),
            "certifications": {"sales": sales, "technical": technical}, **facts}


@pytest.fixture
def tier_engine(engine_for):
    return engine_for(program_text(TIERS))


def test_gold_pays_retroactive_rate_on_all_revenue(tier_engine):
    result = tier_engine.evaluate(partner("612500"))["test"]
    assert result.status == "ok"
    assert result.tier == "Gold"
    assert [line.amount for line in result.lines] == [D("21437.50")]
    line = result.lines[0]
    assert line.kind == "base" and line.rule_id == "tier:Gold"
    assert line.formula == "612,500.00 × 3.5% = 21,437.50"
    assert line.inputs == {"revenue": D("612500")}
    assert result.total == D("21437.50")
    assert result.next_tier.name == "Platinum"
    assert result.next_tier.gap == D("1387500")
    assert result.next_tier.unmet == []


def test_one_cent_below_threshold_stays_on_lower_tier(tier_engine):
    result = tier_engine.evaluate(partner("99999.99"))["test"]
    assert result.tier == "Registered"
    assert result.total == D("0.00")
    assert result.next_tier.name == "Silver"
    assert result.next_tier.gap == D("0.01")


def test_exactly_on_threshold_reaches_tier(tier_engine):
    result = tier_engine.evaluate(partner("100000"))["test"]
    assert result.tier == "Silver"
    assert result.total == D("2000.00")


def test_missing_requirement_falls_back_and_is_named_in_next_tier(tier_engine):
    result = tier_engine.evaluate(partner("612500", technical=1))["test"]
    assert result.tier == "Silver"
    assert result.total == D("12250.00")
    assert result.next_tier.name == "Gold"
    assert result.next_tier.gap == D("0")
    assert result.next_tier.unmet == ["certifications.technical >= 2"]


def test_requirement_failing_on_middle_tier_does_not_block_higher_tier(tier_engine):
    result = tier_engine.evaluate(partner("612500", sales=0, technical=2))["test"]
    assert result.tier == "Gold"
    assert result.total == D("21437.50")


def test_no_level_reached_pays_nothing(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Silver, from: 100000, rate: 2%}
            - {name: Gold,   from: 500000, rate: 3%}
        """))
    result = engine.evaluate(partner("50000"))["test"]
    assert result.status == "ok"
    assert result.tier is None
    assert result.lines == []
    assert result.total == D("0")
    assert (result.next_tier.name, result.next_tier.gap) == ("Silver", D("50000"))


def test_incremental_bands_pay_each_rate_on_its_width(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          mode: incremental
          levels:
            - {name: Registered, from: 0,      rate: 0%}
            - {name: Silver,     from: 100000, rate: 2%}
            - {name: Gold,       from: 500000, rate: 3.5%}
        """))
    result = engine.evaluate(partner("612500"))["test"]
    assert result.tier == "Gold"
    assert [(line.kind, line.rule_id, line.basis, line.amount) for line in result.lines] == [
        ("band", "band:Silver", D("400000"), D("8000.00")),
        ("band", "band:Gold", D("112500"), D("3937.50")),
    ]
    assert result.lines[1].formula == "112,500.00 × 3.5% = 3,937.50"
    assert result.total == D("11937.50")


def test_pay_on_differs_from_qualify_on(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          pay_on: security_revenue
          levels:
            - {name: Silver, from: 100000, rate: 4%}
        """))
    result = engine.evaluate(partner("150000", security_revenue=D("20000.10")))["test"]
    assert result.total == D("800.00")
    assert result.lines[0].formula == "20,000.10 × 4% = 800.00"


@pytest.mark.parametrize("mode, expected", [("half_up", "2.51"), ("half_even", "2.50"),
                                            ("down", "2.50"), ("up", "2.51")])
def test_rounding_modes_on_a_half_cent(engine_for, mode, expected):
    engine = engine_for(program_text(f"""
        rounding: {{places: 2, mode: {mode}}}
        tiers:
          qualify_on: revenue
          levels:
            - {{name: Only, from: 0, rate: 2.5%}}
        """))
    # 100.20 × 2.5% = 2.505 exactly: a half cent
    assert engine.evaluate(partner("100.20"))["test"].total == D(expected)
