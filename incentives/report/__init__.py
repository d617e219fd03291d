"""The HTML report of a run folder (``incentives report``): figures by columns, charts, one offline page.

:func:`write_report` reads the folder (:mod:`.run_folder`), computes the figures
(:mod:`.figures`), renders the charts (:mod:`.charts`) and the page
(:mod:`.page`), and writes the file whole (:func:`.html.write_page`: a failed
report leaves nothing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .charts import charts_of
from .figures import figures_of
from .html import write_page
from .page import report_page
from .run_folder import read_run_folder

__all__ = ["ReportSummary", "write_report"]


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_report` wrote: the file, its size, how many results and charts it covers."""

    path: Path
    bytes: int
    results: int
    charts: int


def write_report(run_folder: str | os.PathLike[str], out: str | os.PathLike[str]) -> ReportSummary:
    """The report of the run in ``run_folder``, written to ``out`` (HTML). Raises
    :class:`~incentives.errors.InputError` for a folder that is not a run (nothing is written)."""
    run = read_run_folder(run_folder)
    figures = figures_of(run)
    charts = charts_of(figures)
    written = write_page(Path(out), report_page(run, figures, charts))
    return ReportSummary(Path(out), written, run.result_count, len(charts))
