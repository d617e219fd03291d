"""Facts computed elsewhere (measures of transactions) joined to a run's facts records by partner and period.

The computed facts are a frame of text cells, as a facts file's CSV cells:
``partner_id``, ``period`` and one column per fact (null: no value), one row per
partner and period (:class:`incentives.measures.MeasuredFacts` ``.frame``). They
join every facts record of their partner and period (a duplicate record is still
reported as one, with the same facts), typed as a facts file's cells are; a
partner and period the facts records lack gets a record of its own, made of the
computed facts alone (the others missing: a program's ``defaults`` apply). A
fact both define is refused (:func:`check_no_clash`): which would a payout read?

Two readers take the join, each on its own kind of input: this module's
:func:`joined_rows` (records, as the per-record path reads them) and
:func:`incentives.columnar.facts.read_csv_blocks`' ``joined`` (a CSV file's
blocks, as the columnar engine reads them). A run computed both ways writes the
same files, byte for byte (``tests/test_measures_run.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import polars as pl

from .errors import UsageError
from .inputs import PARTNER_ID, PERIOD, FactRow, csv_row_reader

__all__ = ["ComputedFacts", "check_no_clash", "joined_rows"]


@dataclass(frozen=True)
class ComputedFacts:
    """Facts computed by partner and period: ``frame`` holds ``partner_id``, ``period`` and one column per fact,
    as facts cells (text; null: no value), one row per partner and period; ``absent``: the cells of a partner
    and period it has no row for (a record the transactions do not reach: a sum of none is 0)."""

    frame: pl.DataFrame
    absent: Mapping[str, str | None]

    @property
    def names(self) -> list[str]:
        """The facts computed, in the frame's order."""
        return [name for name in self.frame.columns if name not in (PARTNER_ID, PERIOD)]

    def of_partner(self, partner_id: str) -> "ComputedFacts":
        """The facts of one partner."""
        return ComputedFacts(self.frame.filter(pl.col(PARTNER_ID) == partner_id), self.absent)

    def cells(self, partner_id: str, period: str) -> dict[str, str | None]:
        """The facts of a partner and period, as a record of theirs is joined them."""
        rows = self.frame.filter((pl.col(PARTNER_ID) == partner_id) & (pl.col(PERIOD) == period)).to_dicts()
        return {name: rows[0][name] if rows else self.absent.get(name) for name in self.names}


def check_no_clash(fact_names: Iterable[str], computed: ComputedFacts, facts: str) -> None:
    """Raises :class:`UsageError` when the facts file ``facts`` offers a fact that is ``computed``."""
    offered = set(fact_names)
    both = [name for name in computed.names if name in offered]
    if both:
        raise UsageError(f"{facts} has {'a column' if len(both) == 1 else 'columns'} {', '.join(both)} that a "
                         "measures file computes too: a fact is either in the facts file or measured, not both "
                         "(rename one)")


def joined_rows(rows: Iterable[FactRow], computed: ComputedFacts, *, facts: str = "the facts"
                ) -> Iterator[FactRow]:
    """``rows`` with the computed facts of their partner and period (``computed.absent``'s where it has none),
    then a record for each partner and period ``computed`` has and ``rows`` had not (in partner_id, period
    order; no line). A record offering a computed fact raises :class:`UsageError` (``facts``: how it names
    them)."""
    names = computed.names
    # the computed facts typed as a facts file's cells are: the CSV reader of partner_id, period and them
    read = csv_row_reader([PARTNER_ID, PERIOD, *names])
    by_key = {(partner_id, period): cells for partner_id, period, *cells in computed.frame.select(
        PARTNER_ID, PERIOD, *(pl.col(name).fill_null("") for name in names)).iter_rows()}
    absent = [computed.absent.get(name) or "" for name in names]
    computed_here = set(names)
    seen = set()
    for row in rows:
        if not computed_here.isdisjoint(row.facts):
            check_no_clash(row.facts, computed, facts)
        key = (row.partner_id, row.period)
        cells = by_key.get(key)
        if cells is None:
            cells = absent
        else:
            seen.add(key)
        made = read(0, [row.partner_id, row.period, *cells])
        row.facts.update((name, value) for name, value in made.facts.items() if name not in (PARTNER_ID, PERIOD))
        row.problems.extend(made.problems)
        yield row
    for key in sorted(by_key.keys() - seen):
        made = read(0, [*key, *by_key[key]])
        yield FactRow(None, made.partner_id, made.period, made.facts, made.problems)
