"""Programs that use other programs' results, by columns (ProgramByColumns.evaluate's ``used`` frames): the
``X.tier``, ``X.total``, ``X.eligible`` values, the rows that go per record, and parity with the per-record
engine's CSV rows (``Engine.evaluate_facts``, whose ``_used`` is the per-record reading of a used result)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives.columnar.facts import read_csv_blocks
from incentives.columnar.program import BY_COLUMNS, LINE_ROWS, PAYOUT_ROW, ProgramByColumns, with_used
from incentives.engine import Engine
from incentives.inputs import read_facts
from incentives.loading import load_programs
from incentives.output.files import result_rows

from by_columns_support import PERIOD, ROOT, facts_file

HEAD = """\
id: {id}
name: {id}
kind: {kind}
version: 1
currency: USD
effective: {{from: 2027-01-01}}
period: quarter
fiscal_year_start: "01-01"
rounding: {{places: {places}, mode: half_up, ratio_places: 4}}
"""

# the used program: Silver from 1000 (1%), Gold from 5000 (2%), for active partners only
PARTNER_TIER = HEAD.format(id="pt", kind="tier", places=2) + """\
eligibility:
  - {id: active, when: "active == true"}
tiers:
  qualify_on: revenue
  levels:
    - {name: Silver, from: 1000, rate: 1%}
    - {name: Gold, from: 5000, rate: 2%}
"""

# a tier program on the used program's results: its tier raises the rate, its total pays a share
USER_TIER = HEAD.format(id="ut", kind="tier", places=3) + """\
uses: [pt]
eligibility:
  - {id: tiered, when: "pt.eligible"}
tiers:
  qualify_on: deals
  levels:
    - {name: Any, from: 0, rate: 10%}
    - {name: Gold, from: 50, rate: 20%, requires: "pt.tier == 'Gold'"}
bonuses:
  - {id: share, when: "pt.total > 50", amount: "pt.total * 0.5", description: half of pt}
"""

# a goal program whose target is the used total
USER_GOAL = HEAD.format(id="ug", kind="goal", places=2) + """\
uses: [pt]
goals:
  targets:
    - {id: beat, metric: deals, target: "pt.total + 100", weight: 100%}
  payout:
    on: "if(pt.eligible, 1000, 500)"
    curve:
      - {attainment: 0%, factor: 0%}
      - {attainment: 100%, factor: 100%}
"""


def engine_of(tmp_path: Path, *programs: str) -> Engine:
    folder = tmp_path / "programs"
    folder.mkdir(exist_ok=True)
    for index, text in enumerate(programs):
        (folder / f"p{index}.yaml").write_text(text, encoding="utf-8")
    return Engine(folder)


def by_columns(engine: Engine, facts: Path) -> dict[str, pl.DataFrame]:
    """Each program's frame over the facts, in the engine's (``uses``) order, each given the frames of the
    programs it uses."""
    frames: dict[str, list[pl.DataFrame]] = {program_id: [] for program_id in engine.program_ids}
    for block in read_csv_blocks(facts):
        done: dict[str, pl.DataFrame] = {}
        for program_id in engine.program_ids:
            compiled = engine.program_version(program_id, 1)
            done[program_id] = ProgramByColumns(compiled).evaluate(block, PERIOD, used=done)
            frames[program_id].append(done[program_id])
    return {program_id: pl.concat(parts) for program_id, parts in frames.items()}


def per_record(engine: Engine, facts: Path) -> list[dict]:
    return [engine.evaluate_facts(row.partner_id, row.period, row.facts, row.problems, [], None)
            for row in read_facts(facts)]


def assert_parity(frame: pl.DataFrame, results: list[dict], program_id: str) -> int:
    """Every row computed by columns has the per-record engine's CSV text; returns how many were."""
    assert frame.height == len(results)
    computed = 0
    for row, result in zip(frame.iter_rows(named=True), results):
        if row[BY_COLUMNS]:
            computed += 1
            assert (row[PAYOUT_ROW], row[LINE_ROWS]) == result_rows(result[program_id]), row["partner_id"]
    return computed


FACTS = (
    "partner_id,period,active,revenue,deals\n"
    "P1,2027-Q1,true,6000,100\n"     # pt Gold
    "P2,2027-Q1,true,1500,100\n"     # pt Silver
    "P3,2027-Q1,false,6000,100\n"    # pt ineligible
    "P4,2027-Q1,true,,100\n"         # pt an error (revenue missing): the users' errors too, per record
    "P5,2027-Q1,true,6000,\n"        # the users' own fact missing: per record
    "P6,2027-Q1,true,900,100\n")     # pt below its first level: eligible, no tier, no line


def test_a_tier_program_using_a_tier_program_by_hand(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, PARTNER_TIER, USER_TIER)
    facts = facts_file(tmp_path, FACTS)
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    assert assert_parity(frames["pt"], results, "pt") == 5
    user = frames["ut"]
    assert assert_parity(user, results, "ut") == 4
    # P4: pt is an error; P5: deals missing
    assert user[BY_COLUMNS].to_list() == [True, True, True, False, False, True]
    assert [results[index]["ut"].status for index in (2, 3, 4, 5)] == ["ineligible", "error", "error", "ok"]
    assert results[3]["ut"].errors == ["uses 'pt', whose result for this record is an error"]
    # P1: pt Gold, 6000 × 2% = 120.00; ut Gold, 100 × 20% = 20.000; 120.00 > 50: + 120.00 × 0.5 = 60.000 → 80.000
    assert user.row(0, named=True)[PAYOUT_ROW] == "P1,2027-Q1,ut,1,ok,Gold,,80.000,USD\n"
    assert user.row(0, named=True)[LINE_ROWS] == (
        "P1,2027-Q1,ut,1,base,tier:Gold,Gold tier rate on deals,100.000,0.2,20.000,100.000 × 20% = 20.000\n"
        "P1,2027-Q1,ut,2,bonus,share,half of pt,60.000,,60.000,pt.total * 0.5 = 60.000\n")
    # P2: pt Silver, 1500 × 1% = 15.00 (not > 50); ut Any, 100 × 10% = 10.000
    assert user.row(1, named=True)[PAYOUT_ROW] == "P2,2027-Q1,ut,1,ok,Any,,10.000,USD\n"
    # P3: pt ineligible, so is ut (pt.eligible is false)
    assert user.row(2, named=True)[PAYOUT_ROW] == "P3,2027-Q1,ut,1,ineligible,,,0.000,USD\n"
    # P6: pt has no tier (None, unequal to 'Gold') and a total of 0: Any, 100 × 10% = 10.000, no share
    assert user.row(5, named=True)[PAYOUT_ROW] == "P6,2027-Q1,ut,1,ok,Any,,10.000,USD\n"
    assert user["total"].to_list() == [80000, 10000, 0, None, None, 10000]


def test_a_goal_program_using_a_tier_program_by_hand(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, PARTNER_TIER, USER_GOAL)
    facts = facts_file(tmp_path, FACTS)
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    user = frames["ug"]
    assert assert_parity(user, results, "ug") == 4
    # P6 reads no tier: the goal program computes it (pt eligible with a total of 0)
    assert user[BY_COLUMNS].to_list() == [True, True, True, False, False, True]
    # P1: target 120.00 + 100 = 220; 100 / 220 = 0.4545 (4 places); factor 0.4545; 1000 × 0.4545 = 454.50
    # P2: 15.00 + 100 = 115; 100 / 115 = 0.8696; 1000 × 0.8696 = 869.60
    # P3: pt ineligible (total 0): 100 / 100 = 1, on 500 (if(pt.eligible...) is false): 500.00
    # P6: pt eligible, total 0: 100 / 100 = 1, 1000 × 1 = 1000.00
    assert user["total"].to_list() == [45450, 86960, 50000, None, None, 100000]
    assert user.row(0, named=True)[LINE_ROWS] == (
        "P1,2027-Q1,ug,1,base,goal:payout,\"if(pt.eligible, 1000, 500) at factor 45.45% for weighted attainment "
        "45.45%\",1000.00,0.4545,454.50,\"1,000.00 × 45.45% = 454.50\"\n")


def test_bundled_goal_program_using_the_bundled_tier_program_parity(tmp_path: Path) -> None:
    # service_provider_goal_rebate uses service_provider_tier
    engine = Engine(load_programs([ROOT / "programs" / f"{name}.yaml"
                                   for name in ("service_provider_tier", "service_provider_goal_rebate")]))
    facts = ROOT / "examples" / "facts_2027Q1.csv"
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    assert engine.program_ids == ["service_provider_tier", "service_provider_goal_rebate"]
    assert assert_parity(frames["service_provider_tier"], results, "service_provider_tier") == 300
    # every row, those without a Professional tier (None, or another) included
    assert assert_parity(frames["service_provider_goal_rebate"], results, "service_provider_goal_rebate") == 300


# a tier program on the benchmark's partner_tier results, reading every used value and its own outcome
ON_PARTNER_TIER = HEAD.format(id="loyalty", kind="tier", places=2) + """\
uses: [partner_tier]
defaults: {nps: 0, new_logos: 0, returns: 0}
eligibility:
  - {id: tiered, when: "partner_tier.eligible and partner_tier.tier != 'Registered'"}
tiers:
  qualify_on: partner_tier.total
  levels:
    - {name: Low, from: 0, rate: 10%}
    - {name: High, from: 5000, rate: 12.5%, requires: "partner_tier.tier in ['Gold', 'Platinum']"}
bonuses:
  - {id: promoter, when: "nps >= 60 and this.tier == 'High'", amount: "this.base * 0.2 + new_logos"}
deductions:
  - {id: returns, when: "returns > this.subtotal", amount: "this.subtotal * 0.5", description: returns}
cap: "partner_tier.total * 0.11"
"""


def test_benchmark_partner_tier_users_parity(tmp_path: Path) -> None:
    facts = tmp_path / "facts.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "3000", "--out", str(facts)],
                   check=True, capture_output=True)
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "partner_tier.yaml").write_bytes(
        (ROOT / "benchmarks" / "programs" / "partner_tier.yaml").read_bytes())
    engine = engine_of(tmp_path, ON_PARTNER_TIER)
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    assert engine.program_ids == ["partner_tier", "loyalty"]
    # the generated records have every fact, well typed: every row of both is computed by columns
    assert assert_parity(frames["partner_tier"], results, "partner_tier") == 3000
    assert assert_parity(frames["loyalty"], results, "loyalty") == 3000
    assert {result["loyalty"].status for result in results} == {"ok", "ineligible"}
    # every step fires somewhere
    assert {line.kind for result in results for line in result["loyalty"].lines} == \
        {"base", "bonus", "deduction", "cap"}


def test_used_values_win_over_facts_and_defaults_of_their_names(tmp_path: Path) -> None:
    user = USER_TIER.replace("uses: [pt]\n", "uses: [pt]\ndefaults: {pt.total: 1000}\n")
    engine = engine_of(tmp_path, PARTNER_TIER, user)
    # a fact named pt.total (and pt.tier) is shadowed by pt's result, as per record
    facts = facts_file(tmp_path, "partner_id,period,active,revenue,deals,pt.total,pt.tier\n"
                                 "P1,2027-Q1,true,1500,100,9999,Gold\n"
                                 "P2,2027-Q1,true,6000,100,,\n")
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    assert assert_parity(frames["ut"], results, "ut") == 2
    # P1: pt Silver with 15.00 (not 9999, not Gold): Any, 10.000, no share
    assert frames["ut"]["total"].to_list() == [10000, 80000]


def test_a_used_program_without_a_frame_sends_every_row_per_record(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, PARTNER_TIER, USER_TIER)
    (block,) = read_csv_blocks(facts_file(tmp_path, FACTS))
    frame = ProgramByColumns(engine.program_version("ut", 1)).evaluate(block, PERIOD)
    assert frame[BY_COLUMNS].to_list() == [False] * 6


def test_frames_of_other_rows_are_refused(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, PARTNER_TIER, USER_TIER)
    first, second = read_csv_blocks(facts_file(tmp_path, FACTS), rows_per_block=3)
    used = {"pt": ProgramByColumns(engine.program_version("pt", 1)).evaluate(first, PERIOD)}
    with pytest.raises(ValueError, match="not over the rows"):
        ProgramByColumns(engine.program_version("ut", 1)).evaluate(second, PERIOD, used=used)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(places=st.sampled_from([0, 2, 3]),
       rows=st.lists(st.tuples(st.sampled_from(["true", "false", "", "maybe"]),
                               st.one_of(st.none(), st.decimals(min_value=Decimal("-100"), max_value=Decimal("9999"),
                                                                places=2, allow_nan=False)),
                               st.sampled_from(["0", "5", "100", "", "x"])), min_size=1, max_size=12))
def test_random_facts_parity(tmp_path_factory, places, rows) -> None:
    tmp_path = tmp_path_factory.mktemp("uses")
    used = PARTNER_TIER.replace("places: 2", f"places: {places}")
    engine = engine_of(tmp_path, used, USER_TIER, USER_GOAL)
    facts = facts_file(tmp_path, "partner_id,period,active,revenue,deals\n" + "".join(
        f"P{index},2027-Q1,{active},{'' if revenue is None else revenue},{deals}\n"
        for index, (active, revenue, deals) in enumerate(rows)))
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    for program_id in ("pt", "ut", "ug"):
        assert_parity(frames[program_id], results, program_id)
    # a user's row is computed by columns only over a used row that is, and is not an error
    for program_id in ("ut", "ug"):
        for user, used in zip(frames[program_id].iter_rows(named=True), frames["pt"].iter_rows(named=True)):
            assert not user[BY_COLUMNS] or (used[BY_COLUMNS] and used["status"] != "error")
    # the used block holds pt's values as per record, X.total with the decimals a line's inputs show: pt's places
    # once it has a line, none before (its total starts at Decimal(0))
    (block,) = read_csv_blocks(facts)
    compiled = engine.program_version("ut", 1)
    used_block = with_used(block, compiled.used_names, {"pt": frames["pt"]})
    for index, (row, result) in enumerate(zip(used_block.frame.iter_rows(named=True), results)):
        used = result["pt"]
        if not row["per_record"]:
            assert row["pt.tier"] == used.tier and row["pt.eligible"] == (used.status == "ok")
            assert Decimal(row["pt.total"]).scaleb(-places) == used.total
            assert used_block.decimals["pt.total"][index] == -used.total.as_tuple().exponent
        else:
            assert not frames["pt"][BY_COLUMNS][index] or used.status == "error"


USED_CONDITIONS = ["pt.eligible", "not pt.eligible", "pt.tier == 'Gold'", "pt.tier != 'Silver'",
                   "pt.tier in ['Gold', 'Silver']", "pt.tier not in ['Gold']", "pt.total >= 20", "pt.tier > 'H'",
                   "pt.eligible and pt.total * 2 > deals", "if(pt.eligible, pt.total, 0) < 100"]
USED_AMOUNTS = ["pt.total", "pt.total * 1.5 + deals", "abs(deals - pt.total)", "if(pt.tier == 'Gold', 7, 0.5)",
                "max(this.subtotal - pt.total, 0)", "this.base * 0.1"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["tier", "goal"]), eligibility=st.sampled_from(USED_CONDITIONS),
       when=st.sampled_from(USED_CONDITIONS + ["this.subtotal > pt.total"]), amount=st.sampled_from(USED_AMOUNTS),
       cap=st.sampled_from(["", "cap: \"pt.total + 10\"\n"]), places=st.sampled_from([0, 2]),
       rows=st.lists(st.tuples(st.sampled_from(["true", "false"]),
                               st.one_of(st.none(), st.decimals(min_value=Decimal("0"), max_value=Decimal("9999"),
                                                                places=2)),
                               st.sampled_from(["0", "5", "100", "2500", ""])), min_size=1, max_size=10))
def test_random_user_programs_parity(tmp_path_factory, kind, eligibility, when, amount, cap, places, rows) -> None:
    tmp_path = tmp_path_factory.mktemp("users")
    if kind == "tier":
        section = ("tiers:\n  qualify_on: \"deals + pt.total\"\n  levels:\n    - {name: A, from: 0, rate: 10%}\n"
                   "    - {name: B, from: 100, rate: 15%, requires: \"" + eligibility + "\"}\n")
    else:
        section = ("goals:\n  targets:\n    - {id: t, metric: \"deals + 1\", target: \"pt.total + 1\", weight: 100%}\n"
                   "  payout:\n    on: \"if(pt.eligible, 100, 50)\"\n    curve:\n"
                   "      - {attainment: 0%, factor: 0%}\n      - {attainment: 300%, factor: 300%}\n")
    user = (HEAD.format(id="u", kind=kind, places=places) + "uses: [pt]\n" + cap
            + f"eligibility:\n  - {{id: e, when: \"{eligibility}\"}}\n" + section
            + f"bonuses:\n  - {{id: b, when: \"{when}\", amount: \"{amount}\"}}\n")
    engine = engine_of(tmp_path, PARTNER_TIER, user)
    facts = facts_file(tmp_path, "partner_id,period,active,revenue,deals\n" + "".join(
        f"P{index},2027-Q1,{active},{'' if revenue is None else revenue},{deals}\n"
        for index, (active, revenue, deals) in enumerate(rows)))
    frames, results = by_columns(engine, facts), per_record(engine, facts)
    assert_parity(frames["u"], results, "u")
    # a row whose pt result is computed (its revenue is there) and whose deals are there is computed by the user
    # too, unless the user raises on it per record (an ordering of no tier, a target of 0, a negative amount)
    for row, result, (_, revenue, deals) in zip(frames["u"].iter_rows(named=True), results, rows):
        if revenue is not None and deals != "" and result["u"].status != "error":
            assert row[BY_COLUMNS], (row["partner_id"], result["u"])
