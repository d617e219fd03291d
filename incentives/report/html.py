"""The parts of the report's pages: the document (inline CSS; no script, no link out), chart sections (inline SVG)
and tables, every text escaped; and writing a page whole."""

from __future__ import annotations

import os
import secrets
from html import escape
from pathlib import Path
from typing import Any, Collection, Iterable, Sequence

from .charts import Chart

__all__ = ["chart_section", "document", "table", "table_section", "write_page"]

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
header{background:#0d47a1;color:#fff;padding:20px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}
main{padding:8px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 4px}p.caption{color:#57606a;margin:0 0 12px;font-size:13px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;
min-width:150px}.card b{display:block;font-size:20px}.card span{color:#57606a;font-size:12px}
code{font-size:12px;word-break:break-all}.chart svg{max-width:100%;height:auto}
"""


def write_page(target: Path, page: str) -> int:
    """``page`` written to ``target`` whole: into a file of a name no other writer takes beside it (a plain open:
    the umask applies), then moved into place; a failed write leaves nothing. Returns the bytes written."""
    data = page.encode("utf-8")
    scratch = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(scratch, "xb") as handle:
            handle.write(data)
        os.replace(scratch, target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return len(data)


def document(title: str, subtitle: str, sections: Iterable[str]) -> str:
    """A whole page: ``title`` and ``subtitle`` (texts, escaped here) over ``sections`` (HTML)."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
            f"<main>{''.join(sections)}</main></body></html>\n")


def chart_section(chart: Chart | None) -> str:
    if chart is None:
        return ""
    return (f"<section id=\"{escape(chart.key)}\"><h2>{escape(chart.title)}</h2><p class=\"caption\">"
            f"{escape(chart.caption)}</p><div class=\"chart\">{chart.svg}</div></section>")


def table_section(title: str, caption: str, header: Sequence[str], rows: Iterable[Sequence[Any]],
                   numbers: Collection[int] = ()) -> str:
    return (f"<section><h2>{escape(title)}</h2><p class=\"caption\">{escape(caption)}</p>"
            f"{table(header, rows, numbers)}</section>")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numbers: Collection[int]) -> str:
    head = "".join(f"<th{' class=n' if at in numbers else ''}>{escape(name)}</th>" for at, name in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{' class=n' if at in numbers else ''}>{escape(str(cell))}</td>"
                                    for at, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table>"


