"""``incentives ledger ...``: the ledger's commands — argument parsing, tables, CSV files, nothing else.

Every number comes from :class:`incentives.ledger.Ledger`. The exit codes are
the command line's: 0 done (a repeated post or void is done too, and says so),
1 an operation on something that does not exist or cannot be done (an unknown
run, an adjustment without a reason, an amount that is not a decimal), 2 a
ledger that cannot be reached or whose schema this library does not know
(the message names its URL, password hidden).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from decimal import Decimal
from typing import Any, Iterable, Sequence, TextIO

from .errors import LedgerUsageError

_LEDGER_HELP = ("the ledger: a SQLite file path or a postgresql+psycopg://user:password@host/db URL "
                "(default: $INCENTIVES_LEDGER, else incentives-ledger.db here)")

_RUN_HELP = "a run id, or the output folder of a run (its run.json names it)"

_LEDGER_DESCRIPTION = """\
The ledger remembers every period: runs recorded as drafts, posted results,
MDF funds, payments, adjustments, restatements and voids, as append-only
entries on each partner's payable and fund accounts. `incentives run --ledger`
records a run as a draft; `incentives ledger post RUN_ID` puts it on the books.
"""

_LEDGER_EPILOG = """\
examples:
  incentives ledger init                                   # creates incentives-ledger.db here
  incentives run --programs programs --facts examples/facts_2027Q1.csv \\
                 --claims examples/claims_2027Q1.csv --out out/2027-Q1 --ledger incentives-ledger.db
  incentives ledger post out/2027-Q1                       # a run id, or the run's output folder
  incentives ledger balances --period 2027-Q1 --partner P0001
  incentives ledger pay --period 2027-Q1
  incentives ledger export --period 2027-Q1 --out register-2027Q1.csv
"""


def add_commands(commands: Any, add_ledger_option: Any) -> None:
    """The ``ledger`` command and its subcommands, under the main parser's ``commands``."""
    ledger = commands.add_parser("ledger", help="the ledger: post runs, pay, adjust, void; balances and history",
                                 description=_LEDGER_DESCRIPTION, epilog=_LEDGER_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = ledger.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        add_ledger_option(parser)
        parser.set_defaults(handler=handler)
        return parser

    action("init", "create the ledger, or upgrade its schema to this version's", _init)
    post = action("post", "post a draft run: its entries in one transaction (a repeated post does nothing)", _post)
    post.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    pay = action("pay", "record the payment of what is payable for a period and every earlier one", _pay)
    pay.add_argument("--period", required=True, metavar="Q")
    pay.add_argument("--program", metavar="X", help="only this program")
    adjust = action("adjust", "post a manual adjustment to a partner's payable or fund account", _adjust)
    adjust.add_argument("--partner", required=True, metavar="P")
    adjust.add_argument("--program", required=True, metavar="X")
    adjust.add_argument("--period", required=True, metavar="Q")
    adjust.add_argument("--amount", required=True, metavar="A", help="a decimal amount; negative lowers the balance")
    adjust.add_argument("--reason", required=True, metavar="TEXT")
    adjust.add_argument("--account", choices=("payable", "fund"), default="payable")
    void = action("void", "reverse a posted run with opposite entries and release its claims", _void)
    void.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    void.add_argument("--reason", required=True, metavar="TEXT")
    balances = action("balances", "balances per partner, program and account", _balances)
    balances.add_argument("--period", metavar="Q", help="as of the end of this period (default: everything)")
    balances.add_argument("--partner", metavar="P")
    balances.add_argument("--program", metavar="X")
    balances.add_argument("--format", choices=("table", "csv"), default="table")
    history = action("history", "every entry of a partner, oldest first", _history)
    history.add_argument("--partner", required=True, metavar="P")
    history.add_argument("--program", metavar="X")
    action("runs", "the runs the ledger knows: draft, posted or voided", _runs)
    diff = action("diff", "every partner whose result differs between two runs: old, new, delta", _diff)
    diff.add_argument("run_a", metavar="RUN_A", help=_RUN_HELP)
    diff.add_argument("run_b", metavar="RUN_B", help=_RUN_HELP)
    export = action("export", "the accrual register of a period as CSV: opening, movements by kind, closing",
                    _export)
    export.add_argument("--period", required=True, metavar="Q")
    export.add_argument("--out", required=True, metavar="FILE.csv")


def ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger", metavar="URL", help=_LEDGER_HELP)


def open_ledger(location: str | None) -> Any:
    """The ledger at ``location`` (or ``$INCENTIVES_LEDGER``, or the default file)."""
    from .ledger import Ledger

    return Ledger(location)


# --- writing --------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    with open_ledger(args.ledger) as ledger:
        print(ledger.init().message)
    return 0


def _post(args: argparse.Namespace) -> int:
    return _done(lambda ledger: ledger.post(run_id(args.run_id)), args)


def _pay(args: argparse.Namespace) -> int:
    return _done(lambda ledger: ledger.pay(args.period, args.program), args)


def _void(args: argparse.Namespace) -> int:
    return _done(lambda ledger: ledger.void(run_id(args.run_id), args.reason), args)


def _adjust(args: argparse.Namespace) -> int:
    amount = decimal_amount(args.amount)
    return _done(lambda ledger: ledger.adjust(args.partner, args.program, args.period, amount, args.reason,
                                              args.account), args)


def run_id(given: str) -> str:
    """A run id, or the run id of the run.json in a run's output folder."""
    run_json = Path(given) / "run.json"
    if not run_json.is_file():
        return given
    try:
        return str(json.loads(run_json.read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LedgerUsageError(f"{run_json} is not a run's run.json: give the run id") from None


def _done(operation: Any, args: argparse.Namespace) -> int:
    with open_ledger(args.ledger) as ledger:
        print(operation(ledger).message)
    return 0


def decimal_amount(text: str) -> Decimal:
    """``--amount`` typed as a facts cell is (the same range of numbers), and refused unless it is a number."""
    from .inputs import type_text

    try:
        amount = type_text(text)
    except ValueError as error:
        raise LedgerUsageError(f"--amount: {error}") from None
    if type(amount) is not Decimal:
        raise LedgerUsageError(f"--amount must be a decimal number such as 250.00 or -75.5, not {text!r}")
    return amount


# --- reading --------------------------------------------------------------------------------


def _balances(args: argparse.Namespace) -> int:
    with open_ledger(args.ledger) as ledger:
        balances = ledger.balances(args.period, args.partner, args.program)
        places = _places(ledger)
    header = ("partner_id", "program_id", "account", "currency", "balance")
    rows = [(b.partner_id, b.program_id, b.account, b.currency, _amount(b.balance, places.get(b.program_id, 2)))
            for b in balances]
    if args.format == "csv":
        _write_csv(sys.stdout, header, rows, numbers={4})
    else:
        as_of = f" as of the end of {args.period}" if args.period else ""
        _table(f"Balances{as_of}", header, rows, right={4})
    return 0


def _history(args: argparse.Namespace) -> int:
    with open_ledger(args.ledger) as ledger:
        entries = ledger.history(args.partner, args.program)
        places = _places(ledger)
    if not entries:
        raise LedgerUsageError(f"the ledger has no entries for partner '{args.partner}'"
                               + (f" in program '{args.program}'" if args.program else ""))
    rows = [(str(e.entry_id), e.created_at, e.period, e.program_id, e.account, e.kind,
             _amount(e.amount, places.get(e.program_id, 2)), e.currency, e.run_id or "",
             e.reason + (f" (claim {e.claim_id})" if e.claim_id and e.claim_id not in e.reason else ""))
            for e in entries]
    _table(f"History of {args.partner}", ("entry", "at", "period", "program", "account", "kind", "amount",
                                          "currency", "run", "reason"), rows, right={0, 6})
    return 0


def _runs(args: argparse.Namespace) -> int:
    with open_ledger(args.ledger) as ledger:
        runs = ledger.runs()
    rows = [(run.run_id, run.state, ", ".join(run.periods), ", ".join(run.programs), str(run.results),
             run.recorded_at, run.posted_at or "", (run.voided_at or "") + (f" ({run.void_reason})"
                                                                             if run.void_reason else ""))
            for run in runs]
    _table("Runs", ("run", "state", "periods", "programs", "results", "recorded", "posted", "voided"), rows,
           right={4})
    return 0


def _diff(args: argparse.Namespace) -> int:
    with open_ledger(args.ledger) as ledger:
        run_a, run_b = run_id(args.run_a), run_id(args.run_b)
        changes = ledger.diff(run_a, run_b)
        places = _places(ledger)
    rows = []
    for change in changes:
        shown = places.get(change.program_id, 2)
        rows.append((change.partner_id, change.program_id, change.period,
                     "" if change.old is None else _amount(change.old, shown),
                     "" if change.new is None else _amount(change.new, shown), _amount(change.delta, shown),
                     _versions(change.old_version, change.new_version)))
    _table(f"Changes from run {run_a} to run {run_b} ({len(rows)} partner results)",
           ("partner_id", "program_id", "period", "old", "new", "delta", "version"), rows, right={3, 4, 5})
    return 0


def _versions(old: int | None, new: int | None) -> str:
    if old == new:
        return "" if old is None else f"v{old}"
    return f"{'-' if old is None else f'v{old}'} → {'-' if new is None else f'v{new}'}"


def _export(args: argparse.Namespace) -> int:
    from .ledger import ENTRY_KINDS

    with open_ledger(args.ledger) as ledger:
        rows = ledger.register(args.period)
        places = _places(ledger)
    header = ("partner_id", "program_id", "account", "currency", "opening", *ENTRY_KINDS, "closing")
    numbers = set(range(4, len(header)))
    cells = [tuple(row[name] if index not in numbers else _amount(row[name], places.get(row["program_id"], 2))
                   for index, name in enumerate(header)) for row in rows]
    try:
        with open(args.out, "w", encoding="utf-8", newline="") as handle:
            _write_csv(handle, header, cells, numbers=numbers)
    except OSError as error:
        raise LedgerUsageError(f"cannot write {args.out}: {error.strerror or error}") from None
    print(f"wrote the accrual register of {args.period} to {args.out}: {len(cells)} rows")
    return 0


# --- output -----------------------------------------------------------------------------------


def _places(ledger: Any) -> dict[str, int]:
    return {program_id: program.places for program_id, program in ledger.programs().items()}


def _amount(value: Decimal, places: int) -> str:
    from .money import plain_amount

    return plain_amount(value, places)


def _write_csv(stream: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]], numbers: set[int]) -> None:
    """Rows as CSV with the project's cell rules: text cells neutralised against spreadsheet formulas."""
    from .output.files import csv_cell, csv_line, csv_text

    stream.write(csv_line(header))
    for row in rows:
        stream.write(",".join(csv_cell(cell) if at in numbers else csv_text(cell) for at, cell in enumerate(row))
                     + "\n")


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    from rich.table import Table
    from rich.text import Text

    from .terminal import console

    table = Table(title=Text(title), title_justify="left")
    for at, name in enumerate(header):
        table.add_column(name, justify="right" if at in right else "left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # as text: an id holding [brackets] is not rich markup
    console(sys.stdout).print(table)
    if not rows:
        print("(nothing)")


def ledger_location(args: argparse.Namespace) -> str | None:
    """``--ledger``, else ``$INCENTIVES_LEDGER``, else None (no ledger) — for ``run`` and ``explain``."""
    return args.ledger or os.environ.get("INCENTIVES_LEDGER") or None
