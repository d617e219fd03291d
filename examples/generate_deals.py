#!/usr/bin/env python3
"""Generate the bundled deal registrations: a year and a quarter (2026-Q1 .. 2027-Q1) for the example partners.

    python examples/generate_deals.py            # rewrites examples/deals_2026_2027.csv

The deals are made from ``examples/facts_2027Q1.csv`` (``generate_facts.py``)
with a seeded generator, so the same inputs always give a byte-identical file.
They agree with the facts file where the two overlap: for every partner, the
``programs/deal_registrations.yaml`` measures of 2027-Q1 are that partner's
``registered_deals``, ``registered_deals_won`` and ``registered_deal_value``
(the won deals' amounts add up to it to the cent). The four quarters of 2026
are the same partners earlier, a little smaller on average. It also writes
``examples/facts_2027Q1_without_deals.csv``: the facts file without those three
columns, for ``incentives run --transactions deals=...`` to compute them.

Columns: ``deal_id``, ``partner_id``, ``registered_on`` (the day the deal was
registered, which puts it in its quarter), ``stage`` (``won``, ``lost`` or
``open``), ``amount`` (USD), ``customer_id``, ``new_customer``.

Only the standard library is used, so finance can run it anywhere.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("deal_id", "partner_id", "registered_on", "stage", "amount", "customer_id", "new_customer")
#: The facts file's columns the deals give (``programs/deal_registrations.yaml``'s measures).
MEASURED = ("registered_deals", "registered_deals_won", "registered_deal_value")
#: The quarters generated, each with its first and last day; the last is the facts file's.
QUARTERS = (("2026-Q1", date(2026, 1, 1), date(2026, 3, 31)), ("2026-Q2", date(2026, 4, 1), date(2026, 6, 30)),
            ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30)), ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
            ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31)))


def _split(cents: int, parts: int, rng: random.Random) -> list[int]:
    """``cents`` in ``parts`` amounts of at least one cent each (when there are enough), exactly."""
    if parts == 0:
        return []
    weights = [rng.uniform(0.3, 1.7) for _ in range(parts)]
    floor = min(1, cents // parts)
    spare = cents - floor * parts
    shares = [spare * weight / sum(weights) for weight in weights]
    amounts = [floor + int(share) for share in shares]
    # the cents the floors left, to the largest remainders
    for at in sorted(range(parts), key=lambda index: shares[index] - int(shares[index]), reverse=True)[
            :cents - sum(amounts)]:
        amounts[at] += 1
    return amounts


def _money(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):f}"


def deals_of(facts: dict[str, str], rng: random.Random) -> list[dict[str, str]]:
    """One partner's deals over the five quarters; 2027-Q1's as its facts say."""
    partner = facts["partner_id"]
    registered, won = int(facts["registered_deals"]), int(facts["registered_deals_won"])
    value = int(Decimal(facts["registered_deal_value"]).scaleb(2))
    average = value // won if won else rng.randint(2_000_00, 60_000_00)
    deals: list[dict[str, str]] = []
    customers = 0
    for label, first, last in QUARTERS:
        if label != "2027-Q1":  # earlier quarters: the same partner, somewhat smaller and noisier
            shrink = rng.uniform(0.6, 1.05)
            quarter_registered = max(0, round(registered * shrink + rng.uniform(-1.5, 1.5)))
            quarter_won = min(quarter_registered, max(0, round(won * shrink + rng.uniform(-1, 1))))
            quarter_value = sum(max(1, round(average * rng.uniform(0.5, 1.5))) for _ in range(quarter_won))
        else:
            quarter_registered, quarter_won, quarter_value = registered, won, value
        won_amounts = _split(quarter_value, quarter_won, rng)
        stages = ["won"] * quarter_won + [rng.choice(["lost", "lost", "open"])
                                          for _ in range(quarter_registered - quarter_won)]
        rng.shuffle(stages)
        days = sorted(first + timedelta(days=rng.randint(0, (last - first).days)) for _ in stages)
        for number, (stage, day) in enumerate(zip(stages, days), 1):
            new_customer = rng.random() < 0.3
            if new_customer or customers == 0:
                customers += 1
            amount = won_amounts.pop() if stage == "won" else max(1, round(average * rng.uniform(0.3, 1.6)))
            deals.append({"deal_id": f"R-{partner}-{label}-{number:03d}", "partner_id": partner,
                          "registered_on": day.isoformat(), "stage": stage, "amount": _money(amount),
                          "customer_id": f"{partner}-C{rng.randint(1, customers):03d}",
                          "new_customer": "true" if new_customer else "false"})
    return deals


def generate(facts_file: Path, seed: int = 2027) -> list[dict[str, str]]:
    rng = random.Random(seed + 14)
    with open(facts_file, newline="", encoding="utf-8") as handle:
        partners = list(csv.DictReader(handle))
    deals = [deal for facts in partners for deal in deals_of(facts, rng)]
    return sorted(deals, key=lambda deal: (deal["registered_on"], deal["deal_id"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2027, help="random seed (default 2027)")
    parser.add_argument("--facts", type=Path, default=HERE / "facts_2027Q1.csv", help="the 2027-Q1 facts")
    parser.add_argument("--out", type=Path, default=HERE / "deals_2026_2027.csv")
    parser.add_argument("--facts-out", type=Path, default=HERE / "facts_2027Q1_without_deals.csv",
                        help="the 2027-Q1 facts without the columns the deals give (what a run with "
                             "--transactions reads)")
    args = parser.parse_args(argv)
    deals = generate(args.facts, args.seed)
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(deals)
    print(f"{args.out}: {len(deals)} deals")
    with open(args.facts, newline="", encoding="utf-8") as source, \
            open(args.facts_out, "w", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(source))
        kept = [at for at, name in enumerate(rows[0]) if name not in MEASURED]
        csv.writer(handle, lineterminator="\n").writerows([row[at] for at in kept] for row in rows)
    print(f"{args.facts_out}: {args.facts} without {', '.join(MEASURED)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
