"""MDF programs by columns: :class:`MdfByColumns`, the MDF kind's calculator for a block of partners and their
claims.

Apart from :mod:`incentives.kinds.mdf` so that the per-record path (``import incentives``) imports no polars:
the kind names it by its dotted path (``Kind.by_columns``), which the columnar engine loads on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import polars as pl

from .. import fields, json_by_columns
from ..claims_by_columns import (ACTIVITY, ACTIVITY_END, AMOUNT, AMOUNT_TEXT, CLAIM_ID, NEEDS_RECORD, PREAPPROVED,
                                 SUBMITTED_ON, ClaimsByColumns)
from ..inputs import PARTNER_ID
from ..money import format_amount, format_rate
from ..rules.ast import Name
from ..rules.backend import Condition
from ..rules.columns import MAX_UNITS, ColumnExpression, NotByColumns
from ..rules.columns import Kind as ColumnKind
from .base import ZERO, input_names
from .block import COMPUTING, BlockEvaluation, compare_constant, units_of
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
_AMOUNTS_JSON = "mdf#amounts_json"
_INPUTS_TAILS = "mdf#inputs_tails"
_CLAIMS_NEED_RECORD = "mdf#claims_need_record"
_CLAIMS_UNWRITTEN = "mdf#claims_unwritten"
_CLAIM_COUNT = "mdf#claim_count"
#: Each partner's sum of the payable dues, whether it has a payable claim, and its rejected claims as JSON
_DUE_TOTAL = "mdf#due_total"
_ANY_PAYABLE = "mdf#any_payable"
_REJECTED_JSON = "mdf#rejected_json"
#: ``results.jsonl`` writes a missing opening balance, and what a fund without a paid claim paid, as Decimal(0)
_ZERO_JSON = '"0"'



@dataclass(frozen=True)
class _AccrualRate:
    """Each row's accrual rate: Int128 units, their scale and bound; and its ``results.jsonl`` texts: the rate as
    JSON, the percent the formula shows, and where the rate comes from."""

    units: pl.Expr
    scale: int
    bound: int
    json: pl.Expr
    percent: pl.Expr
    source: pl.Expr


@dataclass(frozen=True)
class _Paid:
    """What a row's claims paid (units at the places) as a number and as JSON, and its rejected claims (the
    JSON objects, comma-separated)."""

    units: pl.Expr
    json: pl.Expr
    rejected_json: pl.Expr


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

    The result's ``results.jsonl`` line is written too (the fund's details, each claim line's basis, rate and
    inputs). Every amount of the fund is written with the places' decimals, as the per-record ``Decimal``s
    are where they are not flagged: an opening balance written with more decimals than the places (``10.000``)
    or as a negative zero would carry them into the available balance, and a fund below zero pays its claims
    ``Decimal(0)`` (no decimals): those rows go per record.
    """

    def __init__(self, mdf: Mdf, rounding: fields.Rounding):
        self._mdf = mdf
        claims = mdf.claims
        self._limits = claim_limits(claims.activities, claims.max_per_claim, claims.max_by_activity)

    def conditions(self) -> list[Condition]:
        return []

    def base(self, block: BlockEvaluation, fired: Mapping[str, pl.Expr]) -> pl.Expr:
        """Adds the claims' lines to ``block`` and sets its details' JSON; an MDF program has no tier."""
        no_tier = pl.lit(None, pl.String)
        accrual = self._mdf.accrual
        basis = block.number(block.compile(accrual.on.node))
        if basis is None:
            return no_tier
        block.flag(basis.needs_record)
        rate = self._accrual_rate(block)
        if rate is None:
            return no_tier
        opening, opening_json = self._opening(block)
        accrued, accrual_formula = self._accrued(block, basis, rate)
        available = pl.col(block.column(opening + accrued, "available"))
        paid = self._claims(block, available)
        computing = pl.col(COMPUTING)
        # the keys in FundDetails' order, as MdfCalculator.base stores them
        block.details_json = pl.concat_str([
            pl.lit(',"opening":'), opening_json, pl.lit(',"accrued":'), block.amount_json(accrued),
            pl.lit(',"accrual_rate":'), rate.json,
            pl.lit(',"accrual_rate_source":'), json_by_columns.string(rate.source),
            pl.lit(',"accrual_formula":'), json_by_columns.string(accrual_formula),
            pl.lit(',"accrual_inputs":'), block.inputs_json(input_names(accrual.on), computing),
            pl.lit(',"available":'), block.amount_json(available), pl.lit(',"paid":'), paid.json,
            pl.lit(',"closing":'), block.amount_json(available - paid.units),
            pl.lit(',"rejected_claims":['), paid.rejected_json, pl.lit("]")])
        return no_tier

    @staticmethod
    def _opening(block: BlockEvaluation) -> tuple[pl.Expr, pl.Expr]:
        """The opening balance in Int128 units at the places (0 where the fact is missing), and its JSON."""
        zero_json = pl.lit(_ZERO_JSON)
        opening = block.compile(Name(OPENING_BALANCE_FACT))
        if opening.kind is ColumnKind.FAILS:  # no such column: missing on every row
            return pl.lit(0, pl.Int128), zero_json
        if opening.kind is not ColumnKind.NUMBER:
            block.flag(opening.value.is_not_null())
            return pl.lit(0, pl.Int128), zero_json
        places = block.places
        # a null cell is a missing fact (a cell of another kind has already sent its row per record); a fact
        # column's Int64 units at any scale up to the places stay far inside Int128
        units = opening.value.cast(pl.Int128).fill_null(0)
        if opening.scale > places:
            excess = 10 ** (opening.scale - places)
            block.flag(units % excess != 0)
            units = units // excess
        else:
            units = units * 10 ** (places - opening.scale)
        computing = pl.col(COMPUTING)
        written = block.written(Name(OPENING_BALANCE_FACT))
        if written is None:
            block.flag_unwritten(computing)
            return units, zero_json
        given = opening.value.is_not_null()
        # more decimals than the places (10.000) would show in the available balance and what follows from it
        block.flag_unwritten(computing & given & (written.unknown | (written.decimals > places)))
        opening_json = block.decimal_json(opening.value, opening.scale, written.decimals, computing & given)
        return units, pl.when(given).then(opening_json).otherwise(zero_json)

    def _accrual_rate(self, block: BlockEvaluation) -> _AccrualRate | None:
        """Each row's accrual rate and its texts (None: every row flagged)."""
        accrual = self._mdf.accrual
        constant = json_by_columns.constant
        if accrual.rate is not None:
            units, scale = units_of(accrual.rate)
            return _AccrualRate(pl.lit(units, pl.Int128), scale, units, pl.lit(constant(accrual.rate)),
                                pl.lit(format_rate(accrual.rate)), pl.lit("flat rate"))
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
        selector = selector.fill_null(pl.lit("none"))  # per record a missing key (a used program's tier) is "none"
        scale = max((units_of(rate)[1] for rate in accrual.rates.values()), default=0)
        # a key the table lacks accrues at 0
        rate_units, rate_json, percent = pl.lit(0, pl.Int128), pl.lit(constant(ZERO)), pl.lit(format_rate(ZERO))
        bound = 0
        for selected, rate in accrual.rates.items():
            units, rate_scale = units_of(rate)
            units *= 10 ** (scale - rate_scale)
            chosen = selector == selected
            rate_units = pl.when(chosen).then(pl.lit(units, pl.Int128)).otherwise(rate_units)
            rate_json = pl.when(chosen).then(pl.lit(constant(rate))).otherwise(rate_json)
            percent = pl.when(chosen).then(pl.lit(format_rate(rate))).otherwise(percent)
            bound = max(bound, units)
        source = pl.concat_str([pl.lit(f"{accrual.rate_by.text} = "), selector])
        return _AccrualRate(rate_units, scale, bound, rate_json, percent, source)

    def _accrued(self, block: BlockEvaluation, basis: ColumnExpression, rate: _AccrualRate) -> tuple[pl.Expr, pl.Expr]:
        """basis × rate rounded, or the cap (rounded) where the unrounded product exceeds it: Int128 units at
        the places; and the accrual's formula."""
        scale, bound = basis.scale + rate.scale, basis.bound * rate.bound
        if bound > MAX_UNITS:
            raise NotByColumns("an accrual too large for 128-bit minor units")
        raw = pl.col(block.column(basis.value.cast(pl.Int128) * rate.units, "accrual"))
        rounded_units, rounded_bound = block.rounded(raw, scale, bound)
        rounded = pl.col(block.column(rounded_units, "accrual_rounded"))
        formula = pl.concat_str([block.amount_text(basis.value, basis.bound, basis.scale), pl.lit(" × "),
                                 rate.percent, pl.lit(" = "), block.amount_text(rounded, rounded_bound)])
        cap = self._mdf.accrual.cap
        if cap is None:
            return rounded, formula
        rounded_cap = block.rounding.round(cap)
        cap_units = int(rounded_cap.scaleb(block.places))
        capped = compare_constant(ColumnExpression(raw, pl.lit(False), ColumnKind.NUMBER, scale, bound, wide=True),
                                  ">", cap)
        capped_text = pl.lit(f", capped at {format_amount(rounded_cap, block.places)}")
        return (pl.when(capped).then(pl.lit(cap_units, pl.Int128)).otherwise(rounded),
                pl.concat_str([formula, pl.when(capped).then(capped_text).otherwise(pl.lit(""))]))

    def _claims(self, block: BlockEvaluation, available: pl.Expr) -> _Paid:
        """A line slot per claim rank, the claim of that rank of each row's partner, where it is payable; what
        they paid and the rejected claims."""
        claims = block.claims
        if claims is None or claims.frame.is_empty():
            return _Paid(pl.lit(0, pl.Int128), pl.lit(_ZERO_JSON), pl.lit(""))
        most = claims.frame.group_by(PARTNER_ID).len()["len"].max()
        assert isinstance(most, int)
        slots = min(most, MAX_CLAIMS_BY_COLUMNS)
        by_partner, due_bound = self._claims_by_partner(block, claims)
        block.frame = block.frame.join(by_partner, on=PARTNER_ID, how="left", maintain_order="left")
        count = pl.col(_CLAIM_COUNT).fill_null(0)
        block.flag((pl.col(_CLAIMS_NEED_RECORD).fill_null(False) | (count > slots)))
        any_payable = pl.col(_ANY_PAYABLE).fill_null(False)
        # a fund below zero pays a claim Decimal(0) per record (written "0", not at the places); a claim's date
        # before the year 1000 is not written as its result writes it
        block.flag_unwritten((any_payable & (available < 0)) | pl.col(_CLAIMS_UNWRITTEN).fill_null(False))
        rate_text = pl.lit(f"{self._mdf.claims.reimbursement.normalize():f}")
        rate_json = pl.lit(json_by_columns.constant(self._mdf.claims.reimbursement))
        fund = pl.when(available > 0).then(available).otherwise(pl.lit(0, pl.Int128))
        for slot in range(slots):
            def item(name: str, slot: int = slot) -> pl.Expr:
                return pl.col(name).list.get(slot, null_on_oob=True)

            due = item(_DUES)
            # what the per-record path finds still available (a line's input): what it paid before is the
            # payable dues before, up to a fund that is not negative
            still_available = pl.col(block.column(available - _least(item(_DUE_BEFORE), fund), "still_available"))
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

            inputs = pl.concat_str([pl.lit('{"amount":'), item(_AMOUNTS_JSON), pl.lit(',"still_available":'),
                                    block.amount_json(still_available), item(_INPUTS_TAILS)])
            block.add_line((count > slot) & item(_PAYABLE), "mdf_claim",
                           pl.concat_str([pl.lit(CLAIM_RULE_PREFIX), item(_CLAIM_IDS)]), description, paid,
                           due_bound, formula, basis=item(_BASES), rate=rate_text, basis_json=item(_AMOUNTS_JSON),
                           rate_json=rate_json, inputs_json=inputs)
        # paid in order until the fund (not below zero) is used up: the lower of all the dues and the fund
        paid_units = pl.col(block.column(_least(pl.col(_DUE_TOTAL).fill_null(0), fund), "fund_paid"))
        return _Paid(paid_units, pl.when(any_payable).then(block.amount_json(paid_units)).otherwise(pl.lit(_ZERO_JSON)),
                     pl.col(_REJECTED_JSON).fill_null(""))

    def _claims_by_partner(self, block: BlockEvaluation, claims: ClaimsByColumns) -> tuple[pl.LazyFrame, int]:
        """Each partner's claims in submission order, as lists: id, description and formula (up to what the
        fund decides), basis cell, due (units at the places, 0 for a rejected claim), the dues of the payable
        claims before it, whether it is payable, the amount's JSON and the end of its line's inputs' JSON;
        whether any needs the per-record path or is not written by columns, how many there are, the sum of
        their dues, whether any is payable, and the rejected ones' JSON. And the bound of a due."""
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
        limit_json: pl.Expr = pl.lit("")
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
            limit_json = pl.when(is_activity).then(
                pl.lit(f',"claim_limit":{json_by_columns.constant(claim_limit.amount)}')).otherwise(limit_json)
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
        dates = [pl.col(ACTIVITY_END), pl.col(SUBMITTED_ON)]
        frame = frame.with_columns(
            (pl.col(_DUES).cum_sum() - pl.col(_DUES)).over(PARTNER_ID).alias(_DUE_BEFORE),
            payable.alias(_PAYABLE),
            pl.concat_str([pl.col(ACTIVITY), pl.lit(" claim "), pl.col(CLAIM_ID),
                           pl.when(capped).then(capped_description).otherwise(pl.lit(""))]).alias(_DESCRIPTIONS),
            pl.concat_str([amount_text, pl.lit(f" × {format_rate(rules.reimbursement)} = "),
                           block.amount_text(due, due_bound),
                           pl.when(capped).then(capped_formula).otherwise(pl.lit(""))]).alias(_FORMULAS),
            block.plain_text(amount, claims.amount_scale).alias(_BASES),
            # str(Decimal) of the amount as the claim gave it: digits, a sign, a point and an exponent, nothing
            # JSON escapes
            pl.concat_str([pl.lit('"'), pl.col(AMOUNT_TEXT), pl.lit('"')]).alias(_AMOUNTS_JSON),
            pl.concat_str([pl.lit(',"activity_end":'), _date_json(dates[0]), pl.lit(',"submitted_on":'),
                           _date_json(dates[1]), limit_json, pl.lit("}")]).alias(_INPUTS_TAILS),
            pl.any_horizontal([(date.dt.year() < 1000).fill_null(False) for date in dates]).alias(_CLAIMS_UNWRITTEN),
            pl.when(~payable & ~pl.col(NEEDS_RECORD)).then(pl.concat_str([
                pl.lit('{"claim_id":'), json_by_columns.string(pl.col(CLAIM_ID)), pl.lit(',"reasons":['),
                self._rejection_reasons_json(), pl.lit("]}")])).alias(_REJECTED_JSON))
        return frame.group_by(PARTNER_ID).agg(
            pl.col(CLAIM_ID).alias(_CLAIM_IDS), pl.col(_DESCRIPTIONS), pl.col(_FORMULAS), pl.col(_BASES),
            pl.col(_DUES), pl.col(_DUE_BEFORE), pl.col(_PAYABLE), pl.col(_AMOUNTS_JSON), pl.col(_INPUTS_TAILS),
            pl.col(NEEDS_RECORD).any().alias(_CLAIMS_NEED_RECORD), pl.col(_CLAIMS_UNWRITTEN).any(),
            pl.len().alias(_CLAIM_COUNT), pl.col(_DUES).sum().alias(_DUE_TOTAL),
            pl.col(_PAYABLE).any().alias(_ANY_PAYABLE),
            pl.col(_REJECTED_JSON).str.join(",")), due_bound

    def _rejection_reasons_json(self) -> pl.Expr:
        """A claim's reasons as :meth:`MdfCalculator.rejection_reasons` gives them, as JSON strings separated by
        commas (a claim with a problem of its own goes per record: its problems are not here)."""
        rules = self._mdf.claims
        eligible = ", ".join(rules.activities)
        reasons = [pl.when(~pl.col(ACTIVITY).is_in(rules.activities)).then(pl.concat_str([
            pl.lit("activity '"), pl.col(ACTIVITY), pl.lit(f"' is not eligible (eligible: {eligible})")]))]
        if rules.requires_preapproval:
            reasons.append(pl.when(~pl.col(PREAPPROVED)).then(pl.lit("the activity was not pre-approved")))
        if rules.submit_within_days is not None:
            days = (pl.col(SUBMITTED_ON) - pl.col(ACTIVITY_END)).dt.total_days()
            reasons.append(pl.when(pl.col(ACTIVITY_END).is_null() | pl.col(SUBMITTED_ON).is_null())
                           .then(pl.lit("activity_end and submitted_on are needed to check the submission window"))
                           .when(days > rules.submit_within_days).then(pl.concat_str([
                               pl.lit("submitted "), days.cast(pl.String),
                               pl.lit(f" days after the activity ended (limit {rules.submit_within_days})")])))
        reasons.append(pl.when(pl.col(AMOUNT) <= 0).then(
            pl.concat_str([pl.lit("amount "), pl.col(AMOUNT_TEXT), pl.lit(" is not positive")])))
        return pl.concat_str([pl.when(reason.is_not_null()).then(json_by_columns.string(reason)) for reason in reasons],
                             separator=",", ignore_nulls=True)


def _date_json(date: pl.Expr) -> pl.Expr:
    return pl.when(date.is_null()).then(pl.lit("null")).otherwise(
        pl.concat_str([pl.lit('"'), date.dt.to_string("%Y-%m-%d"), pl.lit('"')]))


def _least(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.when(a < b).then(a).otherwise(b)
