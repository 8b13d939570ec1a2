"""The one form in which the service stores a time, and the clock.

Every stored time (event keys and bodies' server-side stamps, change stamps, control items, alert
state, health samples) is fixed-width UTC with microseconds, so that string order is time order:
2026-11-22T10:00:00.000000Z. Client input is parsed elsewhere (chalicelib.models.parse_timestamp),
and is free to use any ISO-8601 form with a zone.
"""
from __future__ import annotations

from datetime import datetime, timezone

STORED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(value: datetime) -> str:
    """The stored form of an aware time."""
    return value.astimezone(timezone.utc).strftime(STORED_TIME_FORMAT)


def parse_time(value: str) -> datetime:
    """A stored time (or any ISO-8601 time with a zone, as older items and event bodies hold) as an
    aware UTC datetime."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
