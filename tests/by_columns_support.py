"""What the tests of programs by columns share: a program compiled from text, a facts file, and the parity of
a block's rows by columns with the per-record path's CSV rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from incentives.columnar.facts import read_csv_blocks
from incentives.columnar.program import BY_COLUMNS, LINE_ROWS, PAYOUT_ROW, RESULT_JSON, ProgramByColumns
from incentives.compiler import CompiledProgram
from incentives.inputs import read_facts
from incentives.loading import load_programs
from incentives.output.files import result_json, result_rows
from incentives.periods import parse_period
from incentives.rules.registry import make_backend

ROOT = Path(__file__).resolve().parent.parent
PERIOD = parse_period("2027-Q1")


def compiled_from(tmp_path: Path, text: str) -> CompiledProgram:
    path = tmp_path / "program.yaml"
    path.write_text(text, encoding="utf-8")
    return CompiledProgram(load_programs(path)[0], make_backend("compiled"), "test")


def both(compiled: CompiledProgram, facts: Path) -> tuple[pl.DataFrame, list]:
    """The program's rows by columns, and the per-record results of the same rows (None: a bad record)."""
    by_columns = ProgramByColumns(compiled)
    frame = pl.concat([by_columns.evaluate(block, PERIOD) for block in read_csv_blocks(facts)])
    results = [None if row.problems else compiled.evaluate(row.partner_id, PERIOD, row.facts, {})
               for row in read_facts(facts)]
    return frame, results


def assert_parity(frame: pl.DataFrame, results: list) -> int:
    """Every row computed by columns has the per-record CSV texts and ``results.jsonl`` line; returns how many
    were."""
    assert frame.height == len(results)
    computed = 0
    for row, result in zip(frame.iter_rows(named=True), results):
        if row[BY_COLUMNS]:
            computed += 1
            assert result is not None
            assert (row[PAYOUT_ROW], row[LINE_ROWS]) == result_rows(result), row["partner_id"]
            assert row[RESULT_JSON].encode() == result_json(result), row["partner_id"]
    return computed


def facts_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "facts.csv"
    path.write_text(text, encoding="utf-8")
    return path
