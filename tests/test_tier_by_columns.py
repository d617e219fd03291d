"""Tier programs by columns (incentives.columnar.program, kinds.tier_by_columns.TierByColumns,
kinds.steps_by_columns): hand-computed blocks, and parity with the per-record path's CSV rows."""

from __future__ import annotations

import csv
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives.columnar.facts import read_csv_blocks
from incentives.columnar.program import BY_COLUMNS, LINE_ROWS, PAYOUT_ROW, RESULT_JSON, ProgramByColumns
from incentives.compiler import CompiledProgram
from incentives.loading import load_programs
from incentives.rules.columns import NotByColumns
from incentives.rules.registry import make_backend

from by_columns_support import PERIOD, ROOT, assert_parity, both, compiled_from, facts_file


HEAD = """\
id: t
name: T
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
fiscal_year_start: "01-01"
rounding: {places: 2, mode: half_up}
"""

RETROACTIVE = HEAD + """\
defaults: {returns: 0}
metrics: {net: revenue - returns}
eligibility:
  - {id: active, when: "active == true", description: active}
tiers:
  qualify_on: net
  levels:
    - {name: Base, from: 0, rate: 1%}
    - {name: Gold, from: 1000, rate: 2.5%, requires: "certs >= 2"}
bonuses:
  - {id: kick, when: "nps >= 50", multiplier: 110%}
  - {id: logo, when: "logos >= 1", amount: "100 * logos", description: per logo}
deductions:
  - {id: fee, amount: "fee", description: fee}
cap: 200
min_payout: 10
"""

INCREMENTAL = HEAD + """\
tiers:
  qualify_on: revenue
  mode: incremental
  levels:
    - {name: Core, from: 0, rate: 1%}
    - {name: Plus, from: 1000, rate: 2%}
    - {name: Top, from: 5000, rate: 4%}
"""


def test_retroactive_every_step_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, RETROACTIVE)
    facts = facts_file(tmp_path, (
        "partner_id,period,active,revenue,returns,certs,nps,logos,fee\n"
        "P1,2027-Q1,true,2000.50,0.50,2,60,1,5\n"       # Gold, every bonus, a deduction
        "P2,2027-Q1,true,3000,,1,0,0,0\n"                # Gold's requires fails: Base; returns defaults to 0
        "P3,2027-Q1,true,500,0,0,0,0,600\n"              # below zero: the floor
        "P4,2027-Q1,true,20000,0,3,0,0,0\n"              # capped
        "P5,2027-Q1,true,400,0,0,0,0,0\n"                # below the minimum payout
        "P6,2027-Q1,false,400,0,0,0,0,0\n"               # ineligible
        "P7,2027-Q1,true,,0,0,0,0,0\n"                   # revenue missing: an error, per record
        "P8,2027-Q1,true,400,0,0,0,0,-1\n"))             # a negative deduction: an error, per record
    frame, results = both(compiled, facts)
    assert assert_parity(frame, results) == 6
    assert frame[BY_COLUMNS].to_list() == [True] * 6 + [False] * 2
    assert [result.status for result in results[6:]] == ["error", "error"]
    # P1: net 2000.50 − 0.50 = 2000.00 ≥ 1000 and certs 2: Gold, 2000.00 × 2.5% = 50.00;
    # × 10% = 5.00 → 55.00; + 100 × 1 = 100.00 → 155.00; − 5.00 → 150.00 (under the cap of 200)
    assert frame.row(0, named=True)[PAYOUT_ROW] == "P1,2027-Q1,t,1,ok,Gold,,150.00,USD\n"
    assert frame.row(0, named=True)[LINE_ROWS] == (
        'P1,2027-Q1,t,1,base,tier:Gold,Gold tier rate on net,2000.00,0.025,50.00,"2,000.00 × 2.5% = 50.00"\n'
        "P1,2027-Q1,t,2,multiplier,kick,kick (nps >= 50),50.00,0.1,5.00,50.00 × (110% − 100%) = 5.00\n"
        "P1,2027-Q1,t,3,bonus,logo,per logo,100.00,,100.00,100 * logos = 100.00\n"
        "P1,2027-Q1,t,4,deduction,fee,fee,5.00,,-5.00,−(fee) = -5.00\n")
    # P2: 3000 × 1% = 30.00 (a fee of 0 is still a line);
    # P3: 500 × 1% = 5.00, − 600 = −595.00, floor + 595.00 = 0;
    # P4: 20000 × 2.5% = 500.00, cap 200 − 500.00 = −300.00; P5: 400 × 1% = 4.00 < 10: − 4.00 = 0; P6: nothing
    assert frame["total"].to_list()[:6] == [15000, 3000, 0, 20000, 0, 0]
    assert frame["tier"].to_list()[:6] == ["Gold", "Base", "Base", "Gold", "Base", None]
    assert frame["status"].to_list()[:6] == ["ok"] * 5 + ["ineligible"]
    assert frame.row(5, named=True)[PAYOUT_ROW] == "P6,2027-Q1,t,1,ineligible,,,0.00,USD\n"
    assert frame.row(5, named=True)[LINE_ROWS] == ""
    assert frame["failed_rules"].to_list()[:6] == [[]] * 5 + [["active"]]
    assert frame.row(3, named=True)[LINE_ROWS].endswith(
        'P4,2027-Q1,t,3,cap,cap,cap of 200.00 per partner and period,500.00,,-300.00,200.00 − 500.00 = -300.00\n')
    assert frame.row(2, named=True)[LINE_ROWS].endswith(
        "P3,2027-Q1,t,3,floor,floor,a payout is never negative (the program does not allow_negative),-595.00,,"
        "595.00,'-595.00 < 0: pays 0.00 = 595.00\n")  # a formula starting with '-' is neutralised


def test_incremental_bands_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, INCREMENTAL)
    facts = facts_file(tmp_path, "partner_id,period,revenue\nP1,2027-Q1,6000\nP2,2027-Q1,1000\nP3,2027-Q1,999.99\n")
    frame, results = both(compiled, facts)
    assert assert_parity(frame, results) == 3
    # P1: 1000 × 1% = 10.00, 4000 × 2% = 80.00, (6000 − 5000) × 4% = 40.00 → 130.00
    # P2: 1000 × 1% = 10.00; Plus reached with a band of width 0 (no line)
    # P3: 999.99 × 1% = 9.9999 → 10.00 (half up)
    assert frame["total"].to_list() == [13000, 1000, 1000]
    assert frame["tier"].to_list() == ["Top", "Plus", "Core"]
    assert frame.row(0, named=True)[LINE_ROWS] == (
        'P1,2027-Q1,t,1,band,band:Core,"Core band 0.00–1,000.00",1000.00,0.01,10.00,"1,000.00 × 1% = 10.00"\n'
        'P1,2027-Q1,t,2,band,band:Plus,"Plus band 1,000.00–5,000.00",4000.00,0.02,80.00,"4,000.00 × 2% = 80.00"\n'
        'P1,2027-Q1,t,3,band,band:Top,"Top band 5,000.00–6,000.00 achieved",1000.00,0.04,40.00,'
        '"1,000.00 × 4% = 40.00"\n')
    assert frame.row(2, named=True)[LINE_ROWS] == (
        "P3,2027-Q1,t,1,band,band:Core,Core band 0.00–999.99 achieved,999.99,0.01,10.00,999.99 × 1% = 10.00\n")


def test_rows_of_another_period_and_bad_cells_go_per_record(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, INCREMENTAL)
    facts = facts_file(tmp_path, "partner_id,period,revenue\nP1,2027-Q2,6000\nP2,2027-Q1,lots\nP3,2027-Q1,5\n")
    frame = pl.concat([ProgramByColumns(compiled).evaluate(block, PERIOD) for block in read_csv_blocks(facts)])
    # P1 is of another period; P2's revenue is text in a number column; P3: 5 × 1% = 0.05
    assert frame[BY_COLUMNS].to_list() == [False, False, True]
    assert frame["total"].to_list() == [None, None, 5]


def test_refused_programs() -> None:
    # a decimal context whose division the columns do not emulate refuses a program that divides facts, when
    # it is compiled
    divides = CompiledProgram(load_programs(ROOT / "programs" / "cloud_partner_incentive.yaml")[0],
                              make_backend("compiled"), "cloud")
    with localcontext() as context, pytest.raises(NotByColumns, match="'/' by columns"):
        context.rounding = ROUND_HALF_UP
        ProgramByColumns(divides)


@pytest.mark.parametrize("name", ["certification_tier", "service_provider_tier", "cloud_service_provider_track",
                                  # metrics with '/': security_mix, win_rate and avg_registered_deal, avg_deal_size,
                                  # value_index
                                  "cloud_partner_incentive", "deal_registration_bonus", "solution_provider_track",
                                  "networking_role_tier"])
def test_bundled_examples_parity(name: str) -> None:
    compiled = CompiledProgram(load_programs(ROOT / "programs" / f"{name}.yaml")[0], make_backend("compiled"), name)
    frame, results = both(compiled, ROOT / "examples" / "facts_2027Q1.csv")
    computed = assert_parity(frame, results)
    assert len(results) == 300
    # every row of the example file (none is missing a fact or mistyped), those whose results.jsonl shows a
    # quotient included (win_rate in a reason's values, value_index in a line's inputs: before its exponent was
    # followed by columns, deal_registration_bonus had 163 rows by columns and networking_role_tier 10)
    assert computed == 300


def test_benchmark_program_parity_10k(tmp_path: Path) -> None:
    facts = tmp_path / "facts.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "10000", "--out", str(facts)],
                   check=True, capture_output=True)
    compiled = CompiledProgram(load_programs(ROOT / "benchmarks" / "programs" / "partner_tier.yaml")[0],
                               make_backend("compiled"), "bench")
    frame, results = both(compiled, facts)
    computed = assert_parity(frame, results)
    # the synthetic records have every fact the program reads, well typed: none goes per record
    assert computed == len(results) == 10000
    assert Decimal(sum(frame["total"].to_list())).scaleb(-2) == sum(result.total for result in results)


amounts = st.decimals(min_value=Decimal("-5000"), max_value=Decimal("99999"), places=3, allow_nan=False)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["retroactive", "incremental"]),
       starts=st.lists(st.decimals(min_value=0, max_value=50000, places=2), min_size=1, max_size=4, unique=True),
       rates=st.lists(st.sampled_from(["0%", "1%", "2.5%", "3.333%", "10%"]), min_size=4, max_size=4),
       multiplier=st.sampled_from(["90%", "110%", "125.5%"]), cap=st.sampled_from(["", "cap: 300.55\n", 'cap: "abs(revenue) * 0.5%"\n']),
       minimum=st.sampled_from(["", "min_payout: 12.34\n", 'min_payout: "certs * 3.333"\n']), negative=st.booleans(),
       rounding=st.sampled_from(["half_up", "half_even", "down", "up"]),
       revenues=st.lists(st.one_of(amounts, st.just(None)), min_size=1, max_size=12),
       certs=st.lists(st.sampled_from(["0", "1", "2", "3", "", "many"]), min_size=12, max_size=12))
def test_random_tier_programs_parity(tmp_path_factory, mode, starts, rates, multiplier, cap, minimum, negative,
                                     rounding, revenues, certs) -> None:
    tmp_path = tmp_path_factory.mktemp("random")
    levels = "".join(f"    - {{name: L{index}, from: {start}, rate: {rates[index]}"
                     + (", requires: \"certs >= 1\"" if index == 1 else "") + "}\n"
                     for index, start in enumerate(sorted(starts)))
    program = (HEAD.replace("half_up", rounding) + f"allow_negative: {str(negative).lower()}\n" + cap + minimum
               + f"tiers:\n  qualify_on: revenue\n  mode: {mode}\n  levels:\n{levels}"
               + f'bonuses:\n  - {{id: m, when: "certs >= 2", multiplier: {multiplier}}}\n'
               + '  - {id: a, when: "certs >= 1", amount: "certs * 7.5"}\n'
               + 'deductions:\n  - {id: d, amount: "abs(revenue) * 1%", description: returns}\n')
    compiled = compiled_from(tmp_path, program)
    rows = "".join(f"P{index},2027-Q1,{'' if revenue is None else revenue},{certs[index]}\n"
                   for index, revenue in enumerate(revenues))
    frame, results = both(compiled, facts_file(tmp_path, "partner_id,period,revenue,certs\n" + rows))
    # a missing revenue or certs (an error per record) and a text certs (the rules raise, or the column is text)
    # are what send a row per record here; every other row is computed by columns
    # (a column holds the kind most of its cells have: when that is text, the numbers in it go per record too)
    cells = certs[:len(revenues)]
    numbers_kept = cells.count("many") <= sum(cell.isdigit() for cell in cells)
    computable = sum(revenue is not None and cert.isdigit() and numbers_kept for revenue, cert in zip(revenues, cells))
    assert assert_parity(frame, results) == computable


def test_cap_and_minimum_as_expressions_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, HEAD + """\
tiers:
  qualify_on: revenue
  levels:
    - {name: Flat, from: 0, rate: 10%}
cap: "ceiling"
min_payout: "least"
""")
    facts = facts_file(tmp_path, (
        "partner_id,period,revenue,ceiling,least\n"
        "P1,2027-Q1,1000,50.555,10\n"    # 100.00 above a cap of 50.555, rounded down: 50.55 − 100.00 = −49.45
        "P2,2027-Q1,100,1000,12.5\n"     # 10.00 below a minimum of 12.5: − 10.00 = 0
        "P3,2027-Q1,100,-1,0\n"          # a negative cap: an error, per record
        "P4,2027-Q1,100,1000,\n"))       # no minimum: an error, per record
    frame, results = both(compiled, facts)
    assert assert_parity(frame, results) == 2
    assert frame[BY_COLUMNS].to_list() == [True, True, False, False]
    assert frame["total"].to_list() == [5055, 0, None, None]
    assert frame.row(0, named=True)[LINE_ROWS].endswith(
        "P1,2027-Q1,t,2,cap,cap,cap of 50.55 per partner and period (ceiling),100.00,,-49.45,"
        "50.55 − 100.00 = -49.45\n")
    assert frame.row(1, named=True)[LINE_ROWS].endswith(
        "P2,2027-Q1,t,2,minimum,min_payout,below the minimum payout of 12.50 (least),10.00,,-10.00,"
        "10.00 < 12.50: pays 0.00 = -10.00\n")


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(max_size=6) | st.sampled_from(["=1", "+a", "-2", "@x", "\tx", "\rx", 'a,"b"', "a\nb"]),
                      min_size=1, max_size=20))
def test_the_csv_rule_by_columns_is_the_per_cell_rule(texts):
    from incentives.columnar.rows import csv_text as by_columns
    from incentives.output.files import csv_text

    assert pl.select(by_columns(pl.Series(texts, dtype=pl.String))).to_series().to_list() == \
        [csv_text(text) for text in texts]


def test_a_metric_that_divides_facts_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, HEAD + """\
metrics: {avg_deal: "revenue / deals"}
tiers:
  qualify_on: revenue
  levels:
    - {name: Base, from: 0, rate: 1%}
bonuses:
  - {id: big_deals, when: "avg_deal >= 333.34", amount: "10", description: big deals}
""")
    facts = facts_file(tmp_path, (
        "partner_id,period,revenue,deals\n"
        "P1,2027-Q1,1000.00,3\n"    # 1000 / 3 = 333.3333333333333333333333333 < 333.34: 1000 × 1% = 10.00
        "P2,2027-Q1,1000.03,3\n"    # 1000.03 / 3 = 333.3433333333333333333333333 >= 333.34: 10.00 + 10 = 20.00
        "P3,2027-Q1,1000.00,0\n"))  # a division by zero: per record, an error row
    frame, results = both(compiled, facts)
    assert frame[BY_COLUMNS].to_list() == [True, True, False]
    # totals in minor units at 2 places
    assert frame["total"].to_list() == [1000, 2000, None]
    assert results[2].status == "error" and "division by zero" in results[2].errors[0]
    assert assert_parity(frame, results) == 2


def test_the_per_record_path_imports_no_polars() -> None:
    # the kinds name their calculators by columns by a dotted path, loaded when a program is computed by columns
    code = ("import sys, incentives, incentives.kinds; assert 'polars' not in sys.modules, 'polars at import'; "
            "from incentives.columnar.program import ProgramByColumns; assert 'polars' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_results_json_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, RETROACTIVE)
    facts = facts_file(tmp_path, (
        "partner_id,period,active,revenue,returns,certs,nps,logos,fee\n"
        "P1,2027-Q1,true,2000.50,0.50,2,60,1,5\n"
        "P2,2027-Q1,true,3000,,1,0,0,0\n"
        "P6,2027-Q1,false,400,0,0,0,0,0\n"))
    frame, results = both(compiled, facts)
    assert assert_parity(frame, results) == 3
    texts = frame[RESULT_JSON].to_list()
    # P1: net = 2000.50 − 0.50 = 2000.00 (the larger of their two decimals); Gold, the top level: no next tier;
    # 2000.00 × 0.025 = 50.00; the multiplier's rate 1.10 − 1 = 0.10 on the subtotal 50.00 → 5.00;
    # 100 * logos = 100 × 1 = 100 (no decimals); the fee 5 → −5.00; total 50 + 5 + 100 − 5 = 150.00
    assert texts[0] == (
        '{"partner_id":"P1","period":"2027-Q1","program_id":"t","program_version":1,"currency":"USD",'
        '"status":"ok","tier":"Gold","next_tier":null,"attainment":null,"lines":['
        '{"n":1,"kind":"base","rule_id":"tier:Gold","description":"Gold tier rate on net","basis":"2000.00",'
        '"rate":"0.025","amount":"50.00","formula":"2,000.00 × 2.5% = 50.00","inputs":{"net":"2000.00"}},'
        '{"n":2,"kind":"multiplier","rule_id":"kick","description":"kick (nps >= 50)","basis":"50.00",'
        '"rate":"0.10","amount":"5.00","formula":"50.00 × (110% − 100%) = 5.00","inputs":{}},'
        '{"n":3,"kind":"bonus","rule_id":"logo","description":"per logo","basis":"100","rate":null,'
        '"amount":"100.00","formula":"100 * logos = 100.00","inputs":{"logos":"1"}},'
        '{"n":4,"kind":"deduction","rule_id":"fee","description":"fee","basis":"5","rate":null,"amount":"-5.00",'
        '"formula":"−(fee) = -5.00","inputs":{"fee":"5"}}],'
        '"total":"150.00","reasons":[],"errors":[],"details":{"places":2}}\n')
    # P2: returns defaults to 0 (no decimals): net = 3000 − 0 = 3000; certs 1 < 2: Base, and Gold is next,
    # 1000 − 3000 < 0: a gap of 0, its requires unmet; 3000 × 0.01 = 30.00, a fee of 0 is a line of 0.00
    assert texts[1].startswith(
        '{"partner_id":"P2","period":"2027-Q1","program_id":"t","program_version":1,"currency":"USD",'
        '"status":"ok","tier":"Base","next_tier":{"name":"Gold","gap":"0","unmet":["certs >= 2"]},'
        '"attainment":null,"lines":[{"n":1,"kind":"base","rule_id":"tier:Base","description":'
        '"Base tier rate on net","basis":"3000","rate":"0.01","amount":"30.00"')
    assert '"amount":"0.00","formula":"−(fee) = 0.00","inputs":{"fee":"0"}}],"total":"30.00"' in texts[1]
    # P6: inactive, the rule's value read; a result of no line totals Decimal(0)
    assert texts[2] == (
        '{"partner_id":"P6","period":"2027-Q1","program_id":"t","program_version":1,"currency":"USD",'
        '"status":"ineligible","tier":null,"next_tier":null,"attainment":null,"lines":[],"total":"0",'
        '"reasons":[{"rule_id":"active","description":"active","when":"active == true","values":{"active":false}}],'
        '"errors":[],"details":{"places":2}}\n')


#: cells as a facts file may write a number: the per-record Decimal keeps its decimals, which results.jsonl shows
number_cells = st.sampled_from(["5", "5.0", "+12.50", ".5", "5.", "1000", "999.999", "0", "0.00", "-3.25",
                                "0.0000001", "0.0000000", "1e3", "250000.5", ""])
tricky_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
                       max_size=6) | st.sampled_from(['a"b', "c\\d", "e\tf", "€uro", "x" * 201, "=1", "é,\"\n"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(description=st.sampled_from(['plain', 'with \\"quotes\\" and \\\\ backslash', 'tab\\tand é€',
                                    'control \\u0001 char']),
       rows=st.lists(st.tuples(tricky_texts, number_cells, number_cells, st.sampled_from(["0", "1", "2", ""]),
                               tricky_texts, st.sampled_from(["2027-01-15", "2026-12-31", "", "0999-01-01"])),
                     min_size=1, max_size=12),
       mode=st.sampled_from(["retroactive", "incremental"]))
def test_random_results_json_parity(tmp_path_factory, description, rows, mode) -> None:
    """Texts to escape (partner ids, a rule's description, text facts a reason shows), numbers written in every
    form (a metric's sum and product keep their operands' decimals), dates and booleans read by the rules: every
    row computed by columns has the per-record results.jsonl line, byte for byte."""
    tmp_path = tmp_path_factory.mktemp("json")
    pay_on = "" if mode == "incremental" else "  pay_on: scaled\n"
    compiled = compiled_from(tmp_path, HEAD + f"""\
defaults: {{returns: 0.5}}
metrics: {{net: "revenue - returns", scaled: "revenue * 1.5 + returns"}}
eligibility:
  - {{id: region, when: "region != 'north'", description: "{description}"}}
  - {{id: joined, when: "joined_on == joined_on and certs >= 0"}}
tiers:
  qualify_on: net
  mode: {mode}
{pay_on}  levels:
    - {{name: L0, from: 0, rate: 1%}}
    - {{name: L1, from: 100.5, rate: 2.5%, requires: "certs >= 1"}}
    - {{name: L2, from: 1000, rate: 3%}}
bonuses:
  - {{id: b, when: "certs >= 2", amount: "revenue * 1.25% + 2"}}
cap: "abs(revenue) * 10%"
""")
    path = tmp_path / "facts.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["partner_id", "period", "revenue", "returns", "certs", "region", "joined_on"])
        for index, (partner, revenue, returns, certs, region, joined) in enumerate(rows):
            writer.writerow([f"{partner}{index}", "2027-Q1", revenue, returns, certs, region or "north", joined])
    frame, results = both(compiled, path)
    assert_parity(frame, results)
