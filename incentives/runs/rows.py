"""A block's results as one frame: their keys (what the run rules and totals read) and, for files, their texts.

Whatever computed a result — the columnar engine or the per-record path — it
becomes a row of the same frame (:data:`KEYS`, plus :data:`TEXTS` when the run
writes files, or ``ref``, an index into the block's results kept in memory).
The block is then ordered on keys (:data:`~incentives.runs.resolve.ORDER`) and
tallied (:class:`Tally`): totals, counts and the summary's figures are sums of
these rows, exact in integer minor units.

A total is kept as its digits and exponent (``Decimal.as_tuple``), so that a
sum of totals is the Decimal ``Engine.run`` adds up: an exact sum's exponent is
the least of its terms' (a program whose results are all ``0`` totals ``0``,
not ``0.00``). A total whose digits do not fit 128 bits (facts may have 40
digits) is kept as its text instead (``total_text``), and added up apart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Sequence

import polars as pl

from ..money import decimal_of, exact_add
from ..output.files import result_json, result_rows
from ..results import PayoutResult
from .resolve import ORDER, Unit

#: The key columns of a block's rows, with their types.
KEYS = {"partner_id": pl.String, "period": pl.String, "program_id": pl.String, "program_version": pl.Int64,
        "status": pl.String, "tier": pl.String, "total_units": pl.Int128, "total_exponent": pl.Int32, "total_text": pl.String,
        "errors": pl.List(pl.String), "rank": pl.Int8, "index": pl.Int64, "result_at": pl.Int32}
#: The texts of a result in the run's files: its payouts.csv row, its lines.csv rows, its results.jsonl line.
TEXTS = {"payout_row": pl.String, "line_rows": pl.String, "result_json": pl.String}
REF = "ref"
_INT128_LIMIT = 2**127
#: How many error results the summary shows (the first ones in output order).
ERROR_SAMPLES = 50


def rows_of(results: Sequence[tuple[Unit, int, PayoutResult]], *, texts: bool, first_ref: int = 0) -> pl.DataFrame:
    """The rows of ``(unit, position among its unit's results, result)``: keys, and the texts (``texts``) or
    ``ref`` (the position in ``results`` plus ``first_ref``)."""
    columns: dict[str, list] = {name: [] for name in KEYS}
    (partner_ids, periods, program_ids, versions, statuses, tiers, units_, exponents, big_totals, errors, ranks,
     indexes, result_ats) = columns.values()
    payouts: list[str] = []
    lines: list[str] = []
    jsons: list[str] = []
    for unit, result_at, result in results:
        values = result.__dict__
        partner_ids.append(values["partner_id"])
        periods.append(values["period"])
        program_ids.append(values["program_id"])
        versions.append(values["program_version"])
        status = values["status"]
        statuses.append(status)
        tiers.append(values["tier"])
        total = values["total"]
        sign, digits, exponent = total.as_tuple()
        number = int("".join(map(str, digits))) if digits else 0
        if number < _INT128_LIMIT:
            units_.append(-number if sign else number)
            big_totals.append(None)
        else:
            units_.append(None)
            big_totals.append(str(total))
        exponents.append(exponent)
        errors.append(values["errors"] if status == "error" else None)
        ranks.append(unit.rank)
        indexes.append(unit.index)
        result_ats.append(result_at)
        if texts:
            payout, line_rows = result_rows(result)
            payouts.append(payout)
            lines.append(line_rows)
            jsons.append(result_json(result).decode())
    frame = pl.DataFrame(columns, schema=KEYS)
    if texts:
        return frame.with_columns(pl.Series("payout_row", payouts, pl.String),
                                  pl.Series("line_rows", lines, pl.String),
                                  pl.Series("result_json", jsons, pl.String))
    return frame.with_columns(pl.int_range(first_ref, first_ref + frame.height, dtype=pl.Int64).alias(REF))


def in_output_order(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """A block's rows, every engine's together, in output order."""
    return pl.concat(list(frames), how="diagonal_relaxed").sort(ORDER, maintain_order=True)


class Tally:
    """A run's totals, counts and summary figures, added up block after block from final rows."""

    def __init__(self, program_ids: Sequence[str]):
        self.totals: dict[str, Decimal] = {program_id: Decimal(0) for program_id in program_ids}
        self.counts: dict[str, dict[str, int]] = {program_id: {"ok": 0, "ineligible": 0, "error": 0}
                                                  for program_id in program_ids}
        self.partners: dict[str, int] = {}
        self.versions: dict[str, set[int]] = {}
        self.by_tier: dict[str, dict[str, tuple[int, Decimal]]] = {}
        self.periods: set[str] = set()
        self.first_errors: list[tuple[str, str, str, list[str]]] = []
        self.results = 0

    def add(self, rows: pl.DataFrame) -> None:
        """Add a block's rows (in output order: the first errors are the first met)."""
        if rows.is_empty():
            return
        self.results += rows.height
        for program_id, exponent, units in rows.group_by("program_id", "total_exponent").agg(
                pl.col("total_units").sum()).iter_rows():
            self.totals[program_id] = exact_add(self.totals.get(program_id, Decimal(0)), decimal_of(units, exponent))
        for program_id, text in rows.filter(pl.col("total_text").is_not_null()).select(
                "program_id", "total_text").iter_rows():
            self.totals[program_id] = exact_add(self.totals[program_id], Decimal(text))
        for program_id, status, count in rows.group_by("program_id", "status").len().iter_rows():
            counts = self.counts.setdefault(program_id, {"ok": 0, "ineligible": 0, "error": 0})
            counts[status] += count
        for program_id, partners in rows.group_by("program_id").agg(pl.col("partner_id").n_unique()).iter_rows():
            self.partners[program_id] = self.partners.get(program_id, 0) + partners
        for program_id, version in rows.filter(pl.col("program_version").is_not_null()).select(
                "program_id", "program_version").unique().iter_rows():
            self.versions.setdefault(program_id, set()).add(version)
        paid = rows.filter((pl.col("status") == "ok") & pl.col("tier").is_not_null())
        for program_id, tier, exponent, count, units in paid.group_by("program_id", "tier", "total_exponent").agg(
                pl.len(), pl.col("total_units").sum()).iter_rows():
            tiers = self.by_tier.setdefault(program_id, {})
            known_count, known_total = tiers.get(tier, (0, Decimal(0)))
            tiers[tier] = (known_count + count, exact_add(known_total, decimal_of(units, exponent)))
        for program_id, tier, text in paid.filter(pl.col("total_text").is_not_null()).select(
                "program_id", "tier", "total_text").iter_rows():
            tiers = self.by_tier[program_id]
            tiers[tier] = (tiers[tier][0], exact_add(tiers[tier][1], Decimal(text)))
        self.periods.update(period for period in rows["period"].unique() if period)
        if len(self.first_errors) < ERROR_SAMPLES:
            errors = rows.filter(pl.col("status") == "error").head(ERROR_SAMPLES - len(self.first_errors))
            self.first_errors += [(partner_id, period, program_id, list(messages)) for
                                  partner_id, period, program_id, messages in
                                  errors.select("partner_id", "period", "program_id", "errors").iter_rows()]
