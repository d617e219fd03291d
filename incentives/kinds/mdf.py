"""MDF programs: accrue a fund, pay eligible claims from it in order (SPEC "MDF programs")."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Mapping

from pydantic import Field
from typing_extensions import TypedDict

from .. import fields
from ..fields import ExpressionField, NonNegativeAmount, Percent0To100, PositiveAmount, Rate, StrictModel
from ..money import exact_add, exact_multiply, exact_subtract, format_amount, format_rate
from ..result_parts import FactValue
from ..rules.backend import Condition
from ..yamlsource import Path
from .base import ZERO, Compile, Evaluation, Kind, input_names, inputs_from, number

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
        self._claim_limits = claim_limits(claims.activities, claims.max_per_claim, claims.max_by_activity)
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


def claim_limits(activities: list[str], max_per_claim: Decimal | None,
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


MDF = Kind(name="mdf", section="mdf", model=Mdf, calculator=MdfCalculator, check=check_mdf,
           base_line_kinds=frozenset({"mdf_claim"}), number_keys=frozenset({"on"}),
           optional_facts=frozenset({OPENING_BALANCE_FACT}), takes_claims=True, details=FundDetails,
           explain_details=explain_fund, explain_after_reasons=explain_rejected_claims,
           by_columns="incentives.kinds.mdf_by_columns:MdfByColumns")
