"""``incentives compare``: two program sets on the same facts — argument parsing and the summary table, nothing
else (:mod:`incentives.compare` runs and compares)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import UsageError

_DESCRIPTION = """\
What a program change would cost, and who wins or loses: run two program sets
(OLD, the first --programs; NEW, the second) on the same facts and claims,
then compare them partner by partner. DIR gets old/ and new/ (each a run
folder), compare.csv (partner, period, program, old, new, delta, old and new
tier and status), compare_summary.csv (per program: old and new cost, the
change, results better off, worse off, unchanged) and tier_moves.csv.
--scale FACT=FACTOR multiplies a fact of every record first (growth before a
launch: --scale revenue=1.10).
"""

_EPILOG = """\
example:
  incentives compare --programs programs/v1 --programs programs/v2 \\
                     --facts examples/facts_2027Q1.csv --scale revenue=1.05 --out what_if
"""

EXIT_OK = 0


def add_command(commands: Any) -> None:
    """The ``compare`` command, under the main parser's ``commands``."""
    compare = commands.add_parser("compare", help="run two program sets on the same facts and compare the payouts",
                                  description=_DESCRIPTION, epilog=_EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--programs", action="append", required=True, metavar="DIR",
                         help="a program folder or file: give it twice, the old set then the new one")
    compare.add_argument("--facts", required=True, metavar="FILE", help="the facts both sets are run on")
    compare.add_argument("--claims", metavar="FILE", help="MDF claims, if any MDF program is compared")
    compare.add_argument("--period", metavar="P", help="compare only this period's records")
    compare.add_argument("--scale", action="append", default=[], metavar="FACT=FACTOR",
                         help="multiply FACT of every record by FACTOR (a decimal) first; repeatable")
    compare.add_argument("--out", required=True, metavar="DIR", help="the folder to write the comparison into")
    compare.add_argument("--force", action="store_true", help="overwrite the runs of an earlier comparison in DIR")
    compare.add_argument("--report", action="store_true",
                         help="also write DIR/compare.html: the comparison as one offline HTML page (charts, the "
                              "results that gain and lose most, the runs' inputs)")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .compare import SCALE, compare_programs, scale_factors
    from .loading import load_programs
    from .money import format_amount
    from .terminal import console

    if len(args.programs) != 2:
        raise UsageError(f"give --programs twice (the old set, then the new one), not {len(args.programs)} time"
                         f"{'s' if len(args.programs) != 1 else ''}")
    factors = scale_factors(args.scale)
    old, new = (load_programs(path) for path in args.programs)
    compared = compare_programs(old, new, args.facts, args.claims, args.out, scale=factors, period=args.period,
                                force=args.force)
    table = Table(title=f"{args.programs[0]} → {args.programs[1]}"
                  + (f" (scaled: {', '.join(args.scale)})" if args.scale else ""))
    for header in ("program", "old cost", "new cost", "change", "better", "worse", "unchanged"):
        table.add_column(header, justify="left" if header == "program" else "right")
    for program, currency, places, old_cost, new_cost, change, better, worse, same in \
            compared.by_program.iter_rows():
        def shown(units: int) -> str:
            from decimal import Decimal
            return f"{format_amount(Decimal(units).scaleb(-SCALE), places)} {currency or ''}".strip()
        table.add_row(program, shown(old_cost), shown(new_cost), ("+" if change > 0 else "") + shown(change),
                      f"{better:,}", f"{worse:,}", f"{same:,}")
    out = console(sys.stdout)
    out.print(table)
    for moves in _tier_move_tables(compared.tier_moves):
        out.print(moves)
    for note in compared.notes:
        out.print(f"note: {note}", markup=False, highlight=False)
    written = "compare.csv, compare_summary.csv, tier_moves.csv"
    if args.report:
        from .report.comparison import write_comparison_report

        write_comparison_report(compared, compared.folder / "compare.html", old=args.programs[0], new=args.programs[1],
                                scaled=args.scale)
        written += " and compare.html"
    else:
        written = written.replace(", tier_moves.csv", " and tier_moves.csv")
    out.print(f"{compared.rows:,} results compared; {written} written to {args.out}", markup=False, highlight=False)
    return EXIT_OK


def _tier_move_tables(tier_moves: Any) -> list[Any]:
    """A matrix per program where some result changes tier: old tiers down, new tiers across, in tier order."""
    from rich.table import Table

    tables = []
    for (program,), moves in tier_moves.group_by("program_id", maintain_order=True):
        rows = list(moves.iter_rows())
        if all(old_tier == new_tier for _, old_tier, new_tier, _ in rows):
            continue
        olds = list(dict.fromkeys(old_tier or "(none)" for _, old_tier, _, _ in rows))
        news = list(dict.fromkeys(new_tier or "(none)" for _, _, new_tier, _ in rows))
        counts = {(old_tier or "(none)", new_tier or "(none)"): count for _, old_tier, new_tier, count in rows}
        table = Table(title=f"{program}: tier moves (old ↓, new →)")
        table.add_column("")
        for tier in news:
            table.add_column(tier, justify="right")
        for old_tier in olds:
            table.add_row(old_tier, *(f"{counts[old_tier, tier]:,}" if (old_tier, tier) in counts else ""
                                      for tier in news))
        tables.append(table)
    return tables
