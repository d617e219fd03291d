"""The report's charts: Vega-Lite specifications built with altair, rendered to static SVG by vl-convert.

Why these: Vega-Lite is a declarative grammar of charts (a chart is data plus a
specification, tested as data), altair is its Python API, and vl-convert renders
a specification to SVG in process (Rust, with its own copy of Vega): no browser,
no network, no JavaScript in the report. The SVG goes into the page as it is, so
the report opens offline anywhere.

A bar's length is the exact amount, written into the specification's JSON as
the number's own text (a ``Decimal``, never a Python float); Vega reads it as a
double to draw. Every amount printed on a chart is the exact text of the figure.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

import altair as alt
import vl_convert

from ..money import format_amount
from .figures import ATTAINMENT_BINS, Figures
from .run_folder import SCALE

__all__ = ["WIDTH", "Chart", "amount", "charts_of", "configured", "number", "spec_json"]

#: The width of a chart's plot, in pixels (a faceted chart's, less its row labels).
WIDTH = 560
_BAR = 18
_STATUS_COLORS = {"ok": "#2e7d32", "ineligible": "#9e9e9e", "error": "#c62828"}
_FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"


class Chart:
    """One chart: its title, what it shows (a sentence), and its SVG."""

    def __init__(self, key: str, title: str, caption: str, spec: alt.TopLevelMixin):
        self.key = key
        self.title = title
        self.caption = caption
        self.svg = vl_convert.vegalite_to_svg(spec_json(spec.to_dict()))


def amount(units: int | None, places: int) -> str:
    """Units at :data:`SCALE` as the amount's text at ``places`` (``1,234.50``)."""
    return format_amount(Decimal(units or 0).scaleb(-SCALE), places)


def number(units: int | None) -> Decimal:
    """Units at :data:`SCALE` as the exact amount, for a chart's data (see :func:`spec_json`)."""
    return Decimal(units or 0).scaleb(-SCALE)


def spec_json(spec: dict[str, Any]) -> str:
    """A specification as JSON text, each ``Decimal`` in it written as the plain number it is (JSON has no
    float of its own: a number is its text). A token of this call marks them on the way, so no text of the run
    can be mistaken for one."""
    mark = f"decimal-{secrets.token_hex(8)}:"

    def plain(value: object) -> str:
        if isinstance(value, Decimal):
            return f"{mark}{value:f}"
        raise TypeError(f"a chart's data holds {type(value).__name__}, not JSON")

    return re.sub(f'"{re.escape(mark)}(-?[0-9]+(?:\\.[0-9]+)?)"', r"\1", json.dumps(spec, default=plain))


def charts_of(figures: Figures) -> list[Chart]:
    """The charts of a run: status counts, payout by tier, the attainment distribution, the next-tier gaps and
    MDF accrued against paid (those with no data are left out)."""
    places = dict(zip(figures.programs["program_id"], figures.programs["places"]))
    charts = [_statuses(figures)]
    if figures.by_tier.height:
        charts.append(_by_tier(figures, places))
    if figures.attainment.height:
        charts.append(_attainment(figures))
    if figures.gaps.height:
        charts.append(_gaps(figures, places))
    if figures.mdf.height:
        charts.append(_mdf(figures, places))
    return charts


def configured(chart: Any) -> Any:
    # the labels' room is measured with vl-convert's fonts; a viewer's may be wider: room to spare on the left
    return chart.properties(padding={"left": 40, "top": 5, "right": 20, "bottom": 5}).configure(
        font=_FONT).configure_view(stroke=None).configure_axis(labelLimit=260)


def _statuses(figures: Figures) -> Chart:
    rows = [{"program": program, "status": status, "results": count}
            for program, ok, ineligible, error in figures.programs.select("program_id", "ok", "ineligible",
                                                                          "error").iter_rows()
            for status, count in (("ok", ok), ("ineligible", ineligible), ("error", error)) if count]
    spec = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y("program:N", sort=None, title=None),
        x=alt.X("results:Q", title="results", stack="zero"),
        color=alt.Color("status:N", scale=alt.Scale(domain=list(_STATUS_COLORS), range=list(_STATUS_COLORS.values())),
                        legend=alt.Legend(orient="top", title=None)),
        order=alt.Order("status:N"),
    ).properties(width=WIDTH, height=alt.Step(_BAR))
    return Chart("statuses", "Partners by status", "How many results of each program are paid (ok), ineligible "
                 "or in error.", configured(spec))


def _by_tier(figures: Figures, places: dict[str, int]) -> Chart:
    rows = [{"program": program, "tier": tier, "partners": partners, "paid": number(paid),
             "label": f"{amount(paid, places.get(program, 2))} ({partners:,})"}
            for program, tier, partners, paid in figures.by_tier.select("program_id", "tier", "partners",
                                                                        "paid").iter_rows()]
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("tier:N", sort=None, title=None), x=alt.X("paid:Q", title="paid"))
    bars = base.mark_bar(color="#1565c0")
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(text="label:N")
    spec = alt.layer(bars, labels).properties(width=WIDTH - 200, height=alt.Step(_BAR)).facet(
        row=alt.Row("program:N", sort=None, title=None, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                          labelFontWeight="bold")),
    ).resolve_scale(y="independent", x="independent")
    return Chart("by_tier", "Payout by tier", "What each tier was paid (and how many partners reached it), "
                 "per program.", configured(spec))


def _attainment(figures: Figures) -> Chart:
    rows = [{"program": program, "bin": f"{bin_ * 10}–{bin_ * 10 + 10}%" if bin_ < ATTAINMENT_BINS - 1
             else f"{bin_ * 10}%+", "order": bin_, "results": results}
            for program, bin_, results in figures.attainment.select("program_id", "bin", "results").iter_rows()]
    domain = [f"{at * 10}–{at * 10 + 10}%" for at in range(ATTAINMENT_BINS - 1)] + [f"{(ATTAINMENT_BINS - 1) * 10}%+"]
    spec = alt.Chart(alt.Data(values=rows)).mark_bar(color="#6a1b9a").encode(
        x=alt.X("bin:O", sort=domain, scale=alt.Scale(domain=domain), title="attainment"),
        y=alt.Y("results:Q", title="results"),
    ).properties(width=WIDTH, height=140).facet(
        row=alt.Row("program:N", sort=None, title=None, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                          labelFontWeight="bold")))
    return Chart("attainment", "Attainment distribution", "How far partners got towards their goals, in steps of "
                 "10 points (goal programs).", configured(spec))


def _gaps(figures: Figures, places: dict[str, int]) -> Chart:
    rows = []
    for program, bin_, results, low, high in figures.gaps.select("program_id", "bin", "results", "low",
                                                                 "high").iter_rows():
        shown = places.get(program, 2)
        rows.append({"program": program, "order": bin_, "results": results,
                     "range": f"{amount(low, shown)} – {amount(high, shown)}"})
    spec = alt.Chart(alt.Data(values=rows)).mark_bar(color="#ef6c00").encode(
        y=alt.Y("range:N", sort=alt.SortField("order"), title=None),
        x=alt.X("results:Q", title="results"),
    ).properties(width=WIDTH - 200, height=alt.Step(_BAR - 4)).facet(
        row=alt.Row("program:N", sort=None, title=None, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                          labelFontWeight="bold")),
    ).resolve_scale(y="independent")
    return Chart("gaps", "Gap to the next tier", "How far partners are from their next tier, in the measure the "
                 "tiers qualify on (ten equal steps up to the largest gap of each program).", configured(spec))


def _mdf(figures: Figures, places: dict[str, int]) -> Chart:
    rows = []
    for program, accrued, paid in figures.mdf.select("program_id", "accrued", "paid").iter_rows():
        shown = places.get(program, 2)
        rows += [{"program": program, "what": "accrued", "amount": number(accrued), "label": amount(accrued, shown)},
                 {"program": program, "what": "paid (claims)", "amount": number(paid), "label": amount(paid, shown)}]
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("what:N", title=None, sort=["accrued", "paid (claims)"]), x=alt.X("amount:Q", title="amount"))
    bars = base.mark_bar().encode(color=alt.Color("what:N", scale=alt.Scale(
        domain=["accrued", "paid (claims)"], range=["#00838f", "#f9a825"]), legend=None))
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(text="label:N")
    spec = alt.layer(bars, labels).properties(width=WIDTH - 200, height=alt.Step(_BAR)).facet(
        row=alt.Row("program:N", sort=None, title=None, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                          labelFontWeight="bold")))
    return Chart("mdf", "MDF accrued against claimed", "What each fund accrued this run, and what its claims were "
                 "paid.", configured(spec))

