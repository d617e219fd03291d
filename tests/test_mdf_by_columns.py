"""MDF programs by columns (kinds.mdf.MdfByColumns through incentives.columnar.program, claims from
incentives.claims_by_columns): hand-computed blocks with and without claims, the bundled and benchmark MDF
programs, and parity with the per-record path's CSV rows and results.jsonl lines over random MDF programs, facts
and claims."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Sequence

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives.claims_by_columns import NEEDS_RECORD, claims_by_columns
from incentives.columnar.facts import read_csv_blocks
from incentives.columnar.program import BY_COLUMNS, LINE_ROWS, PAYOUT_ROW, RESULT_JSON, ProgramByColumns
from incentives.compiler import CompiledProgram
from incentives.engine import Engine
from incentives.inputs import Claim, read_claims, read_facts
from incentives.kinds import mdf_by_columns

from by_columns_support import PERIOD, ROOT, assert_parity, compiled_from, facts_file

HEAD = """\
id: m
name: M
kind: mdf
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
fiscal_year_start: "01-01"
rounding: {places: 2, mode: half_up}
"""

HAND = HEAD + """\
eligibility:
  - {id: plan, when: "plan == true", description: plan}
mdf:
  accrual: {on: revenue, rate: 1%, cap: 9000}
  claims:
    reimbursement: 50%
    activities: [event, digital, content, webinar]
    requires_preapproval: true
    submit_within_days: 60
    max_per_claim: 2000
    max_by_activity: {content: 600}
bonuses:
  - {id: launch, when: "plan == true", amount: "25", description: launch kit}
"""

HAND_FACTS = (
    "partner_id,period,revenue,mdf_balance,plan\n"
    "P1,2027-Q1,100000,200.50,true\n"    # 1,000.00 accrued + 200.50 opening = 1,200.50 available
    "P2,2027-Q1,2000000,,true\n"         # 20,000.00 accrued, capped at 9,000.00; no claims
    "P3,2027-Q1,0,-50,true\n"            # a negative opening balance: nothing is still available
    "P4,2027-Q1,100000,,false\n"         # ineligible: its claim is not looked at
    "P5,2027-Q1,100000,10.005,true\n"    # an opening balance of a fraction of a cent: per record
    "P6,2027-Q1,,0,true\n"               # revenue missing: an error, per record
    "P7,2027-Q1,1000,0,true\n")          # a claim with a problem of its own (a duplicate id): per record

HAND_CLAIMS = (
    "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved\n"
    "C1,P1,2027-Q1,event,1000,2027-01-20,2027-02-01,true\n"
    "C2,P1,2027-Q1,content,4000.00,2027-01-10,2027-01-15,true\n"
    "C7,P1,2027-Q1,event,10,2027-02-20,2027-03-01,true\n"          # submitted with C3: C3 goes first
    "C3,P1,2027-Q1,event,900.01,2027-02-10,2027-03-01,true\n"
    "C4,P1,2027-Q1,webinar,100,2027-02-01,2027-02-02,false\n"      # not pre-approved
    "C5,P1,2027-Q1,digital,100,2027-01-01,2027-03-31,true\n"       # 89 days after the activity
    "C6,P1,2027-Q1,travel,100,2027-02-01,2027-02-02,true\n"        # not an eligible activity
    "C8,P1,2027-Q1,event,-5,2027-02-01,2027-02-03,true\n"          # not a positive amount
    "C13,P1,2027-Q2,event,100000,2027-04-01,2027-04-02,true\n"     # another period's: not this record's
    "C10,P3,2027-Q1,event,100,2027-02-01,2027-02-02,true\n"
    "C11,P4,2027-Q1,event,100,2027-02-01,2027-02-02,true\n"
    "C12,P7,2027-Q1,event,100,2027-02-01,2027-02-02,true\n"
    "C12,P7,2027-Q1,event,200,2027-02-01,2027-02-03,true\n"
    "C9,P7,2027-Q1,event,100,2027-02-01,,true\n")                   # no submission date: a problem too


def claims_of(claims: Sequence[Claim]) -> dict[tuple[str, str], list[Claim]]:
    grouped: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        grouped[(claim.partner_id, claim.period)].append(claim)
    return grouped


def both_with_claims(compiled: CompiledProgram, facts: Path, claims: Sequence[Claim]) -> tuple[pl.DataFrame, list]:
    """The program's rows by columns given ``claims``, and the per-record results of the same rows with each
    record's claims (None: a bad record)."""
    by_columns = ProgramByColumns(compiled)
    frame = pl.concat([by_columns.evaluate(block, PERIOD, claims=claims_by_columns(claims))
                       for block in read_csv_blocks(facts)])
    grouped = claims_of(claims)
    results = [None if row.problems else compiled.evaluate(row.partner_id, PERIOD, row.facts, {},
                                                           grouped.get((row.partner_id, row.period), []))
               for row in read_facts(facts)]
    return frame, results


def claims_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "claims.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_claims_paid_in_submission_order_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, HAND)
    claims = read_claims(claims_file(tmp_path, HAND_CLAIMS))
    frame, results = both_with_claims(compiled, facts_file(tmp_path, HAND_FACTS), claims)
    assert assert_parity(frame, results) == 3
    # P3's fund is below zero: per record its claim pays Decimal(0), which results.jsonl writes "0", not "0.00"
    assert frame[BY_COLUMNS].to_list() == [True, True, False, True, False, False, False]
    assert [result.status for result in results[4:]] == ["ok", "error", "ok"]
    # P1: available 100000 × 1% = 1,000.00 + 200.50 = 1,200.50; claims by submission date: C2 (01-15), C1 (02-01),
    # C3 and C7 (03-01, in claim id order); C4, C5, C6, C8 rejected (no line).
    # C2: 4000 × 50% = 2,000.00 > the content limit 600 → 600.00, 600.50 left; C1: 1000 × 50% = 500.00, 100.50 left;
    # C3: 900.01 × 50% = 450.005 → 450.01 (half up) > 100.50 → 100.50, 0 left; C7: 10 × 50% = 5.00 → 0.00.
    # Then the bonus: 25. Total 600 + 500 + 100.50 + 0 + 25 = 1,225.50.
    assert frame.row(0, named=True)[PAYOUT_ROW] == "P1,2027-Q1,m,1,ok,,,1225.50,USD\n"
    assert frame.row(0, named=True)[LINE_ROWS] == (
        "P1,2027-Q1,m,1,mdf_claim,claim:C2,content claim C2 (capped at the limit per content claim),4000.00,0.5,"
        '600.00,"4,000.00 × 50% = 2,000.00, capped at 600.00 per content claim"\n'
        'P1,2027-Q1,m,2,mdf_claim,claim:C1,event claim C1,1000.00,0.5,500.00,"1,000.00 × 50% = 500.00"\n'
        "P1,2027-Q1,m,3,mdf_claim,claim:C3,event claim C3 (partial: fund exhausted),900.01,0.5,100.50,"
        '"900.01 × 50% = 450.01, limited to the 100.50 still available"\n'
        "P1,2027-Q1,m,4,mdf_claim,claim:C7,event claim C7 (unpaid: fund exhausted),10.00,0.5,0.00,"
        '"10.00 × 50% = 5.00, limited to the 0.00 still available"\n'
        "P1,2027-Q1,m,5,bonus,launch,launch kit,25.00,,25.00,25 = 25.00\n")
    # results.jsonl: each number as its Decimal is written per record; the claim's amount as the file gave it
    # (1000, 4000.00), the rate 50% as 0.50 and each limit as the program gave it (600, 2000); what was still
    # available before each paid claim: 1,200.50, then 1,200.50 − 600.00 = 600.50, 600.50 − 500.00 = 100.50,
    # 100.50 − 100.50 = 0.00. The fund: opening 200.50 as read, 1,000.00 accrued, 1,200.50 available, paid
    # 600.00 + 500.00 + 100.50 + 0.00 = 1,200.50, closing 0.00; the rejected claims in submission order: C4
    # (02-02), C6 (02-02, after C4 by id), C8 (02-03), C5 (03-31), with their reasons.
    claim_line = ('{{"n":{n},"kind":"mdf_claim","rule_id":"claim:{id}","description":"{description}","basis":'
                  '"{amount}","rate":"0.50","amount":"{paid}","formula":"{formula}","inputs":{{"amount":"{amount}",'
                  '"still_available":"{still}","activity_end":"{end}","submitted_on":"{submitted}",'
                  '"claim_limit":"{limit}"}}}}')
    assert frame.row(0, named=True)[RESULT_JSON] == (
        '{"partner_id":"P1","period":"2027-Q1","program_id":"m","program_version":1,"currency":"USD",'
        '"status":"ok","tier":null,"next_tier":null,"attainment":null,"lines":['
        + claim_line.format(n=1, id="C2", description="content claim C2 (capped at the limit per content claim)",
                            amount="4000.00", paid="600.00", still="1200.50", end="2027-01-10",
                            submitted="2027-01-15", limit="600",
                            formula="4,000.00 × 50% = 2,000.00, capped at 600.00 per content claim") + ","
        + claim_line.format(n=2, id="C1", description="event claim C1", amount="1000", paid="500.00",
                            still="600.50", end="2027-01-20", submitted="2027-02-01", limit="2000",
                            formula="1,000.00 × 50% = 500.00") + ","
        + claim_line.format(n=3, id="C3", description="event claim C3 (partial: fund exhausted)", amount="900.01",
                            paid="100.50", still="100.50", end="2027-02-10", submitted="2027-03-01", limit="2000",
                            formula="900.01 × 50% = 450.01, limited to the 100.50 still available") + ","
        + claim_line.format(n=4, id="C7", description="event claim C7 (unpaid: fund exhausted)", amount="10",
                            paid="0.00", still="0.00", end="2027-02-20", submitted="2027-03-01", limit="2000",
                            formula="10.00 × 50% = 5.00, limited to the 0.00 still available") + ","
        '{"n":5,"kind":"bonus","rule_id":"launch","description":"launch kit","basis":"25","rate":null,'
        '"amount":"25.00","formula":"25 = 25.00","inputs":{}}],"total":"1225.50","reasons":[],"errors":[],'
        '"details":{"places":2,"opening":"200.50","accrued":"1000.00","accrual_rate":"0.01",'
        '"accrual_rate_source":"flat rate","accrual_formula":"100,000.00 × 1% = 1,000.00",'
        '"accrual_inputs":{"revenue":"100000"},"available":"1200.50","paid":"1200.50","closing":"0.00",'
        '"rejected_claims":[{"claim_id":"C4","reasons":["the activity was not pre-approved"]},'
        '{"claim_id":"C6","reasons":["activity \'travel\' is not eligible (eligible: event, digital, content, '
        'webinar)"]},{"claim_id":"C8","reasons":["amount -5 is not positive"]},'
        '{"claim_id":"C5","reasons":["submitted 89 days after the activity ended (limit 60)"]}]}}\n')
    # P2: no claims, only the bonus: nothing paid is Decimal(0), "0"; 2,000,000 × 1% = 20,000.00 capped at 9,000
    assert frame["total"].to_list()[:4] == [122550, 2500, None, 0]
    assert frame.row(1, named=True)[LINE_ROWS] == "P2,2027-Q1,m,1,bonus,launch,launch kit,25.00,,25.00,25 = 25.00\n"
    assert ('"details":{"places":2,"opening":"0","accrued":"9000.00","accrual_rate":"0.01","accrual_rate_source":'
            '"flat rate","accrual_formula":"2,000,000.00 × 1% = 20,000.00, capped at 9,000.00","accrual_inputs":'
            '{"revenue":"2000000"},"available":"9000.00","paid":"0","closing":"9000.00","rejected_claims":[]}}\n'
            ) in frame.row(1, named=True)[RESULT_JSON]
    # P3 per record: available 0 × 1% − 50 = −50.00: C10's 100 × 50% = 50.00 pays Decimal(0)
    assert [(line.rule_id, str(line.amount)) for line in results[2].lines] == [("claim:C10", "0"), ("launch", "25.00")]
    assert frame.row(3, named=True)[PAYOUT_ROW] == "P4,2027-Q1,m,1,ineligible,,,0.00,USD\n"
    assert frame.row(3, named=True)[LINE_ROWS] == ""


def test_without_claims_the_fund_adds_no_line(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, HAND)
    facts = facts_file(tmp_path, HAND_FACTS)
    by_columns = ProgramByColumns(compiled)
    given_none = pl.concat([by_columns.evaluate(block, PERIOD) for block in read_csv_blocks(facts)])
    given_empty = pl.concat([by_columns.evaluate(block, PERIOD, claims=claims_by_columns([]))
                             for block in read_csv_blocks(facts)])
    assert given_none.equals(given_empty)
    results = [None if row.problems else compiled.evaluate(row.partner_id, PERIOD, row.facts, {})
               for row in read_facts(facts)]
    # P7's claims are not given: it is computed too; P5 (a fraction of a cent opening) and P6 still go per record
    assert assert_parity(given_none, results) == 5
    # only the bonus of 25.00 on each eligible row
    assert given_none["total"].to_list() == [2500, 2500, 2500, 0, None, None, 2500]


RATE_TABLE = HEAD + """\
mdf:
  accrual:
    on: revenue
    rate_by: region
    rates: {EMEA: 0.5%, AMER: 1.25%}
    cap: 100
  claims: {reimbursement: 100%, activities: [event]}
"""


def test_accrual_by_rate_table_and_cap_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, RATE_TABLE)
    facts = facts_file(tmp_path, (
        "partner_id,period,revenue,region\n"
        "P1,2027-Q1,1000.40,EMEA\n"     # 1,000.40 × 0.5% = 5.002 → 5.00
        "P2,2027-Q1,8000,AMER\n"        # 8,000 × 1.25% = 100.00: not above the cap
        "P3,2027-Q1,8000.01,AMER\n"     # 100.000125 > 100: capped at 100.00
        "P4,2027-Q1,5000,APAC\n"        # no rate for APAC: 0
        "P5,2027-Q1,5000,\n"))          # region missing: an error, per record
    claims = read_claims(claims_file(tmp_path, (
        "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved\n"
        + "".join(f"C{n},P{n},2027-Q1,event,1000,2027-01-01,2027-01-02,false\n" for n in range(1, 6)))))
    frame, results = both_with_claims(compiled, facts, claims)
    assert assert_parity(frame, results) == 4
    # each partner claims 1000 × 100% = 1,000.00 of its fund: 5.00, 100.00, 100.00 and 0.00 are paid
    assert frame["total"].to_list() == [500, 10000, 10000, 0, None]
    assert frame.row(2, named=True)[LINE_ROWS] == (
        "P3,2027-Q1,m,1,mdf_claim,claim:C3,event claim C3 (partial: fund exhausted),1000.00,1,100.00,"
        '"1,000.00 × 100% = 1,000.00, limited to the 100.00 still available"\n')


def test_accrual_rate_by_a_condition_by_hand(tmp_path: Path) -> None:
    # per record a boolean key selects the rate named True or False (its str())
    compiled = compiled_from(tmp_path, RATE_TABLE.replace("rate_by: region", 'rate_by: "revenue >= 1000"')
                             .replace("{EMEA: 0.5%, AMER: 1.25%}", "{'True': 2%, 'False': 1%}"))
    facts = facts_file(tmp_path, "partner_id,period,revenue\nP1,2027-Q1,1000\nP2,2027-Q1,999\n")
    claims = read_claims(claims_file(tmp_path, (
        "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved\n"
        "C1,P1,2027-Q1,event,50,2027-01-01,2027-01-02,false\nC2,P2,2027-Q1,event,50,2027-01-01,2027-01-02,false\n")))
    frame, results = both_with_claims(compiled, facts, claims)
    assert assert_parity(frame, results) == 2
    # P1: 1000 × 2% = 20.00 of its claim of 50.00; P2: 999 × 1% = 9.99
    assert frame["total"].to_list() == [2000, 999]


def test_rows_the_columns_cannot_compute_go_per_record(tmp_path: Path) -> None:
    # a rate key that is a number: per record its text depends on how the cell was written (1 or 1.0)
    by_number = compiled_from(tmp_path, RATE_TABLE.replace("rate_by: region", "rate_by: level")
                              .replace("{EMEA: 0.5%, AMER: 1.25%}", "{'1': 1%}"))
    facts = facts_file(tmp_path, "partner_id,period,revenue,level,mdf_balance\nP1,2027-Q1,100,1,x\n"
                                 "P2,2027-Q1,100,1,\n")
    frame = pl.concat([ProgramByColumns(by_number).evaluate(block, PERIOD) for block in read_csv_blocks(facts)])
    assert frame[BY_COLUMNS].to_list() == [False, False]
    # an opening balance that is text is an error per record; a flat rate computes the other row
    flat = compiled_from(tmp_path, RATE_TABLE.replace("rate_by: region", "rate: 1%").replace(
        "    rates: {EMEA: 0.5%, AMER: 1.25%}\n", ""))
    frame, results = both_with_claims(flat, facts, [])
    assert assert_parity(frame, results) == 1
    assert frame[BY_COLUMNS].to_list() == [False, True]
    assert results[0].status == "error"


def test_a_partner_with_more_claims_than_slots_goes_per_record(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(mdf_by_columns, "MAX_CLAIMS_BY_COLUMNS", 2)
    compiled = compiled_from(tmp_path, RATE_TABLE)
    facts = facts_file(tmp_path, "partner_id,period,revenue,region\nP1,2027-Q1,1000,EMEA\nP2,2027-Q1,1000,EMEA\n")
    claims = read_claims(claims_file(tmp_path, (
        "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved\n"
        + "".join(f"A{n},P1,2027-Q1,event,1,2027-01-01,2027-01-0{n},false\n" for n in range(1, 4))
        + "".join(f"B{n},P2,2027-Q1,event,1,2027-01-01,2027-01-0{n},false\n" for n in range(1, 3)))))
    frame, results = both_with_claims(compiled, facts, claims)
    # P1 has 3 claims, one more than the slots; P2's two claims pay 1.00 each of its 1000 × 0.5% = 5.00
    assert assert_parity(frame, results) == 1
    assert frame[BY_COLUMNS].to_list() == [False, True]
    assert frame["total"].to_list() == [None, 200]


def test_claims_frame(tmp_path: Path) -> None:
    claims = read_claims(claims_file(tmp_path, HAND_CLAIMS + "C14,P9,2027-Q1,event,0.0000000000000000001,"
                                                             "2027-01-01,2027-01-02,true\n"))
    frame = claims_by_columns(claims)
    # the most decimals an amount has within 18: 900.01's 2 (C14's 19 are too many: per record)
    assert frame.amount_scale == 2
    assert frame.frame["amount"].to_list()[:4] == [100000, 400000, 1000, 90001]  # C1, C2, C7, C3
    assert frame.amount_bound == 10000000  # C13: 100000 at 2 places
    # the duplicate C12s and C9 (no submission date) have a problem each, and C14's amount cannot be held
    assert frame.frame[NEEDS_RECORD].to_list() == [False] * 11 + [True] * 4


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False,
                                                         min_value=Decimal("-1e30"), max_value=Decimal("1e30"))),
                        min_size=1, max_size=8))
def test_claims_frame_holds_each_amount_exactly_or_flags_it(amounts) -> None:
    claims = [Claim(f"C{n}", "P1", "2027-Q1", "event", amount, None, None, True,
                    problems=() if amount is not None else ("missing amount",)) for n, amount in enumerate(amounts)]
    frame = claims_by_columns(claims)
    for amount, units, flagged in zip(amounts, frame.frame["amount"].to_list(), frame.frame[NEEDS_RECORD].to_list()):
        if flagged:
            # flagged exactly when the amount is missing, has too many decimals or too many units for Int64
            assert amount is None or -amount.as_tuple().exponent > 18 or abs(amount.scaleb(frame.amount_scale)) >= 2**63
        else:
            assert Decimal(units).scaleb(-frame.amount_scale) == amount
            assert abs(units) <= frame.amount_bound


def test_only_mdf_programs_take_claims(tmp_path: Path) -> None:
    tier = compiled_from(tmp_path, HEAD.replace("kind: mdf", "kind: tier")
                         + "tiers:\n  qualify_on: revenue\n  levels:\n    - {name: A, from: 0, rate: 1%}\n")
    block = next(read_csv_blocks(facts_file(tmp_path, "partner_id,period,revenue\nP1,2027-Q1,1\n")))
    with pytest.raises(ValueError, match="only MDF programs take claims"):
        ProgramByColumns(tier).evaluate(block, PERIOD, claims=claims_by_columns([]))


# --- the bundled and benchmark MDF programs, reading their tier programs' results by columns (`uses`) --------


def mdf_using_parity(tmp_path: Path, programs: Sequence[Path], facts: Path, claims: Sequence[Claim]) -> list:
    """The MDF program (the last of ``programs``, which uses the first) by columns, given the used program's
    frame and the claims that name it (or none), against the per-record engine; returns its per-record
    results after asserting that every row the used program computed by columns is, with the same texts."""
    (tmp_path / "programs").mkdir()
    for program in programs:
        (tmp_path / "programs" / program.name).write_bytes(program.read_bytes())
    engine = Engine(tmp_path / "programs")
    used_id, mdf_id = engine.program_ids
    routed = claims_by_columns([claim for claim in claims if claim.program_id in (None, mdf_id)])
    used, mdf = (ProgramByColumns(engine.program_version(program_id, 1)) for program_id in engine.program_ids)
    frames = []
    used_by_columns = 0
    for block in read_csv_blocks(facts):
        used_frame = used.evaluate(block, PERIOD)
        used_by_columns += int(used_frame[BY_COLUMNS].sum())
        frames.append(mdf.evaluate(block, PERIOD, used={used_id: used_frame}, claims=routed))
    frame = pl.concat(frames)
    grouped = claims_of(claims)
    results = [engine.evaluate_facts(row.partner_id, row.period, row.facts, row.problems,
                                     grouped.get((row.partner_id, row.period), []))[mdf_id]
               for row in read_facts(facts)]
    # every row whose used result is computed by columns
    assert assert_parity(frame, results) == used_by_columns
    return results


@pytest.mark.parametrize("name, used", [("co_marketing_mdf", "networking_role_tier"),
                                        ("service_provider_mdf", "service_provider_tier")])
def test_bundled_mdf_programs_parity(tmp_path: Path, name: str, used: str) -> None:
    results = mdf_using_parity(tmp_path, [ROOT / "programs" / f"{used}.yaml", ROOT / "programs" / f"{name}.yaml"],
                               ROOT / "examples" / "facts_2027Q1.csv",
                               read_claims(ROOT / "examples" / "claims_2027Q1.csv"))
    # every row of the example file is computed by columns, claims included, and claims are paid
    assert len(results) == 300
    assert sum(line.kind == "mdf_claim" and line.amount > 0 for result in results for line in result.lines) > 10


def test_benchmark_mdf_program_parity_10k(tmp_path: Path) -> None:
    facts, claims_path = tmp_path / "facts.csv", tmp_path / "claims.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "10000", "--out", str(facts),
                    "--claims", str(claims_path)], check=True, capture_output=True)
    programs = ROOT / "benchmarks" / "programs"
    results = mdf_using_parity(tmp_path, [programs / "partner_tier.yaml", programs / "co_marketing.yaml"], facts,
                               read_claims(claims_path))
    assert len(results) == 10000
    # claims paid, partly and not at all among them
    assert sum(line.kind == "mdf_claim" for result in results for line in result.lines) > 1000


# --- random MDF programs, facts and claims -----------------------------------------------------------------

ACTIVITIES = ["event", "digital", "content", "travel"]
amounts = st.decimals(min_value=Decimal("-100"), max_value=Decimal("99999"), places=3, allow_nan=False)
# activities end in the quarter's first week and are submitted up to 40 days later: submission dates often
# tie, and the claim id (given in descending order) decides
claim_rows = st.tuples(st.integers(0, 3), st.sampled_from(["event", *ACTIVITIES]),
                       st.decimals(min_value=Decimal("-10"), max_value=Decimal("5000"), places=3, allow_nan=False),
                       st.integers(0, 6), st.integers(-2, 40), st.sampled_from([True, True, True, False]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.booleans(), rate=st.sampled_from(["0%", "1%", "2.5%", "3.333%", "100%"]),
       cap=st.sampled_from(["", "    cap: 150.555\n", "    cap: 0\n"]),
       reimbursement=st.sampled_from(["50%", "33.3%", "100%", "12.345%"]),
       eligible=st.lists(st.sampled_from(ACTIVITIES[1:3]), max_size=2, unique=True),
       preapproval=st.booleans(), window=st.sampled_from(["", "    submit_within_days: 30\n"]),
       per_claim=st.sampled_from(["", "    max_per_claim: 75\n"]), content_limit=st.booleans(),
       places=st.sampled_from([0, 2, 3]), rounding=st.sampled_from(["half_up", "half_even", "down", "up"]),
       revenues=st.lists(st.one_of(amounts, amounts, amounts, st.just(None)), min_size=4, max_size=6),
       openings=st.lists(st.sampled_from(["", "", "", "0", "50", "-20.5", "12.345", "1000.10", "10.000"]),
                         min_size=6, max_size=6),
       regions=st.lists(st.sampled_from(["EMEA", "AMER", "APAC"]), min_size=6, max_size=6),
       claims=st.lists(claim_rows, min_size=6, max_size=14))
def test_random_mdf_programs_parity(tmp_path_factory, table, rate, cap, reimbursement, eligible, preapproval,
                                    window, per_claim, content_limit, places, rounding, revenues, openings, regions,
                                    claims) -> None:
    tmp_path = tmp_path_factory.mktemp("random")
    accrual = ("    rate_by: region\n    rates: {EMEA: " + rate + ", AMER: 0.7%}\n") if table else f"    rate: {rate}\n"
    limits = "    max_by_activity: {content: 20}\n" if content_limit and "content" in eligible else ""
    program = (HEAD.replace("places: 2, mode: half_up", f"places: {places}, mode: {rounding}")
               + "mdf:\n  accrual:\n    on: revenue\n" + accrual + cap
               + f"  claims:\n    reimbursement: {reimbursement}\n    activities: [{', '.join(['event', *eligible])}]\n"
               + f"    requires_preapproval: {str(preapproval).lower()}\n" + window + per_claim + limits)
    compiled = compiled_from(tmp_path, program)
    facts = facts_file(tmp_path, "partner_id,period,revenue,mdf_balance,region\n" + "".join(
        f"P{index},2027-Q1,{'' if revenue is None else revenue},{openings[index]},{regions[index]}\n"
        for index, revenue in enumerate(revenues)))
    start = date(2027, 1, 1)
    lines = []
    for number, (partner, activity, amount, ended, after, preapproved) in enumerate(claims):
        submitted = (start + timedelta(days=ended + after)).isoformat()
        lines.append(f"C{99 - number},P{partner},2027-Q1,{activity},{amount},{(start + timedelta(days=ended))},"
                     f"{submitted},{str(preapproved).lower()}\n")
    claim_list = read_claims(claims_file(tmp_path, "claim_id,partner_id,period,activity,amount,activity_end,"
                                                   "submitted_on,preapproved\n" + "".join(lines)))
    frame, results = both_with_claims(compiled, facts, claim_list)
    # by columns exactly the rows with a revenue and an opening balance written with no more decimals than the
    # places (12.345 and 10.000 not at 2 places, 1000.10 and −20.5 not at none), but those whose fund is below
    # zero and pays a claim (per record it pays Decimal(0), written "0"); no claim has a problem of its own
    assert not any(claim.problems for claim in claim_list)

    def by_columns(index: int, revenue: Decimal | None) -> bool:
        opening = Decimal(openings[index] or "0")
        result = results[index]
        fund_below_zero = result.details.get("available", 0) < 0 and any(
            line.kind == "mdf_claim" for line in result.lines)
        return revenue is not None and -opening.as_tuple().exponent <= places and not fund_below_zero

    expected = sum(by_columns(index, revenue) for index, revenue in enumerate(revenues))
    assert assert_parity(frame, results) == expected
