"""Claims by columns: a claims CSV file read into claim rows (:data:`~incentives.claims_by_columns.CLAIM_ROWS`).

The rows are the per-record reader's (:func:`incentives.inputs.read_claims`): the
file split as :mod:`incentives.columnar.cells` splits it, the file's problems
raised as that reader raises them. A row whose cells all have their usual shape is
typed by columns, to the values the per-record reader gives it:

* ``claim_id``, ``partner_id``, ``period``, ``activity`` stripped (as ``str.strip``
  strips) and not empty; ``program_id`` stripped, missing where empty;
* the amount, stripped, plain digits with one point at most (no sign, no exponent,
  at most :data:`~incentives.inputs.MAX_NUMBER_DIGITS` characters) that ``str()``
  of its ``Decimal`` writes without an exponent (a value of 1 or more, or at most 6
  decimals): ``007.50`` reads as 7.50;
* both dates, stripped, ``YYYY-MM-DD`` and valid;
* ``preapproved`` exactly ``true`` or ``false``.

Any other row (a blank, a sign, an exponent, ``TRUE``, a bad date...) is read by
the per-record reader (:func:`incentives.inputs.csv_claim_reader`), which words its
problems. ``tests/test_columnar_claims.py`` holds the rows to ``read_claims``.
Duplicate ids are flagged by the run, over the rows (:func:`~incentives.claims_by_columns.flag_duplicates`).
"""

from __future__ import annotations

import os

import polars as pl

from ..claims_by_columns import (ACTIVITY, ACTIVITY_END, AMOUNT_DECIMALS, AMOUNT_DIGITS, AMOUNT_NEGATIVE,
                                 AMOUNT_TEXT, CLAIM_ID, CLAIM_ROWS, LINE, PREAPPROVED, PROBLEMS, PROGRAM_ID,
                                 SUBMITTED_ON, claim_rows)
from ..inputs import (CLAIM_COLUMNS, DATE_PATTERN, MAX_NUMBER_DIGITS, PARTNER_ID, PERIOD, csv_claim_cells,
                      csv_claim_reader)
from .cells import WHITESPACE, parsed_rows, plain_rows

#: Rows typed at once: the cells of a block and their stages are held together.
ROWS_PER_BLOCK = 500_000
#: ``str(Decimal)`` writes a value below 1 with more decimals than this with an exponent (``1E-7``).
_PLAIN_DECIMALS = 6
_IDENTIFIERS = (CLAIM_ID, PARTNER_ID, PERIOD, ACTIVITY)


def read_claim_rows(path: str | os.PathLike[str], *, rows_per_block: int = ROWS_PER_BLOCK) -> pl.DataFrame:
    """Every claim of a claims CSV file, as claim rows in file order (see the module); raises
    :class:`~incentives.errors.InputError` where :func:`incentives.inputs.read_claims` would."""
    with csv_claim_cells(path) as (header, rows):
        at = {name: header.index(name) for name in CLAIM_COLUMNS}
        program_at = header.index(PROGRAM_ID) if PROGRAM_ID in header else None
        blocks = plain_rows(path, len(header), rows_per_block, None)
        if blocks is None:
            blocks = parsed_rows(rows, len(header), rows_per_block)
        read_claim = csv_claim_reader(header)
        frames = []
        for lines, cells in blocks:
            usual = _typed(cells.with_columns(lines), at, program_at)
            typed = usual.filter(pl.col("usual")).select(CLAIM_ROWS.names())
            unusual = ~usual["usual"]
            if unusual.any():
                # a block's rows back in file order, block by block: the whole file sorted at the end would hold
                # its claims twice (5M claims: 0.6 GB more at the run's peak)
                typed = pl.concat([typed, claim_rows(read_claim(line, list(row)) for line, row in zip(
                    lines.filter(unusual).to_list(), cells.filter(unusual).iter_rows()))]).sort(LINE)
            frames.append(typed)
    if not frames:
        return pl.DataFrame(schema=CLAIM_ROWS)
    return pl.concat(frames)


def _typed(cells: pl.DataFrame, at: dict[str, int], program_at: int | None) -> pl.DataFrame:
    """Each row typed by columns where its cells have their usual shape (``usual``), as :data:`CLAIM_ROWS`."""
    def stripped(name: str) -> pl.Expr:
        return pl.col(f"{at[name]}").str.strip_chars(WHITESPACE)

    amount = stripped("amount")
    split = amount.str.split_exact(".", 1)
    whole = split.struct.field("field_0").str.strip_chars_start("0")
    fraction = split.struct.field("field_1").fill_null("")
    plain = (amount.str.contains(r"^(?:[0-9]+\.?[0-9]*|\.[0-9]+)$") & (amount.str.len_bytes() <= MAX_NUMBER_DIGITS)
             & ((whole != "") | (fraction.str.len_bytes() <= _PLAIN_DECIMALS)))
    dates = {name: pl.when(stripped(name).str.contains(f"^(?:{DATE_PATTERN})$"))
             .then(stripped(name).str.to_date("%Y-%m-%d", strict=False)) for name in (ACTIVITY_END, SUBMITTED_ON)}
    flag = pl.col(f"{at[PREAPPROVED]}")
    program = pl.lit(None, pl.String) if program_at is None else \
        pl.col(f"{program_at}").str.strip_chars(WHITESPACE).replace("", None)
    usual = pl.all_horizontal(*(stripped(name) != "" for name in _IDENTIFIERS), plain,
                              *((date.is_not_null() & (date.dt.year() >= 1)) for date in dates.values()),
                              flag.is_in(["true", "false"]))
    return cells.select(
        pl.col(LINE), *(stripped(name).alias(name) for name in _IDENTIFIERS),
        pl.concat_str([pl.when(whole == "").then(pl.lit("0")).otherwise(whole),
                       pl.when(fraction != "").then(pl.lit(".") + fraction).otherwise(pl.lit(""))]).alias(AMOUNT_TEXT),
        *(date.alias(name) for name, date in dates.items()), (flag == "true").alias(PREAPPROVED),
        program.alias(PROGRAM_ID), pl.lit([], pl.List(pl.String)).alias(PROBLEMS),
        (whole + fraction).str.strip_chars_start("0").alias(AMOUNT_DIGITS),
        fraction.str.len_bytes().cast(pl.Int32).alias(AMOUNT_DECIMALS), pl.lit(False).alias(AMOUNT_NEGATIVE),
        usual.alias("usual")).cast({name: dtype for name, dtype in CLAIM_ROWS.items()})
