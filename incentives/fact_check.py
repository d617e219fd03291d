"""The facts programs read that a facts file lacks (``incentives validate --facts``, SPEC "Checked against data").

Checked against the file's column names only, before any record is computed: a
fact a program reads that the file does not offer would make every partner an
error at run time.
"""

from __future__ import annotations

import difflib
from typing import Collection, Iterator, Mapping, Sequence

from .errors import Problem
from .inputs import PARTNER_ID, PERIOD
from .kinds import KINDS
from .loading import LoadedMeasures, LoadedProgram, ProgramSet, expressions_of
from .measures.transactions import columns_read
from .models import Program
from .yamlsource import Path

#: ``prior.X`` and ``year_ago.X`` read fact ``X`` of an earlier record.
HISTORY_PREFIXES = ("prior.", "year_ago.")
#: ``this.X`` reads the program's own outcome, not a fact.
OWN_OUTCOME_PREFIX = "this."


def facts_read(program: Program) -> Iterator[tuple[Path, str]]:
    """Each fact a program reads, with the path of the expression that reads it, in file order.

    Metrics, defaults, a used program's result (``partner_tier.tier``), the
    program's own outcome (``this.tier``) and the facts its kind does without
    (the MDF opening balance, 0 when missing) are not facts a record must hold.
    """
    not_facts = {*program.metrics, *program.defaults, *KINDS[program.kind].optional_facts, PARTNER_ID, PERIOD}
    for path, expression in expressions_of(program):
        for name in sorted(expression.names):
            if name.startswith(OWN_OUTCOME_PREFIX):
                continue
            for prefix in HISTORY_PREFIXES:
                name = name.removeprefix(prefix)
            if name not in not_facts and name.partition(".")[0] not in program.uses:
                yield path, name


def missing_columns(measures: Sequence[LoadedMeasures], headers: Mapping[str, tuple[str, Sequence[str]]]
                    ) -> list[Problem]:
    """Every column a measures file reads that its source's file lacks (``headers``: source name → (file,
    columns); a source not given is not checked), placed where the measures file names it, with the nearest
    columns."""
    problems = []
    for loaded in measures:
        if loaded.measures.source not in headers:
            continue
        file, header = headers[loaded.measures.source]
        by_folded = {column.casefold(): column for column in reversed(header)}
        reported: set[str] = set()
        for path, column, offset in columns_read(loaded.measures):
            if column in header or column in reported:
                continue
            reported.add(column)
            hint = _nearest(column, by_folded, "the file has: " + (", ".join(header) or "no columns"))
            problems.append(loaded.source.problem(path, f"reads column '{column}', which {file} does not have{hint}",
                                                  offset=offset))
    return problems


def measured_here(measures: Sequence[LoadedMeasures], facts_columns: Sequence[str], facts_file: str,
                  sources: Collection[str]) -> tuple[list[str], list[Problem]]:
    """The facts the measures files of ``sources`` compute, and a problem for each the facts file offers too
    (which would a payout read?), placed at the measure."""
    names, problems = [], []
    offered = set(facts_columns)
    for loaded in measures:
        if loaded.measures.source not in sources:
            continue
        for name in loaded.measures.measures:
            names.append(name)
            if name in offered:
                problems.append(loaded.source.problem(("measures", name), f"measure '{name}' is also a column of "
                                                      f"{facts_file}: a fact is either in the facts file or "
                                                      "measured, not both (rename one)", prefer_key=True))
    return names, problems


def missing_facts(programs: ProgramSet, columns: Sequence[str], facts_file: str) -> list[Problem]:
    """Every fact a program reads that ``columns`` lack: one problem per program version and fact, placed
    where the program first reads it, naming the nearest columns."""
    # compared without case, so a header's 'CSAT' is offered for 'csat'
    by_folded = {column.casefold(): column for column in reversed(columns)}
    problems = []
    for loaded in programs:
        problems += _missing_in(loaded, set(columns), by_folded, facts_file)
    return problems


def _missing_in(loaded: LoadedProgram, offered: set[str], by_folded: dict[str, str],
                facts_file: str) -> list[Problem]:
    problems = []
    reported: set[str] = set()
    for path, name in facts_read(loaded.program):
        if name in offered or name in reported:
            continue
        reported.add(name)
        hint = _nearest(name, by_folded, "add the column, or give the fact a value in 'defaults'")
        problems.append(loaded.source.problem(path, f"reads fact '{name}', which {facts_file} does not have "
                                                    f"and 'defaults' does not give{hint}"))
    return problems


def _nearest(name: str, by_folded: dict[str, str], otherwise: str) -> str:
    """The end of a message: the columns nearest ``name`` (compared without case), or ``otherwise``."""
    nearest = [by_folded[folded] for folded in
               difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.6)]
    return f"; nearest columns: {', '.join(nearest)}" if nearest else f"; {otherwise}"
