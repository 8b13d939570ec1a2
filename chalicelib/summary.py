"""The DORA summary of one service and environment: its events read from the store, the numbers
computed by chalicelib.dora and rated by a benchmark (GET /metrics/summary, and the metrics
publish_dora emits)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import constants as C
from chalicelib import dora
from chalicelib.benchmarks import BENCHMARKS
from chalicelib.events import EventStore
from chalicelib.times import format_time


def service_summary(store: EventStore, service: str, environment: str, days: int, now: datetime,
                    benchmark: str = C.DEFAULT_BENCHMARK, explain: bool = False) -> dict[str, Any]:
    start = now - timedelta(days=days)
    deployments = list(store.events_between(environment, service, "deployment", start, now))
    incident_start = start - timedelta(days=C.INCIDENT_LOOKBACK_DAYS)
    incidents = list(store.events_between(environment, service, "incident", incident_start, now))
    body: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "days": days,
        "window": {"start": format_time(start), "end": format_time(now)},
    }
    body.update(dora.summarize(deployments, incidents, start, now, days, BENCHMARKS[benchmark], explain))
    return body
