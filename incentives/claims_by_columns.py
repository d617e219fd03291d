"""MDF claims by columns: :class:`incentives.inputs.Claim` objects as one polars frame, for the MDF kind by columns.

The run pipeline holds a block's claims as ``Claim`` objects, already grouped by
partner and period and routed to their program; :func:`claims_by_columns` puts
those of one program in a frame of :data:`CLAIM_SCHEMA`, one row per claim, in the
order given. An amount is an ``Int64`` count of minor units at the frame's
``amount_scale`` (the most decimals an amount has), as a fact column holds a
number (:mod:`incentives.rules.columns`); ``amount_text`` is the amount as ``str()``
writes it (its exponent shows: ``9450.50``), which ``results.jsonl`` shows.

A claim the columns cannot hold exactly is marked ``needs_record``: one with a
problem of its own (a missing or unreadable field, a duplicate id: the per-record
path writes its reasons), or an amount with more than :data:`MAX_AMOUNT_DECIMALS`
decimals or minor units beyond ``Int64``. The program sends its partner's row
through the per-record path.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

import polars as pl

from .inputs import PARTNER_ID, PERIOD, Claim

CLAIM_ID = "claim_id"
ACTIVITY = "activity"
AMOUNT = "amount"
AMOUNT_TEXT = "amount_text"
ACTIVITY_END = "activity_end"
SUBMITTED_ON = "submitted_on"
PREAPPROVED = "preapproved"
NEEDS_RECORD = "needs_record"
#: The columns of :attr:`ClaimsByColumns.frame`, in order.
CLAIM_SCHEMA = pl.Schema({
    CLAIM_ID: pl.String(), PARTNER_ID: pl.String(), PERIOD: pl.String(), ACTIVITY: pl.String(),
    AMOUNT: pl.Int64(), AMOUNT_TEXT: pl.String(), ACTIVITY_END: pl.Date(), SUBMITTED_ON: pl.Date(),
    PREAPPROVED: pl.Boolean(), NEEDS_RECORD: pl.Boolean()})
#: The most decimals an amount has by columns (as a fact cell: ``columnar.facts.MAX_DIGITS``)
MAX_AMOUNT_DECIMALS = 18
_INT64_LIMIT = 2**63


@dataclass(frozen=True)
class ClaimsByColumns:
    """Claims as a frame of :data:`CLAIM_SCHEMA`; ``amount`` is in minor units at ``amount_scale``, and no
    row's |amount| exceeds ``amount_bound`` (null where the claim ``needs_record``)."""

    frame: pl.DataFrame
    amount_scale: int
    amount_bound: int


def claims_by_columns(claims: Sequence[Claim]) -> ClaimsByColumns:
    """The claims, in the order given, as a frame (see the module)."""
    decimals = [_decimals(claim.amount) for claim in claims]
    scale = max((places for places in decimals if places is not None and places <= MAX_AMOUNT_DECIMALS), default=0)
    units: list[int | None] = []
    for claim, places in zip(claims, decimals):
        amount = None
        if places is not None and places <= MAX_AMOUNT_DECIMALS:
            assert claim.amount is not None
            exact = int(claim.amount.scaleb(scale))
            amount = exact if -_INT64_LIMIT < exact < _INT64_LIMIT else None
        units.append(amount)
    frame = pl.DataFrame({
        CLAIM_ID: [claim.claim_id for claim in claims],
        PARTNER_ID: [claim.partner_id for claim in claims],
        PERIOD: [claim.period for claim in claims],
        ACTIVITY: [claim.activity for claim in claims],
        AMOUNT: units,
        AMOUNT_TEXT: [None if claim.amount is None else str(claim.amount) for claim in claims],
        ACTIVITY_END: [claim.activity_end for claim in claims],
        SUBMITTED_ON: [claim.submitted_on for claim in claims],
        PREAPPROVED: [claim.preapproved for claim in claims],
        NEEDS_RECORD: [bool(claim.problems) or amount is None for claim, amount in zip(claims, units)],
    }, schema=CLAIM_SCHEMA)
    bound = max((abs(amount) for amount in units if amount is not None), default=0)
    return ClaimsByColumns(frame, scale, bound)


def _decimals(amount: Decimal | None) -> int | None:
    """An amount's decimals (0 for an integer, whatever its exponent), or ``None`` without one."""
    if amount is None:
        return None
    return max(0, -int(amount.as_tuple().exponent))
