"""A run in memory: :class:`PayoutRun`, every result of one run in output order with its totals.

Above the output layer, so that ``run.write(folder)`` (SPEC, Python API) writes
it there; the result models it holds (:mod:`incentives.results`) stay data that
writes nothing.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .output.files import write_run
from .results import PayoutResult, ProgramInfo


class PayoutRun(BaseModel):
    """The results of one run, in output order, with run-level totals."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    created_at: str
    engine_version: str
    programs: list[ProgramInfo]
    facts_sha256: str | None = None
    claims_sha256: str | None = None
    results: list[PayoutResult]
    totals: dict[str, Decimal]
    counts: dict[str, dict[str, int]]
    notes: list[str] = Field(default_factory=list)

    def by_partner(self, partner_id: str) -> list[PayoutResult]:
        return [result for result in self.results if result.partner_id == partner_id]

    def write(self, folder: str | Path, *, force: bool = False) -> None:
        """``payouts.csv``, ``lines.csv`` and ``run.json`` into ``folder``: :func:`incentives.write_run`."""
        write_run(self, folder, force=force)
