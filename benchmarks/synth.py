"""A seeded synthetic partner base: facts records and MDF claims with realistic spreads.

Deterministic for a given ``(n, seed)``: the same records, byte for byte, on
every run (Python's ``random.Random`` is platform independent for the calls
used here, and every number is turned into a ``Decimal`` through a fixed
decimal text).

Spreads, per segment (enterprise 5 %, commercial 25 %, smb 70 % of partners):

* ``revenue``: log-normal around the segment's median, cents;
* ``returns``: 0-4 % of revenue for about half the partners, else absent;
* ``certifications.sales`` / ``certifications.technical``: skewed counts
  (geometric: most partners hold 0-2, a few hold 6+), higher in big segments;
* ``status``: ``active`` except about 3 % ``suspended`` (ineligible), and
  about 1 % more are ineligible for holding no sales certification;
* ``revenue_quota``, ``logo_quota``, ``target_incentive``: by segment with
  noise; about 0.1 % of records lack ``revenue_quota`` (an ``error`` result
  in the goal program: "missing facts");
* ``nps`` (absent for ~20 %), ``new_logos`` (small counts), ``joined_on``
  (about 4 % joined inside the quarter: prorated), ``mdf_balance`` (~30 %).

Claims: about 30 % of partners file 1-3 claims; some are for an activity the
program does not fund, some are not pre-approved, some are submitted late.
"""

from __future__ import annotations

import csv
import math
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

PERIOD = "2027-Q1"
QUARTER_START = date(2027, 1, 1)
QUARTER_END = date(2027, 3, 31)

FACT_COLUMNS = (
    "partner_id", "period", "segment", "status", "revenue", "returns", "certifications.sales",
    "certifications.technical", "nps", "new_logos", "revenue_quota", "logo_quota", "target_incentive",
    "joined_on", "mdf_balance",
)
CLAIM_COLUMNS = ("claim_id", "partner_id", "period", "activity", "amount", "activity_end", "submitted_on",
                 "preapproved")

# segment: (share, median revenue, sigma, quota, logo quota, target incentive, certification mean)
SEGMENTS = (
    ("enterprise", 0.05, 2_500_000, 0.8, 2_400_000, 6, 25_000, 3.0),
    ("commercial", 0.25, 400_000, 0.8, 420_000, 4, 8_000, 1.8),
    ("smb", 0.70, 60_000, 0.9, 70_000, 2, 2_000, 0.9),
)
ACTIVITIES = ("event", "digital", "webinar", "content", "training", "trade_show")
ACTIVITY_WEIGHTS = (30, 25, 15, 10, 12, 8)  # trade_show is not funded by the benchmark MDF program


def _cents(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _geometric(rng: random.Random, mean: float) -> int:
    """A count >= 0 with the given mean, heavily skewed toward small values."""
    p = 1.0 / (1.0 + mean)
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


def partner_id(index: int) -> str:
    return f"P{index:07d}"


def partner_facts(n: int, seed: int = 2027) -> Iterator[dict[str, Any]]:
    """``n`` typed partner records (flat: dotted names, ``Decimal``/``str``/``date`` values), in partner order.

    Missing facts are absent keys, exactly as :func:`incentives.inputs.read_facts`
    gives them from the CSV that :func:`write_facts_csv` writes.
    """
    rng = random.Random(seed)
    cumulative = []
    acc = 0.0
    for segment in SEGMENTS:
        acc += segment[1]
        cumulative.append((acc, segment))
    for index in range(1, n + 1):
        draw = rng.random()
        segment = next(s for limit, s in cumulative if draw < limit or limit == cumulative[-1][0])
        name, _, median, sigma, quota, logo_quota, incentive, cert_mean = segment
        revenue = rng.lognormvariate(math.log(median), sigma)
        record: dict[str, Any] = {"partner_id": partner_id(index), "period": PERIOD, "segment": name,
                                  "status": "suspended" if rng.random() < 0.03 else "active",
                                  "revenue": _cents(revenue)}
        if rng.random() < 0.5:
            record["returns"] = _cents(revenue * rng.uniform(0.0, 0.04))
        sales = _geometric(rng, cert_mean)
        if sales == 0 and rng.random() < 0.95:  # most partners hold at least one sales certification
            sales = 1
        record["certifications.sales"] = Decimal(sales)
        record["certifications.technical"] = Decimal(_geometric(rng, cert_mean * 0.8))
        if rng.random() < 0.8:
            record["nps"] = Decimal(min(100, max(-100, int(rng.gauss(35, 25)))))
        logos = _geometric(rng, logo_quota * 0.4)
        if logos:
            record["new_logos"] = Decimal(logos)
        if rng.random() >= 0.001:
            record["revenue_quota"] = _cents(quota * rng.uniform(0.8, 1.25))
        record["logo_quota"] = Decimal(logo_quota)
        record["target_incentive"] = Decimal(int(incentive * rng.uniform(0.9, 1.1)) // 100 * 100)
        joined = rng.random()
        if joined < 0.04:
            record["joined_on"] = QUARTER_START + timedelta(days=rng.randrange(1, 90))
        elif joined < 0.5:
            record["joined_on"] = date(2015, 1, 1) + timedelta(days=rng.randrange(0, 4000))
        if rng.random() < 0.3:
            record["mdf_balance"] = _cents(rng.uniform(0, 5000))
        yield record


def claims_for(n: int, seed: int = 2027) -> list[dict[str, Any]]:
    """MDF claims (typed: ``Decimal`` amounts, ``date`` days, ``bool`` pre-approval) for partners 1..n."""
    rng = random.Random(seed * 7919 + 1)
    claims = []
    number = 0
    for index in range(1, n + 1):
        if rng.random() >= 0.3:
            continue
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            number += 1
            end = QUARTER_START + timedelta(days=rng.randrange(0, 90))
            late = rng.random() < 0.08
            submitted = end + timedelta(days=rng.randrange(61, 120) if late else rng.randrange(0, 45))
            claims.append({
                "claim_id": f"C{number:08d}", "partner_id": partner_id(index), "period": PERIOD,
                "activity": rng.choices(ACTIVITIES, ACTIVITY_WEIGHTS)[0],
                "amount": _cents(rng.lognormvariate(math.log(3000), 0.9)),
                "activity_end": end, "submitted_on": submitted, "preapproved": rng.random() < 0.92,
            })
    return claims


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_facts_csv(path: str | Path, n: int, seed: int = 2027) -> Path:
    """Write ``n`` partner records as a facts CSV (dotted headers, empty cells for missing facts)."""
    rows = ([record.get(column) for column in FACT_COLUMNS] for record in partner_facts(n, seed))
    return _write_csv(path, FACT_COLUMNS, rows)


def shuffle_csv(source: str | Path, target: str | Path, seed: int = 2027) -> Path:
    """Write the rows of the CSV file ``source`` (one record a line: no quoted line breaks) in a seeded random
    order, header first: the same records as a real facts file holds them, in no particular order."""
    with open(source, "rb") as handle:
        header, *rows = handle.readlines()
    random.Random(seed).shuffle(rows)
    target = Path(target)
    with open(target, "wb") as handle:
        handle.write(header)
        handle.writelines(rows)
    return target


def write_claims_csv(path: str | Path, n: int, seed: int = 2027) -> Path:
    """Write the claims of partners 1..n as a claims CSV."""
    rows = ([claim[column] for column in CLAIM_COLUMNS] for claim in claims_for(n, seed))
    return _write_csv(path, CLAIM_COLUMNS, rows)


def _write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[list[Any]]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(value) for value in row] for row in rows)
    return target

def write_deals_csv(path: str | Path, rows: int, partners: int, seed: int = 2027) -> Path:
    """``rows`` deal registrations of ``partners`` partners over 2026-01-01..2027-03-31 (a year and a quarter),
    for the measures benchmarks: vectorised (10M rows in seconds), the same file for the same arguments.
    Columns: deal_id, partner_id, closed_on, stage, amount (cents; a few returns are negative), customer_id,
    new_customer."""
    import polars as pl

    def draw(salt: int, modulo: int) -> pl.Expr:  # a deterministic pseudo-random integer per row
        return (pl.int_range(rows, dtype=pl.UInt64).hash(seed * 1_000 + salt) % modulo).cast(pl.Int64)

    stages = pl.Series(["won", "won", "won", "lost", "open", "commit"])
    frame = pl.select(
        pl.format("D{}", pl.int_range(1, rows + 1)).alias("deal_id"),
        pl.format("P{}", (draw(1, partners) + 1).cast(pl.String).str.pad_start(7, "0")).alias("partner_id"),
        (pl.lit(date(2026, 1, 1)) + pl.duration(days=draw(2, 455))).dt.strftime("%Y-%m-%d").alias("closed_on"),
        pl.lit(stages).gather(draw(3, len(stages))).alias("stage"),
        pl.format("{}{}.{}", pl.when(draw(4, 50) == 0).then(pl.lit("-")).otherwise(pl.lit("")),
                  draw(5, 50_000), draw(6, 100).cast(pl.String).str.pad_start(2, "0")).alias("amount"),
        pl.format("C{}", draw(7, partners * 20)).alias("customer_id"),
        pl.when(draw(8, 4) == 0).then(pl.lit("true")).otherwise(pl.lit("false")).alias("new_customer"))
    frame.write_csv(path)
    return Path(path)
