"""Period labels under fiscal calendars, and proration fractions (hand-computed dates)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal as D, localcontext

import pytest
from hypothesis import given, strategies as st

from incentives.periods import Period, PeriodError, active_fraction, parse_period, validate_fiscal_year_start


def span(label: str, fiscal_year_start: str = "01-01") -> tuple[str, str, str, int]:
    period = parse_period(label, fiscal_year_start)
    return period.granularity, period.start.isoformat(), period.end.isoformat(), period.days


@pytest.mark.parametrize("label, expected", [
    ("2027", ("year", "2027-01-01", "2027-12-31", 365)),
    ("2028", ("year", "2028-01-01", "2028-12-31", 366)),
    ("2027-H1", ("half", "2027-01-01", "2027-06-30", 181)),
    ("2027-H2", ("half", "2027-07-01", "2027-12-31", 184)),
    ("2027-Q1", ("quarter", "2027-01-01", "2027-03-31", 90)),
    ("2027-Q2", ("quarter", "2027-04-01", "2027-06-30", 91)),
    ("2027-Q3", ("quarter", "2027-07-01", "2027-09-30", 92)),
    ("2027-Q4", ("quarter", "2027-10-01", "2027-12-31", 92)),
])
def test_calendar_fiscal_year(label: str, expected: tuple[str, str, str, int]) -> None:
    assert span(label) == expected
    assert span(label, "01-01") == expected


@pytest.mark.parametrize("label, expected", [
    ("2027", ("year", "2026-07-01", "2027-06-30", 365)),
    ("2027-H1", ("half", "2026-07-01", "2026-12-31", 184)),
    ("2027-H2", ("half", "2027-01-01", "2027-06-30", 181)),
    ("2027-Q1", ("quarter", "2026-07-01", "2026-09-30", 92)),
    ("2027-Q2", ("quarter", "2026-10-01", "2026-12-31", 92)),
    ("2027-Q3", ("quarter", "2027-01-01", "2027-03-31", 90)),
    ("2027-Q4", ("quarter", "2027-04-01", "2027-06-30", 91)),
])
def test_july_fiscal_year(label: str, expected: tuple[str, str, str, int]) -> None:
    assert span(label, "07-01") == expected


@pytest.mark.parametrize("label, expected", [
    ("2027", ("year", "2026-10-01", "2027-09-30", 365)),
    ("2027-H1", ("half", "2026-10-01", "2027-03-31", 182)),
    ("2027-H2", ("half", "2027-04-01", "2027-09-30", 183)),
    ("2027-Q1", ("quarter", "2026-10-01", "2026-12-31", 92)),
    ("2027-Q2", ("quarter", "2027-01-01", "2027-03-31", 90)),
    ("2027-Q3", ("quarter", "2027-04-01", "2027-06-30", 91)),
    ("2027-Q4", ("quarter", "2027-07-01", "2027-09-30", 92)),
])
def test_october_fiscal_year(label: str, expected: tuple[str, str, str, int]) -> None:
    assert span(label, "10-01") == expected


@pytest.mark.parametrize("label, fiscal_year_start, expected", [
    ("2027", "02-01", ("year", "2026-02-01", "2027-01-31", 365)),
    ("2029", "02-01", ("year", "2028-02-01", "2029-01-31", 366)),  # contains 2028-02-29
    ("2027-Q4", "02-01", ("quarter", "2026-11-01", "2027-01-31", 92)),
    # a start late in the month: pendulum clips Jan 31 + 3 months to Apr 30
    ("2027-Q1", "01-31", ("quarter", "2026-01-31", "2026-04-29", 89)),
    ("2027-Q2", "01-31", ("quarter", "2026-04-30", "2026-07-30", 92)),
])
def test_other_fiscal_starts(label: str, fiscal_year_start: str, expected: tuple[str, str, str, int]) -> None:
    assert span(label, fiscal_year_start) == expected


@pytest.mark.parametrize("fiscal_year_start", ["01-01", "07-01", "10-01", "02-01"])
@pytest.mark.parametrize("label, expected", [
    ("2027-07", ("month", "2027-07-01", "2027-07-31", 31)),
    ("2027-02", ("month", "2027-02-01", "2027-02-28", 28)),
    ("2028-02", ("month", "2028-02-01", "2028-02-29", 29)),
    ("2027-01", ("month", "2027-01-01", "2027-01-31", 31)),
    ("2027-12", ("month", "2027-12-01", "2027-12-31", 31)),
    ("2027-04", ("month", "2027-04-01", "2027-04-30", 30)),
])
def test_month_labels_are_calendar_months(fiscal_year_start: str, label: str,
                                          expected: tuple[str, str, str, int]) -> None:
    assert span(label, fiscal_year_start) == expected


def test_period_fields_and_plain_dates() -> None:
    period = parse_period("2027-Q1", "07-01")
    assert period == Period("2027-Q1", "quarter", date(2026, 7, 1), date(2026, 9, 30))
    assert type(period.start) is date and type(period.end) is date  # not pendulum.Date
    with pytest.raises(dataclasses.FrozenInstanceError):
        period.label = "x"  # type: ignore[misc]


def test_parsed_periods_are_cached() -> None:
    assert parse_period("2027-Q3", "07-01") is parse_period("2027-Q3", "07-01")


@pytest.mark.parametrize("label", [
    "2027-Q5", "2027-Q0", "2027-13", "2027-00", "27-Q1", "2027Q1", "", "2027-H3", "2027-q1",
    " 2027", "2027 ", "2027-1", "2027-7", "FY2027", "2027-W01", "20270", "２０２７",
])
def test_bad_labels(label: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(label)
    message = str(caught.value)
    assert repr(label) in message
    for form in ("YYYY (fiscal year)", "YYYY-H1", "YYYY-Q1..YYYY-Q4", "YYYY-MM (calendar month)"):
        assert form in message


def test_non_string_label_and_out_of_range_year() -> None:
    with pytest.raises(PeriodError):
        parse_period(2027)  # type: ignore[arg-type]
    with pytest.raises(PeriodError, match="outside the dates"):
        parse_period("0001", "07-01")  # would start in year 0
    assert isinstance(PeriodError("x"), ValueError)


@pytest.mark.parametrize("text", ["01-01", "07-01", "10-01", "02-28", "12-31", "01-31"])
def test_valid_fiscal_year_starts(text: str) -> None:
    assert validate_fiscal_year_start(text) == text


@pytest.mark.parametrize("text, match", [
    ("02-29", "does not exist in most years"),
    ("02-30", "not a real day"),
    ("04-31", "not a real day"),
    ("13-01", "not a real day"),
    ("00-10", "not a real day"),
    ("7-1", "MM-DD"),
    ("07/01", "MM-DD"),
    ("0701", "MM-DD"),
    ("", "MM-DD"),
    (701, "MM-DD"),
])
def test_invalid_fiscal_year_starts(text: object, match: str) -> None:
    with pytest.raises(PeriodError, match=match):
        validate_fiscal_year_start(text)  # type: ignore[arg-type]


def test_parse_period_checks_the_fiscal_year_start() -> None:
    with pytest.raises(PeriodError, match="02-29"):
        parse_period("2027-Q1", "02-29")


@given(month=st.integers(1, 12), day=st.integers(1, 31), year=st.integers(1900, 2200))
def test_fiscal_spans_tile_the_fiscal_year(month: int, day: int, year: int) -> None:
    try:
        date(2001, month, day)
    except ValueError:
        return
    start = f"{month:02d}-{day:02d}"
    fy = parse_period(str(year), start)
    quarters = [parse_period(f"{year}-Q{n}", start) for n in range(1, 5)]
    halves = [parse_period(f"{year}-H{n}", start) for n in range(1, 3)]
    assert fy.end.year == year  # named by the year it ends in
    assert fy.start == (date(year, 1, 1) if start == "01-01" else date(year - 1, month, day))
    assert fy.end == parse_period(str(year + 1), start).start - timedelta(days=1)
    for spans in (quarters, halves):
        assert spans[0].start == fy.start and spans[-1].end == fy.end
        for before, after in zip(spans, spans[1:]):
            assert before.end + timedelta(days=1) == after.start
    assert (halves[0].start, halves[0].end) == (quarters[0].start, quarters[1].end)
    assert (halves[1].start, halves[1].end) == (quarters[2].start, quarters[3].end)


# -- proration ------------------------------------------------------------------------------

Q1 = parse_period("2027-Q1")  # 2027-01-01..2027-03-31, 90 days


@pytest.mark.parametrize("joined_on, expected", [
    (date(2027, 2, 15), D("0.5")),  # Feb 15..Mar 31 = 14 + 31 = 45 of 90 days
    (date(2027, 1, 2), D("0.9888888889")),  # 89 / 90 = 0.98888…, rounded half-even to 10 places
    (date(2027, 3, 31), D("0.0111111111")),  # active on the last day only: 1 / 90 = 0.01111…
    (date(2027, 1, 1), D(1)),  # joined on the first day: the whole period
    (date(2026, 11, 5), D(1)),  # joined before
    (None, D(1)),
    (date(2027, 4, 1), D(0)),  # joined after the period: not active in it
])
def test_active_fraction(joined_on: date | None, expected: D) -> None:
    assert active_fraction(Q1, joined_on) == expected


def test_active_fraction_is_rounded_to_ratio_places_whatever_the_context() -> None:
    april = parse_period("2027-04")  # 30 days; joined Apr 21 -> 10 of 30
    with localcontext() as context:
        context.prec = 5  # a narrow context must not change the digits
        assert str(active_fraction(april, date(2027, 4, 21))) == "0.3333333333"
    assert str(active_fraction(april, date(2027, 4, 21), 4)) == "0.3333"
    assert str(active_fraction(april, date(2027, 4, 10), 4)) == "0.7"  # 21 of 30


def test_active_fraction_in_a_july_fiscal_quarter() -> None:
    q1 = parse_period("2027-Q1", "07-01")  # 2026-07-01..2026-09-30, 92 days
    assert active_fraction(q1, date(2026, 9, 1)) == D("0.3260869565")  # 30 / 92 = 0.32608695652…
