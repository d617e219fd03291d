"""A run in memory: :class:`PayoutRun`, every result of one run in output order with its totals.

Above the output layer, so that ``run.write(folder)`` (SPEC, Python API) writes
it there and :func:`read_run` reads it back; the result models it holds
(:mod:`incentives.results`) stay data that writes nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .output.files import write_run
from .output.folder import RESULTS_FILE
from .results import MeasuresInfo, PayoutResult, ProgramInfo


class PayoutRun(BaseModel):
    """The results of one run, in output order, with run-level totals."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    created_at: str
    engine_version: str
    programs: list[ProgramInfo]
    facts_sha256: str | None = None
    claims_sha256: str | None = None
    #: the measures files whose facts the run read (``Engine.run(..., measured=...)``), with their sources
    measures: list[MeasuresInfo] = Field(default_factory=list)
    results: list[PayoutResult]
    totals: dict[str, Decimal]
    counts: dict[str, dict[str, int]]
    notes: list[str] = Field(default_factory=list)

    def by_partner(self, partner_id: str) -> list[PayoutResult]:
        return [result for result in self.results if result.partner_id == partner_id]

    def write(self, folder: str | Path, *, force: bool = False) -> None:
        """``payouts.csv``, ``lines.csv``, ``results.jsonl`` and ``run.json`` into ``folder``:
        :func:`incentives.write_run`."""
        write_run(self, folder, force=force)


def read_run(folder: str | Path) -> PayoutRun:
    """The run written into ``folder`` (by :func:`incentives.write_run` or ``Engine.run_to``), read back
    from its ``run.json`` and the results file it names: equal to the run that was written.

    A folder written before ``results.jsonl`` existed (the results inside ``run.json``) reads too.
    Raises ``ValueError`` (pydantic's ``ValidationError`` among them) for a file that is not a run's, and
    when the results file holds another number of results than ``run.json`` says.
    """
    folder = Path(folder)
    fields = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    if "results" in fields:  # an older version's run.json, its results inside
        return PayoutRun.model_validate(fields)
    results_file = fields.pop("results_file", None)
    count = fields.pop("results_count", None)
    if results_file != RESULTS_FILE or not isinstance(count, int):
        raise ValueError(f"{folder / 'run.json'} names no results file of a run ({RESULTS_FILE}, with a count)")
    with open(folder / results_file, "rb") as lines:
        results = [PayoutResult.model_validate_json(line) for line in lines]
    if len(results) != count:
        raise ValueError(f"{folder / results_file} holds {len(results)} results, run.json says {count}")
    return PayoutRun.model_validate({**fields, "results": results})
