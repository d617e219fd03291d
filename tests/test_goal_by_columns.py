"""Goal programs by columns (kinds.goal_by_columns.GoalByColumns through incentives.columnar.program):
hand-computed blocks, the bundled goal programs, and parity with the per-record path's CSV rows over random goal
programs."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives.columnar.program import BY_COLUMNS, LINE_ROWS, PAYOUT_ROW
from incentives.compiler import CompiledProgram
from incentives.loading import load_programs
from incentives.rules.registry import make_backend
from by_columns_support import ROOT, assert_parity, both, compiled_from, facts_file

HEAD = """\
id: g
name: G
kind: goal
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
fiscal_year_start: "01-01"
rounding: {places: 2, mode: half_up, ratio_places: 4}
"""

# curve: 50% → 0%, 80% → 50%, 100% → 100%, 150% → 200%
WEIGHTED = HEAD + """\
goals:
  targets:
    - {id: rev,   metric: revenue, target: quota, weight: 60%}
    - {id: logos, metric: logos,   target: 3,     weight: 40%}
  attainment_cap: 150%
  payout:
    on: incentive
    interpolation: INTERPOLATION
    curve:
      - {attainment: 50%,  factor: 0%}
      - {attainment: 80%,  factor: 50%}
      - {attainment: 100%, factor: 100%}
      - {attainment: 150%, factor: 200%}
"""

WEIGHTED_FACTS = (
    "partner_id,period,revenue,quota,logos,incentive\n"
    "P1,2027-Q1,1000,1000,3,500\n"      # exact attainments
    "P2,2027-Q1,2000,3000,2,500\n"      # inexact attainments, an inexact factor
    "P3,2027-Q1,3000,1000,6,500\n"      # both capped
    "P4,2027-Q1,1200,1000,4,500\n"      # between 100% and 150%
    "P5,2027-Q1,1000,0,3,500\n"         # a target of zero: an error, per record
    "P6,2027-Q1,1000,1000,,500\n")      # logos missing: an error, per record


def test_weighted_linear_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, WEIGHTED.replace("INTERPOLATION", "linear"))
    frame, results = both(compiled, facts_file(tmp_path, WEIGHTED_FACTS))
    assert assert_parity(frame, results) == 4
    assert frame[BY_COLUMNS].to_list() == [True] * 4 + [False] * 2
    assert [result.status for result in results[4:]] == ["error", "error"]
    # P1: 1000/1000 = 1, 3/3 = 1; weighted 0.6 + 0.4 = 1 → on the 100% point: factor 100%, 500 × 1 = 500.00
    assert frame.row(0, named=True)[PAYOUT_ROW] == "P1,2027-Q1,g,1,ok,,1.000000,500.00,USD\n"
    assert frame.row(0, named=True)[LINE_ROWS] == (
        "P1,2027-Q1,g,1,base,goal:payout,incentive at factor 100% for weighted attainment 100%,500.00,1,500.00,"
        "500.00 × 100% = 500.00\n")
    # P2: 2000/3000 = 0.66666… → 0.6667 (4 places), 2/3 → 0.6667; weighted 0.6 × 0.6667 + 0.4 × 0.6667 = 0.6667;
    # between 50% (0%) and 80% (50%): (0.5 × (0.6667 − 0.5) + 0 × 0.3) / 0.3 = 0.08335 / 0.3 = 0.27783… → 0.2778;
    # 500 × 0.2778 = 138.90
    assert frame.row(1, named=True)[PAYOUT_ROW] == "P2,2027-Q1,g,1,ok,,0.666700,138.90,USD\n"
    assert frame.row(1, named=True)[LINE_ROWS] == (
        "P2,2027-Q1,g,1,base,goal:payout,incentive at factor 27.78% for weighted attainment 66.67%,500.00,0.2778,"
        "138.90,500.00 × 27.78% = 138.90\n")
    # P3: 3000/1000 = 3 and 6/3 = 2, each capped at 1.5; weighted 1.5 → the last point: 200%, 500 × 2 = 1000.00
    # P4: 1200/1000 = 1.2, 4/3 → 1.3333; weighted 0.72 + 0.53332 = 1.25332;
    # (1 × (1.25332 − 1) + 1 × 0.5) / 0.5 = 1.50664 → 1.5066; 500 × 1.5066 = 753.30
    assert frame["total"].to_list() == [50000, 13890, 100000, 75330, None, None]
    assert frame.row(3, named=True)[PAYOUT_ROW] == "P4,2027-Q1,g,1,ok,,1.253320,753.30,USD\n"


def test_weighted_step_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, WEIGHTED.replace("INTERPOLATION", "step"))
    frame, results = both(compiled, facts_file(tmp_path, WEIGHTED_FACTS))
    assert assert_parity(frame, results) == 4
    # the factor of the point at or below the weighted attainment: P1 1 → 100%, P2 0.6667 → 0%,
    # P3 1.5 → 200%, P4 1.25332 → 100%; × 500
    assert frame["total"].to_list()[:4] == [50000, 0, 100000, 50000]


PER_GOAL = HEAD + """\
goals:
  targets:
    - {id: rev,   metric: revenue, target: quota, weight: 60%, threshold: 80%}
    - {id: logos, metric: logos,   target: 3,     weight: 40%, cap: 120%,
       curve: [{attainment: 0%, factor: 0%}, {attainment: 100%, factor: 100%}]}
  attainment_cap: 150%
  payout:
    on: incentive
    per_goal: true
    curve:
      - {attainment: 80%,  factor: 50%}
      - {attainment: 100%, factor: 100%}
      - {attainment: 150%, factor: 150%}
"""


def test_per_goal_with_a_goal_under_its_threshold_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, PER_GOAL)
    frame, results = both(compiled, facts_file(tmp_path, (
        "partner_id,period,revenue,quota,logos,incentive\n"
        "P1,2027-Q1,700,1000,4,500\n"
        "P2,2027-Q1,900,1000,1,500\n")))
    assert assert_parity(frame, results) == 2
    # P1: rev 700/1000 = 0.7 < its threshold 0.8: factor 0, 500 × 0.6 × 0 = 0.00;
    # logos 4/3 → 1.3333, capped at its own 1.2; its own curve is flat after 100%: factor 1, rate 0.4 × 1,
    # 500 × 0.4 = 200.00; weighted 0.6 × 0.7 + 0.4 × 1.2 = 0.42 + 0.48 = 0.9
    assert frame.row(0, named=True)[PAYOUT_ROW] == "P1,2027-Q1,g,1,ok,,0.900000,200.00,USD\n"
    assert frame.row(0, named=True)[LINE_ROWS] == (
        "P1,2027-Q1,g,1,base,goal:rev,\"goal 'rev' at factor 0% below its threshold 80%, weight 60%\",500.00,0,0.00,"
        "500.00 × weight 60% × factor 0% (attainment 70%) = 0.00\n"
        "P1,2027-Q1,g,2,base,goal:logos,\"goal 'logos' at factor 100% for attainment 120%, weight 40%\",500.00,0.4,"
        "200.00,500.00 × weight 40% × factor 100% (attainment 120%) = 200.00\n")
    # P2: rev 0.9 on the program's curve: (0.5 × 0.1 + 0.5 × 0.2) / 0.2 = 0.75, rate 0.6 × 0.75 = 0.45,
    # 500 × 0.45 = 225.00; logos 1/3 → 0.3333 on its own curve: (1 × 0.3333 + 0) / 1 = 0.3333,
    # rate 0.4 × 0.3333 = 0.13332, 500 × 0.13332 = 66.66 → 225.00 + 66.66 = 291.66
    assert frame["total"].to_list() == [20000, 29166]
    assert "goal 'logos' at factor 33.33% for attainment 33.33%, weight 40%" in frame.row(1, named=True)[LINE_ROWS]


@pytest.mark.parametrize("name", ["distributor_track", "goal_based_rebate", "goal_based_rebate_fy2026"])
def test_bundled_goal_programs_parity(name: str) -> None:
    # goal_based_rebate prorates by join date (prorate_by) and pays per goal
    compiled = CompiledProgram(load_programs(ROOT / "programs" / f"{name}.yaml")[0], make_backend("compiled"), name)
    frame, results = both(compiled, ROOT / "examples" / "facts_2027Q1.csv")
    # every row of the example file is computed by columns (none is missing a fact or mistyped)
    assert assert_parity(frame, results) == len(results) == 300


def test_per_goal_bundled_program_without_proration_parity(tmp_path: Path) -> None:
    """goal_based_rebate (per-goal payouts, thresholds, a per-goal curve) with its prorate_by line taken out."""
    text = (ROOT / "programs" / "goal_based_rebate.yaml").read_text(encoding="utf-8")
    kept = "\n".join(line for line in text.splitlines() if not line.startswith("prorate_by:"))
    assert kept != text
    compiled = compiled_from(tmp_path, kept + "\n")
    frame, results = both(compiled, ROOT / "examples" / "facts_2027Q1.csv")
    assert assert_parity(frame, results) == len(results) == 300


RATES = ["0%", "12.5%", "50%", "100%", "133.333%", "200%"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weight=st.sampled_from(["10%", "25%", "33.3%", "50%", "60.5%"]),
       points=st.lists(st.sampled_from(["0%", "25%", "50%", "80%", "99.99%", "100%", "120%", "150%"]),
                       min_size=1, max_size=4, unique=True),
       factors=st.lists(st.sampled_from(RATES), min_size=4, max_size=4),
       step=st.booleans(), per_goal=st.booleans(), cap=st.sampled_from(["", "  attainment_cap: 125%\n"]),
       threshold=st.sampled_from(["", ", threshold: 90%"]),
       ratio_places=st.sampled_from([2, 4, 10]), rounding=st.sampled_from(["half_up", "half_even", "down", "up"]),
       bonus=st.booleans(),
       metrics=st.lists(st.one_of(st.decimals(min_value=-500, max_value=5000, places=2), st.just(None)),
                        min_size=1, max_size=10),
       targets=st.lists(st.sampled_from(["0", "1", "3", "7.5", "1000", "", "x"]), min_size=10, max_size=10))
def test_random_goal_programs_parity(tmp_path_factory, weight, points, factors, step, per_goal, cap, threshold,
                                     ratio_places, rounding, bonus, metrics, targets) -> None:
    tmp_path = tmp_path_factory.mktemp("random")
    other = f"{(100 - Decimal(weight[:-1])).normalize():f}%"
    curve = "".join(f"      - {{attainment: {point}, factor: {factors[index]}}}\n"
                    for index, point in enumerate(sorted(points, key=lambda text: Decimal(text[:-1]))))
    program = (HEAD.replace("half_up, ratio_places: 4", f"{rounding}, ratio_places: {ratio_places}")
               + "goals:\n  targets:\n"
               + f"    - {{id: a, metric: revenue, target: quota, weight: {weight}"
               + (threshold if per_goal else "") + "}\n"
               + f"    - {{id: b, metric: revenue * 2, target: 1000, weight: {other}}}\n" + cap
               + f"  payout:\n    on: incentive\n    per_goal: {str(per_goal).lower()}\n"
               + f"    interpolation: {'step' if step else 'linear'}\n    curve:\n" + curve
               + ('bonuses:\n  - {id: k, when: "revenue > 1000", multiplier: 110%}\n' if bonus else ""))
    compiled = compiled_from(tmp_path, program)
    rows = "".join(f"P{index},2027-Q1,{'' if metric is None else metric},{targets[index]},333.33\n"
                   for index, metric in enumerate(metrics))
    frame, results = both(compiled, facts_file(tmp_path, "partner_id,period,revenue,quota,incentive\n" + rows))
    # a missing revenue, and a quota that is missing, zero or text, send a row per record (an error there);
    # every other row is computed by columns (a column holds the kind most of its cells have: when that is text,
    # the numbers in it go per record too)
    cells = targets[:len(metrics)]
    numbers_kept = cells.count("x") <= sum(cell not in ("", "x") for cell in cells)
    computable = sum(metric is not None and cell not in ("", "x", "0") and numbers_kept
                     for metric, cell in zip(metrics, cells))
    assert assert_parity(frame, results) == computable


PRORATED = HEAD + """\
prorate_by: joined_on
goals:
  targets:
    - {id: rev, metric: revenue, target: quota, weight: 100%}
  payout:
    on: incentive
    curve:
      - {attainment: 0%, factor: 0%}
      - {attainment: 100%, factor: 100%}
cap: 400
"""


def test_proration_by_hand(tmp_path: Path) -> None:
    compiled = compiled_from(tmp_path, PRORATED)
    frame, results = both(compiled, facts_file(tmp_path, (
        "partner_id,period,revenue,quota,incentive,joined_on\n"
        "P1,2027-Q1,450,1000,900,2027-02-15\n"   # 2027-Q1 has 90 days; active 2027-02-15 to 03-31: 45 days
        "P2,2027-Q1,300,900,300,2027-03-02\n"    # active 30 days
        "P3,2027-Q1,1000,1000,900,\n"            # no join date: the whole period
        "P4,2027-Q1,1000,1000,900,2027-04-01\n"  # joined after the period: ineligible, per record
        "P5,2027-Q1,1000,1000,900,2026-12-01\n")))  # joined before it: the whole period
    assert assert_parity(frame, results) == 4
    assert frame[BY_COLUMNS].to_list() == [True, True, True, False, True]
    assert results[3].status == "ineligible"
    # P1: fraction 45/90 = 0.5; target 1000 × 0.5 = 500, attainment 450/500 = 0.9, factor 0.9 (linear from 0);
    # basis 900 × 0.5 = 450.00, × 0.9 = 405.00; the cap 400 × 0.5 = 200.00: 200.00 − 405.00 = −205.00 → 200.00
    assert frame.row(0, named=True)[LINE_ROWS] == (
        "P1,2027-Q1,g,1,base,goal:payout,incentive at factor 90% for weighted attainment 90%,450.00,0.9,405.00,"
        "450.00 × 90% = 405.00\n"
        "P1,2027-Q1,g,2,cap,cap,cap of 200.00 per partner and period (cap 400.00 × active fraction),405.00,,"
        "-205.00,200.00 − 405.00 = -205.00\n")
    # P2: fraction 30/90 = 0.33333… → 0.3333 (4 ratio places); target 900 × 0.3333 = 299.97,
    # attainment 300/299.97 = 1.0001000… → 1.0001, flat after 100%: factor 1; basis 300 × 0.3333 = 99.99;
    # cap 400 × 0.3333 = 133.32 (not reached)
    # P3, P5: attainment 1, basis 900.00 × 1 = 900.00, capped at 400.00 (no "× active fraction")
    assert frame["total"].to_list() == [20000, 9999, 40000, None, 40000]
    assert frame.row(2, named=True)[LINE_ROWS].endswith(
        "cap,cap,cap of 400.00 per partner and period,900.00,,-500.00,400.00 − 900.00 = -500.00\n")


def test_benchmark_goal_program_parity_10k(tmp_path: Path) -> None:
    facts = tmp_path / "facts.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "10000", "--out", str(facts)],
                   check=True, capture_output=True)
    compiled = CompiledProgram(load_programs(ROOT / "benchmarks" / "programs" / "sales_goals.yaml")[0],
                               make_backend("compiled"), "bench")
    frame, results = both(compiled, facts)
    computed = assert_parity(frame, results)
    # the rows by columns are byte-identical; the rows left are exactly records the per-record path errs on
    per_record = [result for row, result in zip(frame[BY_COLUMNS], results) if not row]
    assert computed + len(per_record) == 10000
    assert per_record and all(result is None or result.status == "error" for result in per_record)
    assert computed > 9900
