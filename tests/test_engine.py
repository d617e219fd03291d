"""Engine orchestration: versions by period, fiscal calendars, uses, duplicates, runs and their files."""

import gc
import json
from decimal import Decimal as D

import pytest

import incentives
from conftest import program_text

FLAT = """
tiers:
  qualify_on: revenue
  levels:
    - {{name: Only, from: 0, rate: {rate}}}
"""


def versioned(version, start, end, rate, fiscal="07-01"):
    header = f"""
        id: rebate
        name: Rebate
        kind: tier
        version: {version}
        currency: USD
        effective: {{from: {start}, to: {end}}}
        period: quarter
        fiscal_year_start: "{fiscal}"
        """
    return program_text(FLAT.format(rate=rate), header=header)


def record(partner_id="P1", period="2027-Q1", revenue="1000", **facts):
    return {"partner_id": partner_id, "period": period, "revenue": D(revenue), **facts}


def test_fiscal_year_from_july_and_version_switch(engine_for):
    # FY2027 starts 2026-07-01: Q1 = Jul–Sep 2026 (v1), Q2 = Oct–Dec 2026 (v2)
    engine = engine_for(versioned(1, "2026-07-01", "2026-09-30", "1%"), versioned(2, "2026-10-01", "2027-06-30", "2%"))
    q1 = engine.evaluate(record(period="2027-Q1"))["rebate"]
    q2 = engine.evaluate(record(period="2027-Q2"))["rebate"]
    assert (q1.program_version, q1.total) == (1, D("10.00"))
    assert (q2.program_version, q2.total) == (2, D("20.00"))


def test_period_outside_every_version_yields_an_error_row_when_nothing_covers_it(engine_for):
    engine = engine_for(versioned(1, "2026-07-01", "2026-09-30", "1%"))
    run = engine.run([record(period="2027-Q3")])
    [result] = run.results
    assert result.status == "error"
    # FY2027 starts 2026-07-01, so its Q3 is January to March 2027
    assert result.errors == ["no version of 'rebate' is effective in period 2027-Q3 (2027-01-01 to 2027-03-31); "
                             "versions: v1 effective from 2026-07-01 to 2026-09-30"]


def test_a_period_error_names_every_versions_window(engine_for):
    engine = engine_for(versioned(1, "2026-07-01", "2026-09-30", "1%"), versioned(2, "2027-04-01", "2027-06-30", "2%"))
    [result] = engine.run([record(period="2027-Q3")]).results
    assert result.errors == ["no version of 'rebate' is effective in period 2027-Q3 (2027-01-01 to 2027-03-31); "
                             "versions: v1 effective from 2026-07-01 to 2026-09-30, "
                             "v2 effective from 2027-04-01 to 2027-06-30"]


def test_unknown_period_label_and_wrong_granularity_are_errors(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    bad = engine.evaluate(record(period="2027-Q5"))["test"]
    month = engine.evaluate(record(period="2027-02"))["test"]
    assert bad.status == "error" and "2027-Q5" in bad.errors[0]
    assert month.status == "error"
    assert month.errors == ["'test' is evaluated per quarter; period '2027-02' is a month"]


def test_uses_reads_the_used_program_result(engine_for):
    tier = program_text(FLAT.format(rate="2%"), id="partner_tier")
    kicker = program_text("""
        uses: [partner_tier]
        eligibility:
          - {id: tiered, when: "partner_tier.eligible and partner_tier.tier == 'Only'"}
        tiers:
          qualify_on: partner_tier.total
          levels:
            - {name: Kick, from: 0, rate: 50%}
        """, id="kicker")
    engine = engine_for(kicker, tier)  # file order must not matter
    assert engine.program_ids == ["partner_tier", "kicker"]
    results = engine.evaluate(record(revenue="1000"))
    assert results["partner_tier"].total == D("20.00")
    assert results["kicker"].total == D("10.00")


def test_a_used_program_result_wins_over_a_fact_of_the_same_name(engine_for):
    tier = program_text(FLAT.format(rate="2%"), id="partner_tier")
    kicker = program_text("""
        uses: [partner_tier]
        tiers:
          qualify_on: partner_tier.total
          levels:
            - {name: Kick, from: 0, rate: 50%}
        """, id="kicker")
    results = engine_for(tier, kicker).evaluate(record(revenue="1000", **{"partner_tier.total": D("999")}))
    assert results["kicker"].lines[0].inputs == {"partner_tier.total": D("20.00")}
    assert results["kicker"].total == D("10.00")


def test_run_pauses_the_garbage_collector_and_restores_it(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    seen = []
    engine.run([record("P1"), record("P2")], progress=lambda done: seen.append(gc.isenabled()))
    assert seen == [False, False]
    assert gc.isenabled()


def test_run_to_pauses_the_garbage_collector_and_restores_it(engine_for, tmp_path):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    seen = []
    engine.run_to(tmp_path / "out", [record("P1"), record("P2")], progress=lambda done: seen.append(gc.isenabled()))
    assert seen and not any(seen)
    assert gc.isenabled()
    assert (tmp_path / "out" / "run.json").exists()


def test_run_leaves_a_disabled_collector_disabled_and_restores_it_after_an_exception(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    gc.disable()
    try:
        engine.run([record("P1")])
        assert not gc.isenabled()
    finally:
        gc.enable()

    def stop(done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.run([record("P1")], progress=stop)
    assert gc.isenabled()


def test_duplicate_partner_period_makes_both_records_errors(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    run = engine.run([record("P1"), record("P2"), record("P1", revenue="5")])
    p1 = [r for r in run.results if r.partner_id == "P1"]
    assert [r.status for r in p1] == ["error", "error"]
    assert p1[0].errors == ["duplicate record for partner P1 and period 2027-Q1 (record 1, record 3)"]
    assert [r.status for r in run.results if r.partner_id == "P2"] == ["ok"]
    assert run.counts["test"] == {"ok": 1, "ineligible": 0, "error": 2}


def test_bad_record_values_become_error_rows(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    run = engine.run([record("P1"), {"partner_id": "P2", "period": "2027-Q1", "revenue": D("NaN")},
                      {"period": "2027-Q1", "revenue": 5}])
    assert [r.status for r in run.results] == ["error", "ok", "error"]
    assert len(run.results) == 3


def test_run_orders_results_and_totals(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    run = engine.run([record("P3", revenue="300"), record("P1", revenue="100"), record("P2", revenue="200")])
    assert [r.partner_id for r in run.results] == ["P1", "P2", "P3"]
    assert run.totals == {"test": D("6.00")}


def test_write_is_deterministic_and_run_json_differs_only_in_id_and_time(engine_for, tmp_path):
    engine = engine_for(program_text(FLAT.format(rate="3.5%")))
    records = [record("P2", revenue="612500"), record("P1", revenue="100.20")]
    first, second = tmp_path / "a", tmp_path / "b"
    incentives.write_run(engine.run(records), first)
    engine.run(records).write(second)  # the SPEC's run.write(folder) is write_run(run, folder)
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "payouts.csv").read_text() == (
        "partner_id,period,program_id,program_version,status,tier,attainment,total,currency\n"
        "P1,2027-Q1,test,1,ok,Only,,3.51,USD\n"
        "P2,2027-Q1,test,1,ok,Only,,21437.50,USD\n")
    assert (first / "lines.csv").read_text().splitlines()[2] == (
        "P2,2027-Q1,test,1,base,tier:Only,Only tier rate on revenue,612500.00,0.035,21437.50,"
        "\"612,500.00 × 3.5% = 21,437.50\"")
    a, b = (json.loads((folder / "run.json").read_text()) for folder in (first, second))
    assert a["run_id"] != b["run_id"]
    for volatile in ("run_id", "created_at"):
        a.pop(volatile), b.pop(volatile)
    assert a == b
    assert a["totals"] == {"test": "21441.01"}
    assert sorted(path.name for path in first.iterdir()) == ["lines.csv", "payouts.csv", "results.jsonl", "run.json"]


def test_write_refuses_to_overwrite_another_run(engine_for, tmp_path):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    incentives.write_run(engine.run([record()], facts_sha256="a" * 64), tmp_path / "out")
    with pytest.raises(incentives.IncentivesError, match="different run"):
        incentives.write_run(engine.run([record()], facts_sha256="b" * 64), tmp_path / "out")
    incentives.write_run(engine.run([record()], facts_sha256="b" * 64), tmp_path / "out", force=True)


def test_explain_shows_tier_lines_and_total(engine_for):
    engine = engine_for(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Silver, from: 0, rate: 2%}
            - {name: Gold, from: 500000, rate: 3.5%}
        """))
    text = engine.evaluate(record(revenue="487600"))["test"].explain()
    assert "tier: Silver" in text
    assert "next tier: Gold (gap 12,400.00)" in text
    assert "487,600.00 × 2% = 9,752.00" in text
    assert text.splitlines()[-1] == "  total: 9,752.00 USD"


def test_explain_shows_the_values_of_the_facts_a_bonus_formula_names(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%"), """
        bonuses:
          - {id: sales_kicker, when: "region == 'net_sales'", amount: "0.5% * net_sales + min(new_logos, 2) * 100"}
        """))
    result = engine.evaluate(record(revenue="1000", net_sales=D("750000"), new_logos=D("3"),
                                    region="net_sales"))["test"]
    # 0.5% × 750,000 = 3,750; min(3, 2) × 100 = 200; 3,950 in all
    [bonus] = [line for line in result.lines if line.kind == "bonus"]
    assert bonus.formula == "0.5% * net_sales + min(new_logos, 2) * 100 = 3,950.00"  # the files keep the text
    assert "0.5% × net_sales 750,000.00 + min(new_logos 3.00, 2) × 100 = 3,950.00" in result.explain()
    assert "1,000.00 × 1% = 10.00" in result.explain()  # a base line's formula is left as it is


def test_explain_lists_the_bonuses_that_did_not_fire_with_the_values_they_saw(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="1%"), """
        metrics:
          growth: "revenue - revenue_last_year"
        bonuses:
          - {id: growth_kicker, when: "growth >= 500", multiplier: 110%, description: growth of 500 or more}
          - {id: logo_bonus, when: "new_logos >= 2", amount: "100 * new_logos"}
          - {id: nps_bonus, when: "nps >= 50", amount: "50"}
        """))
    record_ = record(revenue="1000", revenue_last_year=D("700"), new_logos=D("1"), nps=D("60"))
    results = engine.evaluate(record_)
    # growth 1,000 - 700 = 300 < 500 and 1 logo < 2: neither fires; nps 60 >= 50 pays 50
    assert [line.rule_id for line in results["test"].lines] == ["tier:Only", "nps_bonus"]
    not_fired = engine.not_fired(record_, results)
    assert [(r.rule_id, r.when, r.values) for r in not_fired["test"]] == [
        ("growth_kicker", "growth >= 500", {"growth": D("300")}),
        ("logo_bonus", "new_logos >= 2", {"new_logos": D("1")})]
    text = results["test"].explain(not_fired["test"])
    assert "  did not fire growth_kicker (growth of 500 or more): growth >= 500  [saw growth=300]" in text
    assert "  did not fire logo_bonus: new_logos >= 2  [saw new_logos=1]" in text
    ineligible = engine.evaluate(record(period="2027-Q5"))  # an error result: no bonus is listed
    assert engine.not_fired(record(period="2027-Q5"), ineligible) == {}


def test_explain_lists_deductions_that_did_not_fire_and_the_own_outcome_each_step_saw(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="10%"), """
        bonuses:
          - {id: double, when: "this.base > 50", multiplier: 200%}
          - {id: volume, when: "revenue >= 100", amount: "25"}
          - {id: big, when: "this.subtotal >= 1000", amount: "5"}
        deductions:
          - {id: fee, amount: "1", description: handling fee}
          - {id: reserve, when: "this.subtotal > 500", amount: "7", description: reserve}
          - {id: returns, when: "returns > 0", amount: "returns", description: returns netted}
        """))
    record_ = record(revenue="400", returns=D("0"))
    results = engine.evaluate(record_)
    # base 10% × 400 = 40.00 (not over 50: no doubling); volume 25.00; 'big' saw the subtotal before the
    # bonuses, 40.00 < 1,000: no 'big'; fee 1.00 always; 65.00 is not over 500: no reserve; no returns
    assert [(line.rule_id, line.amount) for line in results["test"].lines] == [
        ("tier:Only", D("40.00")), ("volume", D("25.00")), ("fee", D("-1.00"))]
    not_fired = engine.not_fired(record_, results)["test"]
    assert [(r.rule_id, r.values) for r in not_fired] == [
        ("double", {"this.base": D("40.00")}),
        ("big", {"this.subtotal": D("40.00")}),  # before the bonuses: base and multipliers
        ("reserve", {"this.subtotal": D("65.00")}),  # before the deductions: base, multipliers and bonuses
        ("returns", {"returns": D("0")})]
    text = results["test"].explain(not_fired)
    assert "  did not fire reserve (reserve): this.subtotal > 500  [saw this.subtotal=65.00]" in text


def test_explain_leaves_quoted_texts_of_a_bonus_formula_alone():
    line = incentives.PayoutLine(n=1, kind="bonus", rule_id="b", description="b", amount=D("5"),
                                 formula="len('a * net_sales') * net_sales = 5.00", inputs={"net_sales": D("1")})
    result = incentives.PayoutResult(partner_id="P1", period="2027-Q1", program_id="p", status="ok",
                                     lines=[line], total=D("5"))
    assert "len('a * net_sales') × net_sales 1.00 = 5.00" in result.explain()


def test_result_survives_a_json_round_trip(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="3.5%")))
    result = engine.evaluate(record(revenue="612500"))["test"]
    again = incentives.PayoutResult.model_validate_json(result.model_dump_json())
    assert again.total == result.total and again.lines[0].amount == D("21437.50")
    assert again.lines[0].formula == result.lines[0].formula


def test_run_json_records_the_claims_file_and_a_different_claims_file_is_another_run(engine_for, tmp_path):
    engine = engine_for(program_text(FLAT.format(rate="1%")))
    incentives.write_run(engine.run([record()], facts_sha256="f" * 64, claims_sha256="c" * 64), tmp_path / "out")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["claims_sha256"] == "c" * 64
    with pytest.raises(incentives.IncentivesError, match="different run"):
        incentives.write_run(engine.run([record()], facts_sha256="f" * 64, claims_sha256="d" * 64), tmp_path / "out")
    with pytest.raises(incentives.IncentivesError, match="different run"):
        engine.run_to(tmp_path / "out", [record()], facts_sha256="f" * 64, claims_sha256="d" * 64)
    engine.run_to(tmp_path / "out", [record()], facts_sha256="f" * 64, claims_sha256="c" * 64)


# --- sums of money are exact (issue #10, case 2) -----------------------------------------------

def test_a_partner_total_keeps_every_digit_of_its_lines(engine_for):
    engine = engine_for(program_text(FLAT.format(rate="100%"), """
        bonuses:
          - {id: cent, when: "true", amount: "0.01"}
        """))
    # 30 significant digits: Python's default context (28) rounds a line or the sum of the two
    result = engine.evaluate(record(revenue="1234567890123456789012345678.91"))["test"]
    assert [line.amount for line in result.lines] == [D("1234567890123456789012345678.91"), D("0.01")]
    assert result.total == D("1234567890123456789012345678.92")


def test_run_totals_are_the_exact_sums_written_in_payouts_csv(engine_for, tmp_path):
    engine = engine_for(program_text(FLAT.format(rate="100%")))
    records = [record("P1", revenue="5000000000000000000000000000.01"),
               record("P2", revenue="5000000000000000000000000000.01"),
               record("P3", revenue="0.01")]
    run = engine.run(records)
    assert run.totals == {"test": D("10000000000000000000000000000.03")}
    incentives.write_run(run, tmp_path / "in_memory")
    engine.run_to(tmp_path / "streamed", records)
    for folder in (tmp_path / "in_memory", tmp_path / "streamed"):
        lines = (folder / "payouts.csv").read_text(encoding="utf-8").splitlines()[1:]
        written = [D(line.split(",")[7]) for line in lines]
        assert written == [D("5000000000000000000000000000.01"), D("5000000000000000000000000000.01"), D("0.01")]
        totals = json.loads((folder / "run.json").read_text(encoding="utf-8"))["totals"]
        assert totals == {"test": "10000000000000000000000000000.03"}


def test_a_budget_over_large_totals_is_met_to_the_cent(engine_for):
    from incentives.money import exact_sum

    engine = engine_for(program_text(FLAT.format(rate="100%"), "budget: 10000000000000000000000000000.00"))
    run = engine.run([record("P1", revenue="6000000000000000000000000000.01"),
                      record("P2", revenue="6000000000000000000000000000.02")])
    # requested 12,000,…,000.03 of a budget of 10,000,…,000.00, in cents: P1's share is 10^30 × (6·10^29 + 1)
    # / (12·10^29 + 3) = 5·10^29 − 0.4166…, floored to 5·10^29 − 1 (remainder 0.5833…); P2's is
    # 5·10^29 + 0.4166… → 5·10^29 (remainder 0.4166…); the cent missing goes to P1's larger remainder
    assert [result.total for result in run.results] == [D("5000000000000000000000000000.00"),
                                                        D("5000000000000000000000000000.00")]
    assert run.totals["test"] == D("10000000000000000000000000000.00")
    for result in run.results:
        assert result.total == exact_sum(line.amount for line in result.lines)
