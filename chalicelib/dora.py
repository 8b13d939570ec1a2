"""DORA four keys from stored events. Pure functions: no AWS, no clock."""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from statistics import median
from typing import Any

from chalicelib import constants as C
from chalicelib.times import parse_time

_FAILED_DEPLOYMENT_STATUSES = frozenset({"failure", "rolled_back"})


@dataclass(frozen=True)
class KeyMetric:
    value: float | None
    unit: str
    count: int  # how many events the value came from
    tier: str | None  # None when there is nothing to rate

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tier(value: float | None, tiers: Sequence[tuple[str, float]], better: Callable[[float, float], bool]) -> str | None:
    """The first tier whose threshold `value` beats (per `better`), else the lowest tier."""
    if value is None:
        return None
    for name, threshold in tiers:
        if better(value, threshold):
            return name
    return C.LOWEST_TIER


def true_median(values: Iterable[float]) -> float | None:
    """The median; with an even count, the mean of the two middle values. None for no values."""
    ordered = sorted(values)
    return float(median(ordered)) if ordered else None


def _at(value: str) -> datetime:
    return parse_time(value)


def _hours(later: str, earlier: str) -> float:
    return (_at(later) - _at(earlier)).total_seconds() / 3600


def deployment_frequency(deployments: Sequence[dict[str, Any]], days: int) -> KeyMetric:
    successes = sum(1 for d in deployments if d["status"] == "success")
    value = successes / days
    return KeyMetric(value, "per_day", successes, tier(value, C.DEPLOYMENT_FREQUENCY_TIERS, operator.ge))


def lead_time_for_changes(deployments: Sequence[dict[str, Any]]) -> KeyMetric:
    hours = [_hours(d["timestamp"], d["commit_timestamp"]) for d in deployments
             if d["status"] == "success" and d.get("commit_timestamp")]
    value = true_median(hours)
    return KeyMetric(value, "hours", len(hours), tier(value, C.LEAD_TIME_TIERS, operator.lt))


def change_failure_rate(deployments: Sequence[dict[str, Any]], incidents: Iterable[dict[str, Any]]) -> KeyMetric:
    ids = {d["id"] for d in deployments}
    failed = {d["id"] for d in deployments if d["status"] in _FAILED_DEPLOYMENT_STATUSES}
    failed |= {i["deployment_id"] for i in incidents if i.get("deployment_id") in ids}
    value = len(failed) / len(ids) if ids else None
    return KeyMetric(value, "ratio", len(ids), tier(value, C.CHANGE_FAILURE_RATE_TIERS, operator.le))


def time_to_restore(incidents: Iterable[dict[str, Any]], start: datetime, end: datetime) -> KeyMetric:
    hours = [_hours(i["resolved_at"], i["opened_at"]) for i in incidents
             if i.get("resolved_at") and start <= _at(i["resolved_at"]) <= end]
    value = true_median(hours)
    return KeyMetric(value, "hours", len(hours), tier(value, C.TIME_TO_RESTORE_TIERS, operator.lt))


def summarize(deployments: Iterable[dict[str, Any]], incidents: Iterable[dict[str, Any]],
              start: datetime, end: datetime, days: int) -> dict[str, Any]:
    """The four keys over [start, end]. Deployments outside the window are ignored; incidents count
    for change failure rate when they name a deployment in the window, and for time to restore when
    they were resolved in it."""
    in_window = [d for d in deployments if start <= _at(d["timestamp"]) <= end]
    incident_list = list(incidents)
    return {
        "deployment_frequency": deployment_frequency(in_window, days).as_dict(),
        "lead_time_for_changes": lead_time_for_changes(in_window).as_dict(),
        "change_failure_rate": change_failure_rate(in_window, incident_list).as_dict(),
        "time_to_restore": time_to_restore(incident_list, start, end).as_dict(),
    }
