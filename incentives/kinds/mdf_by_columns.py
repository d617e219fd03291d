"""MDF programs by columns: :class:`MdfByColumns`, the MDF kind's calculator for a block of partners and their
claims.

Apart from :mod:`incentives.kinds.mdf` so that the per-record path (``import incentives``) imports no polars:
the kind names it by its dotted path (``Kind.by_columns``), which the columnar engine loads on first use.
"""

from __future__ import annotations

from typing import Callable, Mapping

import polars as pl

from .. import fields
from ..claims_by_columns import (ACTIVITY, ACTIVITY_END, AMOUNT, CLAIM_ID, NEEDS_RECORD, PREAPPROVED, SUBMITTED_ON,
                                 ClaimsByColumns)
from ..inputs import PARTNER_ID
from ..money import format_amount, format_rate
from ..rules.ast import Name
from ..rules.backend import Condition
from ..rules.columns import MAX_UNITS, ColumnExpression, NotByColumns
from ..rules.columns import Kind as ColumnKind
from .block import BlockEvaluation, compare_constant, units_of
from .mdf import CLAIM_RULE_PREFIX, OPENING_BALANCE_FACT, Mdf, claim_limits

#: The most claims of one partner and program a block computes by columns, one line slot each: a partner
#: with more goes per record (the slots, and the columns each adds, grow with the most any partner has).
MAX_CLAIMS_BY_COLUMNS = 64
#: Each partner's claims in submission order, as lists joined to the block (working columns).
_CLAIM_IDS = "mdf#claim_ids"
_DESCRIPTIONS = "mdf#descriptions"
_FORMULAS = "mdf#formulas"
_BASES = "mdf#bases"
_DUES = "mdf#dues"
_DUE_BEFORE = "mdf#due_before"
_PAYABLE = "mdf#payable"
_CLAIMS_NEED_RECORD = "mdf#claims_need_record"
_CLAIM_COUNT = "mdf#claim_count"


class MdfByColumns:
    """:class:`MdfCalculator` by columns: each row's fund (opening balance + accrual) and its claims' lines.

    A row's claims come from the block's claims frame (:mod:`incentives.claims_by_columns`), put in
    submission order per partner. Paying them in order until the fund is used up is a cumulative sum:
    claim *k* finds ``available − min(due of the payable claims before it, max(available, 0))`` still
    available, and pays the lower of its due and that (never below 0). Each partner's claims are then lists
    joined to the block, claim *k* of every partner one line slot. Rejected claims add no line (their
    reasons are details). Flagged, the per-record path deciding: a row whose basis, opening balance or rate
    key is not a number / a text as needed, an opening balance with more decimals than the places (it
    could make a claim pay a fraction of a cent), a rate key that is neither a text nor a boolean (its text
    per record depends on how the number was written), a partner with a claim of its own problem (see
    :mod:`incentives.claims_by_columns`) or more than :data:`MAX_CLAIMS_BY_COLUMNS` claims.
    """

    #: the fund's details and the claims' inputs in results.jsonl are not written by columns yet
    writes_json = False

    def __init__(self, mdf: Mdf, rounding: fields.Rounding):
        self._mdf = mdf
        claims = mdf.claims
        self._limits = claim_limits(claims.activities, claims.max_per_claim, claims.max_by_activity)

    def conditions(self) -> list[Condition]:
        return []

    def base(self, block: BlockEvaluation, fired: Mapping[str, pl.Expr]) -> pl.Expr:
        """Adds the claims' lines to ``block``; an MDF program has no tier."""
        no_tier = pl.lit(None, pl.String)
        basis = block.number(block.compile(self._mdf.accrual.on.node))
        if basis is None:
            return no_tier
        block.flag(basis.needs_record)
        rate = self._accrual_rate(block)
        if rate is None:
            return no_tier
        available = block.column(self._opening(block) + self._accrued(block, basis, *rate), "available")
        self._claims(block, pl.col(available))
        return no_tier

    @staticmethod
    def _opening(block: BlockEvaluation) -> pl.Expr:
        """The opening balance in Int128 units at the places: 0 where the fact is missing."""
        opening = block.compile(Name(OPENING_BALANCE_FACT))
        if opening.kind is ColumnKind.FAILS:  # no such column: missing on every row
            return pl.lit(0, pl.Int128)
        if opening.kind is not ColumnKind.NUMBER:
            block.flag(opening.value.is_not_null())
            return pl.lit(0, pl.Int128)
        places = block.places
        # a null cell is a missing fact (a cell of another kind has already sent its row per record); a fact
        # column's Int64 units at any scale up to the places stay far inside Int128
        units = opening.value.cast(pl.Int128).fill_null(0)
        if opening.scale > places:
            excess = 10 ** (opening.scale - places)
            block.flag(units % excess != 0)
            return units // excess
        return units * 10 ** (places - opening.scale)

    def _accrual_rate(self, block: BlockEvaluation) -> tuple[pl.Expr, int, int] | None:
        """Each row's accrual rate: Int128 units, their scale and bound (None: every row flagged)."""
        accrual = self._mdf.accrual
        if accrual.rate is not None:
            units, scale = units_of(accrual.rate)
            return pl.lit(units, pl.Int128), scale, units
        assert accrual.rate_by is not None and accrual.rates is not None
        key = block.compile(accrual.rate_by.node)
        if key.kind is ColumnKind.TEXT:
            selector = key.value
        elif key.kind is ColumnKind.BOOLEAN:  # per record the key is str(True): "True"
            selector = pl.when(key.value).then(pl.lit("True")).otherwise(pl.lit("False"))
        else:
            block.flag(pl.lit(True))
            return None
        block.flag(key.needs_record)
        scale = max((units_of(rate)[1] for rate in accrual.rates.values()), default=0)
        rate_units = pl.lit(0, pl.Int128)  # a key the table lacks accrues at 0
        bound = 0
        for selected, rate in accrual.rates.items():
            units, rate_scale = units_of(rate)
            units *= 10 ** (scale - rate_scale)
            rate_units = pl.when(selector == selected).then(pl.lit(units, pl.Int128)).otherwise(rate_units)
            bound = max(bound, units)
        return rate_units, scale, bound

    def _accrued(self, block: BlockEvaluation, basis: ColumnExpression, rate: pl.Expr, rate_scale: int,
                 rate_bound: int) -> pl.Expr:
        """basis × rate rounded, or the cap (rounded) where the unrounded product exceeds it: Int128 units at
        the places."""
        scale, bound = basis.scale + rate_scale, basis.bound * rate_bound
        if bound > MAX_UNITS:
            raise NotByColumns("an accrual too large for 128-bit minor units")
        raw = pl.col(block.column(basis.value.cast(pl.Int128) * rate, "accrual"))
        rounded, _ = block.rounded(raw, scale, bound)
        cap = self._mdf.accrual.cap
        if cap is None:
            return rounded
        cap_units = int(block.rounding.round(cap).scaleb(block.places))
        capped = compare_constant(ColumnExpression(raw, pl.lit(False), ColumnKind.NUMBER, scale, bound, wide=True),
                                  ">", cap)
        return pl.when(capped).then(pl.lit(cap_units, pl.Int128)).otherwise(rounded)

    def _claims(self, block: BlockEvaluation, available: pl.Expr) -> None:
        """A line slot per claim rank, the claim of that rank of each row's partner, where it is payable."""
        claims = block.claims
        if claims is None or claims.frame.is_empty():
            return
        most = claims.frame.group_by(PARTNER_ID).len()["len"].max()
        assert isinstance(most, int)
        slots = min(most, MAX_CLAIMS_BY_COLUMNS)
        by_partner, due_bound = self._claims_by_partner(block, claims)
        block.frame = block.frame.join(by_partner, on=PARTNER_ID, how="left", maintain_order="left")
        count = pl.col(_CLAIM_COUNT).fill_null(0)
        block.flag((pl.col(_CLAIMS_NEED_RECORD).fill_null(False) | (count > slots)))
        rate_text = pl.lit(f"{self._mdf.claims.reimbursement.normalize():f}")
        fund = pl.when(available > 0).then(available).otherwise(pl.lit(0, pl.Int128))
        for slot in range(slots):
            def item(name: str, slot: int = slot) -> pl.Expr:
                return pl.col(name).list.get(slot, null_on_oob=True)

            due = item(_DUES)
            # what the per-record path finds still available (a line's input): what it paid before is the
            # payable dues before, up to a fund that is not negative
            still_available = available - _least(item(_DUE_BEFORE), fund)
            paid = pl.col(block.column(
                _least(due, pl.when(still_available > 0).then(still_available).otherwise(pl.lit(0, pl.Int128))),
                "paid"))
            short = paid < due
            description = pl.concat_str([item(_DESCRIPTIONS), pl.when(~short).then(pl.lit("")).when(paid > 0)
                                         .then(pl.lit(" (partial: fund exhausted)"))
                                         .otherwise(pl.lit(" (unpaid: fund exhausted)"))])

            def formula(amount: pl.Expr, item: Callable[[str], pl.Expr] = item, short: pl.Expr = short) -> pl.Expr:
                limited = pl.concat_str([pl.lit(", limited to the "), block.amount_text(amount, due_bound),
                                         pl.lit(" still available")])
                return pl.concat_str([item(_FORMULAS), pl.when(short).then(limited).otherwise(pl.lit(""))])

            block.add_line((count > slot) & item(_PAYABLE), "mdf_claim",
                           pl.concat_str([pl.lit(CLAIM_RULE_PREFIX), item(_CLAIM_IDS)]), description, paid,
                           due_bound, formula, basis=item(_BASES), rate=rate_text)

    def _claims_by_partner(self, block: BlockEvaluation, claims: ClaimsByColumns) -> tuple[pl.LazyFrame, int]:
        """Each partner's claims in submission order, as lists: id, description and formula (up to what the
        fund decides), basis cell, due (units at the places, 0 for a rejected claim), the dues of the payable
        claims before it, whether it is payable; whether any needs the per-record path, and how many there
        are. And the bound of a due."""
        rules = self._mdf.claims
        places = block.places
        amount = pl.col(AMOUNT)
        reimbursement, reimbursement_scale = units_of(rules.reimbursement)
        product_scale = claims.amount_scale + reimbursement_scale
        due, due_bound = block.rounded(amount.cast(pl.Int128) * pl.lit(reimbursement, pl.Int128), product_scale,
                                       claims.amount_bound * reimbursement)
        limit: pl.Expr = pl.lit(None, pl.Int128)
        capped_formula: pl.Expr = pl.lit(None, pl.String)
        capped_description: pl.Expr = pl.lit(None, pl.String)
        for activity, claim_limit in self._limits.items():
            is_activity = pl.col(ACTIVITY) == activity
            limit_units = int(block.rounding.round(claim_limit.amount).scaleb(places))
            due_bound = max(due_bound, limit_units)
            limit = pl.when(is_activity).then(pl.lit(limit_units, pl.Int128)).otherwise(limit)
            capped_formula = pl.when(is_activity).then(pl.lit(
                f", capped at {format_amount(block.rounding.round(claim_limit.amount), places)} {claim_limit.per}"
            )).otherwise(capped_formula)
            capped_description = pl.when(is_activity).then(pl.lit(f" (capped at the limit {claim_limit.per})")) \
                .otherwise(capped_description)
        capped = (due > limit).fill_null(False)
        payable = ~pl.col(NEEDS_RECORD) & pl.col(ACTIVITY).is_in(rules.activities) & (amount > 0)
        if rules.requires_preapproval:
            payable = payable & pl.col(PREAPPROVED)
        if rules.submit_within_days is not None:
            days = (pl.col(SUBMITTED_ON) - pl.col(ACTIVITY_END)).dt.total_days()
            payable = payable & (days <= rules.submit_within_days)
        payable = payable.fill_null(False)
        payable_due = pl.when(payable).then(pl.when(capped).then(limit).otherwise(due)).otherwise(pl.lit(0, pl.Int128))
        amount_text = block.amount_text(amount, claims.amount_bound, claims.amount_scale)
        submitted = pl.col(SUBMITTED_ON)
        frame = claims.frame.lazy().sort([PARTNER_ID, submitted.is_null(), submitted, pl.col(CLAIM_ID)],
                                         maintain_order=True).with_columns(payable_due.alias(_DUES))
        frame = frame.with_columns(
            (pl.col(_DUES).cum_sum() - pl.col(_DUES)).over(PARTNER_ID).alias(_DUE_BEFORE),
            payable.alias(_PAYABLE),
            pl.concat_str([pl.col(ACTIVITY), pl.lit(" claim "), pl.col(CLAIM_ID),
                           pl.when(capped).then(capped_description).otherwise(pl.lit(""))]).alias(_DESCRIPTIONS),
            pl.concat_str([amount_text, pl.lit(f" × {format_rate(rules.reimbursement)} = "),
                           block.amount_text(due, due_bound),
                           pl.when(capped).then(capped_formula).otherwise(pl.lit(""))]).alias(_FORMULAS),
            block.plain_text(amount, claims.amount_scale).alias(_BASES))
        return frame.group_by(PARTNER_ID).agg(
            pl.col(CLAIM_ID).alias(_CLAIM_IDS), pl.col(_DESCRIPTIONS), pl.col(_FORMULAS), pl.col(_BASES),
            pl.col(_DUES), pl.col(_DUE_BEFORE), pl.col(_PAYABLE), pl.col(NEEDS_RECORD).any().alias(_CLAIMS_NEED_RECORD),
            pl.len().alias(_CLAIM_COUNT)), due_bound


def _least(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.when(a < b).then(a).otherwise(b)
