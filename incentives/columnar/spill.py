"""Fact blocks kept on disk between two passes over a facts file: read and typed once, read back as they were.

A run whose programs have a budget goes over its facts twice (the budgets need
the run's totals before a result can be written). Reading a block means reading
the file, sorting it by partner, splitting and typing its cells: at a million
records, seconds of work that the second pass would repeat for the same blocks.
:class:`SpilledBlocks` writes each block of the first pass as it goes by, in
Arrow IPC files, and gives the blocks back, equal to those written, for the
second pass. Blocks are held on disk rather than in memory so that a run's
memory stays that of a block or two whatever the size of the file. The files
are not compressed: a block's short texts take 16 bytes each as string views
before their bytes, so they take about five times the facts file's size on
disk (100k benchmark records: 7.8 MB of CSV, 40 MB of blocks), small next to
the run's own files (1M: 0.4 GB against 3 GB); LZ4 took that to 1.2 times, but
made a 1M run 5 % slower.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import polars as pl

from ..rules.columns import Column
from .facts import FactBlock

__all__ = ["SpilledBlocks"]


class SpilledBlocks:
    """Blocks written into ``folder`` as they go by (:meth:`write_through`), then read back once, in the same
    order (:meth:`read_back`); each block's files are removed as it is read back."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        #: each written block's files' stem and its columns' descriptions (small: they stay in memory)
        self._written: deque[tuple[Path, dict[str, Column]]] = deque()

    def write_through(self, blocks: Iterable[FactBlock]) -> Iterator[FactBlock]:
        """``blocks``, each written before it is given on."""
        for block in blocks:
            stem = self.folder / f"block-{len(self._written):06d}"
            block.frame.write_ipc(_part(stem, "frame"), compression="uncompressed")
            pl.DataFrame(list(block.decimals.values())).write_ipc(_part(stem, "decimals"),
                                                                  compression="uncompressed")
            block.cells.write_ipc(_part(stem, "cells"), compression="uncompressed")
            self._written.append((stem, dict(block.columns)))
            yield block

    def read_back(self) -> Iterator[FactBlock]:
        """The blocks written, in the order they were written; each is read once."""
        while self._written:
            stem, columns = self._written.popleft()
            parts = {name: pl.read_ipc(_part(stem, name)) for name in ("frame", "decimals", "cells")}
            for path in (_part(stem, name) for name in parts):
                path.unlink()
            yield FactBlock(parts["frame"], columns, {series.name: series for series in parts["decimals"]},
                            parts["cells"])


def _part(stem: Path, name: str) -> Path:
    return stem.with_name(f"{stem.name}.{name}.arrow")
