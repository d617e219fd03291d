"""Engine.run_to (the streaming run) writes exactly what incentives.write_run(Engine.run(...), ...) writes."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

import incentives
from conftest import program_text
from incentives.inputs import read_claims, read_facts

TIER = program_text("""
    defaults: {nps: 0, new_logos: 0}
    eligibility:
      - {id: active, when: "status == 'active'"}
    tiers:
      qualify_on: revenue
      levels:
        - {name: Registered, from: 0, rate: 1%}
        - {name: Silver, from: 10000, rate: 2%, requires: "certs >= 1"}
        - {name: Gold, from: 50000, rate: 3.5%, requires: "certs >= 2"}
    bonuses:
      - {id: nps_kicker, when: "nps >= 50", multiplier: 110%}
      - {id: new_logo, when: "new_logos >= 1", amount: "250 * new_logos"}
    cap: 2500
    min_payout: 20
    """, id="partner_tier")
GOALS = program_text("""
    goals:
      targets:
        - {id: revenue, metric: revenue, target: quota, weight: 100%}
      attainment_cap: 150%
      payout:
        on: incentive
        curve:
          - {attainment: 50%, factor: 25%}
          - {attainment: 100%, factor: 100%}
          - {attainment: 150%, factor: 200%}
    budget: 30000
    prorate_by: joined_on
    """, id="sales_goals", kind="goal")
MDF = program_text("""
    uses: [partner_tier]
    eligibility:
      - {id: tiered, when: "partner_tier.eligible"}
    mdf:
      accrual:
        on: revenue
        rate_by: partner_tier.tier
        rates: {Registered: 1%, Silver: 2%, Gold: 3%}
        cap: 1500
      claims:
        reimbursement: 50%
        activities: [event, digital]
        requires_preapproval: true
        submit_within_days: 30
    """, id="co_marketing", kind="mdf")
# a program no record's period is covered by: coverage notes
LATER = program_text("""
    tiers:
      qualify_on: revenue
      levels:
        - {name: Only, from: 0, rate: 1%}
    """, header="""
    id: later
    name: Later
    kind: tier
    version: 1
    currency: EUR
    effective: {from: 2030-01-01}
    period: quarter
    """)

FACT_COLUMNS = ("partner_id", "period", "status", "revenue", "certs", "nps", "new_logos", "quota", "incentive",
                "joined_on", "mdf_balance")


def partners(count: int, seed: int = 7) -> list[dict]:
    """Records with every kind of outcome: ok, ineligible, errors, duplicates, no ids, several periods."""
    rng = random.Random(seed)
    records = []
    for number in range(1, count + 1):
        record = {"partner_id": f"P{rng.randrange(1, count * 2):05d}", "period": rng.choice(["2027-Q1"] * 6 + ["2027-Q2"]),
                  "status": "active" if rng.random() > 0.1 else "suspended",
                  "revenue": f"{rng.lognormvariate(9.5, 1.2):.2f}", "certs": str(rng.randrange(0, 4)),
                  "nps": str(rng.randrange(0, 100)) if rng.random() > 0.3 else "",
                  "new_logos": str(rng.randrange(0, 3)), "quota": f"{rng.randrange(5000, 40000)}.00",
                  "incentive": str(rng.choice([500, 1000, 2500])), "joined_on": "", "mdf_balance": ""}
        if rng.random() < 0.1:
            record["joined_on"] = (date(2027, 1, 1) + timedelta(days=rng.randrange(1, 80))).isoformat()
        if rng.random() < 0.2:
            record["mdf_balance"] = f"{rng.randrange(0, 900)}.{rng.randrange(0, 1000):03d}"
        if rng.random() < 0.03:
            record["revenue"] = "lots"  # a string where a number is needed: error results
        if rng.random() < 0.02:
            record["quota"] = "0"  # a zero target: an error in the goal program only
        if rng.random() < 0.02:
            record["partner_id"] = ""  # no id: errors that match no claim and duplicate nothing
        if rng.random() < 0.01:
            record["period"] = "2027-Q9"  # an invalid period label
        records.append(record)
    records += [dict(records[3]), dict(records[10], revenue="1.00")]  # duplicates
    return records


def claims_for(records: list[dict], seed: int = 7) -> list[dict]:
    rng = random.Random(seed + 1)
    claims = []
    keys = [(r["partner_id"], r["period"]) for r in records if r["partner_id"]]
    chosen = rng.sample(keys, len(keys) // 3) + [("P99999", "2027-Q1"), ("", "2027-Q2")]  # no facts record
    for number, (partner_id, period) in enumerate(chosen):
        for extra in range(rng.choice([1, 1, 2])):
            end = date(2027, 1, 5) + timedelta(days=rng.randrange(0, 70))
            claims.append({"claim_id": f"C{number:04d}{extra}", "partner_id": partner_id, "period": period,
                           "activity": rng.choice(["event", "digital", "event", "trade_show"]),
                           "amount": f"{rng.randrange(-10, 3000)}.{rng.randrange(0, 100):02d}",
                           "activity_end": end.isoformat(),
                           "submitted_on": (end + timedelta(days=rng.randrange(0, 40))).isoformat(),
                           "preapproved": rng.choice(["true", "true", "false", ""])})
    claims.append(dict(claims[0]))  # a duplicate claim id
    return claims


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict], newline: str = "\n") -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in columns])
    return path


@pytest.fixture
def engine(engine_for):
    return engine_for(TIER, GOALS, MDF, LATER)


def files(folder: Path) -> dict[str, str]:
    """The run's files, with run.json's run id and time blanked."""
    out = {name: (folder / name).read_text(encoding="utf-8") for name in ("payouts.csv", "lines.csv",
                                                                            "results.jsonl")}
    text = (folder / "run.json").read_text(encoding="utf-8")
    head = json.loads(text)
    out["run.json"] = text.replace(head["run_id"], "RUN").replace(head["created_at"], "TIME")
    return out


def in_memory(engine, facts, claims, folder: Path, sha: str | None = "f" * 64) -> dict[str, str]:
    incentives.write_run(engine.run(facts, claims, facts_sha256=sha), folder)
    return files(folder)


def test_streaming_files_are_byte_identical_to_run_and_write(engine, tmp_path):
    records, claims = partners(400), None
    claims = claims_for(records)
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    claims_file = write_csv(tmp_path / "claims.csv", ("claim_id", "partner_id", "period", "activity", "amount",
                                                        "activity_end", "submitted_on", "preapproved"), claims)
    expected = in_memory(engine, read_facts(facts_file), read_claims(claims_file), tmp_path / "memory")
    summary = engine.run_to(tmp_path / "stream", facts_file, claims_file, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected
    run_json = json.loads(expected["run.json"])
    run_json["results"] = [json.loads(line) for line in expected["results.jsonl"].splitlines()]
    assert run_json["results_count"] == len(run_json["results"])
    # the sample covers what it should
    statuses = {(r["program_id"], r["status"]) for r in run_json["results"]}
    assert {("partner_tier", "ok"), ("partner_tier", "ineligible"), ("partner_tier", "error"),
            ("sales_goals", "error"), ("co_marketing", "ok")} <= statuses
    assert any("budget" in note for note in run_json["notes"])
    assert any("no version effective" in note for note in run_json["notes"])
    assert any("duplicate record" in e for r in run_json["results"] for e in r["errors"])
    assert any("have no facts record" in e for r in run_json["results"] for e in r["errors"])
    assert any(line["kind"] == "mdf_claim" for r in run_json["results"] for line in r["lines"])
    assert summary.totals == {k: D(v) for k, v in run_json["totals"].items()}
    assert summary.counts == run_json["counts"] and summary.notes == run_json["notes"]
    assert summary.records == 402 and summary.results == len(run_json["results"])
    assert not [p for p in (tmp_path / "stream").iterdir() if p.name.startswith(".")]


def test_streaming_api_records_in_any_order(engine, tmp_path):
    records = partners(150, seed=3)
    random.Random(5).shuffle(records)
    typed = [dict(r, revenue=D(r["revenue"])) if r["revenue"] != "lots" else r for r in records]
    claims = claims_for(records, seed=3)
    expected = in_memory(engine, typed, claims, tmp_path / "memory", sha=None)
    engine.run_to(tmp_path / "stream", iter(typed), iter(claims))
    assert files(tmp_path / "stream") == expected


def test_streaming_a_crlf_file(engine, tmp_path):
    records = partners(300, seed=11)
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records, newline="\r\n")
    expected = in_memory(engine, read_facts(facts_file), (), tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts_file, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected


def test_quoted_csv_is_read_in_one_pass(engine, tmp_path):
    records = partners(60, seed=13)
    records[5]["status"] = 'active "gold", really'
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    expected = in_memory(engine, read_facts(facts_file), (), tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts_file, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected


def test_a_bad_row_fails_the_streaming_run_at_its_line_and_writes_nothing(engine, tmp_path):
    records = partners(200, seed=17)
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    lines = facts_file.read_text().splitlines(keepends=True)
    lines[150] = lines[150].rstrip("\n") + ",extra\n"
    lines[120] = lines[120].rstrip("\n") + ",extra,cells\n"
    facts_file.write_text("".join(lines))
    with pytest.raises(incentives.InputError) as serial:
        engine.run(read_facts(facts_file))
    with pytest.raises(incentives.InputError) as streamed:
        engine.run_to(tmp_path / "out", facts_file)
    assert str(streamed.value) == str(serial.value)
    assert streamed.value.line == 121
    assert not (tmp_path / "out").exists()  # nothing written: beside it only the lock file, which stays
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == [".out.lock"]


def test_streaming_refuses_another_runs_folder_like_write(engine, tmp_path):
    records = partners(40, seed=19)
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    engine.run_to(tmp_path / "out", facts_file, facts_sha256="a" * 64)
    engine.run_to(tmp_path / "out", facts_file, facts_sha256="a" * 64)  # the same run again: fine
    with pytest.raises(incentives.IncentivesError, match="different run"):
        engine.run_to(tmp_path / "out", facts_file, facts_sha256="b" * 64)
    with pytest.raises(incentives.IncentivesError, match="different run"):  # same fingerprint, other claims
        engine.run_to(tmp_path / "out", facts_file, claims_for(records), facts_sha256="a" * 64)
    engine.run_to(tmp_path / "out", facts_file, facts_sha256="b" * 64, force=True)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["facts_sha256"] == "b" * 64


def test_streaming_an_empty_run(engine, tmp_path):
    expected = in_memory(engine, [], [], tmp_path / "memory", sha=None)
    summary = engine.run_to(tmp_path / "stream", [])
    assert files(tmp_path / "stream") == expected
    assert summary.results == 0 and summary.errors == 0


def test_progress_counts_records(engine, tmp_path):
    records = partners(30, seed=23)
    seen = []
    engine.run_to(tmp_path / "out", records, progress=seen.append)
    assert seen == list(range(1, len(records) + 1))


def sorted_partners(count: int, seed: int = 29) -> list[dict]:
    """One record per partner, in partner_id order: the order the output takes (no duplicates, no orphans)."""
    records = partners(count, seed)
    unique = {}
    for number, record in enumerate(records):
        record = dict(record, partner_id=f"Q{number:05d}")
        if record["period"] == "2027-Q9":
            record["period"] = "2027-Q1"
        unique[record["partner_id"]] = record
    return [unique[key] for key in sorted(unique)]


def test_records_in_output_order_are_finished_by_each_worker(engine, tmp_path):
    records = sorted_partners(500)
    claims = [claim for claim in claims_for(records, seed=31) if claim["partner_id"]
              and claim["partner_id"] != "P99999"]
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    claims_file = write_csv(tmp_path / "claims.csv", ("claim_id", "partner_id", "period", "activity", "amount",
                                                        "activity_end", "submitted_on", "preapproved"), claims)
    expected = in_memory(engine, read_facts(facts_file), read_claims(claims_file), tmp_path / "memory")
    assert any("budget" in note for note in json.loads(expected["run.json"])["notes"])
    engine.run_to(tmp_path / "stream", facts_file, claims_file, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected


def test_a_duplicate_takes_its_first_records_totals_out_exactly(engine, tmp_path):
    records = sorted_partners(120, seed=37)
    # the only total with three decimals is the first record of a duplicated key: once it is out,
    # the program's total keeps two decimals, as Engine.run's sum does
    for record in records:
        record["mdf_balance"] = ""
    records[7].update(mdf_balance="100.125", revenue="1000.00", status="active", period="2027-Q1")
    alone = engine.run(records, [{"claim_id": "K1", "partner_id": records[7]["partner_id"], "period": "2027-Q1",
                                  "activity": "event", "amount": "5000.00", "activity_end": "2027-01-10",
                                  "submitted_on": "2027-01-20", "preapproved": "true"}])
    assert alone.totals["co_marketing"].as_tuple().exponent == -3  # the fund ran out at 110.125
    records.append(dict(records[7], mdf_balance=""))
    claims = [{"claim_id": "K1", "partner_id": records[7]["partner_id"], "period": records[7]["period"],
               "activity": "event", "amount": "5000.00", "activity_end": "2027-01-10", "submitted_on": "2027-01-20",
               "preapproved": "true"}]
    expected = in_memory(engine, records, claims, tmp_path / "memory", sha=None)
    assert json.loads(expected["run.json"])["totals"]["co_marketing"] == "0"  # not 0.000
    engine.run_to(tmp_path / "stream", records, claims)
    assert files(tmp_path / "stream") == expected


def summary_of(run) -> dict:
    """What RunSummary reports, computed from an in-memory run."""
    partners, versions, by_tier = {}, {}, {}
    for result in run.results:
        partners.setdefault(result.program_id, set()).add(result.partner_id)
        if result.program_version is not None:
            versions.setdefault(result.program_id, set()).add(result.program_version)
        if result.status == "ok" and result.tier is not None:
            count, total = by_tier.setdefault(result.program_id, {}).get(result.tier, (0, D(0)))
            by_tier[result.program_id][result.tier] = (count + 1, total + result.total)
    return {"partners": {k: len(v) for k, v in partners.items()},
            "versions": {k: sorted(v) for k, v in versions.items()},
            "by_tier": by_tier, "periods": sorted({r.period for r in run.results if r.period}),
            "first_errors": [(r.partner_id, r.period, r.program_id, r.errors)
                             for r in run.results if r.status == "error"][:50]}


@pytest.mark.parametrize("in_order", [True, False])
def test_the_summary_reports_what_the_results_hold(engine, tmp_path, in_order):
    records = sorted_partners(400) if in_order else partners(400, seed=41)
    claims = claims_for(records, seed=43)
    if in_order:
        claims = [claim for claim in claims if claim["partner_id"] not in ("", "P99999")]
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    expected = summary_of(engine.run(read_facts(facts_file), claims))
    summary = engine.run_to(tmp_path / "stream", facts_file, claims)
    got = {name: getattr(summary, name) for name in expected}
    got["partners"] = {k: v for k, v in got["partners"].items()}
    assert got == expected


def write_jsonl(path: Path, rows: list[dict], newline: str = "\n", bom: bool = False) -> Path:
    """One JSON object a line, blank lines and odd keys included; empty CSV-style cells are left out."""
    lines = [json.dumps({key: value for key, value in row.items() if value != ""}, ensure_ascii=False)
             for row in rows]
    lines.insert(len(lines) // 3, "")  # a blank line counts as a line and holds no record
    text = newline.join(lines) + newline
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_json_lines_file_gives_the_same_files(engine, tmp_path, newline):
    records = partners(300, seed=23)
    records[7]["status"] = 'active "gold",\u00e9'  # quotes and commas are nothing special in JSON
    facts_file = write_jsonl(tmp_path / "facts.jsonl", records, newline=newline, bom=True)
    claims = claims_for(records, seed=23)
    expected = in_memory(engine, read_facts(facts_file), claims, tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts_file, iter(claims), facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected


def test_a_bad_json_line_fails_the_split_run_at_its_line(engine, tmp_path):
    records = partners(200, seed=31)
    facts_file = write_jsonl(tmp_path / "facts.jsonl", records)
    lines = facts_file.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[170] = '{"partner_id": "P1", "period": \n'
    lines[140] = "[1, 2]\n"
    facts_file.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(incentives.InputError) as serial:
        engine.run(read_facts(facts_file))
    assert serial.value.line == 141
    with pytest.raises(incentives.InputError) as streamed:
        engine.run_to(tmp_path / "out", facts_file)
    assert str(streamed.value) == str(serial.value)


@pytest.mark.parametrize("shuffled", [False, True])
def test_claims_naming_other_programs_give_the_same_error_rows_and_totals_either_way(engine, tmp_path,
                                                                                   shuffled):
    records = sorted_partners(300, seed=41)
    if shuffled:
        random.Random(41).shuffle(records)
    claims = claims_for(records, seed=41)
    names = ["co_marketing", "", "co_marketng", "partner_tier", "zeta_fund", "later"]
    for number, claim in enumerate(claims):
        claim["program_id"] = names[number % len(names)]
    facts_file = write_csv(tmp_path / "facts.csv", FACT_COLUMNS, records)
    claims_file = write_csv(tmp_path / "claims.csv", ("claim_id", "partner_id", "period", "activity", "amount",
                                                        "activity_end", "submitted_on", "preapproved",
                                                        "program_id"), claims)
    expected = in_memory(engine, read_facts(facts_file), read_claims(claims_file), tmp_path / "memory")
    engine.run_to(tmp_path / "stream", facts_file, claims_file, facts_sha256="f" * 64)
    assert files(tmp_path / "stream") == expected
    run_json = json.loads(expected["run.json"])
    # loaded programs in evaluation order, then the names only claims gave, sorted
    assert list(run_json["totals"]) == ["partner_tier", "co_marketing", "later", "sales_goals", "co_marketng",
                                        "zeta_fund"]
    errors = [error for line in expected["results.jsonl"].splitlines() for error in json.loads(line)["errors"]]
    assert any("name program 'co_marketng', which is not loaded" in error for error in errors)
    assert any("a tier program: only MDF programs take claims" in error for error in errors)
