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
    for start, end in partner_cuts(pl.Series(partners, dtype=pl.String), rows_per_block):
        part = ordered[start:end]
        yield _as_columns([line for line, _ in part], [cells for _, cells in part], width)


def partner_cuts(partners: pl.Series, rows_per_block: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of blocks of about ``rows_per_block`` sorted rows, each ending where a partner does."""
    # where each partner's rows start: a block ends at the first of them at or after its size
    starts = (partners != partners.shift(1)).fill_null(True).arg_true()
    start, height = 0, partners.len()
    while start < height:
        at = starts.search_sorted(start + rows_per_block, side="left")
        end = starts[at] if at < starts.len() else height
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
    ``ordered_by``: the partner_id's column, to sort the rows by it (stable) in blocks of whole partners.

    The file's lines are held once, as read (a 10M-row facts file: about its size); a block is gathered from
    them when it is taken."""
    if not _plain_bytes(path):
        return None
    try:
        # one column per line: no quote, no NUL byte in the file (the separator), a BOM skipped, CRLF as LF
        text = pl.read_csv(path, has_header=False, separator="\x00", quote_char=None, new_columns=["text"],
                           schema={"text": pl.String}, encoding="utf8", raise_if_empty=False)["text"]
    except pl.exceptions.ComputeError:  # a byte that is not UTF-8: the parser reports it, at its line
        return None
    # blank rows (nothing but commas) are skipped, as the parser's reader skips them; the first row is the header
    rows = (text.is_not_null() & ~text.str.contains("^,*$")).arg_true().slice(1)
    if (text.str.count_matches(",", literal=True).gather(rows) != width - 1).any():
        return None  # a ragged row: the parser reports it, at its line
    if ordered_by is None:
        cuts: Iterator[tuple[int, int]] = ((start, min(start + rows_per_block, rows.len()))
                                           for start in range(0, rows.len(), rows_per_block))
    else:
        # the partner cell of every line, then of the rows: gathering the lines themselves would copy the whole
        # file's text (10M rows: 0.6 GB more at the run's peak)
        cell = text.str.extract(f"^(?:[^,]*,){{{ordered_by}}}([^,]*)", 1).str.strip_chars(WHITESPACE).gather(rows)
        order = pl.DataFrame({"partner": cell, "row": rows}).sort("partner", "row")
        rows = order["row"]
        cuts = partner_cuts(order["partner"], rows_per_block)
    return _split_blocks(text, rows, width, cuts)


def _plain_bytes(path: str | os.PathLike[str]) -> bool:
    """Whether the file has no quote, no NUL byte, and no carriage return but before a line feed: read a chunk
    at a time."""
    lone_returns = 0
    last = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            if b'"' in chunk or b"\x00" in chunk:
                return False
            lone_returns += chunk.count(b"\r") - chunk.count(b"\r\n") - (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
    return lone_returns == 0


def _split_blocks(text: pl.Series, rows: pl.Series, width: int,
                  cuts: Iterator[tuple[int, int]]) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """Each block's line numbers and cells: the rows at ``rows[start:end]`` of the file's lines ``text``."""
    for start, end in cuts:
        at = rows.slice(start, end - start)
        cells = text.gather(at).str.split_exact(",", width - 1).struct.unnest()
        yield ((at.cast(pl.Int64) + 1).alias(LINE),
               cells.rename({field: f"{column}" for column, field in enumerate(cells.columns)}))
