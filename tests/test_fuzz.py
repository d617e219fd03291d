"""Bounded fuzzing (hypothesis-driven) of everything that reads untrusted text.

* the expression language: generated expressions and mutations of them parse to an
  ``Expression`` or raise ``ExpressionError`` (with an offset inside the text); those
  that parse evaluate, on arbitrary facts, to a value or an ``EvaluationError``;
* the program loader: valid program files mutated (byte flips, deleted, repeated
  and swapped lines, swapped keys, re-indented lines, odd values, hostile YAML,
  truncation) load or raise ``ProgramError``, and whatever loads evaluates a record
  without raising;
* the facts and claims readers: mutated CSV and JSON Lines files give rows or an
  ``InputError`` with the file and a line, and every row read gets its results.

Each test has a fixed budget of examples (a few seconds each on a 2-core CI machine).
"""

from __future__ import annotations

import re
import tempfile
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import incentives
from incentives.errors import EvaluationError, ExpressionError, InputError
from incentives.inputs import read_claims, read_facts
from incentives.rules.closures import compile_expression
from incentives.rules.expressions import Expression, parse_expression

ROOT = Path(__file__).resolve().parent.parent


def fuzz(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


# --- the expression language ----------------------------------------------------------------

NAMES = ["revenue", "nps", "new_logos", "certifications.sales", "partner_tier.tier", "region", "joined_on",
         "deals", "flag", "missing_fact"]
FACTS: dict[str, Any] = {
    "revenue": D("612500.00"), "nps": D(55), "new_logos": D(2), "certifications.sales": D(1),
    "partner_tier.tier": "Gold", "region": "EMEA", "joined_on": date(2027, 2, 1), "deals": (D(1), D(2)),
    "flag": True,
}
fact_values = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.booleans(),
    st.dates(), st.lists(st.decimals(allow_nan=False, allow_infinity=False), max_size=3).map(tuple), st.none(),
)

numbers = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: f"{d:f}"),
    st.integers(0, 500).map(lambda n: f"{n}%"),
    st.sampled_from(["1e3", "1_000", "0.035", "3.5%", "1e999", "9" * 60, "0x1F", "1j", ".5", "5."]),
)
atoms = st.one_of(
    st.sampled_from(NAMES), numbers,
    st.sampled_from(["true", "false", "True", "False", "'Gold'", '"EMEA"', "'it''s'", "[1, 2]", "[]", "null",
                     "None", "_private", "__class__", "x.__dict__", "partner_tier.total"]),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "and", "or", "in", "not in",
                              "%", "**", "//", "=", "is", "&"])
    return st.one_of(
        st.tuples(children, binary, children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["-", "+", "not ", "~"]), children).map("".join),
        children.map(lambda c: f"({c})"),
        st.tuples(st.sampled_from(["min", "max", "abs", "sum", "len", "open", "revenue.bit_length"]),
                  st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.lists(children, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
        st.tuples(children, children).map(lambda t: f"{t[0]} if {t[1]} else 0"),
        children.map(lambda c: f"[x for x in {c}]"),
        children.map(lambda c: f"{c}[0]"),
        children.map(lambda c: f"lambda: {c}"),
    )


expressions = st.recursive(atoms, _combine, max_leaves=12)
NOISE = list("()[]{}.,:;'\"%#=<>!+-*/\\@&|^~`$?_ \t\n\r\x00") + ["\u00e9", "\u2028", "\ud800", "１", "ﬁ", "if", "and"]


@st.composite
def mutated_expressions(draw: Any) -> str:
    text = draw(expressions)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(NOISE))
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + piece + text[at + 1:]
    return text


def _check_expression(text: str) -> Expression | None:
    try:
        parsed = parse_expression(text)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text), (text, error.offset)
        assert error.message
        return None
    assert isinstance(parsed, Expression) and parsed.text == text
    return parsed


@fuzz(400)
@given(mutated_expressions(), st.dictionaries(st.sampled_from(NAMES), fact_values, max_size=6))
def test_expressions_parse_or_raise_expression_error_and_evaluate_or_raise_evaluation_error(
        text: str, facts: dict[str, Any]) -> None:
    parsed = _check_expression(text)
    if parsed is None:
        return
    assert not any(part.startswith("_") for name in parsed.names for part in name.split("."))
    evaluate = compile_expression(parsed.node)
    for environment in (FACTS, facts):
        try:
            evaluate(environment)
        except EvaluationError:
            pass


@fuzz(1000)
@given(st.text(max_size=80))
def test_arbitrary_text_is_an_expression_or_an_expression_error(text: str) -> None:
    _check_expression(text)


# --- the program loader ---------------------------------------------------------------------

SEED_PROGRAMS = [
    """\
id: partner_tier
name: Partner Tier Rebate FY2027
kind: tier
version: 1
currency: USD
effective: {from: 2027-01-01, to: 2027-12-31}
period: quarter
fiscal_year_start: "01-01"
rounding: {places: 2, mode: half_up}
defaults: {nps: 0, certifications: {sales: 0, technical: 0}}
metrics:
  total_revenue: "revenue + services"
eligibility:
  - {id: active, when: "status == 'active'", description: active partners only}
tiers:
  qualify_on: total_revenue
  pay_on: revenue
  mode: retroactive
  levels:
    - {name: Registered, from: 0,       rate: 0%}
    - {name: Silver,     from: 100000,  rate: 2%,   requires: "certifications.sales >= 1"}
    - {name: Gold,       from: 500000,  rate: 3.5%, requires: "certifications.technical >= 2"}
    - {name: Platinum,   from: 2000000, rate: 5%}
bonuses:
  - {id: nps_kicker, when: "nps >= 50", multiplier: 110%}
  - {id: new_logo,   when: "new_logos >= 1", amount: "500 * new_logos"}
cap: 150000
min_payout: 100
budget: 1000000
""",
    """\
id: goal_rebate
name: Goal rebate
kind: goal
version: 1
currency: EUR
effective:
  from: 2026-07-01
period: half
fiscal_year_start: "07-01"
prorate_by: joined_on
goals:
  targets:
    - {id: revenue, metric: revenue,   target: revenue_quota, weight: 70%}
    - {id: logos,   metric: new_logos, target: 4,             weight: 30%}
  attainment_cap: 150%
  payout:
    on: "1.5% * revenue_quota"
    interpolation: step
    curve:
      - {attainment: 80%,  factor: 50%}
      - {attainment: 100%, factor: 100%}
      - {attainment: 150%, factor: 200%}
""",
    """\
id: co_marketing
name: Co-marketing MDF
kind: mdf
version: 3
currency: USD
effective: {from: 2027-01-01}
period: quarter
mdf:
  accrual:
    on: revenue
    rate_by: region
    rates: {EMEA: 1%, APJ: 2%, AMER: 3%}
    cap: 50000
  claims:
    reimbursement: 50%
    activities: [event, digital, webinar]
    requires_preapproval: true
    submit_within_days: 60
""",
]
SEED_PROGRAMS += [path.read_text(encoding="utf-8") for path in sorted((ROOT / "programs").glob("*.yaml"))[:6]]
SEED_BYTES = [text.encode("utf-8") for text in SEED_PROGRAMS]

HOSTILE_YAML = [
    "&a [*a]", "*undefined", "!!python/object/apply:os.system ['true']", "!!binary aGVsbG8=", "? [a, b]\n: c",
    "<<: {x: 1}", "{", "}", "[", "- - -", "x: " + "[" * 300, "1e999", ".nan", "-.inf", "2027-02-30",
    "'unclosed", '"\\x"', "%YAML 1.1", "---", "...", "\t", "\x00", "\ufeff", "\xff", "key: value: other",
    "a: &b {c: *b}", "!!set {a, b}", "- &x [*x, *x]", "|\n  block", ">-\n folded",
]
ODD_VALUES = [
    "", "-1", "0", "150%", "-2%", "%", "abc", "[]", "{}", "null", "~", "true", "1e5", "1.0e+999", "9" * 60,
    "2027-13-01", "\"sum(x)\"", "\"a.__class__\"", "\"(lambda: 1)()\"", "\"[x for x in y]\"", "\"y[0]\"",
    "\"-\" * 200", "\"" + "-" * 150 + "1\"", "'x >'", "\"1/0\"", "[{a: 1}]", "{x: [null]}", "0x10", "0o7",
    "1_000", "'07-01'", "12-31", "quarter", "tier", "USD", "retroactive", "incremental",
]
KEY = re.compile(rb"^(\s*-?\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*:)", re.MULTILINE)


@st.composite
def mutated_program(draw: Any) -> bytes:
    data = draw(st.sampled_from(SEED_BYTES))
    for _ in range(draw(st.integers(1, 3))):
        lines = data.split(b"\n")
        operation = draw(st.sampled_from(["flip", "delete_line", "repeat_line", "swap_lines", "swap_keys",
                                          "indent", "odd_value", "hostile", "truncate",
                                          "odd_value", "odd_value", "delete_line", "swap_keys"]))
        if operation == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            interesting = st.sampled_from(list(b"\t:-{}[]\"'&*!%#\n 09,.aZ_"))
            byte = draw(st.one_of(interesting, interesting, interesting, st.integers(0, 255)))
            data = data[:at] + bytes([byte]) + data[at + 1:]
        elif operation == "delete_line":
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"\n".join(lines)
        elif operation == "repeat_line":
            at = draw(st.integers(0, len(lines) - 1))
            lines.insert(at, lines[at])
            data = b"\n".join(lines)
        elif operation == "swap_lines":
            first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[first], lines[second] = lines[second], lines[first]
            data = b"\n".join(lines)
        elif operation == "swap_keys":
            keys = [match.group(2) for match in KEY.finditer(data)]
            if len(keys) >= 2:
                first, second = draw(st.sampled_from(keys)), draw(st.sampled_from(keys))
                data = data.replace(first + b":", b"\0KEY\0:").replace(second + b":", first + b":")
                data = data.replace(b"\0KEY\0:", second + b":")
        elif operation == "indent":
            at = draw(st.integers(0, len(lines) - 1))
            shift = draw(st.integers(-4, 4))
            lines[at] = b" " * shift + lines[at] if shift >= 0 else lines[at][-shift:]
            data = b"\n".join(lines)
        elif operation == "odd_value":
            at = draw(st.integers(0, len(lines) - 1))
            match = KEY.match(lines[at])
            if match:
                lines[at] = lines[at][: match.end()] + b" " + draw(st.sampled_from(ODD_VALUES)).encode("utf-8")
                data = b"\n".join(lines)
        elif operation == "hostile":
            at = draw(st.integers(0, len(lines)))
            lines.insert(at, draw(st.sampled_from(HOSTILE_YAML)).encode("utf-8", "surrogatepass"))
            data = b"\n".join(lines)
        elif operation == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
    return data


EXAMPLE_FACTS = ROOT / "examples" / "facts_2027Q1.csv"
RECORD = {
    **(next(iter(read_facts(EXAMPLE_FACTS))).facts if EXAMPLE_FACTS.is_file() else {}),
    "partner_id": "P0001", "period": "2027-Q1", "status": "active", "region": "EMEA", "revenue": "612500.00",
    "services": "40000", "nps": 55, "new_logos": 2, "revenue_quota": "500000", "joined_on": "2027-02-01",
    "certifications.sales": 2, "certifications.technical": 3,
}
CLAIM = {"claim_id": "C1", "partner_id": "P0001", "period": "2027-Q1", "activity": "event", "amount": "1000",
         "activity_end": "2027-01-20", "submitted_on": "2027-02-01", "preapproved": True}


@pytest.fixture(scope="module")
def scratch() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@fuzz(600)
@given(data=mutated_program())
def test_mutated_programs_load_or_raise_program_error(scratch: Path, data: bytes) -> None:
    path = scratch / "program.yaml"
    path.write_bytes(data)
    try:
        programs = incentives.load_programs(path)
    except incentives.ProgramError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file == str(path) and problem.message
            assert problem.line is None or problem.line >= 1
            assert problem.column is None or problem.column >= 1
        return
    engine = incentives.Engine(programs)
    for period in ("2027-Q1", "2027-H1", "2027", "2027-01"):
        record = {**RECORD, "period": period}
        for result in engine.run([record], [{**CLAIM, "period": period}]).results:
            assert result.status in ("ok", "ineligible", "error")
            assert sum((line.amount for line in result.lines), D(0)) == result.total


# --- the facts and claims readers -----------------------------------------------------------

FACTS_CSV = (
    "partner_id,period,revenue,services,nps,new_logos,status,region,joined_on,certifications.sales\n"
    "P0001,2027-Q1,612500.00,40000,55,2,active,EMEA,2027-02-01,2\n"
    "P0002,2027-Q1,\"1,000\",,49,0,active,APJ,,1\n"
    "P0003,2027-Q1,2500000,10,80,3,suspended,AMER,2026-05-01,3\n"
    "\"P0004\",2027-Q1,100000.005,0,50,1,active,\"EM\"\"EA\",2027-03-31,0\n"
)
FACTS_JSONL = (
    '{"partner_id": "P0001", "period": "2027-Q1", "revenue": 612500.00, "nps": 55, "status": "active",'
    ' "certifications": {"sales": 2}}\n'
    '{"partner_id": 2, "period": "2027-Q1", "revenue": "1e3", "flag": true, "tags": ["a", "b"], "nothing": null}\n'
    '\n'
    '{"partner_id": "P0003", "period": "2027-Q1", "revenue": NaN}\n'
)
CLAIMS_CSV = (
    "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved,program_id\n"
    "C1,P0001,2027-Q1,event,1000,2027-01-20,2027-02-01,true,\n"
    "C2,P0001,2027-Q1,webinar,-5,2027-01-20,2027-05-01,false,co_marketing\n"
    "C3,P0009,2027-Q1,golf,250.50,2027-02-30,,maybe,\n"
)
FILE_NOISE = list(b",;\t|\"'\r\n \x00\xff\xef\xbb\xbf{}[]:.-0e") + [0xC3, 0xA9]


@st.composite
def mutated_file(draw: Any, seed: str) -> bytes:
    data = seed.encode("utf-8")
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "cut_line", "bom", "truncate"]))
        noise = st.sampled_from(FILE_NOISE)
        byte = bytes([draw(st.one_of(noise, noise, noise, st.integers(0, 255)))])
        if operation == "insert":
            data = data[:at] + byte + data[at:]
        elif operation == "delete":
            data = data[:at] + data[at + 1:]
        elif operation == "replace":
            data = data[:at] + byte + data[at + 1:]
        elif operation == "cut_line":
            lines = data.split(b"\n")
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"\n".join(lines)
        elif operation == "bom":
            data = b"\xef\xbb\xbf" + data
        else:
            data = data[:at]
    return data


@pytest.fixture(scope="module")
def engine(scratch: Path) -> incentives.Engine:
    paths = []
    for index, text in enumerate(SEED_PROGRAMS[:3]):
        paths.append(scratch / f"seed_{index}.yaml")
        paths[-1].write_text(text, encoding="utf-8")
    return incentives.Engine(incentives.load_programs(paths))


def _read(reader: Any, path: Path) -> list[Any] | None:
    try:
        return list(reader(path))
    except InputError as error:
        assert error.file == str(path) and error.problem.message
        assert error.line is None or error.line >= 1
        return None


@fuzz(400)
@given(data=st.one_of(mutated_file(FACTS_CSV), mutated_file(FACTS_JSONL).map(lambda d: b"JSONL" + d)))
def test_mutated_facts_files_give_rows_or_an_input_error(scratch: Path, engine: incentives.Engine,
                                                         data: bytes) -> None:
    path = scratch / ("facts.jsonl" if data.startswith(b"JSONL") else "facts.csv")
    path.write_bytes(data.removeprefix(b"JSONL"))
    rows = _read(read_facts, path)
    if rows is None:
        return
    run = engine.run(rows)
    keys = {(result.partner_id, result.period) for result in run.results}
    assert {(row.partner_id, row.period) for row in rows} <= keys  # every record has its results
    for result in run.results:
        assert sum((line.amount for line in result.lines), D(0)) == result.total


@fuzz(200)
@given(data=mutated_file(CLAIMS_CSV))
def test_mutated_claims_files_give_claims_or_an_input_error(scratch: Path, engine: incentives.Engine,
                                                            data: bytes) -> None:
    path = scratch / "claims.csv"
    path.write_bytes(data)
    claims = _read(read_claims, path)
    if claims is None:
        return
    run = engine.run([RECORD], claims)
    for claim in claims:
        # a claim is paid, rejected or reported on an error row: never lost
        assert any(result.partner_id == claim.partner_id and result.period == claim.period
                   for result in run.results) or not (claim.partner_id and claim.period)
