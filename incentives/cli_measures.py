"""``incentives measures``: the measures files of a programs folder computed from transaction files into a
facts file — argument parsing and the summary, nothing else (:mod:`incentives.measures` computes)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import InputError, UsageError

_DESCRIPTION = """\
Compute partner facts from transaction files (deals, invoices, activities):
every measures file (kind: measures) in the programs folder aggregates the
rows of its source by partner and period. The facts file has partner_id,
period and one column per measure; "incentives run" reads it like any facts
file.

Transactions that cannot be used (an empty partner, a date that is not a day
of the calendar, an amount that is not a plain decimal) are counted for no
measure: they are written, with why, to rejected_transactions.csv beside the
facts file, the first ones are printed, and the exit code is 3.
"""

_EPILOG = """\
examples:
  incentives measures --programs programs --transactions deals=examples/deals_2026_2027.csv \\
                      --out facts_from_deals.csv
"""

#: The exit codes: those of the main command line.
EXIT_OK, EXIT_INVALID, EXIT_REJECTED = 0, 1, 3


def add_command(commands: Any) -> None:
    """The ``measures`` command, under the main parser's ``commands``."""
    measures = commands.add_parser(
        "measures", help="compute partner facts from transaction files (the measures files of a programs folder)",
        description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    measures.add_argument("--programs", required=True, metavar="DIR",
                          help="folder of program and measures files (*.yaml), or one measures file")
    add_transactions_option(measures, required=True)
    measures.add_argument("--out", required=True, metavar="FILE",
                          help="the facts file to write (CSV); rejected transactions go beside it")
    measures.set_defaults(handler=_measures)


def add_transactions_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument("--transactions", action="append", default=[], required=required, metavar="NAME=FILE",
                        help="a transaction file (.csv or .parquet) for the measures files whose source is NAME; "
                             "repeat for several sources")


def transaction_files(values: list[str]) -> dict[str, str]:
    """``--transactions NAME=FILE`` options as source name → file."""
    files: dict[str, str] = {}
    for value in values:
        name, equals, file = value.partition("=")
        if not equals or not name or not file:
            raise UsageError(f"--transactions takes NAME=FILE (the source a measures file names, and its file), "
                             f"not {value!r}")
        if name in files:
            raise UsageError(f"--transactions {name}= is given twice")
        files[name] = file
    return files


def _measures(args: argparse.Namespace) -> int:
    from .loading import load_programs
    from .measures.compute import measure_facts

    loaded = load_programs(args.programs)
    if not loaded.measures:
        raise UsageError(f"{args.programs} has no measures file (kind: measures)")
    files = transaction_files(args.transactions)
    unused = sorted(set(files) - {item.measures.source for item in loaded.measures})
    if unused:
        raise UsageError(f"no measures file reads the source {', '.join(unused)}")
    out = Path(args.out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("no such folder", str(folder))
    # everything is computed into a scratch folder beside the facts file, then moved into place
    with tempfile.TemporaryDirectory(prefix=".incentives-measures-", dir=folder) as scratch:
        facts = measure_facts([item.measures for item in loaded.measures], files, rejected_folder=scratch)
        facts.frame.write_csv(Path(scratch) / out.name)
        written = [out]
        for path in sorted(Path(scratch).iterdir()):
            if path.name != out.name:
                os.replace(path, folder / path.name)
                written.append(folder / path.name)
        os.replace(Path(scratch) / out.name, out)
    measures = len(facts.frame.columns) - 2
    transactions = sum(item.transactions for item in facts.files)
    print(f"{out}: {facts.frame.height:,} partner periods, {measures} measure{'s' if measures != 1 else ''} from "
          f"{transactions:,} transactions ({facts.rejected:,} rejected)")
    for note in facts.notes:
        print(f"  {note}")
    if facts.rejected:
        rejected = [str(path) for path in written[1:]]
        print(f"rejected transactions, with why: {', '.join(rejected)}", file=sys.stderr)
    return EXIT_REJECTED if facts.rejected else EXIT_OK
