"""Trend buckets: ISO weeks in UTC from Monday 00:00, calendar months, oldest first, the current one
partial."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chalicelib.trends import spans

UTC = timezone.utc


def test_weeks_run_monday_to_monday_and_the_current_one_is_partial() -> None:
    now = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # a Wednesday
    weeks = spans("week", 3, now)
    assert [(w.start, w.end, w.partial) for w in weeks] == [
        (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), False),
        (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), False),
        (datetime(2026, 11, 30, tzinfo=UTC), now, True)]
    assert weeks[0].days == 7 and round(weeks[2].days, 4) == round(2 + 15.5 / 24, 4)


def test_a_monday_at_midnight_starts_a_new_week() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    (week,) = spans("week", 1, now)
    assert (week.start, week.end, week.partial) == (now, now, True)


def test_months_are_calendar_months_across_a_year_boundary() -> None:
    now = datetime(2027, 2, 10, 8, tzinfo=UTC)
    months = spans("month", 4, now)
    assert [m.start.date().isoformat() for m in months] == ["2026-11-01", "2026-12-01", "2027-01-01", "2027-02-01"]
    assert [m.end.date().isoformat() for m in months[:3]] == ["2026-12-01", "2027-01-01", "2027-02-01"]
    assert [m.partial for m in months] == [False, False, False, True]
    assert (months[0].days, months[1].days, months[2].days) == (30, 31, 31)


def test_a_time_in_another_zone_is_bucketed_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    now = datetime(2026, 11, 30, 5, tzinfo=tokyo)  # Sunday 20:00 UTC
    (week,) = spans("week", 1, now)
    assert week.start == datetime(2026, 11, 23, tzinfo=UTC)
