"""The command line, through a real subprocess: ``python -m incentives ...``.

Totals of the bundled example are recomputed here from the facts CSV with
plain Decimal code, independently of the engine.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal as D
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "examples" / "facts_2027Q1.csv"
CLAIMS = ROOT / "examples" / "claims_2027Q1.csv"
CENT = D("0.01")

REBATE = """\
id: rebate
name: Rebate
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01}
period: quarter
tiers:
  qualify_on: revenue
  levels:
    - {name: Base, from: 0, rate: 2%}
"""


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "incentives", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def rebate(tmp_path: Path) -> Path:
    return write(tmp_path / "programs" / "rebate.yaml", REBATE).parent


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory):
    """The quick start's payout command, run once for the module."""
    out = tmp_path_factory.mktemp("bundled") / "2027-Q1"
    done = cli("run", "--programs", "programs", "--facts", FACTS, "--claims", CLAIMS, "--out", out)
    return done, out


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def money(value: D) -> D:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- validate ----------------------------------------------------------------------------------


def test_validate_every_example_program():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "programs").glob("*.yaml"))
    done = cli("validate", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "13 program files and 1 measures file valid (12 programs, 13 versions)\n"
    assert cli("validate", "programs").stdout == done.stdout


def test_validate_locates_every_problem(tmp_path: Path):
    typo = write(tmp_path / "typo.yaml", """\
        id: partner_tier
        name: Partner Tier
        kind: tier
        version: 1
        currency: USD
        effective: {from: 2027-01-01}
        period: quarter
        tiers:
          qualify_on: revenue
          levles:
            - {name: Registered, from: 0, rate: 0%}
        """)
    expression = write(tmp_path / "expression.yaml", """\
        id: kicker
        name: Kicker
        kind: tier
        version: 1
        currency: USD
        effective: {from: 2027-01-01}
        period: quarter
        eligibility:
          - {id: big, when: "revenue >> 5"}
        tiers:
          qualify_on: revenue
          levels:
            - {name: Only, from: 0, rate: 150%}
        """)
    done = cli("validate", typo, expression)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{typo}:8:1: missing required key 'levels'",
        f"{typo}:10:3: unknown key 'levles'; did you mean 'levels'?",
        f"{expression}:9:30: invalid expression: the >> operator is not supported",
        f"{expression}:13:35: rate: must be at most 100%, found '150%'",
    ]
    assert done.stderr == "4 problems in 2 files\n"


def test_validate_refuses_an_expression_certain_to_fail_for_every_partner(tmp_path: Path):
    # issue #12: this passed validate, then every partner was an error at run time
    # ("cannot multiply boolean true and number")
    program = write(tmp_path / "mbo.yaml", """\
        id: mbo
        name: MBO
        kind: goal
        version: 1
        currency: USD
        effective: {from: 2027-01-01}
        period: quarter
        metrics:
          rev_att: revenue / quota
          rev_gate: (rev_att >= 80%) * rev_att
        goals:
          targets:
            - {id: revenue, metric: rev_gate, target: 1, weight: 100%}
          payout:
            on: target_incentive
            curve:
              - {attainment: 100%, factor: 100%}
        """)
    done = cli("validate", program)
    assert done.returncode == 1
    assert done.stdout == (f"{program}:10:14: certain to fail: cannot multiply a comparison's result (true or false): "
                           "'*' needs two numbers\n")


def test_validate_with_facts_accepts_the_bundled_quarter():
    done = cli("validate", "programs", "--facts", "examples/facts_2027Q1.csv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ("13 program files and 1 measures file valid (12 programs, 13 versions); "
                           "examples/facts_2027Q1.csv has every fact they read\n")


READS_MANY_NAMES = """\
    id: mdf_on_tier
    name: Reads many names
    kind: mdf
    version: 1
    currency: USD
    effective: {from: 2027-01-01}
    period: quarter
    uses: [partner_tier]
    defaults: {leads: 0}
    metrics:
      growth: "net_sales - year_ago.net_sales"
    eligibility:
      - {id: active, when: "partner_tier.eligible and leads >= 10 and prior.csat >= 4"}
      - {id: grown, when: "growth > 0 and nps >= 30"}
    mdf:
      accrual: {on: "net_sales + mdf_balance * 0", rate: 1%}
      claims: {reimbursement: 50%, activities: [event]}
    bonuses:
      - {id: accrued, when: "this.base > 0", amount: 1}
    """

PARTNER_TIER = """\
    id: partner_tier
    name: Partner tier
    kind: tier
    version: 1
    currency: USD
    effective: {from: 2027-01-01}
    period: quarter
    tiers:
      qualify_on: revenue
      levels:
        - {name: Only, from: 0, rate: 1%}
    """


def test_validate_with_facts_names_each_missing_fact_where_it_is_read(tmp_path: Path):
    programs = tmp_path / "programs"
    reads = write(programs / "reads.yaml", READS_MANY_NAMES)
    write(programs / "tier.yaml", PARTNER_TIER)
    # lacks revenue (tier.yaml), net_sales (read as year_ago.net_sales first, in the metric) and csat
    # (read as prior.csat); nps is there. leads has a default, mdf_balance is optional, growth is a
    # metric, partner_tier.eligible a used program's result, this.base the program's own outcome.
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue_q,net_sale,nps,CSAT\n")
    done = cli("validate", programs, "--facts", facts)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [  # the used program first (programs come in 'uses' order)
        f"{programs / 'tier.yaml'}:9:15: reads fact 'revenue', which {facts} does not have and 'defaults' "
        "does not give; nearest columns: revenue_q",
        f"{reads}:11:11: reads fact 'net_sales', which {facts} does not have and 'defaults' does not give; "
        "nearest columns: net_sale",
        f"{reads}:13:24: reads fact 'csat', which {facts} does not have and 'defaults' does not give; "
        "nearest columns: CSAT",
    ]
    assert done.stderr == "3 problems in 2 files\n"


def test_validate_with_facts_reads_the_names_of_json_lines_records(tmp_path: Path):
    programs = tmp_path / "programs"
    write(programs / "tier.yaml", PARTNER_TIER.replace("qualify_on: revenue", "qualify_on: sales.total"))
    # a nested mapping is flattened to dotted names, as when records are read; names of later records count
    facts = write(tmp_path / "facts.jsonl", '{"partner_id": "P1", "period": "2027-Q1"}\n'
                                            '{"partner_id": "P2", "period": "2027-Q1", "sales": {"total": 5}}\n')
    done = cli("validate", programs, "--facts", facts)
    assert done.returncode == 0, done.stdout + done.stderr
    missing = write(tmp_path / "missing.jsonl", '{"partner_id": "P1", "period": "2027-Q1", "sales": 5}\n')
    done = cli("validate", programs, "--facts", missing)
    assert done.returncode == 1
    assert "reads fact 'sales.total'" in done.stdout and "nearest columns: sales" in done.stdout


def test_validate_with_a_facts_file_that_cannot_be_read_exits_2(tmp_path: Path):
    done = cli("validate", "programs", "--facts", tmp_path / "nowhere.csv")
    assert done.returncode == 2
    assert "nowhere.csv: no such file" in done.stderr


def test_validate_a_program_without_the_program_it_uses():
    done = cli("validate", "programs/co_marketing_mdf.yaml")
    assert done.returncode == 1
    assert done.stdout == "programs/co_marketing_mdf.yaml:15:8: uses 'networking_role_tier', which is not loaded\n"


# --- run: the bundled quarter --------------------------------------------------------------------


def certification_tier_by_partner() -> dict[str, D]:
    """certification_tier recomputed from the facts CSV: tiers, requirements, bonus, minimum."""
    paid = {}
    for row in read_csv(FACTS):
        staff, specializations = int(row["certified_staff"]), int(row["specializations"])
        revenue, csat = D(row["revenue"]), D(row["csat"])
        if staff < 1:
            continue  # ineligible
        rate = D(0)
        if revenue >= 100_000 and staff >= 2:
            rate = D("0.01")
        if revenue >= 500_000 and staff >= 5 and specializations >= 1:
            rate = D("0.02")
        if revenue >= 2_000_000 and staff >= 10 and specializations >= 3 and csat >= D("4.2"):
            rate = D("0.03")
        total = money(revenue * rate)
        if specializations >= 2:
            total += 1000 * specializations
        if 0 < total < 100:
            total = D(0)
        paid[row["partner_id"]] = total
    return paid


def cloud_service_provider_track_total() -> D:
    total = D(0)
    for row in read_csv(FACTS):
        if row["track"] != "cloud_service_provider":
            continue
        recurring, churn = D(row["recurring_revenue"]), D(row["churn_rate"])
        rate = D("0.01")
        if recurring >= 100_000:
            rate = D("0.02")
        if recurring >= 400_000 and churn <= D("0.05"):
            rate = D("0.03")
        base = money(recurring * rate)
        total += base + (money(base * D("0.05")) if churn <= D("0.02") else 0)
    return total


def test_run_bundled_quarter_exits_0_and_writes_the_files(bundled):
    done, out = bundled
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["lines.csv", "payouts.csv", "results.jsonl", "run.json"]
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["facts_sha256"] == hashlib.sha256(FACTS.read_bytes()).hexdigest()
    assert all(counts["error"] == 0 for counts in run["counts"].values())
    assert "300 facts records and 219 claims computed" in done.stdout
    assert "note: deal_registration_bonus v1 2027-Q1: budget 550000 applied" in done.stdout


def test_bundled_totals_match_an_independent_computation(bundled):
    _, out = bundled
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    payouts = read_csv(out / "payouts.csv")
    expected = certification_tier_by_partner()
    got = {row["partner_id"]: D(row["total"]) for row in payouts if row["program_id"] == "certification_tier"}
    assert {pid: got[pid] for pid in expected} == expected
    assert D(run["totals"]["certification_tier"]) == sum(expected.values())
    assert D(run["totals"]["cloud_service_provider_track"]) == cloud_service_provider_track_total()
    assert D(run["totals"]["deal_registration_bonus"]) == D("550000.00")  # scaled to the budget exactly


def test_bundled_files_tie_out(bundled):
    _, out = bundled
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    payouts = read_csv(out / "payouts.csv")
    by_program: dict[str, D] = defaultdict(D)
    by_result: dict[tuple[str, str], D] = {}
    for row in payouts:
        by_program[row["program_id"]] += D(row["total"])
        by_result[(row["partner_id"], row["program_id"])] = D(row["total"])
    assert {k: D(v) for k, v in run["totals"].items()} == dict(by_program)
    lines: dict[tuple[str, str], D] = defaultdict(D)
    for row in read_csv(out / "lines.csv"):
        lines[(row["partner_id"], row["program_id"])] += D(row["amount"])
    assert all(lines.get(key, D(0)) == total for key, total in by_result.items())


def test_summary_table(bundled):
    done, _ = bundled
    totals = {"certification_tier": sum(certification_tier_by_partner().values()),
              "cloud_service_provider_track": cloud_service_provider_track_total()}
    for program_id, total in totals.items():
        row = next(line for line in done.stdout.splitlines() if f" {program_id} " in line)
        assert f"{total:,.2f} USD" in row
    row = next(line for line in done.stdout.splitlines() if " certification_tier " in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:6] == ["certification_tier", "v1", "300", "293", "7", "0"]
    assert any("Platinum (1): " in line for line in done.stdout.splitlines())
    assert "all programs (USD)" in done.stdout


def test_same_inputs_give_identical_files_and_may_reuse_the_folder(bundled, tmp_path: Path):
    _, out = bundled
    again = tmp_path / "again"
    assert cli("run", "--programs", "programs", "--facts", FACTS, "--claims", CLAIMS, "--out", again).returncode == 0
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    first = json.loads((out / "run.json").read_text(encoding="utf-8"))
    second = json.loads((again / "run.json").read_text(encoding="utf-8"))
    for run in (first, second):
        del run["run_id"], run["created_at"]
    assert first == second


def _durable_available() -> bool:
    import importlib.util

    try:
        return (importlib.util.find_spec("durable") is not None
                and importlib.util.find_spec("incentives.rules.durable") is not None)
    except ImportError:
        return False


@pytest.mark.skipif(not _durable_available(), reason="durable_rules backend not installed here")
def test_durable_backend_writes_the_same_payouts(bundled, tmp_path: Path):
    _, out = bundled
    durable = tmp_path / "durable"
    done = cli("run", "--programs", "programs", "--facts", FACTS, "--claims", CLAIMS, "--out", durable,
               "--backend", "durable")
    assert done.returncode == 0, done.stderr
    for name in ("payouts.csv", "lines.csv", "results.jsonl"):
        assert (durable / name).read_bytes() == (out / name).read_bytes()


# --- explain -------------------------------------------------------------------------------------


def test_explain_a_partner():
    done = cli("explain", "--programs", "programs", "--facts", FACTS, "--partner", "P0001",
               "--program", "certification_tier")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "P0001 · certification_tier v1 · 2027-Q1 · ok",
        "  tier: Gold",
        "  next tier: Platinum (gap 981,594.39; unmet: certified_staff >= 10 and specializations >= 3 and csat >= 4.2)",
        "    1. base       tier:Gold                       20,368.11   1,018,405.61 × 2% = 20,368.11",
        "  did not fire specialized (Specialization bonus: 1,000 per specialization from the second one): "
        "specializations >= 2  [saw specializations=1]",
        "  total: 20,368.11 USD",
    ]


def test_explain_every_program_with_failed_rules_and_mdf_fund():
    done = cli("explain", "--programs", "programs", "--facts", FACTS, "--claims", CLAIMS, "--partner", "P0001")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.count("P0001 · ") == 12
    assert ("  failed designated (holds at least one solutions-partner designation): designations >= 1  "
            "[saw designations=0]") in text
    assert ("  fund: opening 0.00 + accrued 20,368.11 (1,018,405.61 × 2% = 20,368.11; "
            "networking_role_tier.tier = Premier) = available 20,368.11; paid 918.00; closing 19,450.11") in text
    # 1,018,405.61 / 934,000 = 1.0903700321 (10 places), shown to 4 decimals of a percent; per goal, the factor
    # is 100% + 1.5 × 9.03700321% = 113.555504815%
    assert "  goal revenue: 1,018,405.61 of 934,000 = ≈109.037% (weight 60%, factor ≈113.5555%)\n" in text
    assert "  attainment: ≈90.5555%\n" in text  # goal_based_rebate's weighted attainment, no longer 28 digits


    # bonuses that did not fire, with what their conditions saw; one that fired shows its fact's value
    assert ("  did not fire specialized (Specialization bonus: 1,000 per specialization from the second one): "
            "specializations >= 2  [saw specializations=1]") in text
    assert ("  did not fire provider_recurring (Provider kicker: 2% of managed-service (recurring) revenue): "
            "role == 'provider' and recurring_revenue >= 50000  [saw recurring_revenue=176193.88, role=integrator]"
            ) in text
    assert "500 × new_logos 1.00 = 500.00" in text  # deal_registration_bonus's new_logo bonus


def test_explain_a_budgeted_program_shows_the_run_numbers(bundled):
    _, out = bundled
    done = cli("explain", "--programs", "programs", "--facts", FACTS, "--partner", "P0001",
               "--program", "deal_registration_bonus")
    assert done.returncode == 0, done.stderr
    paid = next(row["total"] for row in read_csv(out / "payouts.csv")
                if row["partner_id"] == "P0001" and row["program_id"] == "deal_registration_bonus")
    assert "budget" in done.stdout
    assert done.stdout.rstrip().endswith(f"total: {D(paid):,.2f} USD")


def test_explain_unknown_partner_or_program_is_a_usage_error():
    done = cli("explain", "--programs", "programs", "--facts", FACTS, "--partner", "P9999")
    assert done.returncode == 1
    assert done.stderr == f"incentives explain: no facts record for partner 'P9999' in {FACTS}\n"
    done = cli("explain", "--programs", "programs", "--facts", FACTS, "--partner", "P0001", "--program", "nope")
    assert done.returncode == 1
    assert "no program 'nope' in programs; the programs are: certification_tier," in done.stderr


# --- schema --------------------------------------------------------------------------------------


def test_schema_is_a_json_schema_of_a_program_file_or_a_measures_file():
    done = cli("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["oneOf"] == [{"$ref": "#/$defs/Program"}, {"$ref": "#/$defs/MeasuresFile"}]
    program = schema["$defs"]["Program"]
    assert program["type"] == "object" and program["additionalProperties"] is False
    assert {"id", "kind", "tiers", "goals", "mdf", "bonuses"} <= set(program["properties"])
    assert {"id", "name", "kind", "version", "currency", "effective", "period"} <= set(program["required"])
    claim_rules = schema["$defs"]["ClaimRules"]["properties"]
    assert {"max_per_claim", "max_by_activity"} <= set(claim_rules)
    measures = schema["$defs"]["MeasuresFile"]
    assert measures["additionalProperties"] is False and measures["properties"]["kind"]["const"] == "measures"
    assert set(measures["required"]) == {"id", "kind", "source", "date", "period", "measures"}
    assert set(schema["$defs"]["Aggregation"]["properties"]) == {"sum", "count", "count_distinct", "min", "max",
                                                                "avg", "where"}
    # every reference is to a definition of this document
    assert set(re.findall(r'"\$ref": "#/\$defs/(\w+)"', done.stdout)) <= set(schema["$defs"])


def test_validate_counts_measures_files_apart(tmp_path):
    write(tmp_path / "programs" / "rebate.yaml", REBATE)
    write(tmp_path / "programs" / "deals.yaml", """\
        id: deals
        kind: measures
        source: deals
        date: closed_on
        period: quarter
        measures: {deals_won: {count: true, where: "stage == 'won'"}}
        """)
    done = cli("validate", tmp_path / "programs")
    assert (done.returncode, done.stdout) == (0, "1 program file and 1 measures file valid (1 program, 1 version)\n")
    done = cli("validate", tmp_path / "programs" / "deals.yaml")
    assert (done.returncode, done.stdout) == (0, "1 measures file valid\n")


# --- exit codes and options ----------------------------------------------------------------------


def test_help_is_exit_0_and_has_examples():
    done = cli("--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout and "exit codes:" in done.stdout
    run_help = cli("run", "--help")
    assert run_help.returncode == 0
    assert "payouts.csv" in run_help.stdout and "--force" in run_help.stdout


@pytest.mark.parametrize("args", [(), ("run", "--programs", "programs"), ("frobnicate",),
                                  ("validate", "programs", "--bogus")])
def test_usage_errors_exit_1(args):
    done = cli(*args)
    assert done.returncode == 1
    assert "usage: incentives" in done.stderr


def test_invalid_program_exits_1_before_reading_facts(tmp_path: Path, rebate: Path):
    write(rebate / "rebate.yaml", REBATE.replace("rate: 2%", "rate: 2%, requires: 'revenue >'"))
    done = cli("run", "--programs", rebate, "--facts", tmp_path / "absent.csv", "--out", tmp_path / "out")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith(f"{rebate / 'rebate.yaml'}:11:")
    assert not (tmp_path / "out").exists()


def test_bad_period_option_exits_1(tmp_path: Path, rebate: Path):
    done = cli("run", "--programs", rebate, "--facts", FACTS, "--period", "2027-Q5", "--out", tmp_path / "out")
    assert done.returncode == 1
    assert done.stderr.startswith("incentives run: --period: invalid period label '2027-Q5'")


def test_unreadable_facts_exit_2_with_file_and_line(tmp_path: Path, rebate: Path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2027-Q1,100\nB,2027-Q1,200,oops\n")
    done = cli("run", "--programs", rebate, "--facts", facts, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr == f"{facts}:3: this row has 4 cells but the header has 3 columns\n"
    assert not (tmp_path / "out" / "payouts.csv").exists()
    missing = cli("run", "--programs", rebate, "--facts", tmp_path / "absent.csv", "--out", tmp_path / "out")
    assert (missing.returncode, missing.stderr) == (2, f"{tmp_path / 'absent.csv'}: no such file\n")


def test_unreadable_claims_exit_2(tmp_path: Path, rebate: Path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2027-Q1,100\n")
    claims = write(tmp_path / "claims.csv", "claim_id,partner_id,period\nC1,A,2027-Q1\n")
    done = cli("run", "--programs", rebate, "--facts", facts, "--claims", claims, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.startswith(f"{claims}:1: missing required column(s) activity, amount,")


def test_error_results_exit_3_and_the_files_are_still_written(tmp_path: Path, rebate: Path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2027-Q1,1000\nB,2027-Q1,\n")
    out = tmp_path / "out"
    done = cli("run", "--programs", rebate, "--facts", facts, "--out", out)
    assert done.returncode == 3
    assert done.stderr == ('1 result is an error (status "error" in payouts.csv):\n'
                           "  B 2027-Q1 rebate: missing facts: revenue\n")
    rows = read_csv(out / "payouts.csv")
    assert [(r["partner_id"], r["status"], r["total"]) for r in rows] == [("A", "ok", "20.00"), ("B", "error", "0.00")]
    explained = cli("explain", "--programs", rebate, "--facts", facts, "--partner", "B")
    assert explained.returncode == 3
    assert "  error: missing facts: revenue" in explained.stdout



def test_numbers_outside_the_range_exit_3_and_write_small_files(tmp_path: Path, rebate: Path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2027-Q1,1000\n"
                                          "B,2027-Q1,1e999999999999999999\nC,2027-Q1,1e-99999\n")
    out = tmp_path / "out"
    done = cli("run", "--programs", rebate, "--facts", facts, "--out", out)
    assert done.returncode == 3
    range_ = "is outside the supported range (at most 40 significant digits, exponent within ±100)"
    assert done.stderr == ('2 results are errors (status "error" in payouts.csv):\n'
                           f"  B 2027-Q1 rebate: revenue: '1e999999999999999999' {range_}\n"
                           f"  C 2027-Q1 rebate: revenue: '1e-99999' {range_}\n")
    assert [(r["partner_id"], r["status"]) for r in read_csv(out / "payouts.csv")] == [
        ("A", "ok"), ("B", "error"), ("C", "error")]
    # before: C's basis written in fixed point, 100,000 zeros in lines.csv and again in run.json
    assert (out / "lines.csv").stat().st_size < 1_000 and (out / "run.json").stat().st_size < 10_000


def test_a_lone_surrogate_in_json_lines_exits_2_with_file_and_line(tmp_path: Path, rebate: Path):
    facts = write(tmp_path / "facts.jsonl", '{"partner_id": "A", "period": "2027-Q1", "revenue": 1000}\n'
                                            '{"partner_id": "\\ud800", "period": "2027-Q1", "revenue": 5}\n')
    done = cli("run", "--programs", rebate, "--facts", facts, "--out", tmp_path / "out")
    assert (done.returncode, done.stderr) == (
        2, f"{facts}:2: the line holds \\ud800 (column 17), a lone surrogate, which is not valid Unicode text\n")
    assert not (tmp_path / "out" / "payouts.csv").exists()


def test_period_option_keeps_only_that_period(tmp_path: Path, rebate: Path):
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2027-Q1,1000\nA,2027-Q2,3000\n")
    out = tmp_path / "out"
    done = cli("run", "--programs", rebate, "--facts", facts, "--period", "2027-Q2", "--out", out)
    assert done.returncode == 0, done.stderr
    assert [(r["period"], r["total"]) for r in read_csv(out / "payouts.csv")] == [("2027-Q2", "60.00")]
    assert "note: period 2027-Q2 computed; 1 record of other periods skipped" in done.stdout
    none = cli("run", "--programs", rebate, "--facts", facts, "--period", "2027-Q3", "--out", tmp_path / "q3")
    assert none.returncode == 0
    assert "note: period 2027-Q3 computed; 2 records of other periods skipped" in none.stdout
    assert "note: no facts records for period 2027-Q3" in none.stdout
    explained = cli("explain", "--programs", rebate, "--facts", facts, "--partner", "A", "--period", "2027-Q1")
    assert explained.stdout.splitlines()[0] == "A · rebate v1 · 2027-Q1 · ok"


def test_output_folder_of_another_run_needs_force(tmp_path: Path, rebate: Path):
    out = tmp_path / "out"
    first = write(tmp_path / "q1.csv", "partner_id,period,revenue\nA,2027-Q1,1000\n")
    second = write(tmp_path / "q2.csv", "partner_id,period,revenue\nA,2027-Q2,5000\n")
    assert cli("run", "--programs", rebate, "--facts", first, "--out", out).returncode == 0
    assert cli("run", "--programs", rebate, "--facts", first, "--out", out).returncode == 0  # same run: fine
    refused = cli("run", "--programs", rebate, "--facts", second, "--out", out)
    assert refused.returncode == 1
    assert "holds the output of a different run" in refused.stderr and "--force" in refused.stderr
    assert read_csv(out / "payouts.csv")[0]["period"] == "2027-Q1"
    forced = cli("run", "--programs", rebate, "--facts", second, "--out", out, "--force")
    assert forced.returncode == 0
    assert read_csv(out / "payouts.csv")[0]["period"] == "2027-Q2"


def test_a_claim_naming_a_program_that_is_not_loaded_is_reported_not_lost(tmp_path: Path):
    # Issue #10, case 1: the bundled quarter with one claim's program_id mistyped. It used to
    # vanish: no line, no rejection, exit 0.
    rows = read_csv(CLAIMS)
    rows[0]["program_id"] = "co_marketng"
    claims = tmp_path / "claims.csv"
    with open(claims, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out"
    done = cli("run", "--programs", "programs", "--facts", FACTS, "--claims", claims, "--out", out)
    assert done.returncode == 3
    partner, claim_id = rows[0]["partner_id"], rows[0]["claim_id"]
    message = (f"claims {claim_id} name program 'co_marketng', which is not loaded (MDF programs loaded: "
               "co_marketing_mdf, service_provider_mdf); did you mean 'co_marketing_mdf'?")
    assert f"  {partner} 2027-Q1 co_marketng: {message}\n" in done.stderr
    errors = [r for r in read_csv(out / "payouts.csv") if r["status"] == "error"]
    assert [(r["partner_id"], r["program_id"]) for r in errors] == [(partner, "co_marketng")]
    assert "co_marketng" in done.stdout  # the summary table has a row for it


GROWTH = REBATE.replace("effective: {from: 2027-01-01}", "effective: {from: 2026-01-01}") + """\
bonuses:
  - {id: growth, when: "revenue >= 1.1 * year_ago.revenue", amount: "1% * revenue", description: growth}
"""


def test_period_computes_one_period_and_reads_the_others_as_history(tmp_path: Path):
    programs = write(tmp_path / "programs" / "growth.yaml", GROWTH).parent
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2026-Q1,1000\nB,2026-Q1,1000\n"
                                          "A,2027-Q1,1200\nB,2027-Q1,1050\nA,2026-Q2,5\n")
    done = cli("run", "--programs", programs, "--facts", facts, "--period", "2027-Q1", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "payouts.csv").open(encoding="utf-8")))
    # A: 1,200 >= 1.1 × 1,000: 2% × 1,200 = 24 + 1% × 1,200 = 12; B: 1,050 < 1,100: 2% × 1,050 = 21
    assert [(row["partner_id"], row["period"], row["total"]) for row in rows] == [
        ("A", "2027-Q1", "36.00"), ("B", "2027-Q1", "21.00")]
    assert "note: period 2027-Q1 computed; 3 records of other periods read as history only (not computed)" in (
        done.stdout)
    assert json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))["notes"] == [
        "period 2027-Q1 computed; 3 records of other periods read as history only (not computed)"]
    assert "2 facts records and 0 claims computed" in done.stdout
    explained = cli("explain", "--programs", programs, "--facts", facts, "--period", "2027-Q1", "--partner", "A")
    assert explained.returncode == 0, explained.stderr
    assert "growth" in explained.stdout and "36.00" in explained.stdout


def test_run_counts_the_claims_of_its_period_as_read_by_the_engine(tmp_path: Path):
    # the engine reads the claims file itself (by columns): the count is its, bad claims and duplicates included
    programs = write(tmp_path / "programs" / "growth.yaml", GROWTH).parent
    facts = write(tmp_path / "facts.csv", "partner_id,period,revenue\nA,2026-Q1,1000\nA,2027-Q1,1200\n")
    claims = write(tmp_path / "claims.csv",
                   "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved\n"
                   "C1,A,2027-Q1,event,100.00,2027-01-21,2027-02-10,true\n"
                   "C2,A,2027-Q1,event,100.00,2027-01-21,2027-02-10,true\n"
                   "C2,A,2027-Q1,event,100.00,2027-01-21,2027-02-10,true\n"
                   "C3,A,2027-Q1,event,a lot,2027-01-21,2027-02-10,true\n"
                   "C4,A,2027-Q2,event,100.00,2027-04-21,2027-05-10,true\n"
                   "C5,A,,event,100.00,2027-01-21,2027-02-10,true\n")
    done = cli("run", "--programs", programs, "--facts", facts, "--claims", claims, "--period", "2027-Q1",
               "--out", tmp_path / "out")
    # 2027-Q1's four (a duplicated id twice, one amount not a number) and the one without a period; not C4
    assert "1 facts record and 5 claims computed" in done.stdout
    # with no MDF program loaded, each is an error result (they do not disappear)
    assert done.returncode == 3
    assert "claims C1, C2, C2, C3 are for an MDF program, and none is loaded" in done.stderr


# --- measures ------------------------------------------------------------------------------------------------

DEAL_MEASURES = """\
    id: deals
    kind: measures
    source: deals
    date: closed_on
    period: quarter
    measures:
      revenue: {sum: amount, where: "stage == 'won'"}
      deals_won: {count: true, where: "stage == 'won'"}
    """


def test_measures_writes_the_facts_and_the_rejected_transactions_beside_them(tmp_path):
    write(tmp_path / "programs" / "deals.yaml", DEAL_MEASURES)
    write(tmp_path / "deals.csv", "partner_id,closed_on,stage,amount\nP2,2027-04-02,won,10\nP1,2027-01-05,won,1.50\n"
                                  "P1,2027-02-05,lost,99\n,2027-01-01,won,5\nP1,2027-13-01,won,5\n")
    done = cli("measures", "--programs", tmp_path / "programs", "--transactions", f"deals={tmp_path / 'deals.csv'}",
               "--out", tmp_path / "out" / "facts.csv")
    assert (done.returncode, done.stderr) == (2, f"{tmp_path / 'out'}: no such folder\n")
    (tmp_path / "out").mkdir()
    done = cli("measures", "--programs", tmp_path / "programs", "--transactions", f"deals={tmp_path / 'deals.csv'}",
               "--out", tmp_path / "out" / "facts.csv")
    assert done.returncode == 3  # rows rejected
    assert (tmp_path / "out" / "facts.csv").read_text(encoding="utf-8") == (
        "partner_id,period,revenue,deals_won\nP1,2027-Q1,1.50,1\nP2,2027-Q2,10.00,1\n")
    assert (tmp_path / "out" / "rejected_transactions.csv").read_text(encoding="utf-8") == (
        "row,why,partner_id,closed_on,stage,amount\n4,partner_id is empty,\"\",2027-01-01,won,5\n"
        "5,closed_on '2027-13-01' is not a date (YYYY-MM-DD),P1,2027-13-01,won,5\n")
    assert done.stdout.splitlines()[0] == (f"{tmp_path / 'out' / 'facts.csv'}: 2 partner periods, 2 measures from "
                                           "5 transactions (2 rejected)")
    assert "row 4: partner_id is empty" in done.stdout
    assert done.stderr == f"rejected transactions, with why: {tmp_path / 'out' / 'rejected_transactions.csv'}\n"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["facts.csv", "rejected_transactions.csv"]


@pytest.mark.parametrize("option, message", [
    ("deals", "--transactions takes NAME=FILE"),
    ("invoices=x.csv", "no measures file reads the source invoices"),
])
def test_measures_usage_errors_exit_1(tmp_path, option, message):
    write(tmp_path / "programs" / "deals.yaml", DEAL_MEASURES)
    done = cli("measures", "--programs", tmp_path / "programs", "--transactions", option, "--out", tmp_path / "f.csv")
    assert done.returncode == 1 and message in done.stderr
    assert not (tmp_path / "f.csv").exists()


def test_measures_of_an_unreadable_transactions_file_exit_2_and_write_nothing(tmp_path):
    write(tmp_path / "programs" / "deals.yaml", DEAL_MEASURES)
    write(tmp_path / "deals.csv", "partner_id,closed_on,amount\nP1,2027-01-05,1\n")
    done = cli("measures", "--programs", tmp_path / "programs", "--transactions", f"deals={tmp_path / 'deals.csv'}",
               "--out", tmp_path / "facts.csv")
    assert done.returncode == 2
    assert done.stderr == (f"{tmp_path / 'deals.csv'}:1: missing column stage (read by the measures 'deals'); the "
                           "file has: partner_id, closed_on, amount\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deals.csv", "programs"]
