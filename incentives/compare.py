"""What-if: two program sets run on the same facts, compared partner by partner (``incentives compare``).

Both sets are run by the same engine as ``incentives run`` (each into a run
folder of its own, kept in the output folder as ``old/`` and ``new/``: the
comparison is as auditable as any run), on the same facts and claims;
``--scale FACT=FACTOR`` first multiplies a fact of every record by a decimal
factor, exactly (a simulated growth before a program launches). Then the two
``payouts.csv`` are joined on partner, period and program — the programs both
sets have; a program of one set only is named in the notes — into
``compare.csv`` (old and new total, delta, old and new tier and status) and a
summary by program (``compare_summary.csv``: old and new cost, the change,
partners better off, worse off and unchanged) and by tier move
(``tier_moves.csv``: how many results moved from each tier to each other).
Amounts are read as exact minor units and written at the program's places.
"""

from __future__ import annotations

import decimal
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Iterator, Mapping

import polars as pl

from .engine import Engine
from .errors import InputError, UsageError
from .inputs import FactRow, fact_columns, read_facts
from .kinds import KINDS
from .loading import ProgramSet
from .money_by_columns import plain_amount, plain_units
from .output.folder import OutputExistsError

__all__ = ["Comparison", "compare_programs", "scale_factors"]

#: The scale amounts are compared at: the most places a program rounds to.
SCALE = 8
KEYS = ("partner_id", "period", "program_id")
#: How many of the results that gain and lose most a comparison lists.
LISTED = 20


@dataclass
class Comparison:
    """What :func:`compare_programs` wrote into its folder, and its summary: ``by_program`` (program_id,
    currency, places, old, new, change as units at :data:`SCALE`; better, worse, unchanged partners' results),
    ``tier_moves`` (program_id, old_tier, new_tier, results), ``gains`` and ``losses`` (the :data:`LISTED`
    results that gain and lose most: compare.csv's columns, amounts as units), ``rows`` (how many compared
    results), ``places`` (of the amounts written), ``notes``."""

    folder: Path
    by_program: pl.DataFrame
    tier_moves: pl.DataFrame
    gains: pl.DataFrame
    losses: pl.DataFrame
    rows: int
    places: int
    notes: list[str] = field(default_factory=list)


def scale_factors(options: list[str]) -> dict[str, Decimal]:
    """``--scale FACT=FACTOR`` options as fact → factor; raises :class:`UsageError` for a malformed one, a factor
    that is not a plain decimal, or a fact given twice."""
    factors: dict[str, Decimal] = {}
    for option in options:
        name, equals, text = option.partition("=")
        name, text = name.strip(), text.strip()
        if not equals or not name or not text:
            raise UsageError(f"--scale takes FACT=FACTOR (a fact of the facts file and a decimal), not {option!r}")
        try:
            factor = Decimal(text)
        except decimal.InvalidOperation:
            factor = None
        if factor is None or not factor.is_finite() or "e" in text.lower():
            raise UsageError(f"--scale {name}=: the factor {text!r} is not a decimal number (e.g. 1.10)")
        if name in factors:
            raise UsageError(f"--scale {name} is given twice")
        factors[name] = factor
    return factors


def compare_programs(old: ProgramSet, new: ProgramSet, facts: str | os.PathLike[str],
                     claims: str | os.PathLike[str] | None, folder: str | os.PathLike[str], *,
                     scale: Mapping[str, Decimal] | None = None, period: str | None = None,
                     force: bool = False) -> Comparison:
    """Run ``old`` and ``new`` on ``facts`` (each fact of ``scale`` multiplied by its factor) and ``claims``
    into ``folder``/old and ``folder``/new, and compare them into ``folder``. Raises :class:`UsageError` when the
    sets have no program in common or ``scale`` names a fact the facts file does not have."""
    common = sorted(set(old.ids) & set(new.ids))
    if not common:
        raise UsageError(f"the two program sets have no program in common (old: {', '.join(old.ids) or 'none'}; "
                         f"new: {', '.join(new.ids) or 'none'}): there is nothing to compare")
    scale = dict(scale or {})
    offered = set(fact_columns(facts))  # the facts file read (its header) before anything is written
    if claims is not None and not Path(claims).is_file():
        raise InputError("no such file", os.fspath(claims))
    if scale:
        unknown = [name for name in scale if name not in offered]
        if unknown:
            raise UsageError(f"--scale: {', '.join(unknown)} {'is not a fact' if len(unknown) == 1 else 'are not facts'}"
                             f" of {os.fspath(facts)}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    notes = [f"only in the {side} programs, not compared: {', '.join(sorted(only))}"
             for side, only in (("old", set(old.ids) - set(new.ids)), ("new", set(new.ids) - set(old.ids))) if only]
    for side, programs in (("old", old), ("new", new)):
        records = facts if not scale else _scaled(facts, scale)
        with Engine(programs) as engine:
            try:
                engine.run_to(out / side, records, claims or (), force=force, period=period)
            except OutputExistsError as error:
                raise UsageError(f"{error} (the {side} run of an earlier comparison: --force replaces it)") from None
    compared = _compared(out / "old" / "payouts.csv", out / "new" / "payouts.csv", common)
    places = int(compared["places"].max() or 0)  # every amount written at the most places a program has
    _write_compare_csv(compared, places, out / "compare.csv")
    by_program = _by_program(compared)
    rank = _tier_ranks(old, new)
    tier_moves = (compared.filter(pl.col("old_tier").is_not_null() | pl.col("new_tier").is_not_null())
                  .group_by("program_id", "old_tier", "new_tier").agg(pl.len().alias("results"))
                  .join(rank.rename({"tier": "old_tier", "rank": "old_rank"}), on=["program_id", "old_tier"],
                        how="left")
                  .join(rank.rename({"tier": "new_tier", "rank": "new_rank"}), on=["program_id", "new_tier"],
                        how="left")
                  .sort("program_id", "old_rank", "old_tier", "new_rank", "new_tier", nulls_last=True)
                  .drop("old_rank", "new_rank"))
    by_program.with_columns(
        *(plain_amount(pl.col(name), SCALE, places).alias(name) for name in ("old", "new", "change"))
    ).drop("places").write_csv(out / "compare_summary.csv")
    tier_moves.write_csv(out / "tier_moves.csv")
    listed = compared.drop("places")
    gains = listed.filter(pl.col("delta") > 0).sort(["delta", *KEYS], descending=[True, False, False, False])
    losses = listed.filter(pl.col("delta") < 0).sort(["delta", *KEYS])
    return Comparison(out, by_program, tier_moves, gains.head(LISTED), losses.head(LISTED), compared.height, places,
                      notes)


def _tier_ranks(old: ProgramSet, new: ProgramSet) -> pl.DataFrame:
    """Each program's tiers in their order (lowest first, as its file lists them): the old set's, then the tiers
    only the new one has."""
    order: dict[str, list[str]] = {}
    for programs in (old, new):
        for loaded in programs:
            tiers = order.setdefault(loaded.program.id, [])
            tiers += [tier for tier in KINDS[loaded.program.kind].tiers(loaded.program.section) if tier not in tiers]
    rows = [(program_id, tier, at) for program_id, tiers in order.items() for at, tier in enumerate(tiers)]
    return pl.DataFrame(rows, schema={"program_id": pl.String, "tier": pl.String, "rank": pl.Int64}, orient="row")


def _scaled(facts: str | os.PathLike[str], scale: Mapping[str, Decimal]) -> Iterator[FactRow]:
    """The records of ``facts`` with each fact of ``scale`` multiplied by its factor, exactly (a value that is not
    a number is left as it is)."""
    exact = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
    for row in read_facts(facts):
        for name, factor in scale.items():
            value = row.facts.get(name)
            if isinstance(value, Decimal):
                row.facts[name] = exact.multiply(value, factor)
        yield row


def _payouts(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)
    decimals = frame.select(pl.col("total").str.split(".").list.get(1, null_on_oob=True).str.len_chars()
                            .fill_null(0).max()).item()
    return frame.select(*KEYS, "status", "tier", "currency", plain_units(pl.col("total"), SCALE).alias("total"),
                        pl.lit(int(decimals or 0)).alias("places"))


def _compared(old_payouts: Path, new_payouts: Path, common: list[str]) -> pl.DataFrame:
    old = _payouts(old_payouts).filter(pl.col("program_id").is_in(common))
    new = _payouts(new_payouts).filter(pl.col("program_id").is_in(common))
    joined = old.join(new, on=list(KEYS), how="full", coalesce=True, suffix="_new")
    return joined.select(
        *KEYS, pl.coalesce("currency", "currency_new").alias("currency"),
        pl.max_horizontal("places", "places_new").alias("places"),
        pl.col("total").fill_null(0).alias("old"), pl.col("total_new").fill_null(0).alias("new"),
        (pl.col("total_new").fill_null(0) - pl.col("total").fill_null(0)).alias("delta"),
        pl.col("tier").alias("old_tier"), pl.col("tier_new").alias("new_tier"),
        pl.col("status").alias("old_status"), pl.col("status_new").alias("new_status"),
    ).sort(*KEYS)


def _write_compare_csv(compared: pl.DataFrame, places: int, path: Path) -> None:
    compared.select(
        *KEYS, *(plain_amount(pl.col(name), SCALE, places).alias(name) for name in ("old", "new", "delta")),
        "old_tier", "new_tier", "old_status", "new_status", "currency",
    ).write_csv(path)


def _by_program(compared: pl.DataFrame) -> pl.DataFrame:
    return compared.group_by("program_id").agg(
        pl.col("currency").drop_nulls().first(), pl.col("places").max(),
        pl.col("old").sum(), pl.col("new").sum(), pl.col("delta").sum().alias("change"),
        (pl.col("delta") > 0).sum().alias("better"), (pl.col("delta") < 0).sum().alias("worse"),
        (pl.col("delta") == 0).sum().alias("unchanged")).sort("program_id")
