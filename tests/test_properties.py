"""Property tests over generated programs and records (hypothesis).

Programs are generated as YAML text, exactly as a program designer would write
them: tier programs (retroactive or incremental, random ascending levels and
rates), goal programs (random weights summing to 100%, ascending curves) and MDF
programs (with claims), each with random bonuses, cap, minimum payout, budget,
rounding and proration. Records are generated partner facts.

Properties:

* lines sum to the total exactly; the total never exceeds the (prorated) cap;
  a total is 0 or at least the minimum payout; every record yields one result
  per program;
* a run over its budget sums to the budget exactly, and no partner gains by it;
* a higher revenue never lowers a retroactive (or incremental) tier's level;
* the order of the input records does not change any result, nor the CSVs;
* results survive JSON and back;
* running again gives byte-identical CSVs.

Each test is bounded (``max_examples``, ``deadline``) to keep the suite fast on
a 2-core CI machine.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings, strategies as st

import incentives
from incentives import PayoutResult

SETTINGS = settings(max_examples=40, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=20, deadline=3000, suppress_health_check=[HealthCheck.too_slow])

HEADER = """\
id: prop
name: Generated program
kind: {kind}
version: 1
currency: USD
effective: {{from: 2027-01-01}}
period: quarter
rounding: {{places: {places}, mode: {mode}}}
"""
PERIOD_START = date(2027, 1, 1)
PERIOD_END = date(2027, 3, 31)

# --- program strategies -------------------------------------------------------------------

percent = st.integers(0, 10_000).map(lambda n: D(n).scaleb(-2))  # 0.00 .. 100.00 (percent points)


def _percent_text(points: D) -> str:
    return f"{points.normalize():f}%"


def _amount_text(units: int, places: int) -> str:
    return f"{D(units).scaleb(-places):f}"


@st.composite
def tier_section(draw: Any, *, mode: str | None = None, requires: bool = True) -> dict[str, Any]:
    mode = mode or draw(st.sampled_from(["retroactive", "incremental"]))
    thresholds = sorted(draw(st.sets(st.integers(0, 3_000_000_00), min_size=1, max_size=5)))
    levels = []
    for index, cents in enumerate(thresholds):
        level = f"{{name: L{index}, from: {_amount_text(cents, 2)}, rate: {_percent_text(draw(percent))}"
        if requires and index and draw(st.integers(0, 4)) == 0:
            level += ', requires: "certs >= 2"'
        levels.append(level + "}")
    pay_on = "" if mode == "incremental" or draw(st.booleans()) else "  pay_on: services\n"
    text = (f"tiers:\n  qualify_on: revenue\n{pay_on}  mode: {mode}\n  levels:\n"
            + "".join(f"    - {level}\n" for level in levels))
    return {"kind": "tier", "text": text, "levels": [f"L{i}" for i in range(len(levels))]}


@st.composite
def goal_section(draw: Any) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    cuts = sorted(draw(st.sets(st.integers(1, 99), min_size=count - 1, max_size=count - 1)))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100])]
    targets = "".join(f"    - {{id: g{i}, metric: m{i}, target: t{i}, weight: {weight}%}}\n"
                      for i, weight in enumerate(weights))
    attainments = sorted(draw(st.sets(st.integers(0, 300), min_size=1, max_size=4)))
    curve = "".join(f"      - {{attainment: {a}%, factor: {draw(st.integers(0, 1000))}%}}\n" for a in attainments)
    cap = f"  attainment_cap: {draw(st.integers(1, 300))}%\n" if draw(st.booleans()) else ""
    interpolation = draw(st.sampled_from(["linear", "step"]))
    text = (f"goals:\n  targets:\n{targets}{cap}  payout:\n    on: target_incentive\n"
            f"    interpolation: {interpolation}\n    curve:\n{curve}")
    return {"kind": "goal", "text": text, "goals": count}


@st.composite
def mdf_section(draw: Any) -> dict[str, Any]:
    accrual_cap = f", cap: {draw(st.integers(0, 50_000))}" if draw(st.booleans()) else ""
    reimbursement = draw(st.integers(1, 100))
    window = f", submit_within_days: {draw(st.integers(0, 90))}" if draw(st.booleans()) else ""
    text = (f"mdf:\n  accrual: {{on: revenue, rate: {_percent_text(draw(percent) / 10)}{accrual_cap}}}\n"
            f"  claims: {{reimbursement: {reimbursement}%, activities: [event, webinar], "
            f"requires_preapproval: {str(draw(st.booleans())).lower()}{window}}}\n")
    return {"kind": "mdf", "text": text}


@st.composite
def programs(draw: Any, *, kinds: tuple[str, ...] = ("tier", "goal", "mdf"), budget: bool | None = None,
             cap: bool | None = None, prorate: bool | None = None) -> dict[str, Any]:
    """A whole program file (``text``) and what the checks need to know about it."""
    kind = draw(st.sampled_from(kinds))
    section = draw({"tier": tier_section(), "goal": goal_section(), "mdf": mdf_section()}[kind])
    places = draw(st.integers(0, 4))
    mode = draw(st.sampled_from(["half_up", "half_even", "down", "up"]))
    text = HEADER.format(kind=kind, places=places, mode=mode) + section["text"]
    if draw(st.booleans()):
        text += "eligibility:\n  - {id: active, when: \"status != 'suspended'\"}\n"
    bonuses = []
    if draw(st.booleans()):
        bonuses.append(f"  - {{id: nps_kicker, when: \"nps >= 50\", multiplier: {draw(st.integers(101, 300))}%}}\n")
    if draw(st.booleans()):
        bonuses.append(f"  - {{id: new_logo, when: \"new_logos >= 1\", "
                       f"amount: \"{_amount_text(draw(st.integers(0, 100_000)), 2)} * new_logos\"}}\n")
    if bonuses:
        text += "bonuses:\n" + "".join(draw(st.permutations(bonuses)))
    facts = dict(section)
    facts.update(places=places, cap=None, min_payout=None, budget=None, prorated=False)
    if cap if cap is not None else draw(st.booleans()):
        facts["cap"] = D(draw(st.integers(0, 50_000 * 10 ** places))).scaleb(-places)
        text += f"cap: {facts['cap']:f}\n"
    if draw(st.booleans()):
        facts["min_payout"] = D(draw(st.integers(0, 500 * 10 ** places))).scaleb(-places)
        text += f"min_payout: {facts['min_payout']:f}\n"
    if budget if budget is not None else draw(st.booleans()):
        facts["budget"] = D(draw(st.integers(0, 200_000 * 10 ** places))).scaleb(-places)
        text += f"budget: {facts['budget']:f}\n"
    if prorate if prorate is not None else draw(st.booleans()):
        facts["prorated"] = True
        text += "prorate_by: joined_on\n"
    facts["text"] = text
    return facts


# --- record strategies --------------------------------------------------------------------

money = st.integers(0, 5_000_000_00).map(lambda cents: D(cents).scaleb(-2))
join_dates = st.integers(-30, (PERIOD_END - PERIOD_START).days).map(lambda days: PERIOD_START + timedelta(days))


@st.composite
def record(draw: Any, partner_id: str) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "partner_id": partner_id, "period": "2027-Q1",
        "revenue": draw(money), "services": draw(money),
        "nps": draw(st.integers(0, 100)), "new_logos": draw(st.integers(0, 5)), "certs": draw(st.integers(0, 3)),
        "status": draw(st.sampled_from(["active", "active", "active", "suspended"])),
        "target_incentive": draw(money),
        "mdf_balance": draw(st.integers(0, 20_000)),
    }
    for index in range(3):
        facts[f"m{index}"] = draw(money)
        facts[f"t{index}"] = draw(money.filter(bool))
    if draw(st.booleans()):
        facts["joined_on"] = draw(join_dates)
    return facts


@st.composite
def records(draw: Any, min_size: int = 1, max_size: int = 12, joined: bool = False) -> list[dict[str, Any]]:
    count = draw(st.integers(min_size, max_size))
    drawn = [draw(record(f"P{index:03d}")) for index in range(count)]
    if joined:  # every partner joined during the period
        for facts in drawn:
            facts["joined_on"] = PERIOD_START + timedelta(draw(st.integers(1, (PERIOD_END - PERIOD_START).days)))
    return drawn


@st.composite
def claims_for(draw: Any, partners: list[str]) -> list[dict[str, Any]]:
    claims = []
    for number in range(draw(st.integers(0, 8))):
        end = PERIOD_START + timedelta(draw(st.integers(0, 80)))
        claims.append({
            "claim_id": f"C{number:03d}", "partner_id": draw(st.sampled_from(partners)), "period": "2027-Q1",
            "activity": draw(st.sampled_from(["event", "webinar", "golf"])),
            "amount": D(draw(st.integers(-1000_00, 40_000_00))).scaleb(-2),
            "activity_end": end, "submitted_on": end + timedelta(draw(st.integers(0, 120))),
            "preapproved": draw(st.booleans()),
        })
    return claims


# --- helpers ------------------------------------------------------------------------------

def engine_of(text: str) -> incentives.Engine:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "program.yaml"
        path.write_text(text, encoding="utf-8")
        return incentives.Engine(incentives.load_programs(path))


def dumped(run: incentives.PayoutRun) -> list[dict[str, Any]]:
    return [json.loads(result.model_dump_json()) for result in run.results]


def csv_bytes(run: incentives.PayoutRun) -> tuple[bytes, bytes, bytes, dict[str, Any]]:
    """The files ``write_run`` writes of ``run`` (run.json parsed), having checked that they read back as ``run``."""
    with tempfile.TemporaryDirectory() as folder:
        incentives.write_run(run, folder)
        assert incentives.read_run(folder) == run
        run_json = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
        return (Path(folder, "payouts.csv").read_bytes(), Path(folder, "lines.csv").read_bytes(),
                Path(folder, "results.jsonl").read_bytes(), run_json)


# --- properties ---------------------------------------------------------------------------

@SETTINGS
@given(programs(), st.data())
def test_lines_sum_to_the_total_and_the_total_never_exceeds_the_cap(program: dict[str, Any], data: Any) -> None:
    engine = engine_of(program["text"])
    facts = data.draw(records())
    claims = data.draw(claims_for([r["partner_id"] for r in facts])) if program["kind"] == "mdf" else []
    run = engine.run(facts, claims)
    assert len(run.results) == len(facts)  # one program: one result per record, nothing dropped
    for result in run.results:
        assert result.status in ("ok", "ineligible"), result.errors
        assert sum((line.amount for line in result.lines), D(0)) == result.total
        assert [line.n for line in result.lines] == list(range(1, len(result.lines) + 1))
        assert result.total >= 0
        for line in result.lines:
            assert line.amount == round(line.amount, program["places"])  # every line rounded when created
        if result.status == "ineligible":
            assert (result.total, result.lines) == (0, []) and result.reasons
            continue
        budgeted = any(line.kind == "budget" for line in result.lines)
        if program["cap"] is not None:
            fraction = result.details["proration"] if program["prorated"] else D(1)
            assert result.total <= program["cap"] * fraction
        if program["min_payout"] is not None and not budgeted:
            assert result.total == 0 or result.total >= program["min_payout"]


@SETTINGS
@given(programs(cap=True, prorate=True, budget=False, kinds=("tier", "goal")), st.data())
def test_a_prorated_cap_is_never_exceeded(program: dict[str, Any], data: Any) -> None:
    run = engine_of(program["text"]).run(data.draw(records(joined=True)))
    for result in run.results:
        fraction = result.details["proration"]
        assert 0 < fraction < 1
        assert result.total <= program["cap"] * fraction
        assert sum((line.amount for line in result.lines), D(0)) == result.total


@SETTINGS
@given(programs(budget=True), st.data())
def test_a_budget_run_sums_to_the_budget_exactly_when_over_it(program: dict[str, Any], data: Any) -> None:
    facts = data.draw(records(min_size=2))
    claims = data.draw(claims_for([r["partner_id"] for r in facts])) if program["kind"] == "mdf" else []
    budget = program["budget"]
    unbounded = engine_of(program["text"].replace(f"budget: {budget:f}\n", "")).run(facts, claims)
    bounded = engine_of(program["text"]).run(facts, claims)
    requested = sum((result.total for result in unbounded.results if result.status == "ok"), D(0))
    paid = sum((result.total for result in bounded.results), D(0))
    if requested > budget:
        assert paid == budget
        assert bounded.totals["prop"] == budget
    else:
        assert dumped(bounded) == dumped(unbounded)
    for before, after in zip(unbounded.results, bounded.results, strict=True):
        assert 0 <= after.total <= before.total
        assert sum((line.amount for line in after.lines), D(0)) == after.total


@SETTINGS
@given(tier_section(requires=False), st.lists(money, min_size=2, max_size=6), st.data())
def test_a_higher_revenue_never_lowers_the_tier(section: dict[str, Any], revenues: list[D], data: Any) -> None:
    engine = engine_of(HEADER.format(kind="tier", places=2, mode="half_up") + section["text"])
    base = data.draw(record("P001"))
    levels = []
    for revenue in sorted(revenues):
        result = engine.evaluate({**base, "revenue": revenue})["prop"]
        assert result.status == "ok"
        levels.append(-1 if result.tier is None else section["levels"].index(result.tier))
    assert levels == sorted(levels)


@SETTINGS
@given(programs(), st.data())
def test_the_order_of_the_records_changes_no_result(program: dict[str, Any], data: Any) -> None:
    engine = engine_of(program["text"])
    facts = data.draw(records(min_size=2))
    claims = data.draw(claims_for([r["partner_id"] for r in facts])) if program["kind"] == "mdf" else []
    shuffled = data.draw(st.permutations(facts))
    shuffled_claims = data.draw(st.permutations(claims))
    assume(shuffled != facts or shuffled_claims != claims)
    first, second = engine.run(facts, claims), engine.run(shuffled, shuffled_claims)
    assert dumped(first) == dumped(second)
    assert csv_bytes(first)[:2] == csv_bytes(second)[:2]


@SETTINGS
@given(programs(), st.data())
def test_results_survive_json_and_back(program: dict[str, Any], data: Any) -> None:
    engine = engine_of(program["text"])
    facts = data.draw(records(max_size=4))
    claims = data.draw(claims_for([r["partner_id"] for r in facts])) if program["kind"] == "mdf" else []
    for result in engine.run(facts, claims).results:
        text = result.model_dump_json()
        back = PayoutResult.model_validate_json(text)
        assert back == result  # exact Decimals and dates everywhere, the audit values included
        assert back.model_dump_json() == text  # and the JSON is a fixed point


def test_results_are_equal_after_json_and_back() -> None:
    # One deterministic example (a failing hypothesis test would spend its time shrinking).
    program = HEADER.format(kind="tier", places=2, mode="half_up") + (
        "tiers:\n  qualify_on: revenue\n  levels:\n    - {name: Silver, from: 0, rate: 2%}\nprorate_by: joined_on\n")
    facts = {"partner_id": "P001", "period": "2027-Q1", "revenue": "1000", "joined_on": date(2027, 2, 1)}
    result = engine_of(program).evaluate(facts)["prop"]
    assert PayoutResult.model_validate_json(result.model_dump_json()) == result


@FEW
@given(programs(), st.data())
def test_running_again_gives_byte_identical_csvs(program: dict[str, Any], data: Any) -> None:
    facts = data.draw(records())
    claims = data.draw(claims_for([r["partner_id"] for r in facts])) if program["kind"] == "mdf" else []
    first = engine_of(program["text"]).run(facts, claims)
    second = engine_of(program["text"]).run(facts, claims)
    payouts, lines, results, run_json = csv_bytes(first)
    again_payouts, again_lines, again_results, again_json = csv_bytes(second)
    assert (payouts, lines, results) == (again_payouts, again_lines, again_results)
    assert run_json["results_count"] == len(first.results)
    assert run_json["run_id"] != again_json["run_id"]
    for varying in ("run_id", "created_at"):
        run_json.pop(varying), again_json.pop(varying)
    # The program file is written to a new temporary folder each time: only its name may differ.
    for info in run_json["programs"] + again_json["programs"]:
        info.pop("file")
    assert run_json == again_json
