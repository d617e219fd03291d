"""What a report shows of a run, computed by columns: small frames, whatever the run's size.

Every amount is Int128 minor units at :data:`~incentives.report.run_folder.SCALE`, summed exactly; a report
aggregates, it never carries a row per partner but in its two short lists (the partners closest to their next
tier, the top partners).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .run_folder import SCALE, RunFolder

__all__ = ["ATTAINMENT_BINS", "LISTED", "Figures", "figures_of"]

#: How many partners the short lists hold: the closest to a next tier (per program) and the top paid.
LISTED = 20
#: The attainment histogram's bins: 10 points of percent each, from 0%; the last holds all above.
ATTAINMENT_BINS = 16
#: The next-tier gap histogram's bins per program (equal widths up to the program's largest gap).
GAP_BINS = 10

_UNIT = 10**SCALE


@dataclass(frozen=True)
class Figures:
    """A run in figures (amounts as units at :data:`SCALE`):

    * ``programs``: ``program_id``, ``versions`` (list), ``currency``, ``places``, ``partners`` (distinct),
      ``ok``, ``ineligible``, ``error`` (results), ``paid`` (their totals);
    * ``by_tier``: ``program_id``, ``tier``, ``partners`` (``ok`` results at it), ``paid``;
    * ``attainment``: ``program_id``, ``bin`` (0..:data:`ATTAINMENT_BINS` - 1: ``bin`` × 10% up to the next),
      ``results``;
    * ``gaps``: ``program_id``, ``bin`` (0..:data:`GAP_BINS` - 1), ``low`` and ``high`` (units: the bin's range),
      ``results`` — the gap to the next tier of every result that has one;
    * ``close``: per program the :data:`LISTED` results nearest their next tier: ``program_id``,
      ``partner_id``, ``period``, ``tier``, ``next_tier``, ``next_gap``, ``total``;
    * ``top``: the :data:`LISTED` partners paid most (per currency): ``partner_id``, ``currency``, ``paid``,
      ``programs`` (how many paid them);
    * ``mdf``: per MDF program: ``program_id``, ``currency``, ``accrued``, ``paid``, ``funds`` (results);
    * ``ineligible``: ``program_id``, ``reason``, ``description``, ``results`` (the first rule each failed);
    * ``errors``: ``program_id``, ``error``, ``results`` (the first error of each).
    """

    programs: pl.DataFrame
    by_tier: pl.DataFrame
    attainment: pl.DataFrame
    gaps: pl.DataFrame
    close: pl.DataFrame
    top: pl.DataFrame
    mdf: pl.DataFrame
    ineligible: pl.DataFrame
    errors: pl.DataFrame
    #: the periods the results are of, sorted
    periods: list[str]


def figures_of(run: RunFolder) -> Figures:
    """The run's figures: one pass of polars over ``results.jsonl`` (its columns kept in memory once)."""
    results = run.results.collect(engine="streaming")
    order = [program["id"] for program in run.run["programs"]]
    ranked = pl.DataFrame({"program_id": list(dict.fromkeys(order)),
                           "order": range(len(dict.fromkeys(order)))}, schema={"program_id": pl.String,
                                                                               "order": pl.Int64})

    def in_program_order(frame: pl.DataFrame, *then: str, most_first: str | None = None) -> pl.DataFrame:
        """``frame`` by the run's program order, then ``most_first`` descending, then ``then``."""
        keys = ["order", *([most_first] if most_first else []), *then]
        # the categories the results were read as are texts again: the figures are small
        texts = [pl.col(name).cast(pl.String) for name, dtype in frame.schema.items() if dtype == pl.Categorical]
        return frame.with_columns(texts).join(ranked, on="program_id", how="left").sort(
            keys, descending=[key == most_first for key in keys], nulls_last=True).drop("order")

    status = pl.col("status")
    programs = in_program_order(results.group_by("program_id").agg(
        pl.col("program_version").unique().sort().alias("versions"),
        pl.col("currency").drop_nulls().first().alias("currency"),
        pl.col("places").max().alias("places"),
        pl.col("partner_id").n_unique().alias("partners"),
        (status == "ok").sum().alias("ok"), (status == "ineligible").sum().alias("ineligible"),
        (status == "error").sum().alias("error"),
        pl.col("total").sum().alias("paid")))
    ok = results.filter(status == "ok")
    by_tier = in_program_order(ok.filter(pl.col("tier").is_not_null()).group_by("program_id", "tier").agg(
        pl.len().alias("partners"), pl.col("total").sum().alias("paid")), "tier", most_first="paid")
    attainment = in_program_order(results.filter(pl.col("attainment").is_not_null()).with_columns(
        (pl.col("attainment") // (_UNIT // 10)).clip(0, ATTAINMENT_BINS - 1).cast(pl.Int64).alias("bin"))
        .group_by("program_id", "bin").agg(pl.len().alias("results")), "bin")
    gaps = _gap_histogram(results.filter(pl.col("next_gap").is_not_null()))
    close = in_program_order(results.filter(pl.col("next_gap").is_not_null()).sort("next_gap", "partner_id")
                             .group_by("program_id", maintain_order=True).head(LISTED)
                             .select("program_id", "partner_id", "period", "tier", "next_tier", "next_gap", "total"),
                             "next_gap", "partner_id")
    top = (ok.group_by("partner_id", pl.col("currency").cast(pl.String)).agg(pl.col("total").sum().alias("paid"),
                                                    (pl.col("total") > 0).sum().alias("programs"))
           .filter(pl.col("paid") > 0).sort(["paid", "partner_id"], descending=[True, False]).head(LISTED))
    mdf = in_program_order(results.filter(pl.col("accrued").is_not_null()).group_by("program_id").agg(
        pl.col("currency").first(), pl.col("accrued").sum(), pl.col("paid").sum(), pl.len().alias("funds")))
    ineligible = in_program_order(results.filter(status == "ineligible").group_by("program_id", "reason").agg(
        pl.col("reason_description").first().alias("description"), pl.len().alias("results")), "reason",
        most_first="results")
    errors = in_program_order(results.filter(status == "error").group_by("program_id", "error").agg(
        pl.len().alias("results")), "error", most_first="results")
    return Figures(programs, by_tier, attainment, in_program_order(gaps, "bin"), close, top, mdf, ineligible,
                   errors, sorted(results["period"].drop_nulls().unique().to_list()))


def _gap_histogram(with_gap: pl.DataFrame) -> pl.DataFrame:
    """Each program's gaps in at most :data:`GAP_BINS` equal bins from 0, of a round width (1, 2 or 5 times a
    power of ten, at least a unit of the program's last decimal place) that holds its largest gap."""
    with_gap = with_gap.select(pl.col("program_id").cast(pl.String), "next_gap", "places")
    largest = with_gap.group_by("program_id").agg(pl.col("next_gap").max(), pl.col("places").max())
    widths = pl.DataFrame({"program_id": largest["program_id"],
                           "width": [_round_width(gap, places) for gap, places in
                                     zip(largest["next_gap"], largest["places"])]},
                          schema={"program_id": pl.String, "width": pl.Int128})
    counts = (with_gap.join(widths, on="program_id")
              .with_columns((pl.col("next_gap") // pl.col("width")).clip(0, GAP_BINS - 1).cast(pl.Int64).alias("bin"))
              .group_by("program_id", "bin").agg(pl.len().alias("results")))
    # every bin up to the last one used, the empty ones with 0
    bins = (counts.group_by("program_id").agg(pl.int_ranges(0, pl.col("bin").max() + 1).first().alias("bin"))
            .explode("bin").join(widths, on="program_id"))
    return (bins.join(counts, on=["program_id", "bin"], how="left")
            .with_columns(pl.col("results").fill_null(0), (pl.col("bin") * pl.col("width")).alias("low"),
                          ((pl.col("bin") + 1) * pl.col("width")).alias("high"))
            .select("program_id", "bin", "results", "low", "high"))


def _round_width(largest: int, places: int) -> int:
    """The least round width (units at :data:`SCALE`) whose :data:`GAP_BINS` bins hold ``largest`` beyond their
    last (so that it falls in one): 1, 2 or 5 × 10**k, 10**k at least one unit of the ``places``-th decimal."""
    width = 10 ** max(SCALE - places, 0)
    while True:
        for step in (1, 2, 5):
            if step * width * GAP_BINS > largest:
                return step * width
        width *= 10
