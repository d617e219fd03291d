"""MDF claims by columns: a run's claims as one polars frame, one row per claim, for the MDF kind by columns.

A run holds its claims as *claim rows* (:data:`CLAIM_ROWS`): every field of a
:class:`incentives.inputs.Claim`, its problems included, and its amount as digits
and decimals. They come from ``Claim`` objects (:func:`claim_rows`: claims given
through the API, a JSON Lines file, the rows of a CSV file the columns cannot type)
or from a CSV file typed by columns (:mod:`incentives.columnar.claims`), and
:func:`claim_of` makes a ``Claim`` of a row again, equal to the one it came from.

:func:`claims_by_columns` gives the rows what the MDF kind computes with
(:data:`CLAIM_SCHEMA`): an amount is an ``Int64`` count of minor units at the
frame's ``amount_scale`` (the most decimals an amount has), as a fact column holds
a number (:mod:`incentives.rules.columns`); ``amount_text`` is the amount as
``str()`` writes it (its exponent shows: ``9450.50``), which ``results.jsonl`` shows.

A claim the columns cannot hold exactly is marked ``needs_record``: one with a
problem of its own (a missing or unreadable field, a duplicate id: the per-record
path writes its reasons), or an amount with more than :data:`MAX_AMOUNT_DECIMALS`
decimals or minor units beyond ``Int64``. The program sends its partner's row
through the per-record path.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping

import polars as pl

from .inputs import PARTNER_ID, PERIOD, Claim

CLAIM_ID = "claim_id"
ACTIVITY = "activity"
AMOUNT = "amount"
AMOUNT_TEXT = "amount_text"
ACTIVITY_END = "activity_end"
SUBMITTED_ON = "submitted_on"
PREAPPROVED = "preapproved"
PROGRAM_ID = "program_id"
LINE = "line"
PROBLEMS = "problems"
NEEDS_RECORD = "needs_record"
#: the amount's digits (no sign, no point, no leading zero: ``"95050"`` for 950.50, ``""`` for zero), null
#: where it has none the columns could hold (missing, not finite, too long)
AMOUNT_DIGITS = "amount_digits"
#: how many of those digits are decimals (an exponent above zero is written as zeros: ``1E+2`` has none)
AMOUNT_DECIMALS = "amount_decimals"
AMOUNT_NEGATIVE = "amount_negative"

_FIELDS = {
    LINE: pl.Int64(), CLAIM_ID: pl.String(), PARTNER_ID: pl.String(), PERIOD: pl.String(), ACTIVITY: pl.String(),
    AMOUNT_TEXT: pl.String(), ACTIVITY_END: pl.Date(), SUBMITTED_ON: pl.Date(), PREAPPROVED: pl.Boolean(),
    PROGRAM_ID: pl.String(), PROBLEMS: pl.List(pl.String())}
#: The columns that hold a claim's fields (:func:`claim_of` reads them).
CLAIM_FIELDS = tuple(_FIELDS)
#: The columns of a run's claim rows, in order: a claim's fields (``amount_text`` for its amount) and its amount
#: as digits.
CLAIM_ROWS = pl.Schema({**_FIELDS, AMOUNT_DIGITS: pl.String(), AMOUNT_DECIMALS: pl.Int32(),
                        AMOUNT_NEGATIVE: pl.Boolean()})
#: The columns of :attr:`ClaimsByColumns.frame`, in order.
CLAIM_SCHEMA = pl.Schema({**_FIELDS, AMOUNT: pl.Int64(), NEEDS_RECORD: pl.Boolean()})
#: The most decimals an amount has by columns (as a fact cell: ``columnar.facts.MAX_DIGITS``)
MAX_AMOUNT_DECIMALS = 18
#: The most digits an amount's units are computed with (in Int128) before they are held to Int64.
_MAX_UNIT_DIGITS = 38
_INT64_LIMIT = 2**63


@dataclass(frozen=True)
class ClaimsByColumns:
    """Claims as a frame of :data:`CLAIM_SCHEMA`; ``amount`` is in minor units at ``amount_scale``, and no
    row's |amount| exceeds ``amount_bound`` (null where the claim ``needs_record``)."""

    frame: pl.DataFrame
    amount_scale: int
    amount_bound: int

    def filter(self, rows: pl.Expr) -> "ClaimsByColumns":
        """The claims where ``rows`` holds, at the same scale and bound."""
        return ClaimsByColumns(self.frame.filter(rows), self.amount_scale, self.amount_bound)


def claims_by_columns(rows: pl.DataFrame | Iterable[Claim]) -> ClaimsByColumns:
    """The claim rows (:data:`CLAIM_ROWS`, or ``Claim`` objects), in the order given, with their amounts in
    units (see the module)."""
    if not isinstance(rows, pl.DataFrame):
        rows = claim_rows(rows)
    decimals = pl.col(AMOUNT_DECIMALS)
    held = pl.col(AMOUNT_DIGITS).is_not_null() & (decimals <= MAX_AMOUNT_DECIMALS)
    scale = rows.select(pl.when(held).then(decimals).max()).item() or 0
    shift = pl.lit(scale, pl.Int32) - decimals
    digits = pl.col(AMOUNT_DIGITS).replace("", "0")
    # exact in Int128 up to 38 digits, then kept where it fits Int64
    magnitude = digits.cast(pl.Int128, strict=False) * pl.lit(10, pl.Int128).pow(shift.clip(lower_bound=0))
    units = pl.when(held & (digits.str.len_bytes() + shift <= _MAX_UNIT_DIGITS)).then(
        pl.when(pl.col(AMOUNT_NEGATIVE)).then(pl.lit(0, pl.Int128) - magnitude).otherwise(magnitude))
    frame = rows.with_columns(units.alias(AMOUNT)).with_columns(
        pl.when(pl.col(AMOUNT).abs() < _INT64_LIMIT).then(pl.col(AMOUNT)).cast(pl.Int64).alias(AMOUNT))
    frame = frame.with_columns(
        ((pl.col(PROBLEMS).list.len() > 0) | pl.col(AMOUNT).is_null()).alias(NEEDS_RECORD)).select(CLAIM_SCHEMA.names())
    bound = frame.select(pl.col(AMOUNT).abs().max()).item() or 0
    return ClaimsByColumns(frame, scale, bound)


def claim_rows(claims: Iterable[Claim]) -> pl.DataFrame:
    """``Claim`` objects as claim rows (:data:`CLAIM_ROWS`), in order."""
    columns: dict[str, list[Any]] = {name: [] for name in CLAIM_ROWS.names()}
    (lines, claim_ids, partner_ids, periods, activities, amount_texts, activity_ends, submitted_ons, preapproveds,
     program_ids, problems, digits, decimals, negatives) = columns.values()
    for claim in claims:
        lines.append(claim.line)
        claim_ids.append(claim.claim_id)
        partner_ids.append(claim.partner_id)
        periods.append(claim.period)
        activities.append(claim.activity)
        amount = claim.amount
        amount_texts.append(None if amount is None else str(amount))
        activity_ends.append(claim.activity_end)
        submitted_ons.append(claim.submitted_on)
        preapproveds.append(claim.preapproved)
        program_ids.append(claim.program_id)
        problems.append(list(claim.problems))
        amount_digits, amount_decimals, negative = _digits(amount)
        digits.append(amount_digits)
        decimals.append(amount_decimals)
        negatives.append(negative)
    return pl.DataFrame(columns, schema=CLAIM_ROWS)


def _digits(amount: Decimal | None) -> tuple[str | None, int | None, bool]:
    """An amount's digits, decimals and sign as :data:`CLAIM_ROWS` holds them."""
    if amount is None or not amount.is_finite():
        return None, None, False
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).lstrip("0")
    if exponent > 0:
        if len(text) + exponent > _MAX_UNIT_DIGITS:
            return None, None, False  # never held: not worth the zeros
        return text + "0" * exponent if text else "", 0, bool(sign)
    return text, -exponent, bool(sign)


def claim_of(row: Mapping[str, Any]) -> Claim:
    """The ``Claim`` a claim row (:data:`CLAIM_ROWS` or :data:`CLAIM_SCHEMA`, as a mapping) holds: equal to the
    one it was made of (``str`` of a ``Decimal`` reads back as the same ``Decimal``, exponent included)."""
    amount_text = row[AMOUNT_TEXT]
    return Claim(row[CLAIM_ID], row[PARTNER_ID], row[PERIOD], row[ACTIVITY],
                 None if amount_text is None else Decimal(amount_text), row[ACTIVITY_END], row[SUBMITTED_ON],
                 row[PREAPPROVED], row[PROGRAM_ID], row[LINE], tuple(row[PROBLEMS]))


def flag_duplicates(rows: pl.DataFrame) -> pl.DataFrame:
    """The claim rows, each one whose ``claim_id`` occurs more than once getting a problem saying so, as
    :func:`incentives.inputs.flag_duplicate_claims` flags ``Claim`` objects (a row that has that very
    problem already is left as it is)."""
    # the repeated ids counted among their own rows: a count of every id would hash them all into a table (5M
    # claims: 0.6 GB more at the run's peak), where finding the repeated ones keeps a bit a row
    counts = rows.filter(pl.col(CLAIM_ID).is_duplicated() & (pl.col(CLAIM_ID) != "")).group_by(CLAIM_ID).len()
    if counts.is_empty():
        return rows
    # the message quotes the id as Python's repr does: made in Python, for the repeated ids only
    messages = counts.select(CLAIM_ID, pl.Series("message", [
        f"claim_id {claim_id!r} occurs {count} times" for claim_id, count in counts.iter_rows()], dtype=pl.String))
    message = pl.col("message")
    flagged = rows.join(messages, on=CLAIM_ID, how="left", maintain_order="left").with_columns(
        pl.when(message.is_not_null() & ~pl.col(PROBLEMS).list.contains(message))
        .then(pl.concat_list(PROBLEMS, message)).otherwise(pl.col(PROBLEMS)).alias(PROBLEMS))
    return flagged.drop("message")
