"""The page of a what-if comparison (``incentives compare --report``): what each program would cost, who gains
and who loses, the tier moves; built of the report's parts (:mod:`.html`, :mod:`.charts`)."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

import altair as alt

from ..compare import LISTED, Comparison
from ..version import __version__
from .charts import WIDTH, Chart, amount, configured, number
from .html import chart_section, document, table_section, write_page

__all__ = ["write_comparison_report"]

_ROW = alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")


def write_comparison_report(comparison: Comparison, out: str | os.PathLike[str], *, old: str, new: str,
                            scaled: list[str]) -> Path:
    """The comparison's page, written to ``out`` whole (:func:`.html.write_page`); ``old`` and ``new`` name the
    two program sets, ``scaled`` the ``--scale`` options."""
    target = Path(out)
    write_page(target, comparison_page(comparison, old=old, new=new, scaled=scaled))
    return target


def comparison_page(comparison: Comparison, *, old: str, new: str, scaled: list[str]) -> str:
    places = comparison.places
    summary = comparison.by_program
    sections = [
        table_section("What each program would cost", f"{old} (old) against {new} (new), on the same facts"
                      + (f", scaled: {', '.join(scaled)}" if scaled else "") + ".",
                      ("program", "old cost", "new cost", "change", "better off", "worse off", "unchanged"),
                      [(program, _money(old_cost, places, currency), _money(new_cost, places, currency),
                        ("+" if change > 0 else "") + _money(change, places, currency), f"{better:,}", f"{worse:,}",
                        f"{same:,}")
                       for program, currency, _, old_cost, new_cost, change, better, worse, same in summary.iter_rows()],
                      numbers={1, 2, 3, 4, 5, 6}),
        chart_section(_costs(comparison)),
        chart_section(_winners(comparison)),
    ]
    if comparison.tier_moves.height:
        sections.append(chart_section(_moves(comparison)))
    for title, frame in ((f"The {LISTED} results that gain most", comparison.gains),
                         (f"The {LISTED} results that lose most", comparison.losses)):
        sections.append(table_section(title, "Per partner, period and program.",
                                      ("partner", "period", "program", "old", "new", "delta", "old tier", "new tier"),
                                      [(partner, period, program, amount(old_total, places), amount(new_total, places),
                                        amount(delta, places), old_tier or "—", new_tier or "—")
                                       for partner, period, program, _, old_total, new_total, delta, old_tier, new_tier,
                                       *_ in frame.iter_rows()], numbers={3, 4, 5}))
    sections.append(_inputs(comparison))
    notes = "".join(f"<li>{escape(note)}</li>" for note in comparison.notes)
    if notes:
        sections.append(f"<section><h2>Notes</h2><ul>{notes}</ul></section>")
    return document(f"What if: {old} → {new}", f"{comparison.rows:,} results compared; written by incentives "
                    f"{__version__} into {comparison.folder}", sections)


def _money(units: int, places: int, currency: str | None) -> str:
    return f"{amount(units, places)} {currency or ''}".strip()


def _costs(comparison: Comparison) -> Chart:
    rows = []
    for program, _, _, old_cost, new_cost, *_ in comparison.by_program.iter_rows():
        rows += [{"program": program, "set": "old", "cost": number(old_cost), "label": amount(old_cost,
                                                                                             comparison.places)},
                 {"program": program, "set": "new", "cost": number(new_cost), "label": amount(new_cost,
                                                                                             comparison.places)}]
    base = alt.Chart(alt.Data(values=rows)).encode(y=alt.Y("set:N", title=None, sort=["old", "new"]),
                                                   x=alt.X("cost:Q", title="cost"))
    bars = base.mark_bar().encode(color=alt.Color("set:N", scale=alt.Scale(domain=["old", "new"],
                                                                           range=["#9e9e9e", "#1565c0"]), legend=None))
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(text="label:N")
    spec = alt.layer(bars, labels).properties(width=WIDTH - 200, height=alt.Step(18)).facet(
        row=alt.Row("program:N", sort=None, title=None, header=_ROW))
    return Chart("costs", "Cost, old and new", "What each program costs under each set.", configured(spec))


def _winners(comparison: Comparison) -> Chart:
    colors = {"better off": "#2e7d32", "unchanged": "#9e9e9e", "worse off": "#c62828"}
    rows = [{"program": program, "outcome": outcome, "results": count}
            for program, *_, better, worse, same in comparison.by_program.iter_rows()
            for outcome, count in (("better off", better), ("unchanged", same), ("worse off", worse)) if count]
    spec = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y("program:N", sort=None, title=None), x=alt.X("results:Q", title="results", stack="zero"),
        color=alt.Color("outcome:N", scale=alt.Scale(domain=list(colors), range=list(colors.values())),
                        legend=alt.Legend(orient="top", title=None)),
        order=alt.Order("outcome:N")).properties(width=WIDTH, height=alt.Step(18))
    return Chart("winners", "Who gains, who loses", "Results better off, unchanged and worse off under the new set.",
                 configured(spec))


def _moves(comparison: Comparison) -> Chart:
    rows = [{"program": program, "old": old_tier or "(none)", "new": new_tier or "(none)", "results": count}
            for program, old_tier, new_tier, count in comparison.tier_moves.iter_rows()]
    base = alt.Chart(alt.Data(values=rows)).encode(x=alt.X("new:N", title="new tier"),
                                                   y=alt.Y("old:N", title="old tier"))
    cells = base.mark_rect().encode(color=alt.Color("results:Q", scale=alt.Scale(scheme="blues"), legend=None))
    counts = base.mark_text(fontSize=11).encode(text="results:Q")
    spec = alt.layer(cells, counts).properties(width=alt.Step(70), height=alt.Step(24)).facet(
        row=alt.Row("program:N", sort=None, title=None, header=_ROW)).resolve_scale(x="independent",
                                                                                   y="independent")
    return Chart("moves", "Tier moves", "How many results go from each tier (rows) to each other (columns).",
                 configured(spec))


def _inputs(comparison: Comparison) -> str:
    rows: list[tuple[str, str]] = []
    for side in ("old", "new"):
        run: dict[str, Any] = json.loads((comparison.folder / side / "run.json").read_text(encoding="utf-8"))
        rows.append((f"{side} run", f"{comparison.folder / side} (run {run['run_id']})"))
        rows += [(f"{side} program {program['id']} v{program['version']}",
                  f"{program['file']} sha256 {program['sha256']}") for program in run["programs"]]
        if side == "old":
            rows.append(("facts sha256", str(run.get("facts_sha256") or "— (scaled: computed per record)")))
    return table_section("The runs compared", "Each set's run folder and programs, with their sha256.",
                         ("what", "which"), rows)
