"""The ``incentives`` command line: validate program files, run a payout, explain a partner, print the schema.

Argument parsing, progress, tables and exit codes only; every number comes
from the library (:class:`incentives.Engine`, :class:`incentives.PayoutRun`).

Exit codes (SPEC "Command line"):

* 0 -- success;
* 1 -- an invalid program file, or a usage error (a bad option, an unknown
  partner or program, an output folder holding another run);
* 2 -- a facts or claims file that cannot be read (printed as ``file:line: message``);
* 3 -- the run completed and its files were written, but some partner results
  are ``error``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections import defaultdict
from contextlib import nullcontext
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

from .cli_compare import add_command as add_compare_command
from .cli_ledger import add_commands as add_ledger_commands
from .cli_ledger import ledger_location, ledger_option, open_ledger
from .cli_measures import add_command as add_measures_command
from .cli_report import add_command as add_report_command
from .cli_measures import add_transactions_option, explained_measures, measured_of, transaction_files
from .engine import RUN_ENGINES
from .errors import InputError, LedgerError, LedgerUsageError, ProgramError, UsageError
from .terminal import console
from .version import __version__

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_INPUT = 2
EXIT_RESULT_ERRORS = 3

_ERRORS_LISTED = 10
"""How many error results ``run`` lists on the terminal (all of them are in payouts.csv and results.jsonl)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits with 1 (the SPEC's code for usage), not argparse's 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


_MAIN_EPILOG = """\
exit codes:
  0  success
  1  a program file is invalid, or the command was used wrongly
  2  a facts or claims file cannot be read (file:line: message)
  3  the run finished and wrote its files, but some partners' results are errors

examples:
  incentives validate programs/
  incentives run --programs programs --facts examples/facts_2027Q1.csv \\
                 --claims examples/claims_2027Q1.csv --out out/2027-Q1
  incentives explain --programs programs --facts examples/facts_2027Q1.csv --partner P0001
  incentives measures --programs programs --transactions deals=examples/deals_2026_2027.csv --out deal_facts.csv
  incentives schema > program.schema.json

Run "incentives COMMAND --help" for the details of one command.
"""

_RUN_DESCRIPTION = """\
Compute one payout run: every partner record in the facts file against every
program in the programs folder, then write four files into the output folder:

  payouts.csv    one row per partner, period and program: status, tier, total
  lines.csv      every amount that makes up a total, with the formula behind it
  results.jsonl  every result in full (lines, reasons, errors, details), one
                 JSON object per line, in the order of payouts.csv
  run.json       the run id, program and facts checksums, totals per program,
                 counts per status and notes, and how many results there are

A summary table (partners, ok / ineligible / error counts, total paid and paid
by tier, per program) is printed when the run is done. The same inputs always
give the same files, apart from the run id and creation time in run.json.
"""

_RUN_EPILOG = """\
examples:
  # the quarterly payout on the bundled example
  incentives run --programs programs --facts examples/facts_2027Q1.csv \\
                 --claims examples/claims_2027Q1.csv --out out/2027-Q1

  # only the 2027-Q2 records of a file that holds several quarters
  incentives run --programs programs --facts facts_2027.csv --period 2027-Q2 --out out/2027-Q2

  # recompute into a folder that holds an earlier, different run
  incentives run --programs programs --facts facts.csv --out out/2027-Q1 --force

An output folder that already holds a run of different programs or facts is
not overwritten unless --force is given. Exit code 3 means the files were
written but some results are errors: look for status "error" in payouts.csv.
"""

_EXPLAIN_DESCRIPTION = """\
Show how one partner's payout was computed: the tier reached, the next tier and
how far away it is, every payout line with its formula, every eligibility rule
that failed and every bonus that did not fire with the values it saw, and
every rejected MDF claim with its reasons. The numbers are the ones "incentives run" writes for the same inputs.
"""

_EXPLAIN_EPILOG = """\
examples:
  incentives explain --programs programs --facts examples/facts_2027Q1.csv --partner P0001
  incentives explain --programs programs --facts examples/facts_2027Q1.csv \\
                     --claims examples/claims_2027Q1.csv --partner P0001 --program co_marketing_mdf
"""

_VALIDATE_DESCRIPTION = """\
Check program files without computing anything. Every problem is printed as
file:line:column: message, so it can be found in an editor; the exit code is 1
if there is any problem. Folders are searched for *.yaml and *.yml files.

With --facts FILE, every fact the programs read that the facts file does not
have (and no 'defaults' entry gives) is a problem too, at the place that reads
it, with the file's nearest column names. prior.X and year_ago.X read fact X;
metrics, used programs' results (partner_tier.tier) and this.X are not facts.
Only the header of a CSV file, or the first 100 records of a JSON Lines file,
is read; a file that cannot be read exits 2.
"""

_SCHEMA_DESCRIPTION = """\
Print the JSON Schema of the files of a programs folder: a program file, or a
measures file (kind: measures). Editors that understand JSON Schema (VS Code
with the YAML extension, JetBrains IDEs) use it to complete and check them as
they are typed.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="incentives",
        description="Channel-partner incentive and rebate programs: validate program files, compute "
                    "payouts from partner facts, and explain every number.",
        epilog=_MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"incentives {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate", help="check program files and report every problem with its line and column",
        description=_VALIDATE_DESCRIPTION, epilog="examples:\n  incentives validate programs/\n"
               "  incentives validate programs/ --facts examples/facts_2027Q1.csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    validate.add_argument("paths", nargs="+", metavar="PATH", help="a program file or a folder of them")
    validate.add_argument("--facts", metavar="FILE",
                          help="also check that this facts file (.csv or .jsonl; only its header or first "
                               "records are read) has every fact the programs read")
    add_transactions_option(validate, help="also check that this transaction file (.csv or .parquet; only its "
                                           "header is read) has every column the measures files of source NAME "
                                           "read; with --facts, their measures count as facts")
    validate.set_defaults(handler=_validate)

    run = commands.add_parser(
        "run", help="compute a payout run and write payouts.csv, lines.csv, results.jsonl and run.json",
        description=_RUN_DESCRIPTION, epilog=_RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_inputs(run)
    run.add_argument("--out", required=True, metavar="DIR",
                     help="output folder for payouts.csv, lines.csv, results.jsonl and run.json "
                          "(created if needed)")
    run.add_argument("--force", action="store_true",
                     help="overwrite an output folder that holds a run of other programs or facts")
    run.add_argument("--engine", choices=RUN_ENGINES, default="columnar",
                     help="columnar (the default): a CSV facts file computed by columns, each record the columns "
                          "cannot compute exactly per record; per-record: every record per record. Both write "
                          "the same files")
    run.set_defaults(handler=_run)

    explain = commands.add_parser(
        "explain", help="show how one partner's payout was computed, line by line",
        description=_EXPLAIN_DESCRIPTION, epilog=_EXPLAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_inputs(explain)
    explain.add_argument("--partner", required=True, metavar="ID", help="the partner_id to explain")
    explain.add_argument("--program", metavar="ID", help="only this program (default: every program)")
    explain.set_defaults(handler=_explain)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema of a program file (for editors)",
        description=_SCHEMA_DESCRIPTION, epilog="example:\n  incentives schema > program.schema.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    schema.set_defaults(handler=_schema)
    add_measures_command(commands)
    add_report_command(commands)
    add_compare_command(commands)
    add_ledger_commands(commands, ledger_option)
    return parser


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--programs", required=True, metavar="DIR",
                        help="folder of program files (*.yaml), or one program file")
    parser.add_argument("--facts", metavar="FILE",
                        help="partner facts: .csv with a header row, or .jsonl; one record per partner and period "
                             "(required unless --transactions gives them all)")
    add_transactions_option(parser, help="a transaction file (.csv or .parquet) for the measures files whose "
                                         "source is NAME: their measures join the facts records by partner and "
                                         "period; repeat for several sources")
    parser.add_argument("--claims", metavar="FILE", help="MDF claims (.csv or .jsonl), if any MDF program is run")
    parser.add_argument("--period", metavar="P",
                        help="compute only records of this period, e.g. 2027-Q1, 2027-H2, 2027 or 2027-07 "
                             "(default: every record in the file); records of other periods are the "
                             "history that prior.X and year_ago.X read")
    parser.add_argument("--backend", choices=("compiled", "durable"), default="compiled",
                        help="rule engine: compiled (default) or durable (durable_rules); same results")
    parser.add_argument("--ledger", metavar="URL",
                        help="read MDF funds' opening balances and the claims already paid from this ledger "
                             "(a SQLite file or a postgresql+psycopg:// URL; default: $INCENTIVES_LEDGER, if set)"
                             + (", and record the run in it as a draft" if parser.prog.endswith(" run") else ""))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``incentives`` console script and of ``python -m incentives``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else EXIT_INVALID)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"incentives {args.command}: {error}", file=sys.stderr)
        return EXIT_INVALID
    except ProgramError as error:
        _print_problems(error, sys.stderr)
        return EXIT_INVALID
    except InputError as error:
        print(str(error), file=sys.stderr)
        return EXIT_INPUT
    except LedgerError as error:
        print(f"incentives {args.command}: {error}", file=sys.stderr)
        return EXIT_INPUT
    except LedgerUsageError as error:
        print(f"incentives {args.command}: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`incentives schema | head`): stop quietly, without a traceback at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INVALID


# --- validate ------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    from .loading import load_programs

    try:
        programs = load_programs(args.paths)
    except ProgramError as error:
        _print_problems(error, sys.stdout)
        return EXIT_INVALID
    from .fact_check import measured_here, missing_columns, missing_facts

    files_of = transaction_files(args.transactions)
    unused = sorted(set(files_of) - {loaded.measures.source for loaded in programs.measures})
    if unused:
        raise UsageError(f"no measures file reads the source {', '.join(unused)}")
    problems = missing_columns(programs.measures, {source: (file, _transaction_columns(file))
                                                   for source, file in files_of.items()})
    if args.facts is not None:
        from .inputs import fact_columns

        columns = fact_columns(args.facts)
        measured, clashes = measured_here(programs.measures, columns, args.facts, files_of)
        problems += clashes + missing_facts(programs, [*columns, *measured], args.facts)
    if problems:
        _print_problems(ProgramError(problems), sys.stdout)
        return EXIT_INVALID
    files = {loaded.file for loaded in programs}
    checked = "".join(f"; {file} has every column its measures read" for file in files_of.values())
    if args.facts is not None:
        checked += f"; {args.facts} and the measures have every fact they read" if files_of else \
            f"; {args.facts} has every fact they read"
    measures = _count(len(programs.measures), "measures file")
    if not files:
        print(f"{measures} valid{checked}")
        return EXIT_OK
    measures = f" and {measures}" if programs.measures else ""
    print(f"{len(files)} program file{'s' if len(files) != 1 else ''}{measures} valid "
          f"({_count(len(programs.ids), 'program')}, {_count(len(programs), 'version')}){checked}")
    return EXIT_OK


def _transaction_columns(file: str) -> list[str]:
    from .measures.transactions import transaction_columns

    return transaction_columns(file, file)


def _print_problems(error: ProgramError, stream: TextIO) -> None:
    for problem in error.problems:
        print(str(problem), file=stream)
    files = {problem.file for problem in error.problems}
    print(f"{_count(len(error.problems), 'problem')} in {_count(len(files), 'file')}", file=sys.stderr)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- schema --------------------------------------------------------------------------


def _schema(args: argparse.Namespace) -> int:
    from .measures.model import MeasuresFile
    from .models import Program

    # one schema for every file of a programs folder: a program, or a measures file (kind: measures)
    definitions: dict[str, Any] = {}
    for model in (Program, MeasuresFile):
        schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        definitions.update(schema.pop("$defs", {}))
        definitions[model.__name__] = schema
    print(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema",
                      "title": "incentives program or measures file",
                      "oneOf": [{"$ref": "#/$defs/Program"}, {"$ref": "#/$defs/MeasuresFile"}],
                      "$defs": definitions}, indent=2, ensure_ascii=False))
    return EXIT_OK


# --- run -----------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from .output.folder import OutputExistsError

    programs, engine = _engine(args)
    with engine, tempfile.TemporaryDirectory(prefix="incentives-measures-") as scratch:
        measured = _measured(args, programs, scratch)  # rejected transactions into scratch, then copied to the run
        sha256, physical_lines = _digest(args.facts) if args.facts else (None, 1)
        claims_sha256 = _digest(args.claims)[0] if args.claims else None

        # The engine reads the file itself (by columns, a block of partners at a time); with --period it
        # computes only that period's records, and its notes count those of other periods.
        def notes(evaluated: int) -> list[str]:
            if evaluated:
                return []
            if args.period is None:
                return [f"the facts file {args.facts} has no records" if args.facts else "no records"]
            return [f"no facts records for period {args.period}"]

        with _progress(physical_lines - 1) as advance:
            done = 0

            def progressed(count: int) -> None:
                nonlocal done
                for _ in range(count - done):
                    advance()
                done = max(done, count)

            try:
                # the claims file too: a CSV one is read by columns (read into Claim objects first, the 1M
                # benchmark's claims took 11 s more)
                run = engine.run_to(args.out, args.facts, args.claims or (), facts_sha256=sha256,
                                    claims_sha256=claims_sha256,
                                    force=args.force, progress=progressed, notes=notes, period=args.period,
                                    engine=args.engine, measured=measured)
            except OutputExistsError as error:
                raise UsageError(str(error)) from None
            except OSError as error:
                raise UsageError(f"cannot write to {args.out}: {error.strerror or error}") from None

    out = console(sys.stdout)
    out.print(f"Payout run {', '.join(run.periods) or '(no records)'}", markup=False)
    out.print(_summary_table(run, programs))
    for note in run.notes:
        out.print(f"note: {note}", markup=False, highlight=False)
    for reason, records in run.per_record.items():
        out.print(f"engine: {_count(records, 'record')} computed per record: {reason}", markup=False,
                  highlight=False)
    out.print(f"{_count(run.records, 'facts record')} and {_count(run.claims, 'claim')} computed; "
              f"payouts.csv, lines.csv, results.jsonl and run.json written to {args.out} (run {run.run_id})",
              markup=False, highlight=False)
    if engine.ledger is not None:
        out.print(f"recorded in the ledger as a draft; post it with: incentives ledger post {run.run_id}",
                  markup=False, highlight=False)
    if run.errors:
        errors = run.errors
        print(f"{_count(errors, 'result')} {'is an error' if errors == 1 else 'are errors'} "
              f"(status \"error\" in payouts.csv):", file=sys.stderr)
        for partner_id, period, program_id, messages in run.first_errors[:_ERRORS_LISTED]:
            print(f"  {partner_id or '(no partner_id)'} {period or '(no period)'} "
                  f"{program_id}: {'; '.join(messages)}", file=sys.stderr)
        if errors > _ERRORS_LISTED:
            print(f"  ... and {errors - _ERRORS_LISTED} more", file=sys.stderr)
        return EXIT_RESULT_ERRORS
    return EXIT_OK


class _Stats:
    __slots__ = ("kept", "skipped")

    def __init__(self) -> None:
        self.kept = 0
        self.skipped = 0


def _records(facts: str, period: str | None, stats: _Stats, advance: Callable[[], None]) -> Iterator[Any]:
    """The facts file's records, streamed; with ``--period`` only that period's.

    A record without a period is kept even when filtering: it cannot be placed
    in a period, so it becomes an error row instead of vanishing.
    """
    from .inputs import read_facts

    for row in read_facts(facts):
        advance()
        if period is not None and row.period and row.period != period:
            stats.skipped += 1
            continue
        stats.kept += 1
        yield row


def _claims(path: str | None, period: str | None) -> list[Any]:
    if path is None:
        return []
    from .inputs import read_claims

    claims = read_claims(path)
    if period is not None:
        claims = [claim for claim in claims if not claim.period or claim.period == period]
    return claims


def _engine(args: argparse.Namespace) -> tuple[Any, Any]:
    from .engine import Engine
    from .loading import load_programs
    from .periods import PeriodError, parse_period

    if args.period is not None:
        try:
            parse_period(args.period)
        except PeriodError as error:
            raise UsageError(f"--period: {error}") from None
    programs = load_programs(args.programs)
    location = ledger_location(args)
    ledger = open_ledger(location) if location is not None else None
    try:
        engine = Engine(programs, backend=args.backend, ledger=ledger)
    except ImportError as error:
        raise UsageError(f"the {args.backend} backend is not available here: {error}") from None
    return programs, engine


def _measured(args: argparse.Namespace, programs: Any, scratch: str | None) -> Any:
    """The measures of ``--transactions`` (``None`` without), rejected transactions written into ``scratch``."""
    if args.facts is None and not args.transactions:
        raise UsageError("give the facts: --facts FILE, --transactions NAME=FILE, or both")
    return measured_of(args.transactions, programs, args.programs, scratch)


def _digest(path: str) -> tuple[str, int]:
    """The file's sha256 and its number of physical lines (for the progress bar), in one pass."""
    digest = hashlib.sha256()
    lines = 0
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                lines += chunk.count(b"\n")
    except OSError as error:
        reason = "no such file" if isinstance(error, FileNotFoundError) else \
            f"cannot read the file: {error.strerror or error}"
        raise InputError(reason, path) from None
    return digest.hexdigest(), lines


def _progress(total: int) -> Any:
    """A context giving an ``advance()`` callable: a rich progress bar on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        return nullcontext(lambda: None)
    return _TerminalProgress(max(total, 1))


class _TerminalProgress:
    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("computing payouts"), BarColumn(), MofNCompleteColumn(),
                                  TimeRemainingColumn(), console=console(sys.stderr), transient=True)
        self._task = self._progress.add_task("records", total=total)
        self._step = max(1, total // 500)
        self._seen = 0

    def __enter__(self) -> Callable[[], None]:
        self._progress.start()
        return self._advance

    def _advance(self) -> None:
        self._seen += 1
        if self._seen % self._step == 0:
            self._progress.update(self._task, completed=self._seen)

    def __exit__(self, *exc_info: object) -> None:
        self._progress.update(self._task, completed=self._seen)
        self._progress.stop()


def _summary_table(run: Any, programs: Any) -> Any:
    """The per-program table of a run's summary (``Engine.run_to``'s :class:`RunSummary`)."""
    from rich.table import Table

    from .money import format_amount

    info = _program_info(programs)
    table = Table()
    for header, justify in (("program", "left"), ("version", "right"), ("partners", "right"), ("ok", "right"),
                            ("ineligible", "right"), ("error", "right"), ("total paid", "right"),
                            ("paid by tier", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    grand: dict[str, Decimal] = defaultdict(Decimal)
    for program_id in run.totals:
        places, currency, tier_order = info.get(program_id, (2, "", []))
        counts = run.counts.get(program_id, {})
        total = run.totals[program_id]
        grand[currency] += total
        versions = run.versions.get(program_id, [])
        table.add_row(program_id, ", ".join(f"v{v}" for v in versions) or "-",
                      str(run.partners.get(program_id, 0)), str(counts.get("ok", 0)),
                      str(counts.get("ineligible", 0)), str(counts.get("error", 0)),
                      f"{format_amount(total, places)} {currency}".strip(),
                      _by_tier(run.by_tier.get(program_id, {}), tier_order, places))
    table.add_section()
    for currency, total in sorted(grand.items()):
        table.add_row(f"all programs{' (' + currency + ')' if currency else ''}", "", "", "", "", "",
                      f"{format_amount(total, 2)} {currency}".strip(), "")
    return table


def _by_tier(paid: dict[str, tuple[int, Decimal]], tier_order: list[str], places: int) -> str:
    """``paid``: tier -> (ok results, total paid)."""
    if not paid:
        return "-"
    from .money import format_amount

    order = [tier for tier in tier_order if tier in paid] + sorted(set(paid) - set(tier_order))
    return "\n".join(f"{tier} ({paid[tier][0]}): {format_amount(paid[tier][1], places)}" for tier in order)


def _program_info(programs: Any) -> dict[str, tuple[int, str, list[str]]]:
    from .kinds import KINDS

    info: dict[str, tuple[int, str, list[str]]] = {}
    for loaded in programs:  # versions ascending: the newest version's settings win
        program = loaded.program
        tiers = KINDS[program.kind].tiers(program.section)
        previous = info.get(program.id, (0, "", []))[2]
        order = tiers + [tier for tier in previous if tier not in tiers]
        info[program.id] = (program.rounding.places, program.currency, order)
    return info


# --- explain -------------------------------------------------------------------------


def _explain(args: argparse.Namespace) -> int:
    programs, engine = _engine(args)
    if args.program is not None and args.program not in programs.ids:
        raise UsageError(f"no program '{args.program}' in {args.programs}; "
                         f"the programs are: {', '.join(programs.ids)}")
    # A budget scales every partner of a program by the same factor, so the
    # partner's numbers need the whole run; without a budget one partner's
    # records (and claims) are enough. (A program that `uses` a budgeted one
    # reads its total before the budget, so only the shown programs matter.)
    whole_run = any(loaded.program.budget is not None for loaded in programs
                    if args.program is None or loaded.program.id == args.program)
    measured = _measured(args, programs, None)
    computed = None
    if measured is not None:
        computed = measured.computed
        if not whole_run:  # the partner's measures are all a run of the partner's records joins
            computed = computed.of_partner(args.partner)
    claims = _claims(args.claims, args.period)
    if not whole_run:
        claims = [claim for claim in claims if claim.partner_id == args.partner]
    stats = _Stats()
    partner_rows: list[Any] = []  # kept to show the bonuses that did not fire

    def keep_partner_row(row: Any) -> Any:
        if row.partner_id == args.partner:
            partner_rows.append(row)
        return row

    with engine:
        # a program that reads earlier periods needs the partner's records of every period
        records: Iterable[Any] = _records(args.facts, None if engine.reads_history else args.period, stats,
                                          lambda: None) if args.facts else iter(())
        if computed is not None:
            from .joined_facts import joined_rows

            records = joined_rows(records, computed, facts=args.facts or "the facts")
        records = map(keep_partner_row, records)
        if not whole_run:
            records = (row for row in records if row.partner_id == args.partner)
        run = engine.run(records, claims, record=False, period=args.period if engine.reads_history else None)
        not_fired: dict[tuple[str, str], list[Any]] = {}
        for row in partner_rows:
            of_record = {result.program_id: result for result in run.results
                         if result.partner_id == args.partner and result.period == row.period}
            others = [other for other in partner_rows if other is not row]
            for program_id, reasons in engine.not_fired(row, of_record, others).items():
                not_fired[row.period, program_id] = reasons
    results = [result for result in run.results if result.partner_id == args.partner
               and (args.program is None or result.program_id == args.program)
               and (args.period is None or result.period == args.period)]
    if not results:
        where = f" for period {args.period}" if args.period else ""
        raise UsageError(f"no facts record for partner '{args.partner}'{where} in "
                         f"{' or '.join(filter(None, [args.facts, 'the transactions' if measured else '']))}")
    print("\n\n".join(result.explain(not_fired.get((result.period, result.program_id), ()))
                       for result in results))
    if measured is not None:
        print(f"\n{explained_measures(args, programs, measured, results)}")
    return EXIT_RESULT_ERRORS if any(result.status == "error" for result in results) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
