"""DORA's metrics per week or month (GET /metrics/trends): ISO weeks in UTC (Monday to Monday) or
calendar months, oldest first, the current one marked partial. The bucket arithmetic is pure; the
metrics of each bucket are chalicelib.dora's, over the events of that bucket alone."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from chalicelib.benchmarks import BENCHMARKS
from chalicelib.dora import DEPRECATED, summarize
from chalicelib.rollups import EventSource
from chalicelib.summary import read_events
from chalicelib.times import format_time

Bucket = Literal["week", "month"]
_TICK = timedelta(microseconds=1)  # a bucket is [start, end): its last instant is end - 1 µs


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime  # the next bucket's start, or now for the current one
    partial: bool

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def _month_start(when: datetime, back: int = 0) -> datetime:
    index = when.year * 12 + (when.month - 1) - back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def spans(bucket: Bucket, count: int, now: datetime) -> list[Span]:
    """The last `count` buckets up to now, oldest first; the last one is the current, partial one."""
    now = now.astimezone(timezone.utc)
    if bucket == "week":
        monday = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) - timedelta(days=now.weekday())
        starts = [monday - timedelta(weeks=back) for back in range(count - 1, -1, -1)]
    else:
        starts = [_month_start(now, back) for back in range(count - 1, -1, -1)]
    ends = [*starts[1:], now]
    return [Span(start, end, partial=end == now) for start, end in zip(starts, ends, strict=True)]


def trends(store: EventSource, services: list[str], environment: str, bucket: Bucket, count: int, now: datetime,
           benchmark: str, explain: bool = False) -> dict[str, Any]:
    periods = spans(bucket, count, now)
    deployments, incidents = read_events(store, services, environment, periods[0].start, now)
    rated = BENCHMARKS[benchmark]
    rows = []
    for period in periods:
        last = period.end if period.partial else period.end - _TICK
        metrics = summarize(deployments, incidents, period.start, last, max(period.days, 1 / 86400), rated, explain)
        for old in (*DEPRECATED, "benchmark"):
            metrics.pop(old)
        rows.append({"start": format_time(period.start), "end": format_time(period.end), "partial": period.partial,
                     **metrics})
    return {"environment": environment, "bucket": bucket, "count": count, "benchmark": rated.source(),
            "buckets": rows}
