"""DORA four keys from stored events. Pure functions: no AWS, no clock."""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from statistics import median
from typing import Any

from chalicelib import constants as C
from chalicelib.lifecycle import FAILED_DEPLOYMENT_STATUSES, is_finished
from chalicelib.times import parse_time


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


def commits_of(deployment: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(sha, commit time) of each change a stored deployment shipped: its `commits`, or the one
    `commit_sha` and `commit_timestamp` name."""
    if deployment.get("commits"):
        return [(c["sha"], c["timestamp"]) for c in deployment["commits"]]
    if deployment.get("commit_timestamp"):
        return [(deployment.get("commit_sha"), deployment["commit_timestamp"])]
    return []


def lead_time_for_changes(deployments: Sequence[dict[str, Any]]) -> KeyMetric:
    """The median, over every commit the successful deployments shipped, of deployment time −
    commit time. A commit shipped again by a later deployment counts once, at its first."""
    first: dict[str, float] = {}
    anonymous: list[float] = []
    for deployment in sorted((d for d in deployments if d["status"] == "success"), key=lambda d: _at(d["timestamp"])):
        for sha, committed in commits_of(deployment):
            hours = _hours(deployment["timestamp"], committed)
            if sha is None:
                anonymous.append(hours)
            else:
                first.setdefault(sha.lower(), hours)
    hours_list = [*first.values(), *anonymous]
    value = true_median(hours_list)
    return KeyMetric(value, "hours", len(hours_list), tier(value, C.LEAD_TIME_TIERS, operator.lt))


def change_failure_rate(deployments: Sequence[dict[str, Any]], incidents: Iterable[dict[str, Any]]) -> KeyMetric:
    ids = {d["id"] for d in deployments}
    failed = {d["id"] for d in deployments if d["status"] in FAILED_DEPLOYMENT_STATUSES}
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
    """The four keys over [start, end]. Only finished deployments count (not those in progress), and
    those outside the window are ignored; incidents count for change failure rate when they name a
    deployment in the window, and for time to restore when they were resolved in it."""
    in_window = [d for d in deployments if is_finished(d) and start <= _at(d["timestamp"]) <= end]
    incident_list = list(incidents)
    return {
        "deployment_frequency": deployment_frequency(in_window, days).as_dict(),
        "lead_time_for_changes": lead_time_for_changes(in_window).as_dict(),
        "change_failure_rate": change_failure_rate(in_window, incident_list).as_dict(),
        "time_to_restore": time_to_restore(incident_list, start, end).as_dict(),
    }
