"""The CSV rule of :mod:`incentives.output.files` by columns: a text cell as a ``payouts.csv`` or
``lines.csv`` row writes it, over a polars String expression.

``text_cell`` puts a ``'`` before a text a spreadsheet would take for a formula,
``csv_cell`` quotes a cell holding a comma, a quote or a line break (its quotes
doubled); :func:`csv_text` is both, as ``output.files.csv_text`` (which a constant cell uses).
"""

from __future__ import annotations

import re

import polars as pl

from ..output.files import FORMULA_STARTS, QUOTED_CHARACTERS

_FORMULA_START = f"^[{re.escape(''.join(FORMULA_STARTS))}]"
_NEEDS_QUOTES = f"[{re.escape(QUOTED_CHARACTERS)}]"


def csv_text(text: pl.Expr) -> pl.Expr:
    """``output.files.csv_text`` of each row's text: neutralised, then quoted where it needs quotes."""
    neutral = pl.when(text.str.contains(_FORMULA_START)).then(pl.concat_str([pl.lit("'"), text])).otherwise(text)
    return (pl.when(neutral.str.contains(_NEEDS_QUOTES))
            .then(pl.concat_str([pl.lit('"'), neutral.str.replace_all('"', '""', literal=True), pl.lit('"')]))
            .otherwise(neutral))

