"""Period labels, fiscal calendars and proration fractions.

Labels (SPEC "Periods and calendars"):

* ``2027``: fiscal year 2027
* ``2027-H1``, ``2027-H2``: fiscal halves
* ``2027-Q1`` .. ``2027-Q4``: fiscal quarters
* ``2027-07``: the calendar month July 2027, whatever the fiscal year

A fiscal year is named by the year it ends in. With ``fiscal_year_start``
``"07-01"``, FY2027 runs 2026-07-01..2027-06-30; with ``"01-01"`` it is the
calendar year 2027. Labels are matched exactly: upper-case ``H``/``Q``, no
surrounding spaces.

A fiscal start may be any real day except ``02-29`` (it does not exist in most
years). A start late in a month (``"01-31"``) follows pendulum's month
arithmetic: quarter n starts ``3 * (n - 1)`` months after the fiscal start,
clipped to the end of a shorter month, and ends the day before the next one
starts, so the quarters always tile the year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Literal

import pendulum

from .money import DEFAULT_RATIO_PLACES, ratio

Granularity = Literal["month", "quarter", "half", "year"]

ACCEPTED_FORMS = (
    "YYYY (fiscal year), YYYY-H1..YYYY-H2 (fiscal half), "
    "YYYY-Q1..YYYY-Q4 (fiscal quarter) or YYYY-MM (calendar month)"
)

_LABEL = re.compile(r"(\d{4})(?:-(?:H([12])|Q([1-4])|(0[1-9]|1[0-2])))?", re.ASCII).fullmatch
_MONTH_DAY = re.compile(r"(\d{2})-(\d{2})", re.ASCII).fullmatch

_ONE = Decimal(1)
_ZERO = Decimal(0)


class PeriodError(ValueError):
    """A period label or a fiscal year start that cannot be used."""


@dataclass(frozen=True, slots=True)
class Period:
    """A labelled span of days; ``start`` and ``end`` are both inclusive."""

    label: str
    granularity: Granularity
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def validate_fiscal_year_start(text: str) -> str:
    """Return ``text`` if it is a usable ``MM-DD`` fiscal year start, else raise PeriodError."""
    match = _MONTH_DAY(text) if isinstance(text, str) else None
    if match is None:
        raise PeriodError(f"fiscal_year_start must be a quoted MM-DD day such as \"07-01\", not {text!r}")
    if text == "02-29":
        raise PeriodError("fiscal_year_start cannot be 02-29: that day does not exist in most years")
    month, day = int(match[1]), int(match[2])
    try:
        date(2001, month, day)  # any non-leap year: 02-29 is already excluded
    except ValueError:
        raise PeriodError(f"fiscal_year_start {text!r} is not a real day of the year") from None
    return text


@lru_cache(maxsize=4096)
def parse_period(label: str, fiscal_year_start: str = "01-01") -> Period:
    """The :class:`Period` a label names under a fiscal calendar; cached (labels repeat per record)."""
    match = _LABEL(label) if isinstance(label, str) else None
    if match is None:
        raise PeriodError(f"invalid period label {label!r}: expected {ACCEPTED_FORMS}")
    validate_fiscal_year_start(fiscal_year_start)
    year_text, half, quarter, month = match.groups()
    year = int(year_text)
    try:
        if month is not None:
            return _calendar_month(label, year, int(month))
        fiscal_start = _fiscal_year_first_day(year, fiscal_year_start)
        if half is not None:
            return _fiscal_span(label, "half", fiscal_start, 6 * (int(half) - 1), 6)
        if quarter is not None:
            return _fiscal_span(label, "quarter", fiscal_start, 3 * (int(quarter) - 1), 3)
        return _fiscal_span(label, "year", fiscal_start, 0, 12)
    except ValueError:
        # pendulum and datetime report years outside 1..9999 as ValueError
        raise PeriodError(
            f"period {label!r} reaches outside the dates Python supports (0001-01-01..9999-12-31)") from None


def _calendar_month(label: str, year: int, month: int) -> Period:
    first = pendulum.date(year, month, 1)
    return Period(label, "month", _plain(first), _plain(first.end_of("month")))


def _fiscal_year_first_day(year: int, fiscal_year_start: str) -> pendulum.Date:
    # Named by the year it ends in: only a 01-01 start ends in the year it starts.
    month, day = int(fiscal_year_start[:2]), int(fiscal_year_start[3:])
    return pendulum.date(year if (month, day) == (1, 1) else year - 1, month, day)


def _fiscal_span(label: str, granularity: Granularity, fiscal_start: pendulum.Date,
                 offset_months: int, length_months: int) -> Period:
    # Both ends come from the fiscal start, so a clipped month end (01-31 + 1 month)
    # moves the boundary for both neighbours alike and the spans stay contiguous.
    start = fiscal_start.add(months=offset_months)
    end = fiscal_start.add(months=offset_months + length_months).subtract(days=1)
    return Period(label, granularity, _plain(start), _plain(end))


def _plain(day: pendulum.Date) -> date:
    return date(day.year, day.month, day.day)


def active_fraction(period: Period, joined_on: date | None, places: int = DEFAULT_RATIO_PLACES) -> Decimal:
    """The share of ``period`` a partner who joined on ``joined_on`` was active (SPEC "Proration").

    Joined inside the period: active days / days in the period, both ends
    inclusive, rounded half-even to ``places`` decimals (the program's
    ``rounding.ratio_places``: 45/90 is exactly ``0.5``, 1/3 is ``0.3333333333``).
    No join date, or joined on or before the first day: ``1``. Joined after the
    last day: ``0`` (not active at all in that period).
    """
    if joined_on is None or joined_on <= period.start:
        return _ONE
    if joined_on > period.end:
        return _ZERO
    return ratio(Decimal((period.end - joined_on).days + 1), Decimal(period.days), places)


def fiscal_year_of(period: Period, fiscal_year_start: str = "01-01") -> Period:
    """The fiscal year (a ``year`` period) that holds ``period``'s first day."""
    for year in (period.start.year, period.start.year + 1):
        fiscal_year = parse_period(str(year), fiscal_year_start)
        if fiscal_year.start <= period.start <= fiscal_year.end:
            return fiscal_year
    raise PeriodError(f"no fiscal year holds {period.label}")  # unreachable: one of the two always does


def periods_covering(granularity: Granularity, fiscal_year_start: str, first_day: date,
                     last_day: date) -> list[Period]:
    """Every period of ``granularity`` (months: calendar months) that holds a day from ``first_day`` to
    ``last_day``, in order: they tile those days (the labels a day of them has, for a whole file at once)."""
    validate_fiscal_year_start(fiscal_year_start)
    if granularity == "month":
        labels = (f"{year:04d}-{month:02d}" for year in range(first_day.year, last_day.year + 1)
                  for month in range(1, 13))
    else:
        # a fiscal year is named by the year it ends in: the one holding first_day ends in its year or the next
        suffixes = {"year": [""], "half": ["-H1", "-H2"], "quarter": ["-Q1", "-Q2", "-Q3", "-Q4"]}[granularity]
        labels = (f"{year:04d}{suffix}" for year in range(max(first_day.year, 1), min(last_day.year + 1, 9999) + 1)
                  for suffix in suffixes)
    found = []
    for label in labels:
        try:
            period = parse_period(label, fiscal_year_start)
        except PeriodError:  # a fiscal year reaching past 9999-12-31
            continue
        if period.end >= first_day and period.start <= last_day:
            found.append(period)
    return found
