"""Facts by columns: a facts CSV file read into typed polars columns, a block of rows at a time.

The columnar engine computes a block of partners at once from columns that
:mod:`incentives.rules.columns` compiles expressions over. This module makes
those columns from a facts file, by the typing rules of the per-record reader
(:mod:`incentives.inputs`), so that a value by columns is the value the
per-record path reads:

* the rows are the per-record reader's (the header and the file's problems from
  :func:`incentives.inputs.csv_fact_cells`; its CSV parser splits the rows, or
  polars for a file of plain lines, held to the parser by a test: blank rows
  skipped, the same line numbers);
* each cell is typed by columns with the same rules (stripped as ``str.strip``
  strips; a decimal, a boolean, a date, text or missing), and a column holds one
  kind: a number column is ``Int64`` minor units at the column's scale (the most
  decimals a cell of it has in the block), a text column ``String``, a boolean
  column ``Boolean``, a date column ``Date``. A missing cell is null.

A row whose cells the columns cannot hold exactly is marked ``per_record``, and
its cells are null: the engine sends it through the per-record path, which
reads it again and decides. That is a row with a problem (no ``partner_id`` or
``period``, an invalid date, a number out of range, ``NaN``), a cell whose kind
is not its column's (the per-record path may still compute with it), a number
written with an exponent or as a negative zero, or one whose minor units do not
fit ``Int64`` at the column's scale.

For each number column the block also keeps each cell's own decimals
(``decimals``): the per-record path keeps a number as written (``612500.00``
has two decimals, ``5.`` none), and texts that show a fact's value as read (a
line's inputs) need them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Collection, Iterator, Mapping

import polars as pl

from ..inputs import (BOOLEANS, DATE_PATTERN, DECIMAL_PATTERN, NON_FINITE_PATTERN, PARTNER_ID, PERIOD,
                      csv_fact_cells)
from ..joined_facts import ComputedFacts, check_no_clash
from ..rules.columns import Column, Kind
from .cells import LINE, WHITESPACE, parsed_rows, partner_cuts, plain_rows, sorted_rows

PER_RECORD = "per_record"
#: Rows a block holds by default: a million facts cells of a few bytes each, well under 100 MB.
ROWS_PER_BLOCK = 100_000
#: The most digits a number's minor units may have by columns: every such integer fits Int64.
MAX_DIGITS = 18

#: The line number of the first row of computed facts alone (a partner and period the file lacks): after any
#: line a file has.
FIRST_COMPUTED_LINE = 1 << 62

_KINDS = (Kind.NUMBER, Kind.BOOLEAN, Kind.DATE, Kind.TEXT)
_PARTNER_KEY = "key:partner_id"
_PERIOD_KEY = "key:period"
_COMPUTED = "key:computed"


@dataclass(frozen=True)
class FactBlock:
    """Consecutive rows of a facts file by columns.

    ``frame``: ``line`` (where the row starts in the file), ``partner_id`` and ``period`` (stripped), one column
    per fact read, and ``per_record`` (see the module docstring). ``columns``: each fact column's description
    for :func:`incentives.rules.columns.compile_columns` (a number column's bound is its largest magnitude in
    the block). ``decimals``: each number column's cells' own decimals (``UInt8``, null where the cell is).
    """

    frame: pl.DataFrame
    columns: Mapping[str, Column]
    decimals: Mapping[str, pl.Series]
    #: the rows' cells as read (``String`` columns ``0``, ``1``, ... in the header's order): what the per-record
    #: path reads again for a row it computes (:func:`incentives.inputs.csv_row_reader`)
    cells: pl.DataFrame

    def rows(self, mask: pl.Series) -> "FactBlock":
        """The block of the rows where ``mask`` holds (the columns' descriptions still bound them)."""
        return FactBlock(self.frame.filter(mask), self.columns,
                         {name: decimals.filter(mask) for name, decimals in self.decimals.items()},
                         self.cells.filter(mask))


def read_csv_blocks(path: str | os.PathLike[str], names: Collection[str] | None = None, *,
                    rows_per_block: int = ROWS_PER_BLOCK, in_partner_order: bool = False,
                    joined: ComputedFacts | None = None) -> Iterator[FactBlock]:
    """The rows of a facts CSV file, ``rows_per_block`` at a time, typed by columns.

    ``names``: the facts to type (those the programs read); the others are not read. ``None``: every column.
    ``in_partner_order``: the rows sorted by partner_id as read (stable: one partner's rows keep the file's
    order), a block holding whole partners (so a little more than ``rows_per_block`` rows at times).
    Raises :class:`~incentives.errors.InputError` where :func:`incentives.inputs.read_facts` would.
    ``joined`` (``in_partner_order`` only): facts computed by partner and period, joined to the rows as
    :func:`incentives.joined_facts.joined_rows` joins them to records: cells of their own after the file's
    (the header's names, then the computed ones), and a row of the computed facts alone for a partner and period
    the file lacks, in the block of its partner, numbered from :data:`FIRST_COMPUTED_LINE`.

    A file of plain lines (no quote, no carriage return but before a line feed, no NUL byte) is split into
    cells by polars; any other file, or a plain one with a ragged row or a byte that is not UTF-8, by the
    per-record reader's CSV parser, which reports the file's problems as it does. Both give the same rows
    (``tests/test_columnar_facts.py`` holds the first to the second).
    """
    if joined is not None and not in_partner_order:
        raise ValueError("computed facts are joined to blocks in partner order only")
    with csv_fact_cells(path) as (header, rows):
        width = len(header)
        if joined is not None:
            check_no_clash(header, joined, str(path))
            header = [*header, *joined.names]
        wanted = [(at, name) for at, name in enumerate(header)
                  if name not in (PARTNER_ID, PERIOD) and (names is None or name in names)]
        partner_at, period_at = header.index(PARTNER_ID), header.index(PERIOD)
        ordered_by = partner_at if in_partner_order else None
        chunks = plain_rows(path, width, rows_per_block, ordered_by)
        if chunks is None:
            chunks = parsed_rows(rows, width, rows_per_block) if ordered_by is None else \
                sorted_rows(rows, width, rows_per_block, ordered_by)
        if joined is not None:
            chunks = _with_computed(chunks, joined, partner_at, period_at, width, rows_per_block)
        for lines, cells in chunks:
            yield _block(lines, cells, partner_at, period_at, wanted)


def _with_computed(chunks: Iterator[tuple[pl.Series, pl.DataFrame]], joined: ComputedFacts, partner_at: int,
                   period_at: int, width: int, rows_per_block: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """``chunks`` (in partner order, whole partners each) with the computed facts ``joined`` as cells
    ``width``, ``width + 1``...: each row's partner and period's (``joined.absent``'s where none), and the rows
    of partners and periods the file lacks, each in the chunk its partner falls in (after the chunks: in chunks of their
    own). A chunk's rows stay in partner order, the file's rows before the computed ones of a partner."""
    keys = [_PARTNER_KEY, _PERIOD_KEY]
    names = joined.names
    computed = joined.frame.select(
        pl.col(PARTNER_ID).alias(_PARTNER_KEY), pl.col(PERIOD).alias(_PERIOD_KEY),
        *(pl.col(name).fill_null("").alias(f"{width + at}") for at, name in enumerate(names)),
        pl.lit(True).alias(_COMPUTED)).sort(keys)
    made = 0  # rows of computed facts alone so far: their line numbers
    after: str | None = None  # the last partner of the chunks so far

    def alone(rows: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame]:
        nonlocal made
        lines = pl.int_range(FIRST_COMPUTED_LINE + made, FIRST_COMPUTED_LINE + made + rows.height, dtype=pl.Int64,
                             eager=True).alias(LINE)
        made += rows.height
        return lines, rows.select(
            *(pl.col(_PARTNER_KEY if at == partner_at else _PERIOD_KEY).alias(f"{at}") if at in (partner_at, period_at)
              else pl.lit("").alias(f"{at}") for at in range(width)),
            *(pl.col(f"{width + at}") for at in range(len(names))))

    absent = [pl.lit(joined.absent.get(name) or "", pl.String) for name in names]

    for lines, cells in chunks:
        keyed = pl.concat([lines.to_frame(), cells], how="horizontal").with_columns(
            pl.col(f"{partner_at}").str.strip_chars(WHITESPACE).alias(_PARTNER_KEY),
            pl.col(f"{period_at}").str.strip_chars(WHITESPACE).alias(_PERIOD_KEY))
        last = keyed[_PARTNER_KEY].max()
        assert isinstance(last, str)
        mine = computed.filter(pl.col(_PARTNER_KEY) <= pl.lit(last) if after is None else
                               pl.col(_PARTNER_KEY).is_between(pl.lit(after), pl.lit(last), closed="right"))
        after = last
        read = keyed.join(mine, on=keys, how="left", maintain_order="left", nulls_equal=False).with_columns(
            pl.when(pl.col(_COMPUTED)).then(pl.col(f"{width + at}")).otherwise(absent[at]).alias(f"{width + at}")
            for at in range(len(names)))
        extra_lines, extra = alone(mine.join(keyed.select(keys), on=keys, how="anti"))
        both = pl.concat([read.drop(*keys, _COMPUTED), pl.concat([extra_lines.to_frame(), extra], how="horizontal")])
        both = both.sort(pl.col(f"{partner_at}").str.strip_chars(WHITESPACE), maintain_order=True)
        yield both[LINE], both.drop(LINE)
    rest = computed if after is None else computed.filter(pl.col(_PARTNER_KEY) > pl.lit(after))
    for start, end in partner_cuts(rest[_PARTNER_KEY], rows_per_block):
        yield alone(rest.slice(start, end - start))


def _block(lines: pl.Series, cells: pl.DataFrame, partner_at: int, period_at: int,
           wanted: list[tuple[int, str]]) -> FactBlock:
    # internal names: a fact may be called 'line', and dotted names are names of their own
    names = {f"c{at}": header_name for at, header_name in wanted}
    stripped = cells.select(
        pl.col(f"{at}").str.strip_chars(WHITESPACE).alias(name) for name, at in
        ((PARTNER_ID, partner_at), (PERIOD, period_at), *((f"c{at}", at) for at, _ in wanted)))
    # each stage is computed once and kept: polars would compute an expression again in each that uses it
    flags = stripped.select(*(flag.alias(f"{name}:{kind.value}") for name in names
                              for kind, flag in _kinds(pl.col(name)).items()))
    counts = flags.select(pl.all().sum()).row(0, named=True)
    # what each column holds: the kind most of its cells have (ties: the first of _KINDS)
    kinds = {name: max(_KINDS, key=lambda kind: counts[f"{name}:{kind.value}"]) for name in names}
    numbers = [name for name in names if kinds[name] is Kind.NUMBER]
    parts = pl.concat([stripped, flags], how="horizontal").select(
        *(expression.alias(f"{name}:{part}") for name in numbers
          for part, expression in _number_parts(pl.col(name), pl.col(f"{name}:{Kind.NUMBER.value}")).items()))
    scales = {name: int(value or 0) for name, value in parts.select(
        pl.col(f"{name}:candidate").max().alias(name) for name in numbers).row(0, named=True).items()} \
        if numbers else {}
    context = pl.concat([stripped, flags, parts], how="horizontal")
    typed = context.select(
        lines, PARTNER_ID, PERIOD,
        *(expression.alias(f"{name}:{part}") for name in names
          for part, expression in _typed(name, kinds[name], scales.get(name, 0)).items()))
    per_record = pl.any_horizontal(pl.col(PARTNER_ID) == "", pl.col(PERIOD) == "",
                                   *(pl.col(f"{name}:misfit") for name in names))
    # a row the per-record path reads holds no value by columns: nothing computed from it can be used by mistake
    frame = typed.with_columns(per_record.alias(PER_RECORD)).select(
        LINE, PARTNER_ID, PERIOD,
        *(pl.when(~pl.col(PER_RECORD)).then(pl.col(f"{name}:value")).alias(header_name)
          for name, header_name in names.items()),
        *(pl.when(~pl.col(PER_RECORD)).then(pl.col(f"{name}:decimals")).alias(f"{name}:decimals")
          for name in numbers),
        PER_RECORD)
    bounds = frame.select(pl.col(names[name]).abs().max() for name in numbers).row(0, named=True) \
        if numbers else {}
    columns = {header_name: Column.number(scales[name], int(bounds[header_name] or 0)) if name in scales
               else Column(kinds[name]) for name, header_name in names.items()}
    decimals = {names[name]: frame[f"{name}:decimals"].alias(names[name]) for name in numbers}
    return FactBlock(frame.drop(f"{name}:decimals" for name in numbers), columns, decimals, cells)


def _kinds(text: pl.Expr) -> dict[Kind, pl.Expr]:
    """Of a stripped cell: whether the per-record rules give it each kind (a missing cell has none)."""
    present = text != ""
    # the per-record rules match booleans and non-finite numbers case-insensitively in ASCII only; polars'
    # case-insensitive match also folds 'ſ' to 's' and 'K' (Kelvin) to 'k': it is asked of ASCII texts only
    ascii_text = text.str.len_bytes() == text.str.len_chars()
    decimal = text.str.contains(f"^(?:{DECIMAL_PATTERN})$")
    boolean = ascii_text & text.str.contains(f"(?i)^(?:{'|'.join(BOOLEANS)})$")
    is_date = text.str.contains(f"^(?:{DATE_PATTERN})$")
    non_finite = ascii_text & text.str.contains(f"(?i)^(?:{NON_FINITE_PATTERN})$")
    return {Kind.NUMBER: present & decimal, Kind.BOOLEAN: present & boolean, Kind.DATE: present & is_date,
            Kind.TEXT: present & ~decimal & ~boolean & ~is_date & ~non_finite}


def _number_parts(text: pl.Expr, is_number: pl.Expr) -> dict[str, pl.Expr]:
    """A number cell's parts as a plain decimal (no exponent): ``sign``, ``whole`` (digits, no leading zeros),
    ``fraction`` (digits), and ``candidate``: its decimals where the columns can hold it at some scale.
    ``is_number``: the cell has the decimal syntax (one sign at most, one point at most, digits)."""
    exponent = text.str.contains_any(["e", "E"])
    sign = text.str.head(1)
    split = text.str.strip_chars_start("+-").str.split_exact(".", 1)
    whole = split.struct.field("field_0").str.strip_chars_start("0")
    fraction = split.struct.field("field_1").fill_null("")
    decimals = fraction.str.len_chars()
    # a negative zero (-0.00) keeps its sign per record, not as units: left to the per-record path
    negative_zero = (sign == "-") & (whole == "") & (fraction.str.strip_chars_end("0") == "")
    candidate = is_number & ~exponent & (decimals <= MAX_DIGITS) & ~negative_zero
    return {"sign": sign, "whole": whole, "fraction": fraction, "candidate": pl.when(candidate).then(decimals)}


def _typed(name: str, kind: Kind, scale: int) -> dict[str, pl.Expr]:
    """The stripped cells of column ``name`` typed as ``kind`` by the per-record rules: ``value`` (null where the
    cell is missing or does not fit), ``misfit`` (a value the column cannot hold) and, for a number,
    ``decimals``. Reads the stages :func:`_block` keeps: the flags of :func:`_kinds`, a number's parts."""
    text = pl.col(name)
    present = text != ""
    fits = pl.col(f"{name}:{kind.value}")
    if kind is Kind.NUMBER:
        whole, fraction, decimals = pl.col(f"{name}:whole"), pl.col(f"{name}:fraction"), pl.col(f"{name}:candidate")
        fits = decimals.is_not_null() & (whole.str.len_chars() + scale <= MAX_DIGITS)
        # the digits at the column's scale as text: exact, and at most MAX_DIGITS of them where the cell fits
        magnitude = ((whole + fraction.str.pad_end(scale, "0")).str.strip_chars_start("0")
                     .cast(pl.Int64, strict=False).fill_null(0))  # all zeros stripped: zero
        value = pl.when(pl.col(f"{name}:sign") == "-").then(-magnitude).otherwise(magnitude)
        return {"value": pl.when(fits).then(value), "misfit": present & ~fits,
                "decimals": pl.when(fits).then(decimals.cast(pl.UInt8))}
    if kind is Kind.BOOLEAN:
        value = text.str.contains("(?i)^true$")  # the cell is an ASCII boolean
    elif kind is Kind.DATE:
        value = text.str.to_date("%Y-%m-%d", strict=False)
        # an invalid date (2027-02-30) is a problem of the record; Python's dates start at year 1
        fits = fits & value.is_not_null() & (value.dt.year() >= 1)
    else:
        value = text
    return {"value": pl.when(fits).then(value), "misfit": present & ~fits}
