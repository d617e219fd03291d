"""MDF programs: accrue a fund, pay eligible claims from it in order (SPEC "MDF programs")."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Mapping

import polars as pl
from pydantic import Field
from typing_extensions import TypedDict

from .. import fields
from ..claims_by_columns import (ACTIVITY, ACTIVITY_END, AMOUNT, CLAIM_ID, NEEDS_RECORD, PREAPPROVED, SUBMITTED_ON,
                                 ClaimsByColumns)
from ..fields import ExpressionField, NonNegativeAmount, Percent0To100, PositiveAmount, Rate, StrictModel
from ..inputs import PARTNER_ID
from ..money import exact_add, exact_multiply, exact_subtract, format_amount, format_rate
from ..result_parts import FactValue
from ..rules.ast import Name
from ..rules.backend import Condition
from ..rules.columns import MAX_UNITS, ColumnExpression, NotByColumns
from ..rules.columns import Kind as ColumnKind
from ..yamlsource import Path
from .base import ZERO, Compile, Evaluation, Kind, input_names, inputs_from, number
from .block import BlockEvaluation, compare_constant, units_of

if TYPE_CHECKING:
    from ..inputs import Claim

OPENING_BALANCE_FACT = "mdf_balance"
#: A paid claim's line names it: ``rule_id`` is this prefix and the claim id.
CLAIM_RULE_PREFIX = "claim:"
_OPENING_WHAT = f"opening balance ({OPENING_BALANCE_FACT})"


class Accrual(StrictModel):
    on: ExpressionField
    rate: Percent0To100 | None = None
    rate_by: ExpressionField | None = None
    rates: dict[str, Percent0To100] | None = None
    cap: NonNegativeAmount | None = None


class ClaimRules(StrictModel):
    reimbursement: Annotated[Rate, Field(gt=0, le=1)]
    activities: list[str] = Field(min_length=1)
    requires_preapproval: bool = False
    submit_within_days: int | None = Field(None, ge=0, strict=True)
    #: the most one claim pays, after the reimbursement rate (and never more than the fund has left)
    max_per_claim: PositiveAmount | None = None
    #: the most one claim of an activity pays; with max_per_claim too, the lower limit applies
    max_by_activity: dict[str, PositiveAmount] = {}


class Mdf(StrictModel):
    accrual: Accrual
    claims: ClaimRules
    #: what happens to a fund's balance at the end of a fiscal year, on a ledger: it stays, or it expires
    expiry: Literal["never", "fiscal_year"] = "never"


class RejectedClaim(TypedDict):
    claim_id: str
    reasons: list[str]


class FundDetails(TypedDict, total=False):
    """What an MDF program's result carries: its fund's accrual, balances and the claims it refused."""

    opening: Decimal
    accrued: Decimal
    accrual_rate: Decimal
    accrual_rate_source: str
    accrual_formula: str
    accrual_inputs: dict[str, FactValue]
    available: Decimal
    paid: Decimal
    closing: Decimal
    rejected_claims: list[RejectedClaim]


def explain_fund(details: Mapping[str, Any], places: int) -> list[str]:
    """The fund in one line: opening + accrued = available; paid; closing."""
    if "accrued" not in details:
        return []
    return [f"  fund: opening {format_amount(details['opening'], places)} + accrued "
            f"{format_amount(details['accrued'], places)} ({details['accrual_formula']}; "
            f"{details['accrual_rate_source']}) = available {format_amount(details['available'], places)}; "
            f"paid {format_amount(details['paid'], places)}; closing {format_amount(details['closing'], places)}"]


def explain_rejected_claims(details: Mapping[str, Any], places: int) -> list[str]:
    return [f"  rejected claim {rejected['claim_id']}: {'; '.join(rejected['reasons'])}"
            for rejected in details.get("rejected_claims", [])]


def check_mdf(mdf: Mdf, rounding: fields.Rounding) -> list[tuple[Path, str]]:
    accrual = mdf.accrual
    flat = accrual.rate is not None
    table = accrual.rate_by is not None or accrual.rates is not None
    if flat == table:
        return [(("mdf", "accrual"), "accrual needs either 'rate' or both 'rate_by' and 'rates'")]
    if table and (accrual.rate_by is None or accrual.rates is None):
        missing = "rates" if accrual.rates is None else "rate_by"
        return [(("mdf", "accrual"), f"'rate_by' and 'rates' go together: '{missing}' is missing")]
    return _check_claim_limits(mdf.claims, rounding.places)


def _check_claim_limits(claims: ClaimRules, places: int) -> list[tuple[Path, str]]:
    """A limit names an eligible activity and, like a cap, is an amount a claim line can pay exactly."""
    found = []
    limits: list[tuple[Path, str, Decimal]] = []
    if claims.max_per_claim is not None:
        limits.append((("mdf", "claims", "max_per_claim"), "max_per_claim", claims.max_per_claim))
    for activity, limit in claims.max_by_activity.items():
        path = ("mdf", "claims", "max_by_activity", activity)
        limits.append((path, f"max_by_activity.{activity}", limit))
        if activity not in claims.activities:
            close = difflib.get_close_matches(activity, claims.activities, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            found.append((path, f"max_by_activity: '{activity}' is not an eligible activity "
                                f"(claims.activities: {', '.join(claims.activities)}){hint}"))
    for path, key, limit in limits:
        if len(format(limit, "f").partition(".")[2].rstrip("0")) > places:
            found.append((path, f"{key}: {limit} has more decimals than rounding.places ({places})"))
    return found


def _claim_order(claim: "Claim") -> tuple:
    return claim.submitted_on is None, claim.submitted_on or 0, claim.claim_id


class MdfCalculator:
    def __init__(self, mdf: Mdf, rounding: fields.Rounding, compile: Compile):
        accrual, claims = mdf.accrual, mdf.claims
        self._on = accrual.on
        self._on_value = compile(accrual.on)
        self._rate = accrual.rate
        self._rate_by = accrual.rate_by
        self._rate_by_value = compile(accrual.rate_by) if accrual.rate_by is not None else None
        self._rates = dict(accrual.rates or {})
        self._accrual_cap = accrual.cap
        self._reimbursement = claims.reimbursement
        self._reimbursement_text = format_rate(claims.reimbursement)
        self._activities = frozenset(claims.activities)
        self._activities_text = ", ".join(claims.activities)
        self._requires_preapproval = claims.requires_preapproval
        self._submit_within_days = claims.submit_within_days
        self._claim_limits = _claim_limits(claims.activities, claims.max_per_claim, claims.max_by_activity)
        self._on_what = f"accrual basis ({accrual.on.text})"
        self._on_inputs = input_names(accrual.on)
        self._rate_texts = {rate: format_rate(rate) for rate in
                            [*self._rates.values(), *([self._rate] if self._rate is not None else []), ZERO]}

    def conditions(self) -> list[Condition]:
        return []

    def names(self) -> set[str]:
        return set(self._on.names | (self._rate_by.names if self._rate_by is not None else frozenset()))

    def base(self, evaluation: Evaluation) -> None:
        facts = evaluation.facts
        rounding = evaluation.rounding
        places = rounding.places
        opening = facts.get(OPENING_BALANCE_FACT, ZERO)
        if type(opening) is not Decimal:
            number(opening, _OPENING_WHAT)
        basis = self._on_value(facts)
        if type(basis) is not Decimal:
            number(basis, self._on_what)
        rate, rate_source = self._accrual_rate(facts)
        raw = exact_multiply(basis, rate)
        rounded = rounding.round(raw)
        capped = self._accrual_cap is not None and raw > self._accrual_cap
        accrued = rounding.round(self._accrual_cap) if capped else rounded
        available = exact_add(opening, accrued)
        rate_text = self._rate_texts.get(rate) or format_rate(rate)
        accrual_formula = f"{format_amount(basis, places)} × {rate_text} = {format_amount(rounded, places)}"
        if capped:
            accrual_formula += f", capped at {format_amount(accrued, places)}"
        paid = ZERO
        rejected: list[dict[str, Any]] = []
        claims = evaluation.claims
        for claim in (sorted(claims, key=_claim_order) if len(claims) > 1 else claims):
            reasons = self.rejection_reasons(claim)
            if reasons:
                rejected.append({"claim_id": claim.claim_id, "reasons": reasons})
                continue
            paid = exact_add(paid, self._pay(evaluation, claim, exact_subtract(available, paid)))
        # One store per key: about half the time of building a dict and update()-ing with it.
        details = evaluation.details
        details["opening"] = opening
        details["accrued"] = accrued
        details["accrual_rate"] = rate
        details["accrual_rate_source"] = rate_source
        details["accrual_formula"] = accrual_formula
        details["accrual_inputs"] = inputs_from(self._on_inputs, facts)
        details["available"] = available
        details["paid"] = paid
        details["closing"] = exact_subtract(available, paid)
        details["rejected_claims"] = rejected

    def _accrual_rate(self, facts: dict[str, Any]) -> tuple[Decimal, str]:
        if self._rate is not None:
            return self._rate, "flat rate"
        assert self._rate_by_value is not None and self._rate_by is not None
        key = self._rate_by_value(facts)
        selector = "none" if key is None else str(key)
        return self._rates.get(selector, ZERO), f"{self._rate_by.text} = {selector}"

    def rejection_reasons(self, claim: "Claim") -> list[str]:
        """Every reason a claim cannot be paid; empty when it is eligible."""
        reasons = list(claim.problems)
        if claim.activity not in self._activities:
            reasons.append(f"activity '{claim.activity}' is not eligible (eligible: {self._activities_text})")
        if self._requires_preapproval and not claim.preapproved:
            reasons.append("the activity was not pre-approved")
        if self._submit_within_days is not None:
            if claim.activity_end is None or claim.submitted_on is None:
                reasons.append("activity_end and submitted_on are needed to check the submission window")
            else:
                days = (claim.submitted_on - claim.activity_end).days
                if days > self._submit_within_days:
                    reasons.append(f"submitted {days} days after the activity ended "
                                   f"(limit {self._submit_within_days})")
        if claim.amount is not None and claim.amount <= ZERO:
            reasons.append(f"amount {claim.amount} is not positive")
        return reasons

    def _pay(self, evaluation: Evaluation, claim: "Claim", still_available: Decimal) -> Decimal:
        rounding = evaluation.rounding
        places = rounding.places
        assert claim.amount is not None
        due = rounding.round(exact_multiply(claim.amount, self._reimbursement))
        formula = (f"{format_amount(claim.amount, places)} × {self._reimbursement_text} = "
                   f"{format_amount(due, places)}")
        description = f"{claim.activity} claim {claim.claim_id}"
        # the claim id is in rule_id; inputs hold only typed values, so they read back exactly
        inputs = {"amount": claim.amount, "still_available": still_available,
                  "activity_end": claim.activity_end, "submitted_on": claim.submitted_on}
        limit = self._claim_limits.get(claim.activity)
        if limit is not None:
            inputs["claim_limit"] = limit.amount
            if due > limit.amount:
                due = rounding.round(limit.amount)  # exact already (checked at load); rounding gives it the places
                formula += f", capped at {format_amount(due, places)} {limit.per}"
                description += f" (capped at the limit {limit.per})"
        amount = min(due, max(still_available, ZERO))
        if amount < due:
            formula += f", limited to the {format_amount(amount, places)} still available"
            description += " (partial: fund exhausted)" if amount > ZERO else " (unpaid: fund exhausted)"
        evaluation.line("mdf_claim", f"{CLAIM_RULE_PREFIX}{claim.claim_id}", description, amount, formula,
                        claim.amount, self._reimbursement, inputs)
        return amount


@dataclass(frozen=True, slots=True)
class ClaimLimit:
    """The most one claim of an activity pays, and which limit it is (``per claim``, ``per event claim``)."""

    amount: Decimal
    per: str


def _claim_limits(activities: list[str], max_per_claim: Decimal | None,
                  max_by_activity: dict[str, Decimal]) -> dict[str, ClaimLimit]:
    """Each eligible activity's limit: the lower of max_per_claim and its own; none when neither is set."""
    limits = {}
    for activity in activities:
        own = max_by_activity.get(activity)
        if own is not None and (max_per_claim is None or own < max_per_claim):
            limits[activity] = ClaimLimit(own, f"per {activity} claim")
        elif max_per_claim is not None:
            limits[activity] = ClaimLimit(max_per_claim, "per claim")
    return limits


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

    def __init__(self, mdf: Mdf, rounding: fields.Rounding):
        self._mdf = mdf
        claims = mdf.claims
        self._limits = _claim_limits(claims.activities, claims.max_per_claim, claims.max_by_activity)

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


MDF = Kind(name="mdf", section="mdf", model=Mdf, calculator=MdfCalculator, check=check_mdf,
           base_line_kinds=frozenset({"mdf_claim"}), number_keys=frozenset({"on"}),
           optional_facts=frozenset({OPENING_BALANCE_FACT}), takes_claims=True, details=FundDetails,
           explain_details=explain_fund, explain_after_reasons=explain_rejected_claims, by_columns=MdfByColumns)
