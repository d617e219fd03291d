"""A CSV file's rows as columns of cells: polars splits a file of plain lines, the per-record reader's parser
any other, and both give the same rows (blank rows skipped, each row at the line it starts on).

The facts (:mod:`incentives.columnar.facts`) and the claims (:mod:`incentives.columnar.claims`) are typed by
columns from these cells. ``tests/test_columnar_facts.py`` holds :func:`plain_rows` to :func:`parsed_rows`.
"""

from __future__ import annotations

import os
from typing import Iterator

import polars as pl

#: The column of a row's line (where it starts in the file).
LINE = "line"

#: Every character ``str.strip()`` removes, so that polars strips exactly as the per-record reader does
#: (Python's whitespace is not Rust's: the ASCII separators U+001C..U+001F are whitespace to Python only).
#: Written out rather than computed at import (a scan of every code point: 0.2 s); a test holds it to
#: ``str.isspace`` over every code point of this Python.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def parsed_rows(rows: Iterator[tuple[int, list[str]]], width: int,
                 rows_per_block: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """Blocks of the rows the per-record reader's CSV parser gives: line numbers and the cells by column."""
    lines: list[int] = []
    cells: list[list[str]] = []
    for line, row in rows:
        lines.append(line)
        cells.append(row)
        if len(lines) == rows_per_block:
            yield _as_columns(lines, cells, width)
            lines, cells = [], []
    if lines:
        yield _as_columns(lines, cells, width)


def sorted_rows(rows: Iterator[tuple[int, list[str]]], width: int, rows_per_block: int,
                 partner_at: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """The parser's rows sorted by partner_id as read (stable), in blocks of whole partners: every row is held
    (a file the parser reads is not the bulk case: see :func:`plain_rows`)."""
    ordered = sorted(rows, key=lambda row: row[1][partner_at].strip())
    partners = [cells[partner_at].strip() for _, cells in ordered]
    for start, end in partner_cuts(partners, rows_per_block):
        part = ordered[start:end]
        yield _as_columns([line for line, _ in part], [cells for _, cells in part], width)


def partner_cuts(partners: list[str], rows_per_block: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of blocks of about ``rows_per_block`` sorted rows, each ending where a partner does."""
    start = 0
    while start < len(partners):
        end = min(start + rows_per_block, len(partners))
        while end < len(partners) and partners[end] == partners[end - 1]:
            end += 1
        yield start, end
        start = end


def _as_columns(lines: list[int], rows: list[list[str]], width: int) -> tuple[pl.Series, pl.DataFrame]:
    by_column = list(zip(*rows))  # one pass in C: the cells of each column
    return (pl.Series(LINE, lines, dtype=pl.Int64),
            pl.DataFrame({f"{at}": pl.Series(by_column[at], dtype=pl.String) for at in range(width)}))


def plain_rows(path: str | os.PathLike[str], width: int, rows_per_block: int,
                ordered_by: int | None) -> Iterator[tuple[pl.Series, pl.DataFrame]] | None:
    """The rows of a file of plain lines (see :func:`read_csv_blocks`) split by polars, or ``None`` for a file
    that is not one. A row the split cannot take as the parser would (ragged) makes the whole file ``None``.
    ``ordered_by``: the partner_id's column, to sort the rows by it (stable) in blocks of whole partners."""
    with open(path, "rb") as handle:
        data = handle.read()
    if b'"' in data or b"\x00" in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    del data
    lines = pl.Series("text", text.split("\n"), dtype=pl.String)
    del text
    frame = pl.DataFrame({LINE: pl.int_range(1, len(lines) + 1, dtype=pl.Int64, eager=True),
                          "text": lines.str.strip_suffix("\r")})
    # blank rows (nothing but commas) are skipped, as the parser's reader skips them; the first row is the header
    frame = frame.filter(~pl.col("text").str.contains("^,*$")).slice(1)
    if not frame.is_empty() and (frame["text"].str.count_matches(",", literal=True) != width - 1).any():
        return None  # a ragged row: the parser reports it, at its line
    if ordered_by is None:
        cuts: Iterator[tuple[int, int]] = ((start, min(start + rows_per_block, frame.height))
                                           for start in range(0, frame.height, rows_per_block))
    else:
        partner = pl.col("text").str.split(",").list.get(ordered_by).str.strip_chars(WHITESPACE)
        frame = frame.with_columns(partner.alias("partner")).sort("partner", LINE)
        cuts = partner_cuts(frame["partner"].to_list(), rows_per_block)
        frame = frame.drop("partner")
    return _split_blocks(frame, width, cuts)


def _split_blocks(frame: pl.DataFrame, width: int,
                  cuts: Iterator[tuple[int, int]]) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    for start, end in cuts:
        block = frame.slice(start, end - start)
        cells = block.select(pl.col("text").str.split_exact(",", width - 1)).unnest("text")
        yield block[LINE], cells.rename({field: f"{at}" for at, field in enumerate(cells.columns)})
