"""The report as one self-contained HTML page: inline CSS, inline SVG charts, tables; no script, no link out.

Every text that comes from a run (ids, tiers, reasons, errors, notes, file names)
is escaped; the SVG comes from vl-convert, not from the run.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

from ..version import __version__
from .charts import Chart, amount
from .html import chart_section, document, table, table_section
from .figures import LISTED, Figures
from .run_folder import RunFolder

__all__ = ["report_page"]



def report_page(run: RunFolder, figures: Figures, charts: Sequence[Chart]) -> str:
    """The HTML of the report."""
    metadata = run.run
    places = dict(zip(figures.programs["program_id"], figures.programs["places"]))
    by_key = {chart.key: chart for chart in charts}
    sections = [
        _summary(figures),
        chart_section(by_key.get("statuses")),
        chart_section(by_key.get("by_tier")),
        table_section("Payout by tier", "Each tier's partners and what they were paid.",
                      ("program", "tier", "partners", "paid"),
                      [(p, t, f"{n:,}", amount(paid, places.get(p, 2)))
                       for p, t, n, paid in figures.by_tier.select("program_id", "tier", "partners", "paid").iter_rows()],
                      numbers={2, 3}) if figures.by_tier.height else "",
        chart_section(by_key.get("attainment")),
        chart_section(by_key.get("gaps")),
        table_section("Partners close to their next tier",
                      f"The {LISTED} results of each program nearest their next tier: the upsell list. The gap is "
                      "in the measure the tiers qualify on.",
                      ("program", "partner", "period", "tier", "next tier", "gap", "paid"),
                      [(p, partner, period, tier or "—", nxt, amount(gap, places.get(p, 2)),
                        amount(total, places.get(p, 2)))
                       for p, partner, period, tier, nxt, gap, total in figures.close.iter_rows()],
                      numbers={5, 6}) if figures.close.height else "",
        table_section("Top partners", f"The {LISTED} partners paid most, all programs together (by currency).",
                      ("partner", "currency", "paid", "programs that paid"),
                      [(partner, currency or "", amount(paid, 2), f"{programs:,}")
                       for partner, currency, paid, programs in figures.top.iter_rows()],
                      numbers={2, 3}),
        chart_section(by_key.get("mdf")),
        table_section("Why partners were ineligible", "The first eligibility rule each ineligible result failed.",
                      ("program", "rule", "description", "results"),
                      [(p, reason or "—", description or "", f"{n:,}")
                       for p, reason, description, n in figures.ineligible.iter_rows()],
                      numbers={3}) if figures.ineligible.height else "",
        table_section("Errors", "The first error of each result in error, by message: these partners were not "
                      "paid; fix the input and run again.", ("program", "error", "results"),
                      [(p, error or "", f"{n:,}") for p, error, n in figures.errors.iter_rows()],
                      numbers={2}) if figures.errors.height else "",
        _metadata(run),
    ]
    title = f"Payout run {', '.join(figures.periods) or '(no results)'}"
    subtitle = (f"run {metadata.get('run_id', '')}, computed {metadata.get('created_at', '')} by incentives "
                f"{metadata.get('engine_version', '')}; report by incentives {__version__}")
    return document(title, subtitle, sections)


def _summary(figures: Figures) -> str:
    cards = []
    for program, currency, shown, partners, ok, ineligible, error, paid in figures.programs.select(
            "program_id", "currency", "places", "partners", "ok", "ineligible", "error", "paid").iter_rows():
        cards.append(f"<div class=\"card\"><span>{escape(program)}</span><b>{escape(amount(paid, shown))} "
                     f"{escape(currency or '')}</b><span>{partners:,} partners · {ok:,} ok · {ineligible:,} "
                     f"ineligible · {error:,} error{'s' if error != 1 else ''}</span></div>")
    rows = [(program, ", ".join(f"v{version}" for version in versions), f"{partners:,}", f"{ok:,}",
             f"{ineligible:,}", f"{error:,}", f"{amount(paid, shown)} {currency or ''}".strip())
            for program, versions, currency, shown, partners, ok, ineligible, error, paid in
            figures.programs.select("program_id", "versions", "currency", "places", "partners", "ok", "ineligible",
                                    "error", "paid").iter_rows()]
    listed = table(("program", "versions", "partners", "ok", "ineligible", "error", "paid"), rows,
                   numbers={2, 3, 4, 5, 6})
    return (f"<section><h2>What each program cost</h2><p class=\"caption\">Totals after budgets and caps; a "
            f"partner is counted once per program.</p><div class=\"cards\">{''.join(cards)}</div>"
            f"<p></p>{listed}</section>")


def _metadata(run: RunFolder) -> str:
    metadata = run.run
    rows: list[tuple[str, str]] = [("run", str(metadata.get("run_id", ""))),
                                   ("computed", str(metadata.get("created_at", ""))),
                                   ("engine", f"incentives {metadata.get('engine_version', '')}"),
                                   ("results", f"{run.result_count:,} in {run.path / 'results.jsonl'}"),
                                   ("facts sha256", str(metadata.get("facts_sha256") or "—")),
                                   ("claims sha256", str(metadata.get("claims_sha256") or "—"))]
    for program in metadata.get("programs", []):
        rows.append((f"program {program.get('id')} v{program.get('version')}",
                     f"{program.get('file')} sha256 {program.get('sha256')}"))
    for measures in metadata.get("measures", []):
        rows.append((f"measures {measures.get('id')}", f"{measures.get('file')} sha256 {measures.get('sha256')}; "
                     f"{measures.get('source')} sha256 {measures.get('source_sha256') or '(a dataframe)'}"))
    cells = "".join(f"<tr><th>{escape(name)}</th><td><code>{escape(value)}</code></td></tr>" for name, value in rows)
    notes = "".join(f"<li>{escape(str(note))}</li>" for note in metadata.get("notes", []))
    return (f"<section><h2>The run</h2><p class=\"caption\">What was computed, from which inputs (their sha256: "
            f"the files an auditor can check).</p><table>{cells}</table>"
            f"{'<h2 style=margin-top:12px>Notes</h2><ul>' + notes + '</ul>' if notes else ''}</section>")
