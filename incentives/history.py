"""Earlier periods: ``prior.X`` and ``year_ago.X`` from a partner's records of other periods.

A program that names ``prior.revenue`` reads the fact ``revenue`` of the same
partner's record for the previous period, and ``year_ago.revenue`` that of the
same period one fiscal year earlier (SPEC "Program language additions"). The
records come from the same input: the engine reads a partner's records
together (:func:`records_to_compute`) and hands each computed record its partner's
:data:`History`, a mapping from period label to that period's facts.

Labels are named by the fiscal year they fall in, so the earlier labels follow
from the label alone: ``2027-Q1`` → prior ``2026-Q4``, year ago ``2026-Q1``;
``2027-07`` → ``2027-06`` and ``2026-07``; ``2027-H1`` → ``2026-H2`` and
``2026-H1``; ``2027`` → ``2026`` for both.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator, Mapping

from .inputs import FactRow
from .periods import Period

#: The prefixes that read an earlier period: ``prior.X`` and ``year_ago.X``.
PRIOR, YEAR_AGO = "prior", "year_ago"
HISTORY_PREFIXES = (PRIOR + ".", YEAR_AGO + ".")

#: A partner's records by period label: the facts of that period, or why they cannot be read (a text).
History = Mapping[str, "Mapping[str, Any] | str"]

#: What ``prior.X`` / ``year_ago.X`` reads of one period: ``(name in the program, label, fact X)``.
HistoryRead = tuple[str, str, str]


def history_names(names: Iterable[str]) -> tuple[tuple[str, str, str], ...]:
    """``(name, prefix, fact)`` for each name of ``names`` that reads an earlier period, sorted."""
    return tuple((name, *name.split(".", 1)) for name in sorted(names) if name.startswith(HISTORY_PREFIXES))


def earlier_label(period: Period, prefix: str) -> str | None:
    """The label of the period ``prefix`` (``prior`` or ``year_ago``) reads for ``period``; None before year 1."""
    label = period.label
    year = int(label[:4])
    if prefix == YEAR_AGO or period.granularity == "year":
        return f"{year - 1:04d}{label[4:]}" if year > 1 else None
    part = int(label[6:] if period.granularity != "month" else label[5:])
    if part > 1:
        if period.granularity == "month":
            return f"{year:04d}-{part - 1:02d}"
        return f"{label[:6]}{part - 1}"
    if year <= 1:
        return None
    last = {"month": "12", "quarter": "Q4", "half": "H2"}[period.granularity]
    return f"{year - 1:04d}-{last}"


def reads_for(names: tuple[tuple[str, str, str], ...], period: Period) -> tuple[HistoryRead, ...]:
    """What a program whose history names are ``names`` reads of earlier records when computing ``period``."""
    reads = []
    for name, prefix, fact in names:
        label = earlier_label(period, prefix)
        if label is not None:
            reads.append((name, label, fact))
    return tuple(reads)


def earlier_facts(reads: tuple[HistoryRead, ...], history: History) -> dict[str, Any] | str:
    """The values ``reads`` find in ``history`` by name (a missing one is left out: a missing fact), or
    the error of a read whose period cannot be read (duplicate records, a record with problems)."""
    found: dict[str, Any] = {}
    for name, label, fact in reads:
        entry = history.get(label)
        if entry is None:
            continue
        if isinstance(entry, str):
            return f"{name}: {entry}"
        value = entry.get(fact)
        if value is not None:
            found[name] = value
    return found


def history_of(rows: Iterable[FactRow]) -> History:
    """One partner's records by period label; a period with several records, or a record with problems,
    maps to why it cannot be read (history never picks one of two records silently)."""
    by_label: dict[str, list[FactRow]] = {}
    for row in rows:
        if row.period:
            by_label.setdefault(row.period, []).append(row)
    history: dict[str, Mapping[str, Any] | str] = {}
    for label, period_rows in by_label.items():
        if len(period_rows) > 1:
            history[label] = (f"{len(period_rows)} records for period {label} (duplicates); "
                              "which one is the history cannot be told")
        elif period_rows[0].problems:
            history[label] = f"the record for period {label} has errors: {'; '.join(period_rows[0].problems)}"
        else:
            history[label] = period_rows[0].facts
    return history


def records_to_compute(block: Iterable[tuple[int, Any, FactRow]], period: str | None, with_history: bool
                       ) -> Iterator[tuple[int, Any, FactRow, History | None]]:
    """``(index, record, row, history)`` for each record of ``block`` a run computes.

    ``block``: numbered records (place in the input, record, its facts as read) in which each partner's
    records are next to each other. With ``period``, only that period's records are computed (and a record
    without a partner or period, which becomes an error row); the others are not, and serve as history
    only. ``with_history``: each computed record gets its partner's :data:`History` (None for a record
    without a partner_id); otherwise None.
    """
    if not with_history:
        for index, record, row in block:
            if period is None or row.period in (period, ""):
                yield index, record, row, None
        return
    for partner_id, group in itertools.groupby(block, key=_partner_of):
        members = list(group)
        history = history_of(row for _, _, row in members) if partner_id else None
        for index, record, row in members:
            if period is None or not row.period or not partner_id or row.period == period:
                yield index, record, row, history


def _partner_of(item: tuple[int, Any, FactRow]) -> str:
    return item[2].partner_id
