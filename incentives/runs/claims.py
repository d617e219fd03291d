"""A run's claims: read once into one frame, duplicate ids flagged, handed out a block of partners at a time.

The claims are claim rows (:mod:`incentives.claims_by_columns`) whichever way they
come: a CSV file typed by columns (:mod:`incentives.columnar.claims`), a JSON Lines
file or claims given through the API read per claim. With a ``period`` only that
period's claims are kept (and those without a period: they become error results).
Duplicate ids are flagged over the file as it is read, then over the claims the run
keeps, as :func:`incentives.inputs.flag_duplicate_claims` flags ``Claim`` objects.

A run goes through its records in partner order; :meth:`ClaimsCursor.through`
(of a :meth:`RunClaims.cursor`) hands out the claims of the partners up to a block's last, each claim once, as
:class:`BlockClaims`: a frame the columnar engine computes with, the ``Claim``
objects of a key for the records computed per record (made when asked for), and the
keys a block's claims have, for claims without a record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import polars as pl

from ..claims_by_columns import CLAIM_FIELDS, ClaimsByColumns, claim_of, claim_rows, claims_by_columns, flag_duplicates
from ..inputs import PARTNER_ID, PERIOD, Claim, normalize_claim, read_claims

__all__ = ["BlockClaims", "ClaimsCursor", "RunClaims"]

#: The columns of the claims' keys (:meth:`BlockClaims.keys`).
KEYS = pl.Schema({PARTNER_ID: pl.String(), PERIOD: pl.String()})


class BlockClaims:
    """The claims of a block's partners (in the run's order, by partner): see the module."""

    def __init__(self, claims: ClaimsByColumns):
        self.by_columns = claims
        self._rows_of_key: dict[tuple[str, str], list[int]] | None = None
        self._fields: list[list[Any]] = []

    def __bool__(self) -> bool:
        return not self.by_columns.frame.is_empty()

    def keys(self) -> pl.DataFrame:
        """The (partner_id, period) keys of these claims (:data:`KEYS`): by partner, then in the order each
        key was first met in the claims (the order of claims without a record's results)."""
        return self.by_columns.frame.select(PARTNER_ID, PERIOD).unique(maintain_order=True)

    def of(self, key: tuple[str, str]) -> list[Claim]:
        """The claims of one (partner_id, period), in the run's order, as ``Claim`` objects."""
        if self._rows_of_key is None:
            # made once for the block, when a record computed per record or a claim without one first asks:
            # the columns as Python values, each key's rows (a lookup by key in the frame costs far more)
            frame = self.by_columns.frame
            self._fields = [frame[name].to_list() for name in CLAIM_FIELDS]
            self._rows_of_key = {}
            for row, found in enumerate(zip(frame[PARTNER_ID].to_list(), frame[PERIOD].to_list())):
                self._rows_of_key.setdefault(found, []).append(row)
        rows = self._rows_of_key.get(key)
        if rows is None:
            return []
        return [claim_of(dict(zip(CLAIM_FIELDS, values))) for values in
                zip(*([column[row] for row in rows] for column in self._fields))]


class RunClaims:
    """A run's claims, handed out by a :meth:`cursor` in partner order (within a partner, the order given)."""

    def __init__(self, rows: pl.DataFrame, period: str | None = None):
        """``rows``: claim rows (:data:`~incentives.claims_by_columns.CLAIM_ROWS`), in the order given."""
        if period is not None:
            rows = rows.filter((pl.col(PERIOD) == "") | (pl.col(PERIOD) == period))
        self._claims = claims_by_columns(flag_duplicates(rows))
        # the claims stay in the order given, walked in partner order through their order: sorting the frame
        # itself would hold it twice (5M claims: 0.4 GB more at the run's peak)
        self._order = self._claims.frame.select(pl.arg_sort_by(PARTNER_ID, maintain_order=True)).to_series()

    @classmethod
    def read(cls, claims: Iterable[Mapping[str, Any] | Claim] | str | os.PathLike[str],
             period: str | None = None) -> "RunClaims":
        """A run's claims from a claims file (``.csv`` by columns; ``.jsonl``, ``.ndjson`` per claim, as
        :func:`incentives.inputs.read_claims` reads them) or from claims given (mappings or ``Claim`` s)."""
        if isinstance(claims, (str, os.PathLike)):
            if Path(claims).suffix.lower() == ".csv":
                from ..columnar.claims import read_claim_rows

                return cls(flag_duplicates(read_claim_rows(claims)), period)
            return cls(claim_rows(read_claims(claims)), period)
        return cls(claim_rows(claim if isinstance(claim, Claim) else normalize_claim(claim) for claim in claims),
                   period)

    @property
    def count(self) -> int:
        """How many claims the run has (of its period), bad ones and duplicates included."""
        return self._claims.frame.height

    def cursor(self) -> "ClaimsCursor":
        """A pass over the claims, block after block."""
        return ClaimsCursor(self._claims, self._order)


class ClaimsCursor:
    """One pass over a run's claims in partner order, each claim handed out once."""

    def __init__(self, claims: ClaimsByColumns, order: pl.Series):
        """``order``: the positions of ``claims`` in partner order (within a partner, the order given)."""
        self._claims = claims
        self._order = order
        self._partners = claims.frame[PARTNER_ID].gather(order)
        self._next = 0

    def through(self, partner_id: str | None) -> BlockClaims:
        """The claims not handed out yet whose partner_id is at most ``partner_id`` (``None``: every one)."""
        end = self._partners.len() if partner_id is None else self._partners.search_sorted(partner_id, side="right")
        start, self._next = self._next, max(self._next, end)
        return BlockClaims(ClaimsByColumns(self._claims.frame.gather(self._order.slice(start, max(end - start, 0))),
                                           self._claims.amount_scale, self._claims.amount_bound))

    def none(self) -> BlockClaims:
        """No claims (for a block whose records have no partner_id)."""
        return BlockClaims(self._claims.filter(pl.lit(False)))
