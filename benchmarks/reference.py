"""A hand-written, plain-Python reference for the three benchmark programs.

What a developer would write without the library: the rules of
``benchmarks/programs/*.yaml`` typed in as code, exact ``Decimal`` arithmetic,
one ``dict`` per payout line with its formula text, one ``dict`` per result.
No framework, no expression language, no models: the yardstick the engine's
speed is measured against (``ratio = engine time / reference time``).

It computes the same results as the engine for the records ``synth`` makes
(same lines, amounts, formulas, tiers, reasons and details), so a test can
check that both agree. It is not a general implementation: it knows only the
three benchmark programs and the shapes of the synthetic records.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from typing import Any, Iterable, Mapping

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

PERIOD_START = date(2027, 1, 1)  # 2027-Q1 with a fiscal year starting 01-01
PERIOD_END = date(2027, 3, 31)
PERIOD_DAYS = Decimal(90)


# --- money helpers ------------------------------------------------------------------------


def money(value: Decimal) -> Decimal:
    """Round a line amount to cents, half up; never a negative zero."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if not rounded and rounded.is_signed() else rounded


def amount_text(value: Decimal) -> str:
    """``1,234.50``: separators, at least 2 decimals, extra exact digits kept."""
    text = format(value, "z,f")
    point = text.find(".")
    if point < 0:
        return text + ".00"
    decimals = len(text) - point - 1
    if decimals == 2:
        return text
    if decimals < 2:
        return text + "0"
    keep = max(2, len(text.rstrip("0")) - point - 1)
    return text[: point + 1 + keep]


def rate_text(value: Decimal) -> str:
    """``0.035`` -> ``3.5%``."""
    text = format(value.scaleb(2, EXACT), "zf")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


FOUR_PLACES = Decimal("0.0001")


def ratio_text(value: Decimal) -> str:
    """A computed ratio as a percent: exact up to 4 decimals, else rounded half-even and marked ``≈``."""
    percent = value.scaleb(2, EXACT)
    rounded = percent.quantize(FOUR_PLACES, rounding=ROUND_HALF_EVEN)
    if rounded == percent:
        return rate_text(value)
    return "≈" + rate_text(rounded.scaleb(-2, EXACT))


def line(n: int, kind: str, rule_id: str, description: str, amount: Decimal, formula: str,
         basis: Decimal | None = None, rate: Decimal | None = None,
         inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"n": n, "kind": kind, "rule_id": rule_id, "description": description, "basis": basis,
            "rate": rate, "amount": amount, "formula": formula, "inputs": inputs if inputs is not None else {}}


def result(partner_id: str, program_id: str, status: str, *, tier: str | None = None,
           next_tier: dict | None = None, attainment: Decimal | None = None, lines: list | None = None,
           total: Decimal = ZERO, reasons: list | None = None, errors: list | None = None,
           details: dict | None = None, period: str = "2027-Q1") -> dict[str, Any]:
    return {"partner_id": partner_id, "period": period, "program_id": program_id, "program_version": 1,
            "currency": "USD", "status": status, "tier": tier, "next_tier": next_tier, "attainment": attainment,
            "lines": lines if lines is not None else [], "total": total, "reasons": reasons or [],
            "errors": errors or [], "details": details if details is not None else {}}


def missing(facts: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name not in facts]


# --- partner_tier ---------------------------------------------------------------------------

TIER_LEVELS = (  # name, from, rate, rate text, requirement text
    ("Registered", Decimal("0"), Decimal("0.005"), "0.5%", None),
    ("Silver", Decimal("100000"), Decimal("0.02"), "2%", "certifications.sales >= 2"),
    ("Gold", Decimal("500000"), Decimal("0.035"), "3.5%", "certifications.technical >= 2"),
    ("Platinum", Decimal("2000000"), Decimal("0.05"), "5%",
     "certifications.technical >= 4 and certifications.sales >= 4"),
)
TIER_CAP = Decimal("250000.00")
TIER_MINIMUM = Decimal("50")
NPS_EXTRA = Decimal("1.10") - ONE


def partner_tier(partner_id: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    absent = missing(facts, ("certifications.sales", "certifications.technical", "revenue", "status"))
    if absent:
        return result(partner_id, "partner_tier", "error", errors=[f"missing facts: {', '.join(absent)}"])
    status = facts["status"]
    sales = facts["certifications.sales"]
    technical = facts["certifications.technical"]
    revenue = facts["revenue"]
    returns = facts.get("returns", ZERO)
    nps = facts.get("nps", ZERO)
    new_logos = facts.get("new_logos", ZERO)
    net_revenue = revenue - returns
    reasons = []
    if status != "active":
        reasons.append({"rule_id": "active", "description": "Partner agreement is active",
                        "when": "status == 'active'", "values": {"status": status}})
    if not sales >= 1:
        reasons.append({"rule_id": "trained", "description": "At least one sales certification",
                        "when": "certifications.sales >= 1", "values": {"certifications.sales": sales}})
    if reasons:
        return result(partner_id, "partner_tier", "ineligible", reasons=reasons, details={"places": 2})
    met = (True, sales >= 2, technical >= 2, technical >= 4 and sales >= 4)
    achieved = -1
    for index, (_, start, _, _, _) in enumerate(TIER_LEVELS):
        if start <= net_revenue and met[index]:
            achieved = index
    next_tier = None
    if achieved + 1 < len(TIER_LEVELS):
        name, start, _, _, requires = TIER_LEVELS[achieved + 1]
        next_tier = {"name": name, "gap": max(start - net_revenue, ZERO),
                     "unmet": [requires] if requires is not None and not met[achieved + 1] else []}
    lines = []
    tier = None
    if achieved >= 0:
        tier, _, rate, rate_shown, _ = TIER_LEVELS[achieved]
        amount = money(net_revenue * rate)
        lines.append(line(1, "base", f"tier:{tier}", f"{tier} tier rate on net_revenue", amount,
                          f"{amount_text(net_revenue)} × {rate_shown} = {amount_text(amount)}",
                          net_revenue, rate, {"net_revenue": net_revenue}))
    subtotal = sum(item["amount"] for item in lines)
    if nps >= 50:
        amount = money(subtotal * NPS_EXTRA)
        lines.append(line(len(lines) + 1, "multiplier", "nps_kicker", "NPS of 50 or more", amount,
                          f"{amount_text(subtotal)} × (110% − 100%) = {amount_text(amount)}", subtotal, NPS_EXTRA))
        subtotal += amount
    if new_logos >= 1:
        raw = 500 * new_logos
        amount = money(raw)
        lines.append(line(len(lines) + 1, "bonus", "new_logo", "500 per new logo", amount,
                          f"500 * new_logos = {amount_text(amount)}", raw, None, {"new_logos": new_logos}))
        subtotal += amount
    if subtotal > TIER_CAP:
        cut = TIER_CAP - subtotal
        lines.append(line(len(lines) + 1, "cap", "cap", "cap of 250,000.00 per partner and period", cut,
                          f"250,000.00 − {amount_text(subtotal)} = {amount_text(cut)}", subtotal, None,
                          {"cap": TIER_CAP}))
        subtotal = TIER_CAP
    if ZERO < subtotal < TIER_MINIMUM:
        lines.append(line(len(lines) + 1, "minimum", "min_payout", "below the minimum payout of 50.00", -subtotal,
                          f"{amount_text(subtotal)} < 50.00: pays 0.00 = {amount_text(-subtotal)}", subtotal, None,
                          {"min_payout": TIER_MINIMUM}))
        subtotal = ZERO
    return result(partner_id, "partner_tier", "ok", tier=tier, next_tier=next_tier, lines=lines,
                  total=sum((item["amount"] for item in lines), ZERO), details={"places": 2})


# --- co_marketing ---------------------------------------------------------------------------

MDF_RATES = {"Registered": Decimal("0.005"), "Silver": Decimal("0.01"), "Gold": Decimal("0.02"),
             "Platinum": Decimal("0.03")}
MDF_CAP = Decimal("50000")
REIMBURSEMENT = Decimal("0.50")
ACTIVITIES = ("event", "digital", "webinar", "content", "training")
ACTIVITIES_TEXT = ", ".join(ACTIVITIES)


def co_marketing(partner_id: str, facts: Mapping[str, Any], tier: dict[str, Any],
                 claims: list[dict[str, Any]]) -> dict[str, Any]:
    if tier["status"] == "error":
        return result(partner_id, "co_marketing", "error",
                      errors=["uses 'partner_tier', whose result for this record is an error"])
    if "revenue" not in facts:
        return result(partner_id, "co_marketing", "error", errors=["missing facts: revenue"])
    eligible = tier["status"] == "ok"
    if not eligible:
        return result(partner_id, "co_marketing", "ineligible", details={"places": 2}, reasons=[
            {"rule_id": "tiered", "description": "Eligible in the partner tier program",
             "when": "partner_tier.eligible", "values": {"partner_tier.eligible": False}}])
    revenue = facts["revenue"]
    opening = facts.get("mdf_balance", ZERO)
    selector = "none" if tier["tier"] is None else tier["tier"]
    rate = MDF_RATES.get(selector, ZERO)
    raw = revenue * rate
    capped = raw > MDF_CAP
    accrued = money(MDF_CAP if capped else raw)
    available = opening + accrued
    accrual_formula = f"{amount_text(revenue)} × {rate_text(rate)} = {amount_text(money(raw))}"
    if capped:
        accrual_formula += f", capped at {amount_text(accrued)}"
    lines = []
    rejected = []
    paid = ZERO
    for claim in sorted(claims, key=lambda c: (c["submitted_on"], c["claim_id"])):
        reasons = list(claim.get("problems", ()))
        if claim["activity"] not in ACTIVITIES:
            reasons.append(f"activity '{claim['activity']}' is not eligible (eligible: {ACTIVITIES_TEXT})")
        if not claim["preapproved"]:
            reasons.append("the activity was not pre-approved")
        days = (claim["submitted_on"] - claim["activity_end"]).days
        if days > 60:
            reasons.append(f"submitted {days} days after the activity ended (limit 60)")
        if claim["amount"] <= ZERO:
            reasons.append(f"amount {claim['amount']} is not positive")
        if reasons:
            rejected.append({"claim_id": claim["claim_id"], "reasons": reasons})
            continue
        due = money(claim["amount"] * REIMBURSEMENT)
        amount = min(due, max(available - paid, ZERO))
        formula = f"{amount_text(claim['amount'])} × 50% = {amount_text(due)}"
        description = f"{claim['activity']} claim {claim['claim_id']}"
        if amount < due:
            formula += f", limited to the {amount_text(amount)} still available"
            description += " (partial: fund exhausted)" if amount > ZERO else " (unpaid: fund exhausted)"
        lines.append(line(len(lines) + 1, "mdf_claim", f"claim:{claim['claim_id']}", description, amount, formula,
                          claim["amount"], REIMBURSEMENT,
                          {"amount": claim["amount"], "still_available": available - paid,
                           "activity_end": claim["activity_end"], "submitted_on": claim["submitted_on"]}))
        paid += amount
    details = {"places": 2, "opening": opening, "accrued": accrued, "accrual_rate": rate,
               "accrual_rate_source": f"partner_tier.tier = {selector}", "accrual_formula": accrual_formula,
               "accrual_inputs": {"revenue": revenue}, "available": available, "paid": paid,
               "closing": available - paid, "rejected_claims": rejected}
    return result(partner_id, "co_marketing", "ok", lines=lines, total=sum((l["amount"] for l in lines), ZERO),
                  details=details)


# --- sales_goals ----------------------------------------------------------------------------

CURVE = ((Decimal("0.50"), Decimal("0.25")), (Decimal("0.80"), Decimal("0.50")),
         (Decimal("1.00"), Decimal("1.00")), (Decimal("1.50"), Decimal("2.00")))
ATTAINMENT_CAP = Decimal("1.50")
REVENUE_WEIGHT = Decimal("0.70")
LOGO_WEIGHT = Decimal("0.30")
GOAL_CAP = Decimal("60000")
ACCELERATOR = Decimal("0.10")
GOAL_BUDGET = Decimal("20000000")


def curve_factor(weighted: Decimal) -> Decimal:
    if weighted < CURVE[0][0]:
        return ZERO
    if weighted >= CURVE[-1][0]:
        return CURVE[-1][1]
    for (low, low_factor), (high, high_factor) in zip(CURVE, CURVE[1:]):
        if low <= weighted < high:
            return low_factor + (high_factor - low_factor) * (weighted - low) / (high - low)
    raise AssertionError("unreachable")


def sales_goals(partner_id: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    absent = missing(facts, ("logo_quota", "revenue", "revenue_quota", "target_incentive"))
    if absent:
        return result(partner_id, "sales_goals", "error", errors=[f"missing facts: {', '.join(absent)}"])
    revenue = facts["revenue"]
    quota = facts["revenue_quota"]
    logos = facts.get("new_logos", ZERO)
    logo_quota = facts["logo_quota"]
    incentive = facts["target_incentive"]
    joined = facts.get("joined_on")
    fraction = ONE
    if joined is not None and joined > PERIOD_START:
        fraction = ZERO if joined > PERIOD_END else Decimal((PERIOD_END - joined).days + 1) / PERIOD_DAYS
    goals = []
    weighted = ZERO
    for goal_id, actual, target, weight in (("revenue", revenue, quota, REVENUE_WEIGHT),
                                            ("logos", logos, logo_quota, LOGO_WEIGHT)):
        if target == ZERO:
            return result(partner_id, "sales_goals", "error",
                          errors=[f"goal '{goal_id}' has a target of zero ({'revenue_quota' if goal_id == 'revenue' else 'logo_quota'})"])
        if fraction != ONE:
            target *= fraction
        attainment = actual / target
        if attainment > ATTAINMENT_CAP:
            attainment = ATTAINMENT_CAP
        weighted += weight * attainment
        goals.append({"id": goal_id, "metric": actual, "target": target, "attainment": attainment, "weight": weight})
    factor = curve_factor(weighted)
    basis = incentive * fraction if fraction != ONE else incentive
    amount = money(basis * factor)
    factor_text = ratio_text(factor)
    lines = [line(1, "base", "goal:payout",
                  f"target_incentive at factor {factor_text} for weighted attainment {ratio_text(weighted)}",
                  amount, f"{amount_text(basis)} × {factor_text} = {amount_text(amount)}", basis, factor,
                  {goal["id"]: goal["attainment"] for goal in goals})]
    subtotal = amount
    if revenue >= 2 * quota:
        raw = ACCELERATOR * incentive
        bonus = money(raw)
        lines.append(line(2, "bonus", "accelerator", "accelerator (revenue >= 2 * revenue_quota)", bonus,
                          f"10% * target_incentive = {amount_text(bonus)}", raw, None,
                          {"target_incentive": incentive}))
        subtotal += bonus
    cap = money(GOAL_CAP * fraction)
    if subtotal > cap:
        prorated = "" if fraction == ONE else " (cap 60,000.00 × active fraction)"
        lines.append(line(len(lines) + 1, "cap", "cap", f"cap of {amount_text(cap)} per partner and period{prorated}",
                          cap - subtotal, f"{amount_text(cap)} − {amount_text(subtotal)} = {amount_text(cap - subtotal)}",
                          subtotal, None, {"cap": cap}))
    return result(partner_id, "sales_goals", "ok", attainment=weighted, lines=lines,
                  total=sum((l["amount"] for l in lines), ZERO),
                  details={"places": 2, "proration": fraction, "goals": goals, "factor": factor})


# --- a run ----------------------------------------------------------------------------------


def apportion(items: list[tuple[str, Decimal]], target: Decimal) -> list[Decimal]:
    """Largest remainder in cents; ties by partner id (items come sorted by partner id)."""
    cents = [int(amount.scaleb(2, EXACT)) for _, amount in items]
    target_cents = int(target.scaleb(2, EXACT))
    total = sum(cents)
    floors, remainders = [], []
    for value in cents:
        whole, rest = divmod(value * target_cents, total)
        floors.append(whole)
        remainders.append(rest)
    short = target_cents - sum(floors)
    if short:
        order = sorted((i for i, rest in enumerate(remainders) if rest), key=lambda i: (-remainders[i], items[i][0]))
        for i in order[:short]:
            floors[i] += 1
    return [Decimal(units).scaleb(-2, EXACT) for units in floors]


def apply_budget(results: list[dict[str, Any]], budget: Decimal) -> None:
    paying = [r for r in results if r["status"] == "ok" and r["total"] > ZERO]
    total = sum((r["total"] for r in paying), ZERO)
    if total <= budget:
        return
    paying.sort(key=lambda r: r["partner_id"])
    factor = budget / total
    factor_text = rate_text(factor.quantize(Decimal("1E-6")))
    budget_text, total_text = amount_text(budget), amount_text(total)
    for r, new_total in zip(paying, apportion([(r["partner_id"], r["total"]) for r in paying], budget)):
        adjustment = new_total - r["total"]
        r["lines"].append(line(
            len(r["lines"]) + 1, "budget", "budget",
            f"program budget {budget_text} over {total_text} requested: scaled by {factor_text}", adjustment,
            f"{amount_text(r['total'])} × {budget_text} / {total_text} → {amount_text(new_total)} "
            f"(largest remainder) = {amount_text(adjustment)}", r["total"], factor,
            {"budget": budget, "requested": total}))
        r["total"] = new_total


def evaluate(facts: Mapping[str, Any], claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The three programs' results for one partner record."""
    partner_id = facts["partner_id"]
    tier = partner_tier(partner_id, facts)
    return [tier, co_marketing(partner_id, facts, tier, claims), sales_goals(partner_id, facts)]


def run(records: Iterable[Mapping[str, Any]], claims: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """Every record's results in output order, the goal budget applied, totals and counts per program."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    claims = list(claims)
    for claim in claims:
        counts[claim["claim_id"]] += 1
    for claim in claims:
        if counts[claim["claim_id"]] > 1:
            claim = {**claim, "problems": (f"claim_id {claim['claim_id']!r} occurs {counts[claim['claim_id']]} times",)}
        by_key[(claim["partner_id"], claim["period"])].append(claim)
    results = []
    for facts in records:
        results.extend(evaluate(facts, by_key.get((facts["partner_id"], facts["period"]), [])))
    results.sort(key=lambda r: (r["partner_id"], r["program_id"], r["period"]))
    apply_budget([r for r in results if r["program_id"] == "sales_goals"], GOAL_BUDGET)
    totals = {"partner_tier": ZERO, "co_marketing": ZERO, "sales_goals": ZERO}
    statuses = {program_id: {"ok": 0, "ineligible": 0, "error": 0} for program_id in totals}
    for r in results:
        totals[r["program_id"]] += r["total"]
        statuses[r["program_id"]][r["status"]] += 1
    return {"results": results, "totals": totals, "counts": statuses}
