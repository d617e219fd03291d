"""The files written by the streaming run are pydantic's and the CSV rule's text.

The streaming run renders each result as it is computed into spill files, and
patches budget lines in from a template. These tests hold its files to
``write_run`` (pydantic's compact ``model_dump_json()`` per line of
results.jsonl, ``run_json`` for run.json, ``csv_line`` over
``payout_row``/``line_row``) byte for byte: on the bundled example quarter, on
the benchmark programs, and on results holding odd values.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import incentives
from incentives.inputs import read_claims, read_facts
from incentives.output.files import csv_line, line_row, payout_row, run_json
from incentives.result_parts import new_line, new_next_tier, new_reason
from incentives.results import PayoutResult, new_result
from incentives.money import decimal_of
from incentives.runs.resolve import KEYED, Unit
from incentives.runs.rows import rows_of

ROOT = Path(__file__).resolve().parent.parent
_SERIALIZER = PayoutResult.__pydantic_serializer__


def _files(folder: Path) -> dict[str, bytes]:
    out = {name: (folder / name).read_bytes() for name in ("payouts.csv", "lines.csv", "results.jsonl", "run.json")}
    head = json.loads(out["run.json"])
    out["run.json"] = out["run.json"].replace(head["run_id"].encode(), b"RUN").replace(
        head["created_at"].encode(), b"TIME")
    return out


def _same_as_write(engine: incentives.Engine, facts: Path, claims: Path, tmp_path: Path) -> incentives.PayoutRun:
    run = engine.run(read_facts(facts), read_claims(claims))
    incentives.write_run(run, tmp_path / "memory")
    assert (tmp_path / "memory" / "results.jsonl").read_bytes() == b"".join(
        result.model_dump_json().encode() + b"\n" for result in run.results)
    assert (tmp_path / "memory" / "run.json").read_text(encoding="utf-8") == run_json(run, len(run.results))
    engine.run_to(tmp_path / "stream", facts, claims)
    expected = _files(tmp_path / "memory")
    assert _files(tmp_path / "stream") == expected
    for name in expected:  # the files are made alike, permissions included
        assert (tmp_path / "stream" / name).stat().st_mode == (tmp_path / "memory" / name).stat().st_mode
    assert incentives.read_run(tmp_path / "memory") == run
    streamed = incentives.read_run(tmp_path / "stream")
    assert streamed.model_copy(update={"run_id": run.run_id, "created_at": run.created_at}) == run
    return run


def test_the_example_quarter_streams_as_pydantic_writes_it(tmp_path):
    engine = incentives.Engine(incentives.load_programs(ROOT / "programs"))
    run = _same_as_write(engine, ROOT / "examples" / "facts_2027Q1.csv", ROOT / "examples" / "claims_2027Q1.csv",
                         tmp_path)
    assert any(line.kind == "budget" for result in run.results for line in result.lines)


def test_the_benchmark_programs_stream_as_pydantic_writes_them(tmp_path):
    from benchmarks import synth

    data = ROOT / "benchmarks" / ".data"
    facts, claims = data / "facts_10k_2027.csv", data / "claims_10k_2027.csv"
    if not (facts.exists() and claims.exists()):
        facts = synth.write_facts_csv(tmp_path / "facts.csv", 10_000, 2027)
        claims = synth.write_claims_csv(tmp_path / "claims.csv", 10_000, 2027)
    engine = incentives.Engine(incentives.load_programs(ROOT / "benchmarks" / "programs"))
    run = _same_as_write(engine, facts, claims, tmp_path)
    assert {result.status for result in run.results} == {"ok", "ineligible", "error"}


# --- results holding odd values ---------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from(list('a,"\\\n\r\t\x00\x1f\x7f{}[]:é×€\u2028\U0001f600 ')), max_size=10)
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([D("1E+3"), D("-0"), D("-0.00"), D("0E-7"), D("1E-30"), D("9" * 40), D("-1.5E+12"),
                     D("0.8433433736139436698658270686")]),
)
facts = st.dictionaries(texts, st.one_of(decimals, texts, st.booleans(), st.none(), st.dates(),
                                         st.lists(decimals | texts, max_size=2).map(tuple)), max_size=3)


def _line(n, kind, texts4, basis, rate, amount, inputs):
    return new_line({"n": n, "kind": kind, "rule_id": texts4[0], "description": texts4[1], "basis": basis,
                     "rate": rate, "amount": amount, "formula": texts4[2], "inputs": inputs})


lines = st.builds(_line, st.integers(1, 10**9), st.sampled_from(["base", "bonus", "cap", "mdf_claim"]),
                  st.tuples(texts, texts, texts), st.none() | decimals, st.none() | decimals,
                  decimals.filter(lambda d: d.is_finite()), facts)
next_tiers = st.builds(lambda name, gap, unmet: new_next_tier({"name": name, "gap": gap, "unmet": unmet}),
                       texts, decimals, st.lists(texts, max_size=2))
reasons = st.builds(lambda rule, description, when, values: new_reason(
    {"rule_id": rule, "description": description, "when": when, "values": values}),
    texts, st.none() | texts, texts, facts)
details = st.fixed_dictionaries({}, optional={
    "places": st.integers(0, 4), "proration": decimals, "factor": decimals, "accrual_rate_source": texts,
    "accrual_inputs": facts,
    "goals": st.lists(st.fixed_dictionaries({"id": texts, "metric": decimals, "target": decimals,
                                             "attainment": decimals, "weight": decimals}), max_size=2),
    "rejected_claims": st.lists(st.fixed_dictionaries({"claim_id": texts, "reasons": st.lists(texts, max_size=2)}),
                                max_size=2)})


def _result(program_id, ids, version, currency, status, tier, next_tier, attainment, result_lines, total,
            result_reasons, errors, result_details):
    return new_result({"partner_id": ids[0], "period": ids[1], "program_id": program_id,
                       "program_version": version, "currency": currency, "status": status, "tier": tier,
                       "next_tier": next_tier, "attainment": attainment, "lines": result_lines, "total": total,
                       "reasons": result_reasons, "errors": errors, "details": result_details})


def results_of(program_id: str):
    return st.builds(_result, st.just(program_id), st.tuples(texts, texts), st.none() | st.integers(1, 2**31 - 1),
                     st.none() | texts, st.sampled_from(["ok", "ineligible", "error"]), st.none() | texts,
                     st.none() | next_tiers,
                     st.none() | st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**6,
                                             max_value=10**6),
                     st.lists(lines, max_size=3), decimals.filter(lambda d: d.is_finite()),
                     st.lists(reasons, max_size=2), st.lists(texts, max_size=2), details)


def _written(rows: list[list[str]]) -> bytes:
    return "".join(csv_line(row) for row in rows).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(results_of("a"), results_of("b:\"é"), results_of("c")))
def test_a_units_results_are_rendered_as_pydantic_and_the_csv_rule_render_them(results):
    rows = rows_of([(Unit(1, "P", "Q", KEYED), at, result) for at, result in enumerate(results)], texts=True)
    assert rows["result_json"].to_list() == [(_SERIALIZER.to_json(result) + b"\n").decode() for result in results]
    assert rows["payout_row"].to_list() == [_written([payout_row(result)]).decode() for result in results]
    assert rows["line_rows"].to_list() == [
        _written([line_row((r.partner_id, r.period, r.program_id), line, r.details.get("places", 2))
                  for line in r.lines]).decode() for r in results]
    # each total kept as its digits and exponent (its text beyond 128 bits): the same Decimal, to the exponent
    kept = [D(text) if units is None else decimal_of(units, exponent) for units, exponent, text in
            rows.select("total_units", "total_exponent", "total_text").iter_rows()]
    assert [(total, total.as_tuple().exponent) for total in kept] == [
        (result.total, result.total.as_tuple().exponent) for result in results]


def test_odd_partner_ids_stream_as_pydantic_writes_them(engine_for, tmp_path):
    from test_streaming import GOALS, MDF, TIER

    engine = engine_for(TIER, GOALS, MDF)
    ids = ["P,1", 'P"2', "P\\3", "P\n4", "P\r5", "P\x016", "Pé7", "P×8", "P\u20289", "P{10}", "P 11 "]
    records = [{"partner_id": partner_id, "period": "2027-Q1", "status": "active", "revenue": f"{at * 7919}.5",
                "certs": str(at % 3), "nps": "60", "new_logos": "1", "quota": "10000.00", "incentive": "1000",
                "joined_on": date(2027, 2, 1).isoformat() if at % 4 == 0 else "", "mdf_balance": ""}
               for at, partner_id in enumerate(ids, start=1)]
    claims = [{"claim_id": f"C{at}\"é", "partner_id": partner_id, "period": "2027-Q1", "activity": "event",
               "amount": "100.00", "activity_end": "2027-01-10", "submitted_on": "2027-01-20",
               "preapproved": "true"} for at, partner_id in enumerate(ids[:4])]
    run = engine.run(records, claims)
    incentives.write_run(run, tmp_path / "memory")
    engine.run_to(tmp_path / "stream", records, claims)
    assert _files(tmp_path / "stream") == _files(tmp_path / "memory")
