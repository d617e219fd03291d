"""A run's records in partner_id order, each partner's records together, in blocks of whole partners.

A run resolves everything about a partner (duplicates, its claims, its results'
order) from that partner's records alone, and writes partners in ascending
partner_id order (the output order is partner_id, program_id, period). So the
records are read in that order: a facts file already sorted is streamed; any
other input is sorted by partner_id in memory, stable, so that one partner's
records keep the order they came in (the order duplicate messages and ties in
the output follow). The columnar engine orders a CSV file by columns itself
(:mod:`incentives.columnar.facts`); what comes here is what runs per record.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..inputs import FactRow, fact_row, json_line_partner_id, read_facts

#: How many records a block of the per-record path holds (whole partners: a block may hold a few more).
RECORDS_PER_BLOCK = 20_000

#: A record as the run numbers it: its place in the input (1-based), the record, and its facts as read.
Numbered = tuple[int, Any, FactRow]


def numbered_in_partner_order(facts: Iterable[Any] | str | os.PathLike[str]) -> Iterator[Numbered]:
    """Every record of ``facts`` (a facts file, or records given in Python) with its place in the input,
    in partner_id order; stable, so that one partner's records keep their order."""
    if isinstance(facts, (str, os.PathLike)):
        path = Path(facts)
        if _sorted_file(path):
            return ((index, row, row) for index, row in enumerate(read_facts(path), 1))
        facts = read_facts(path)
    numbered = [(index, record, record if isinstance(record, FactRow) else fact_row(record))
                for index, record in enumerate(facts, 1)]
    numbered.sort(key=_partner_of)
    return iter(numbered)


def partner_blocks(numbered: Iterable[Numbered], size: int = RECORDS_PER_BLOCK) -> Iterator[list[Numbered]]:
    """``numbered`` (in partner order) cut into blocks of about ``size`` records, never inside a partner."""
    block: list[Numbered] = []
    for item in numbered:
        if len(block) >= size and item[2].partner_id != block[-1][2].partner_id:
            yield block
            block = []
        block.append(item)
    if block:
        yield block


def _partner_of(item: Numbered) -> str:
    return item[2].partner_id


def _sorted_file(path: Path) -> bool:
    """Whether a facts file holds one record a line already in partner_id order (as the reader gives each
    line's partner_id), so that it can be streamed. A file that cannot be judged line by line (a quoted
    CSV cell may hold a line break; a lone carriage return ends a line for the reader) is not."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson") or not path.is_file():
        return False  # the reader reports it
    with open(path, "rb") as handle:
        data = handle.read()
    csv_file = suffix == ".csv"
    if (csv_file and b'"' in data) or data.count(b"\r") != data.count(b"\r\n"):
        return False
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    lines = data.split(b"\n")
    del data
    if csv_file:
        header = lines[0].rstrip(b"\r").decode("utf-8", "replace").split(",")
        if "partner_id" not in [name.strip() for name in header]:
            return False  # the reader reports the header
        at = [name.strip() for name in header].index("partner_id")

        def key(line: bytes) -> str | None:
            if not line.rstrip(b"\r").strip(b","):
                return None  # a blank row: the reader skips it
            cells = line.split(b",", at + 1)
            return cells[at].decode("utf-8", "replace").strip() if len(cells) > at else ""
        records = lines[1:]
    else:
        def key(line: bytes) -> str | None:
            return json_line_partner_id(line) if line.strip() else None
        records = lines
    previous = ""
    for line in records:
        partner = key(line)
        if partner is None:
            continue
        if partner < previous:
            return False
        previous = partner
    return True
