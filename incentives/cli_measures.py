"""``incentives measures``: the measures files of a programs folder computed from transaction files into a
facts file — argument parsing and the summary, nothing else (:mod:`incentives.measures` computes)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, UsageError

if TYPE_CHECKING:
    from .loading import ProgramSet
    from .measures.compute import MeasuredFacts

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
    measures.add_argument("--out", metavar="FILE",
                          help="the facts file to write (CSV); rejected transactions go beside it")
    measures.add_argument("--transactions-of", metavar="PARTNER_ID",
                          help="instead of the facts: list this partner's transactions as CSV (each row's number "
                               "in its file, its period, the aggregations it counts in, why it was rejected if it "
                               "was, and its cells)")
    measures.set_defaults(handler=_measures)


def add_transactions_option(parser: argparse.ArgumentParser, *, required: bool = False,
                            help: str = "a transaction file (.csv or .parquet) for the measures files whose source "
                                        "is NAME; repeat for several sources") -> None:
    parser.add_argument("--transactions", action="append", default=[], required=required, metavar="NAME=FILE",
                        help=help)


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


def _transactions_of(args: argparse.Namespace, loaded: "ProgramSet") -> int:
    """A partner's transactions, as CSV on standard output: one table per measures file whose source is given
    (with several, each after a ``# <measures id>: <file>`` line and a blank line between)."""
    from .measures.compute import partner_transactions

    files = transaction_files(args.transactions)
    listed = [item for item in loaded.measures if item.measures.source in files]
    if not listed:
        raise UsageError(f"no measures file reads the source {', '.join(files)}")
    for at, item in enumerate(listed):
        rows = partner_transactions(item.measures, files[item.measures.source], args.transactions_of.strip())
        if len(listed) > 1:
            sys.stdout.write(("\n" if at else "") + f"# {item.measures.id}: {files[item.measures.source]}\n")
        sys.stdout.write(rows.write_csv())
    return EXIT_OK


def explained_measures(args: argparse.Namespace, programs: "ProgramSet", measured: "MeasuredFacts",
                       results: list[Any]) -> str:
    """``explain``'s account of the measures the explained results read: for each period shown and each earlier
    one a ``prior.`` or ``year_ago.`` read, and each measures file, each measure's value, how it is computed,
    and how many of the partner's transactions it covers; then the command that lists them."""
    from .measures.compute import COUNTED_IN, IN_PERIOD, partner_transactions
    from .measures.model import Aggregation

    read = _measures_read(programs, results)
    files = transaction_files(args.transactions)
    computed = measured.computed
    parts = []
    for loaded in programs.measures:
        measures = loaded.measures
        listing = None
        for period, names in read.items():
            used = [name for name in measures.measures if name in names]
            for name in used:  # and what the derived measures read, back to the aggregations
                measure = measures.measures[name]
                if not isinstance(measure, Aggregation):
                    used += [other for other in measure.names if other in measures.measures and other not in used]
            if not used:
                continue
            if listing is None:
                listing = partner_transactions(measures, files[measures.source], args.partner)
            values = computed.cells(args.partner, period)
            in_period = [counted.split(";") for counted, at in zip(listing[COUNTED_IN], listing[IN_PERIOD])
                         if at == period and counted]
            width = max(len(name) for name in used)
            lines = [f"measures of {args.partner} in {period}: {measures.id} ({loaded.file}) over "
                     f"{files[measures.source]}"]
            for name, measure in measures.measures.items():
                if name not in used:
                    continue
                value = values.get(name) or "(no value)"
                if isinstance(measure, Aggregation):
                    covered = sum(name in counted for counted in in_period)
                    how = f"{_aggregation_text(measure)}: {covered} transaction{'' if covered == 1 else 's'}"
                else:
                    how = f"= {measure.text}"
                lines.append(f"  {name:<{width}} = {value:>14}   {how}")
            parts.append("\n".join(lines))
    sources = " ".join(f"--transactions {source}={file}" for source, file in files.items())
    parts.append(f"list them: incentives measures --programs {args.programs} {sources} "
                 f"--transactions-of {args.partner}")
    return "\n\n".join(parts)


def _measures_read(programs: "ProgramSet", results: list[Any]) -> dict[str, set[str]]:
    """The facts the programs of ``results`` read, by the period they read them of: each result's own, and the
    earlier ones its ``prior.`` and ``year_ago.`` names read; the results' periods first."""
    from .fact_check import facts_read
    from .history import history_names, reads_for
    from .loading import expressions_of
    from .periods import parse_period

    versions = {(loaded.program.id, loaded.program.version): loaded.program for loaded in programs}
    read: dict[str, set[str]] = {}
    earlier: dict[str, set[str]] = {}
    for result in results:
        program = versions.get((result.program_id, result.program_version))
        if program is None:  # an error before any version was chosen
            continue
        read.setdefault(result.period, set()).update(name for _, name in facts_read(program))
        names = {name for _, expression in expressions_of(program) for name in expression.names}
        period = parse_period(result.period, program.fiscal_year_start)
        for _, label, fact in reads_for(history_names(names), period):
            earlier.setdefault(label, set()).add(fact)
    for label in sorted(earlier, reverse=True):
        read.setdefault(label, set()).update(earlier[label])
    return read


def _aggregation_text(aggregation: Any) -> str:
    """``sum of amount where stage == 'won'``, ``count``, ``count of distinct customer_id``..."""
    function = aggregation.function
    text = {"count": "count", "count_distinct": f"count of distinct {aggregation.column}"}.get(
        function, f"{function} of {aggregation.column}")
    return text + (f" where {aggregation.where.text}" if aggregation.where is not None else "")


def measured_of(options: list[str], programs: "ProgramSet", programs_path: str,
                rejected_folder: str | Path | None) -> "MeasuredFacts | None":
    """The facts the measures files of ``programs`` compute over the ``--transactions`` ``options`` (``None``
    without any), each source's rejected rows written into ``rejected_folder``."""
    if not options:
        return None
    from .measures.compute import measure_facts

    if not programs.measures:
        raise UsageError(f"--transactions: {programs_path} has no measures file (kind: measures)")
    files = transaction_files(options)
    unused = sorted(set(files) - {item.measures.source for item in programs.measures})
    if unused:
        raise UsageError(f"no measures file reads the source {', '.join(unused)}")
    return measure_facts(programs.measures, files, rejected_folder=rejected_folder)


def _measures(args: argparse.Namespace) -> int:
    from .loading import load_programs

    loaded = load_programs(args.programs)
    if not loaded.measures:
        raise UsageError(f"{args.programs} has no measures file (kind: measures)")
    if args.transactions_of is not None:
        if args.out is not None:
            raise UsageError("--transactions-of lists a partner's transactions instead of writing the facts: "
                             "give --out or --transactions-of, not both")
        return _transactions_of(args, loaded)
    if args.out is None:
        raise UsageError("give --out FILE (the facts file to write), or --transactions-of PARTNER_ID")
    out = Path(args.out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("no such folder", str(folder))
    # everything is computed into a scratch folder beside the facts file, then moved into place
    with tempfile.TemporaryDirectory(prefix=".incentives-measures-", dir=folder) as scratch:
        facts = measured_of(args.transactions, loaded, args.programs, scratch)
        assert facts is not None  # --transactions is required
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
