"""DORA's software delivery metrics from stored events (dora.dev, "DORA's software delivery
performance metrics"). Pure functions: no AWS, no clock.

Throughput: change lead time, deployment frequency, failed deployment recovery time. Instability:
change fail rate, deployment rework rate. Time to restore (incidents opened to resolved) is kept for
teams that track incidents. Tiers come from the benchmark asked for (chalicelib.benchmarks).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from chalicelib import constants as C
from chalicelib.benchmarks import Benchmark
from chalicelib.lifecycle import FAILED_DEPLOYMENT_STATUSES, is_finished
from chalicelib.times import parse_time

# What the metrics read of each stored event, besides its service and environment: the daily
# rollups (chalicelib.rollups) keep these fields, and only these.
INPUTS = {
    "deployment": ("id", "timestamp", "status", "commits", "commit_sha", "commit_timestamp", "planned", "remediates"),
    "incident": ("id", "timestamp", "opened_at", "resolved_at", "deployment_id"),
}

# Kept for one release under their 2021 names, with the same values: docs/api.md says so.
DEPRECATED = {"lead_time_for_changes": "change_lead_time", "change_failure_rate": "change_fail_rate"}


@dataclass(frozen=True)
class KeyMetric:
    value: float | None
    unit: str
    count: int  # how many events (or, for lead time, commits) the value came from
    ids: tuple[str, ...] = ()  # the events behind `count`
    matching: tuple[str, ...] | None = None  # for a ratio: the events behind its numerator
    tier: str | None = field(default=None)

    def rated(self, benchmark: Benchmark, metric: str) -> KeyMetric:
        return KeyMetric(self.value, self.unit, self.count, self.ids, self.matching,
                         benchmark.rate(metric, self.value))

    def as_dict(self, explain: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"value": self.value, "unit": self.unit, "count": self.count, "tier": self.tier}
        if explain:
            body["events"] = _listed(self.ids)
            if self.matching is not None:
                body["matching"] = _listed(self.matching)
        return body


def _listed(ids: Sequence[str]) -> dict[str, Any]:
    unique = list(dict.fromkeys(ids))
    return {"ids": unique[:C.MAX_EXPLAINED_EVENTS], "truncated": len(unique) > C.MAX_EXPLAINED_EVENTS}


def true_median(values: Iterable[float]) -> float | None:
    """The median; with an even count, the mean of the two middle values. None for no values."""
    ordered = sorted(values)
    return float(median(ordered)) if ordered else None


def _at(value: str) -> datetime:
    return parse_time(value)


def _hours(later: str, earlier: str) -> float:
    return (_at(later) - _at(earlier)).total_seconds() / 3600


def _oldest_first(deployments: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(deployments, key=lambda d: (_at(d["timestamp"]), d["id"]))


def deployment_frequency(deployments: Sequence[dict[str, Any]], days: float) -> KeyMetric:
    successes = [d["id"] for d in deployments if d["status"] == "success"]
    return KeyMetric(len(successes) / days, "per_day", len(successes), tuple(successes))


def commits_of(deployment: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(sha, commit time) of each change a stored deployment shipped: its `commits`, or the one
    `commit_sha` and `commit_timestamp` name."""
    if deployment.get("commits"):
        return [(c["sha"], c["timestamp"]) for c in deployment["commits"]]
    if deployment.get("commit_timestamp"):
        return [(deployment.get("commit_sha"), deployment["commit_timestamp"])]
    return []


def change_lead_time(deployments: Sequence[dict[str, Any]]) -> KeyMetric:
    """The median, over every commit the successful deployments shipped, of deployment time −
    commit time. A commit shipped again by a later deployment counts once, at its first."""
    first: dict[str, float] = {}
    anonymous: list[float] = []
    behind: list[str] = []
    for deployment in _oldest_first(d for d in deployments if d["status"] == "success"):
        for sha, committed in commits_of(deployment):
            hours = _hours(deployment["timestamp"], committed)
            if sha is None:
                anonymous.append(hours)
            elif sha.lower() not in first:
                first[sha.lower()] = hours
            else:
                continue
            behind.append(deployment["id"])
    hours_list = [*first.values(), *anonymous]
    return KeyMetric(true_median(hours_list), "hours", len(hours_list), tuple(behind))


def failed_ids(deployments: Sequence[dict[str, Any]], incidents: Iterable[dict[str, Any]]) -> set[str]:
    """Deployments that failed, were rolled back, or that an incident names as its cause."""
    ids = {d["id"] for d in deployments}
    failed = {d["id"] for d in deployments if d["status"] in FAILED_DEPLOYMENT_STATUSES}
    return failed | {i["deployment_id"] for i in incidents if i.get("deployment_id") in ids}


def change_fail_rate(deployments: Sequence[dict[str, Any]], failed: set[str]) -> KeyMetric:
    ids = [d["id"] for d in _oldest_first(deployments)]
    value = len(failed) / len(ids) if ids else None
    return KeyMetric(value, "ratio", len(ids), tuple(ids), tuple(i for i in ids if i in failed))


def failed_deployment_recovery_time(deployments: Sequence[dict[str, Any]], failed: set[str]) -> KeyMetric:
    """For each failed deployment (of `failed`), the time until the next successful deployment of the
    same service and environment among `deployments` (which may run past the window); the median, in
    hours. A failure not yet followed by a success is not counted."""
    hours: list[float] = []
    recovered: list[str] = []
    by_target: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for deployment in _oldest_first(deployments):
        by_target.setdefault((deployment.get("service", ""), deployment.get("environment", "")), []).append(deployment)
    for history in by_target.values():
        for position, deployment in enumerate(history):
            if deployment["id"] not in failed:
                continue
            later = (d for d in history[position + 1:] if d["status"] == "success" and d["id"] not in failed)
            fix = next(later, None)
            if fix is not None:
                hours.append(_hours(fix["timestamp"], deployment["timestamp"]))
                recovered.append(deployment["id"])
    return KeyMetric(true_median(hours), "hours", len(hours), tuple(recovered))


def deployment_rework_rate(deployments: Sequence[dict[str, Any]]) -> KeyMetric:
    """Successful deployments that were unplanned (`"planned": false`, or naming the incident they
    remediate in `remediates`), over all finished deployments."""
    ids = [d["id"] for d in _oldest_first(deployments)]
    rework = [d["id"] for d in _oldest_first(deployments)
              if d["status"] == "success" and (d.get("planned") is False or d.get("remediates"))]
    return KeyMetric(len(rework) / len(ids) if ids else None, "ratio", len(ids), tuple(ids), tuple(rework))


def time_to_restore(incidents: Iterable[dict[str, Any]], start: datetime, end: datetime) -> KeyMetric:
    """Incidents resolved in [start, end], at their current revision: the median of opened → resolved."""
    resolved = [i for i in incidents if i.get("resolved_at") and start <= _at(i["resolved_at"]) <= end]
    hours = [_hours(i["resolved_at"], i["opened_at"]) for i in resolved]
    return KeyMetric(true_median(hours), "hours", len(hours), tuple(i["id"] for i in resolved))


def summarize(deployments: Iterable[dict[str, Any]], incidents: Iterable[dict[str, Any]],
              start: datetime, end: datetime, days: float, benchmark: Benchmark,
              explain: bool = False) -> dict[str, Any]:
    """The five metrics and time to restore over [start, end], rated by `benchmark`. Only finished
    deployments count (not those in progress), and those outside the window are ignored; incidents
    count for change fail rate when they name a deployment in the window, and for time to restore
    when they were resolved in it. With `explain`, each metric lists the events behind it."""
    finished = [d for d in deployments if is_finished(d)]
    in_window = [d for d in finished if start <= _at(d["timestamp"]) <= end]
    incident_list = list(incidents)
    failed = failed_ids(in_window, incident_list)
    metrics = {
        "deployment_frequency": deployment_frequency(in_window, days),
        "change_lead_time": change_lead_time(in_window),
        "change_fail_rate": change_fail_rate(in_window, failed),
        "failed_deployment_recovery_time": failed_deployment_recovery_time(finished, failed),
        "deployment_rework_rate": deployment_rework_rate(in_window),
        "time_to_restore": time_to_restore(incident_list, start, end),
    }
    # Time to restore is rated as failed deployment recovery time is: the reports' time to restore service.
    scale = {"time_to_restore": "failed_deployment_recovery_time"}
    body = {name: metric.rated(benchmark, scale.get(name, name)).as_dict(explain) for name, metric in metrics.items()}
    body.update({old: body[new] for old, new in DEPRECATED.items()})
    body["benchmark"] = benchmark.source()
    return body
