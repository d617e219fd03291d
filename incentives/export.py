"""Writing a run: ``payouts.csv``, ``lines.csv`` and ``run.json``, atomically and deterministically.

Each file is written to a temporary file in the output folder, flushed to
disk and renamed over its final name, so a reader never sees a half-written
file. CSV amounts are plain decimals with the program's places (``21437.50``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import IncentivesError
from .money import plain_amount

if TYPE_CHECKING:
    from .results import PayoutLine, PayoutResult, PayoutRun

PAYOUT_COLUMNS = ("partner_id", "period", "program_id", "program_version", "status", "tier", "attainment",
                  "total", "currency")
LINE_COLUMNS = ("partner_id", "period", "program_id", "n", "kind", "rule_id", "description", "basis", "rate",
                "amount", "formula")
OUTPUT_FILES = ("payouts.csv", "lines.csv", "run.json")
ATTAINMENT_PLACES = Decimal("1E-6")


class OutputExistsError(IncentivesError):
    """The output folder holds another run's files and overwriting was not forced."""


def write_run(run: "PayoutRun", folder: str | Path, *, force: bool = False) -> None:
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    _refuse_other_run(run, target, force)
    # run.json is the commit mark, written last: while the CSVs are replaced, no run.json
    # claims them, so a run killed between two renames never leaves a folder that mixes runs.
    (target / "run.json").unlink(missing_ok=True)
    _write_atomic(target / "payouts.csv", _csv_text(PAYOUT_COLUMNS, map(payout_row, run.results)))
    _write_atomic(target / "lines.csv", _csv_text(LINE_COLUMNS, _line_rows(run.results)))
    _write_atomic(target / "run.json", run.model_dump_json(indent=1) + "\n")


def fingerprint(run_json: dict[str, Any]) -> tuple:
    """What identifies a run's inputs: programs (id, version, sha256), facts and claims sha256."""
    programs = tuple((p["id"], p["version"], p["sha256"]) for p in run_json.get("programs", []))
    return programs, run_json.get("facts_sha256"), run_json.get("claims_sha256")


def _refuse_other_run(run: "PayoutRun", target: Path, force: bool) -> None:
    existing = target / "run.json"
    if force or not existing.exists():
        return
    try:
        previous = json.loads(existing.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    current = json.loads(run.model_dump_json(include={"programs", "facts_sha256", "claims_sha256", "results"}))
    # Same programs and facts file, but other claims (or API records without a facts sha256)
    # are still another run: the results tell.
    if fingerprint(previous) != fingerprint(current) or previous.get("results") != current["results"]:
        raise OutputExistsError(f"{target} holds the output of a different run; choose another folder "
                                "or force the overwrite (--force)")


def payout_row(result: "PayoutResult") -> list[str]:
    places = result.details.get("places", 2)
    attainment = "" if result.attainment is None else f"{result.attainment.quantize(ATTAINMENT_PLACES):f}"
    return [result.partner_id, result.period, result.program_id,
            "" if result.program_version is None else str(result.program_version), result.status,
            result.tier or "", attainment, plain_amount(result.total, places), result.currency or ""]


def _line_rows(results: Iterable["PayoutResult"]) -> Iterable[list[str]]:
    for result in results:
        places = result.details.get("places", 2)
        head = (result.partner_id, result.period, result.program_id)
        for line in result.lines:
            yield line_row(head, line, places)


def line_row(head: tuple[str, str, str], line: "PayoutLine", places: int) -> list[str]:
    """One ``lines.csv`` row: ``head`` is the result's partner_id, period and program_id."""
    basis, rate = line.basis, line.rate
    return [head[0], head[1], head[2], str(line.n), line.kind, line.rule_id, line.description,
            "" if basis is None else plain_amount(basis, places), "" if rate is None else f"{rate.normalize():f}",
            plain_amount(line.amount, places), line.formula]


def _csv_text(columns: tuple[str, ...], rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_atomic(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

