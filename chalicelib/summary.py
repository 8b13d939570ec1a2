"""The DORA summary of one service and environment: its events' inputs read from the daily rollups
(or the events themselves, chalicelib.rollups.DoraSource), the numbers computed by chalicelib.dora
and rated by a benchmark (GET /metrics/summary, and the metrics publish_dora emits)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import constants as C
from chalicelib import dora
from chalicelib.benchmarks import BENCHMARKS
from chalicelib.dynamodb import parallel
from chalicelib.rollups import EventSource
from chalicelib.teams import Team
from chalicelib.times import format_time


def service_summary(store: EventSource, service: str, environment: str, days: int, now: datetime,
                    benchmark: str = C.DEFAULT_BENCHMARK, explain: bool = False) -> dict[str, Any]:
    return {"service": service} | summary_of(store, [service], environment, days, now, benchmark, explain)


def team_summary(store: EventSource, team: Team, environment: str, days: int, now: datetime,
                 benchmark: str = C.DEFAULT_BENCHMARK, explain: bool = False) -> dict[str, Any]:
    """A team's metrics: counts add up across its services, and medians are taken over the union of
    their values (not as a median of medians)."""
    return {"team": team.name, "services": list(team.services)} | summary_of(
        store, list(team.services), environment, days, now, benchmark, explain)


def read_events(store: EventSource, services: list[str], environment: str, start: datetime,
                end: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The deployments of [start, end] and the incidents that may count in it (opened up to
    INCIDENT_LOOKBACK_DAYS before it), of every service named, read in parallel."""
    incident_start = start - timedelta(days=C.INCIDENT_LOOKBACK_DAYS)

    def read(service: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return (list(store.events_between(environment, service, "deployment", start, end)),
                list(store.events_between(environment, service, "incident", incident_start, end)))

    deployments: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    for service_deployments, service_incidents in parallel(read, services):
        deployments += service_deployments
        incidents += service_incidents
    return deployments, incidents


def summary_of(store: EventSource, services: list[str], environment: str, days: int, now: datetime,
               benchmark: str, explain: bool) -> dict[str, Any]:
    start = now - timedelta(days=days)
    deployments, incidents = read_events(store, services, environment, start, now)
    body: dict[str, Any] = {
        "environment": environment,
        "days": days,
        "window": {"start": format_time(start), "end": format_time(now)},
    }
    body.update(dora.summarize(deployments, incidents, start, now, days, BENCHMARKS[benchmark], explain))
    return body
