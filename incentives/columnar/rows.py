"""The CSV rule of :mod:`incentives.output.files` by columns: a text cell as a ``payouts.csv`` or
``lines.csv`` row writes it, over a polars String expression.

``text_cell`` puts a ``'`` before a text a spreadsheet would take for a formula,
``csv_cell`` quotes a cell holding a comma, a quote or a line break (its quotes
doubled); :func:`csv_text` is both, as ``output.files.csv_text`` (which a constant cell uses).
"""

from __future__ import annotations

import polars as pl

from ..output.files import FORMULA_STARTS, QUOTED_CHARACTERS


def csv_text(text: pl.Expr) -> pl.Expr:
    """``output.files.csv_text`` of each row's text: neutralised, then quoted where it needs quotes.

    Whether a text needs either is read from the text itself (the neutralising ``'`` needs no quotes), so
    ``text`` is read by plain string tests, no regular expression: give it as a column (polars computes an
    expression again for each use)."""
    quoted = text.str.contains_any(list(QUOTED_CHARACTERS))
    quote = pl.when(quoted).then(pl.lit('"')).otherwise(pl.lit(""))
    neutralised = pl.when(text.str.head(1).is_in(FORMULA_STARTS)).then(pl.lit("'")).otherwise(pl.lit(""))
    body = pl.when(quoted).then(text.str.replace_all('"', '""', literal=True)).otherwise(text)
    return pl.concat_str([quote, neutralised, body, quote])
