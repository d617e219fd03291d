"""The run rules, applied once per block of whole partners, on keys: the same for every engine and sink.

A block's evaluated records are :class:`Unit` s (a partner, a period, where the
record came from); :func:`resolve_block` decides, from those keys alone, which
units' results are replaced by duplicate-record errors, which claims came
without a record (their error results are made here), and which loaded
programs gave a record no result (the coverage notes). The output order is
then a sort of the block's results on keys (:data:`ORDER`), whatever computed
them. :class:`BudgetPlan` gathers, over the whole run, the totals a budget may
scale and apportions them once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from ..kinds.steps import BudgetScale, scale_to_budget
from ..kinds.steps_by_columns import BUDGET_TOTAL, BudgetByColumns
from ..money import EXACT, decimal_of
from ..money_by_columns import apportion_units
from ..result_parts import new_line
from ..results import PayoutResult
from ..run_rules import (DUPLICATE_PLACES, RunEngine, budget_note, duplicate_results,
                         orphan_claim_results)
from .claims import BlockClaims

#: A unit's rank among equal keys in the output (a record with a partner and a period, a claim without a
#: record, a record lacking either): ``Engine.run``'s order before this module existed, kept.
KEYED, ORPHAN, UNKEYED = 0, 1, 2

#: The columns that order a block's results: partner_id, program_id, period, then ties as the input had them.
ORDER = ["partner_id", "program_id", "period", "rank", "index", "result_at"]


#: A block's evaluated records, one row each: ``index`` (its place in the input: a file's line, or the
#: record's position among records given in Python), ``place`` (where it came from, as a duplicate message
#: names it: ``line 12``, ``record 3``), ``rank`` and ``missing`` (the loaded programs that gave it no result).
UNITS = {"index": pl.Int64, "partner_id": pl.String, "period": pl.String, "rank": pl.Int8, "place": pl.String,
         "missing": pl.List(pl.String)}


@dataclass(frozen=True, slots=True)
class Unit:
    """Where results made here sort: as a unit of ``rank`` at ``index`` (see :data:`UNITS`)."""

    index: int
    partner_id: str
    period: str
    rank: int


@dataclass
class Resolution:
    """What :func:`resolve_block` decided: the ``dropped`` units (their results leave the run, by index),
    ``made`` results (each with the unit it sorts as), and ``coverage`` (per program and period, records
    without a result)."""

    dropped: list[int] = field(default_factory=list)
    made: list[tuple[Unit, dict[str, PayoutResult]]] = field(default_factory=list)
    coverage: Counter = field(default_factory=Counter)


def resolve_block(units: pl.DataFrame, claims: BlockClaims, engine: RunEngine) -> Resolution:
    """The run rules over one block: ``units`` (:data:`UNITS`, each partner's in input order) and ``claims``,
    those of the partners up to the block's last not handed out before (:meth:`ClaimsCursor.through`)."""
    resolution = Resolution()
    keyed = units.filter(pl.col("rank") == KEYED)
    repeated = keyed.filter(pl.len().over("partner_id", "period") > 1)
    program_ids = engine.program_ids
    if not repeated.is_empty():
        for (partner_id, period), group in repeated.group_by("partner_id", "period", maintain_order=True):
            indexes = group["index"].to_list()
            resolution.dropped += indexes
            resolution.made.append((Unit(indexes[0], partner_id, period, KEYED),
                                    duplicate_results((partner_id, period), group["place"].head(DUPLICATE_PLACES)
                                                      .to_list(), group.height, program_ids)))
        keyed = keyed.filter(pl.len().over("partner_id", "period") == 1)
    missing = keyed.select("period", "missing").explode("missing").drop_nulls("missing")
    for period, program_id, count in missing.group_by("period", "missing").len().iter_rows():
        resolution.coverage[(program_id, period)] += count
    if claims:
        claim_keys = claims.keys()
        with_record = claim_keys.join(keyed, on=["partner_id", "period"], how="semi")
        made = [(unit.partner_id, unit.period) for unit, _ in resolution.made]
        if made:
            with_record = pl.concat([with_record, pl.DataFrame(made, schema=claim_keys.schema, orient="row")])
        orphans = claim_keys.with_row_index("at").join(with_record, on=["partner_id", "period"], how="anti",
                                                        maintain_order="left")
        for at, partner_id, period in orphans.iter_rows():
            key = (partner_id, period)
            resolution.made.append((Unit(at, partner_id, period, ORPHAN),
                                    orphan_claim_results(key, claims.of(key), engine.mdf_program_ids)))
    return resolution


class BudgetPlan:
    """The budgets of a run: the totals they may scale, gathered block after block, apportioned once.

    A candidate is an ``ok`` result that pays something, of a program version with a budget; the results a
    duplicate replaced are never candidates (their blocks' resolution dropped them first)."""

    def __init__(self, engine: RunEngine):
        self._engine = engine
        self.budgeted = {(program_id, compiled.version) for program_id in engine.program_ids
                         for compiled in (engine.program_version(program_id, version)
                                          for version in _versions(engine, program_id))
                         if compiled is not None and compiled.budget is not None}
        self._candidates: list[pl.DataFrame] = []
        self._by_columns: dict[tuple[str, int | None, str], BudgetByColumns] = {}
        #: each group's new totals by partner_id, for the results computed per record (made when first needed)
        self._new_totals: dict[tuple[str, int | None, str], dict[str, int]] = {}
        self.notes: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.budgeted)

    def programs_read(self) -> set[str]:
        """The programs whose results the budgets' candidates are: the budgeted ones and those they use."""
        engine = self._engine
        versions = {(info.id, info.version) for info in engine.program_infos()}
        read = {program_id for program_id, _ in self.budgeted}
        while True:
            used = {used_id for program_id, version in versions if program_id in read
                    for compiled in [engine.program_version(program_id, version)] if compiled is not None
                    for used_id in compiled.uses}
            if used <= read:
                return read
            read |= used

    def gather(self, rows: pl.DataFrame) -> None:
        """Keep the candidates among a block's final rows (:mod:`incentives.runs.rows` keys)."""
        budgeted = pl.DataFrame([{"program_id": program_id, "program_version": version}
                                 for program_id, version in self.budgeted],
                                schema={"program_id": pl.String, "program_version": pl.Int64})
        # a total too long for 128 bits is kept as its text (see incentives.runs.rows)
        pays = (pl.col("total_units") > 0) | (pl.col("total_text").is_not_null() &
                                              ~pl.col("total_text").str.starts_with("-"))
        found = rows.filter((pl.col("status") == "ok") & pays).join(
            budgeted, on=["program_id", "program_version"], how="semi")
        if not found.is_empty():
            self._candidates.append(found.select("program_id", "program_version", "period", "partner_id",
                                                 "total_units", "total_exponent", "total_text"))

    def apportion(self) -> None:
        """Scale every group (program version, period) over its budget; its notes in the groups' order."""
        if not self._candidates:
            return
        candidates = pl.concat(self._candidates)
        self._candidates = []
        groups = candidates.partition_by(["program_id", "program_version", "period"], as_dict=True)
        for (program_id, version, period) in sorted(groups, key=str):
            group = groups[(program_id, version, period)].sort("partner_id", maintain_order=True)
            compiled = self._engine.program_version(program_id, version)
            assert compiled is not None and compiled.budget is not None
            places = compiled.rounding.places
            scaled = _scaled_by_columns(group, compiled.budget, places)
            if scaled is None:  # with Decimals
                totals = [(partner_id, decimal_of(units, exponent) if text is None else Decimal(text))
                          for partner_id, units, exponent, text in
                          group.select("partner_id", "total_units", "total_exponent", "total_text").iter_rows()]
                by_decimals = scale_to_budget(totals, compiled.budget, places)
                scaled = (None, None) if by_decimals is None else (by_decimals[0], pl.Series(
                    [int(new_total.scaleb(places)) for new_total in by_decimals[1]], dtype=pl.Int128))
            scale, new_units = scaled
            if scale is None or new_units is None:  # within its budget
                continue
            self._by_columns[(program_id, version, period)] = BudgetByColumns(
                scale, pl.DataFrame({"partner_id": group["partner_id"], BUDGET_TOTAL: new_units}))
            self.notes.append(budget_note(program_id, version, period, compiled, scale.factor))

    def by_columns(self, program_id: str, version: int | None, period: str) -> BudgetByColumns | None:
        """The budget that scales a program version's results of ``period``, for the columnar engine."""
        return self._by_columns.get((program_id, version, period))

    def apply(self, result: PayoutResult) -> None:
        """Scale ``result`` as its group's budget says (nothing for a result the budgets leave alone)."""
        values = result.__dict__
        group = (values["program_id"], values["program_version"], values["period"])
        budget = self._by_columns.get(group)
        if budget is None:
            return
        new_totals = self._new_totals.get(group)
        if new_totals is None:  # made on the first result of the group computed per record
            new_totals = self._new_totals[group] = dict(budget.new_totals.iter_rows())
        new_units = new_totals.get(values["partner_id"])
        if new_units is None:
            return
        scale = budget.scale
        new_total = Decimal(new_units).scaleb(-scale.places, EXACT)
        result.lines.append(new_line(scale.line(len(result.lines) + 1, values["total"], new_total)))
        values["total"] = new_total
        result.__pydantic_fields_set__.add("total")


def _scaled_by_columns(group: pl.DataFrame, budget: Decimal,
                       places: int) -> tuple[BudgetScale | None, pl.Series | None] | None:
    """``scale_to_budget`` of a group's candidates (sorted by partner_id) by columns: its scale and the new
    totals (Int128 units at ``places``), ``(None, None)`` for a group within its budget, or ``None`` where the
    columns do not hold the group exactly (a total kept as text, a total of another exponent than ``places``' —
    a per-record ``Decimal`` — a budget with more decimals, a product beyond Int128): the caller scales it with
    Decimals."""
    budget_units = budget.scaleb(places, EXACT)
    if group["total_text"].null_count() != group.height or (group["total_exponent"] != -places).any() \
            or budget_units != budget_units.to_integral_value() or budget < 0:
        return None
    units = group["total_units"]
    # totals of one exponent sum to a Decimal of that exponent, as exact_sum's
    requested = Decimal(int(units.cast(pl.Int128).sum())).scaleb(-places, EXACT)
    if requested <= budget:
        return None, None
    new_units = apportion_units(units, group["partner_id"], int(budget_units))
    if new_units is None:
        return None
    return BudgetScale.of(budget, requested, places), new_units


def _versions(engine: RunEngine, program_id: str) -> list[int]:
    return [info.version for info in engine.program_infos() if info.id == program_id]
