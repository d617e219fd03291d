"""A run folder as the report reads it: ``run.json``'s metadata, and ``results.jsonl`` read by columns.

Any folder ``incentives run`` or ``Engine.run_to`` wrote (``run.json``,
``results.jsonl``, ``payouts.csv``, ``lines.csv``) is a run folder, whichever
engine computed it. What is not one is refused with one line naming the folder
(:class:`~incentives.errors.InputError`): no ``run.json``, a ``run.json`` that
is not a run's, a run whose results file is missing or holds another number of
results than ``run.json`` says (an unfinished or damaged run), a run of a newer
library version (its files may mean what this version does not know), a run
written before ``results.jsonl`` existed (its results inside ``run.json``: run
it again).

The results are never loaded as Python objects: ``results.jsonl`` is parsed by
polars a part at a time, only the fields the report reads kept, and every
amount is read exactly as Int128 minor units at :data:`SCALE` (the most places a
program may round to).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from packaging.version import InvalidVersion, Version

from ..errors import InputError
from ..money_by_columns import plain_units
from ..output.folder import RESULTS_FILE
from ..version import __version__

__all__ = ["SCALE", "RunFolder", "read_run_folder"]

#: The scale every amount of the report is read at: the most places a program rounds to (``rounding.places``).
SCALE = 8

#: How much of ``results.jsonl`` is parsed at a time.
_READ_CHUNK = 64 << 20
#: The fields of a result the report reads, as ``results.jsonl`` holds them.
_RESULT_FIELDS = {
    "partner_id": pl.String, "period": pl.String, "program_id": pl.String, "program_version": pl.Int64,
    "currency": pl.String, "status": pl.String, "tier": pl.String,
    "next_tier": pl.Struct({"name": pl.String, "gap": pl.String}),
    "attainment": pl.String, "total": pl.String,
    "reasons": pl.List(pl.Struct({"rule_id": pl.String, "description": pl.String})),
    "errors": pl.List(pl.String),
    "details": pl.Struct({"places": pl.Int64, "accrued": pl.String, "paid": pl.String}),
}


@dataclass(frozen=True)
class RunFolder:
    """A run folder: ``run`` is its ``run.json`` (the results aside), ``results`` its results by columns (lazy):
    ``partner_id``, ``period``, ``program_id``, ``program_version``, ``currency``, ``status``, ``tier``,
    ``next_tier`` and ``next_gap`` (the gap's units at :data:`SCALE`), ``attainment`` (units at :data:`SCALE`),
    ``total``, ``accrued`` and ``paid`` (an MDF result's, else null) as units at :data:`SCALE`, ``places``,
    ``reason`` (the first failed eligibility rule: its id and description) and ``error`` (the first error)."""

    path: Path
    run: dict[str, Any]
    results: pl.LazyFrame

    @property
    def result_count(self) -> int:
        return int(self.run["results_count"])


def read_run_folder(folder: str | Path) -> RunFolder:
    """The run written into ``folder``. Raises :class:`InputError` (one line, naming the folder) for a folder
    that is not a whole run of this library's version or an older one."""
    path = Path(folder)
    shown = str(folder)
    if not path.is_dir():
        raise InputError("no such folder" if not path.exists() else "not a folder", shown)
    run_json = path / "run.json"
    if not run_json.is_file():
        found = sorted(entry.name for entry in path.iterdir())
        what = f"it holds {', '.join(found[:5])}{' ...' if len(found) > 5 else ''}" if found else "it is empty"
        raise InputError(f"not a run folder: no run.json ({what}); give the folder `incentives run --out` wrote",
                         shown)
    try:
        run = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"run.json cannot be read: {error}", shown) from None
    if not isinstance(run, dict) or not isinstance(run.get("programs"), list) or "engine_version" not in run:
        raise InputError("run.json is not a run's (no programs or engine_version)", shown)
    _check_version(run["engine_version"], shown)
    if "results" in run:
        raise InputError("a run written before results.jsonl existed (its results are inside run.json): compute "
                         "it again with this version", shown)
    if run.get("results_file") != RESULTS_FILE or not isinstance(run.get("results_count"), int):
        raise InputError("run.json names no results file: not a run's", shown)
    results = path / RESULTS_FILE
    if not results.is_file():
        raise InputError(f"an unfinished run: run.json but no {RESULTS_FILE}", shown)
    lines = _line_count(results)
    if lines != run["results_count"]:
        raise InputError(f"{RESULTS_FILE} holds {lines:,} results where run.json says {run['results_count']:,}: "
                         "an unfinished or damaged run", shown)
    return RunFolder(path, run, _read_results(results).lazy())


def _check_version(version: object, shown: str) -> None:
    try:
        written = Version(str(version))
    except InvalidVersion:
        raise InputError(f"run.json's engine_version {version!r} is not a version", shown) from None
    if written > Version(__version__):
        raise InputError(f"a run of incentives {written}, newer than this one ({__version__}): upgrade incentives "
                         "to report on it", shown)


def _line_count(path: Path) -> int:
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            lines += chunk.count(b"\n")
    return lines


def _read_results(results: Path) -> pl.DataFrame:
    """The fields the report reads of every result, typed: ``results.jsonl`` parsed :data:`_READ_CHUNK` bytes at a
    time (whole lines), each part reduced to those columns before the next is read. (polars' own ``scan_ndjson``
    of a 2.4 GB file peaked at 3.1 GB for a 0.4 GB frame.)"""
    frames = []
    with open(results, "rb") as handle:
        rest = b""
        while chunk := handle.read(_READ_CHUNK):
            chunk = rest + chunk
            cut = chunk.rfind(b"\n") + 1
            rest = chunk[cut:]
            if cut:
                frames.append(_typed(pl.read_ndjson(io.BytesIO(chunk[:cut]), schema=_RESULT_FIELDS)))
        if rest.strip():
            frames.append(_typed(pl.read_ndjson(io.BytesIO(rest), schema=_RESULT_FIELDS)))
    return pl.concat(frames) if frames else _typed(pl.DataFrame(schema=_RESULT_FIELDS))


def _typed(results: pl.DataFrame) -> pl.DataFrame:
    units = {name: plain_units(pl.col(name), SCALE) for name in ("total", "attainment")}
    # the texts that repeat (a few programs, tiers, reasons) held as categories: a run's results are millions
    repeated = ("period", "program_id", "currency", "status", "tier")
    return results.select(
        "partner_id", *(pl.col(name).cast(pl.Categorical) for name in repeated[:3]), "program_version",
        *(pl.col(name).cast(pl.Categorical) for name in repeated[3:]),
        pl.col("next_tier").struct.field("name").cast(pl.Categorical).alias("next_tier"),
        plain_units(pl.col("next_tier").struct.field("gap"), SCALE).alias("next_gap"),
        units["attainment"].alias("attainment"), units["total"].alias("total"),
        plain_units(pl.col("details").struct.field("accrued"), SCALE).alias("accrued"),
        plain_units(pl.col("details").struct.field("paid"), SCALE).alias("paid"),
        pl.col("details").struct.field("places").fill_null(2).alias("places"),
        pl.col("reasons").list.first().struct.field("rule_id").cast(pl.Categorical).alias("reason"),
        pl.col("reasons").list.first().struct.field("description").cast(pl.Categorical).alias("reason_description"),
        pl.col("errors").list.first().alias("error"))
