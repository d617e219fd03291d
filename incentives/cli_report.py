"""``incentives report``: a run folder's HTML report — argument parsing and the summary line, nothing else
(:mod:`incentives.report` computes and writes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_DESCRIPTION = """\
Write the HTML report of a run folder (what "incentives run --out" wrote): what
each program cost, partners by status and tier, payout by tier, the attainment
distribution, the partners closest to their next tier, the top partners, MDF
accrued against claimed, why partners were ineligible, errors, and the run's
inputs with their sha256. One file that opens offline: charts are SVG inside
it, no script, nothing fetched.
"""

_EPILOG = """\
examples:
  incentives report out/2027-Q1                     # writes report.html
  incentives report out/2027-Q1 --out q1_report.html
"""

#: The exit code of a written report (a folder that is not a run: the main command line's input error, 2).
EXIT_OK = 0


def add_command(commands: Any) -> None:
    """The ``report`` command, under the main parser's ``commands``."""
    report = commands.add_parser("report", help="write the HTML report of a run folder (charts, tables, inputs)",
                                 description=_DESCRIPTION, epilog=_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("run_folder", metavar="RUN_FOLDER", help="the folder `incentives run --out` wrote")
    report.add_argument("--out", default="report.html", metavar="FILE",
                        help="the HTML file to write (default: report.html in the current folder)")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    written = write_report(args.run_folder, Path(args.out))
    print(f"{written.path}: the report of {written.results:,} results, {written.charts} charts "
          f"({written.bytes / 1024:,.0f} KB)")
    return EXIT_OK
