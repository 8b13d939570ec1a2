"""A demo data set: five services over the last four weeks, chosen so that the DORA summary shows
every tier (elite, high, medium, low) somewhere, posted as the tools would: deployments in progress
and then finished, incidents opened and then resolved, each a revision of one event; the deployment
after a failure is its unplanned fix (rework), and recovers it."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

DEMO_DAYS = 28
BATCH = 100


@dataclass(frozen=True)
class Profile:
    service: str
    deployments: int  # over DEMO_DAYS
    lead_hours: float
    failing: frozenset[int]  # indexes of deployments that fail or are rolled back
    restore_hours: float  # for the incident each failure causes


PROFILES = (
    Profile("checkout", 56, 3.0, frozenset({19, 39}), 0.5),  # elite wherever a tier is published
    Profile("payments", 14, 72.0, frozenset({3, 7, 11}), 6.0),  # high
    Profile("inventory", 3, 240.0, frozenset({2}), 72.0),  # medium
    Profile("legacy-billing", 3, 300.0, frozenset({0, 1, 2}), 200.0),  # low (and no successful deployment)
    Profile("data-pipeline", 1, 960.0, frozenset(), 0.0),  # low lead time
)


# Two teams over the five services (GET /metrics/summary?team=...).
DEMO_TEAMS = {
    "storefront": {"services": ["checkout", "inventory"], "description": "What shoppers see"},
    "back-office": {"services": ["payments", "legacy-billing", "data-pipeline"], "description": "Money and data"},
}


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def demo_events(now: datetime) -> Iterator[dict[str, Any]]:
    start = now - timedelta(days=DEMO_DAYS)
    for p in PROFILES:
        step = timedelta(days=DEMO_DAYS) / p.deployments
        for i in range(p.deployments):
            at = start + step * (i + 0.5)
            deployment_id = f"demo-{p.service}-deployment-{i}"
            status = "success"
            if i in p.failing:
                status = "rolled_back" if i % 2 else "failure"
            yield {"kind": "build", "service": p.service, "id": f"demo-{p.service}-build-{i}",
                   "timestamp": _iso(at - timedelta(minutes=20)), "status": "succeeded",
                   "duration_seconds": 300 + 17 * i % 240, "pipeline": f"{p.service}-pipeline"}
            # Each deployment as its pipeline reports it: started, then finished, with the three
            # commits it shipped (lead times of half, one and one and a half times the profile's).
            started = at - timedelta(minutes=8)
            commits = [{"sha": hashlib.sha1(f"{deployment_id}-{n}".encode()).hexdigest(),
                        "timestamp": _iso(at - timedelta(hours=p.lead_hours * share))}
                       for n, share in enumerate((0.5, 1.0, 1.5))]
            deployment: dict[str, Any] = {"kind": "deployment", "service": p.service, "id": deployment_id,
                                          "timestamp": _iso(at), "pipeline": f"{p.service}-pipeline",
                                          "commits": commits}
            if i - 1 in p.failing and i not in p.failing:  # the unplanned fix of the failure before it
                deployment["remediates"] = f"demo-{p.service}-incident-{i - 1}"
            yield {**deployment, "status": "in_progress", "updated_at": _iso(started)}
            yield {**deployment, "status": status, "updated_at": _iso(at)}
            if i in p.failing:
                # the incident each failure causes, as an incident tool reports it: opened, then resolved
                opened = at + timedelta(minutes=10)
                resolved = opened + timedelta(hours=p.restore_hours)
                incident: dict[str, Any] = {
                    "kind": "incident", "service": p.service, "id": f"demo-{p.service}-incident-{i}",
                    "timestamp": _iso(opened), "opened_at": _iso(opened), "severity": "sev2",
                    "deployment_id": deployment_id}
                yield {**incident, "updated_at": _iso(opened)}
                if resolved < now:
                    yield {**incident, "resolved_at": _iso(resolved), "updated_at": _iso(resolved)}
        yield {"kind": "gauge", "service": p.service, "id": f"demo-{p.service}-coverage",
               "timestamp": _iso(now - timedelta(hours=1)), "name": "test_coverage", "value": 81.5,
               "unit": "Percent"}


def load_demo_data(api_url: str, now: datetime) -> int:
    """POST the demo events through the API, 100 per request, and PUT the demo teams; returns how
    many events were sent."""
    events = list(demo_events(now))
    for start in range(0, len(events), BATCH):
        response = requests.post(f"{api_url}/metrics", json={"events": events[start:start + BATCH]}, timeout=30)
        if response.status_code != 201:
            raise RuntimeError(f"loading demo data failed: {response.status_code} {response.text}")
    for team, body in DEMO_TEAMS.items():
        response = requests.put(f"{api_url}/teams/{team}", json=body, timeout=30)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"loading demo team {team} failed: {response.status_code} {response.text}")
    return len(events)
