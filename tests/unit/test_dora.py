"""DORA four keys on hand-computed reference cases (docs/api.md, GET /metrics/summary)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import dora

END = datetime(2026, 11, 30, tzinfo=timezone.utc)
START = END - timedelta(days=30)


def at(value: datetime) -> str:
    return value.isoformat()


def deployment(id_: str, when: datetime, status: str = "success", lead_hours: float | None = None) -> dict:
    event = {"kind": "deployment", "id": id_, "timestamp": at(when), "status": status}
    if lead_hours is not None:
        event["commit_timestamp"] = at(when - timedelta(hours=lead_hours))
    return event


def incident(opened: datetime, restore_hours: float | None, deployment_id: str | None = None) -> dict:
    event = {"kind": "incident", "id": f"i-{opened.isoformat()}", "timestamp": at(opened), "opened_at": at(opened)}
    if restore_hours is not None:
        event["resolved_at"] = at(opened + timedelta(hours=restore_hours))
    if deployment_id:
        event["deployment_id"] = deployment_id
    return event


def summarize(deployments: list[dict], incidents: list[dict] = (), days: int = 30) -> dict:  # type: ignore[assignment]
    return dora.summarize(deployments, incidents, START, END, days)


def test_lead_time_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    # given four successful deployments with lead times 1, 2, 4 and 10 hours
    deps = [deployment(f"d{i}", END - timedelta(days=i + 1), lead_hours=h) for i, h in enumerate([10, 1, 4, 2])]
    # when
    lead = summarize(deps)["lead_time_for_changes"]
    # then the median is (2 + 4) / 2
    assert lead == {"value": 3.0, "unit": "hours", "count": 4, "tier": "elite"}


def test_lead_time_ignores_failed_deployments_and_those_without_a_commit_timestamp() -> None:
    deps = [deployment("ok", END - timedelta(days=1), lead_hours=30),
            deployment("failed", END - timedelta(days=2), status="failure", lead_hours=1),
            deployment("no-commit", END - timedelta(days=3))]
    lead = summarize(deps)["lead_time_for_changes"]
    assert (lead["value"], lead["count"], lead["tier"]) == (30.0, 1, "high")


def test_a_failed_deployment_named_by_an_incident_counts_once() -> None:
    # given d2 failed and is also named by an incident, d3 succeeded but caused an incident
    deps = [deployment(f"d{i}", END - timedelta(days=i), status="failure" if i == 2 else "success")
            for i in range(1, 5)]
    incidents = [incident(END - timedelta(days=2), 1, "d2"), incident(END - timedelta(days=3), 1, "d3"),
                 incident(END - timedelta(days=3), 2, "d3")]
    # when
    cfr = summarize(deps, incidents)["change_failure_rate"]
    # then two of four deployments failed: d2 once, d3 once
    assert cfr == {"value": 0.5, "unit": "ratio", "count": 4, "tier": "low"}


def test_an_incident_naming_a_deployment_outside_the_window_does_not_count() -> None:
    deps = [deployment("inside", END - timedelta(days=1)),
            deployment("outside", START - timedelta(days=1), status="failure")]
    cfr = summarize(deps, [incident(END - timedelta(days=1), 1, "outside")])["change_failure_rate"]
    assert (cfr["value"], cfr["count"], cfr["tier"]) == (0.0, 1, "elite")


def test_a_window_with_no_deployments_gives_zero_frequency_and_null_rates() -> None:
    summary = summarize([], [])
    assert summary["deployment_frequency"] == {"value": 0.0, "unit": "per_day", "count": 0, "tier": "low"}
    assert summary["lead_time_for_changes"] == {"value": None, "unit": "hours", "count": 0, "tier": None}
    assert summary["change_failure_rate"] == {"value": None, "unit": "ratio", "count": 0, "tier": None}
    assert summary["time_to_restore"] == {"value": None, "unit": "hours", "count": 0, "tier": None}


def test_events_just_outside_the_window_are_excluded_and_its_edges_included() -> None:
    tick = timedelta(microseconds=1)
    deps = [deployment("before", START - tick), deployment("at-start", START),
            deployment("at-end", END), deployment("after", END + tick)]
    incidents = [incident(START - timedelta(hours=3), 3 - 1e-9),  # resolved just before the window
                 incident(START - timedelta(hours=3), 3),  # resolved exactly at its start
                 incident(END - timedelta(hours=1), 2)]  # resolved after its end
    summary = summarize(deps, incidents)
    assert summary["deployment_frequency"]["count"] == 2
    assert summary["time_to_restore"]["count"] == 1
    assert summary["time_to_restore"]["value"] == pytest.approx(3.0)


def test_time_to_restore_counts_incidents_opened_before_and_resolved_inside_the_window() -> None:
    incidents = [incident(START - timedelta(days=2), 72),  # 72 h, resolved inside
                 incident(END - timedelta(days=5), 2), incident(END - timedelta(days=4), 4),
                 incident(END - timedelta(days=1), None)]  # still open: ignored
    ttr = summarize([], incidents)["time_to_restore"]
    assert ttr == {"value": 4.0, "unit": "hours", "count": 3, "tier": "high"}


@pytest.mark.parametrize(("successes", "days", "tier"), [
    (30, 30, "elite"),  # exactly one a day
    (29, 30, "high"),
    (5, 35, "high"),  # exactly one a week
    (4, 35, "medium"),
    (1, 30, "medium"),  # exactly one a month
    (0, 30, "low"),
])
def test_deployment_frequency_tier_boundaries(successes: int, days: int, tier: str) -> None:
    deps = [deployment(f"d{i}", END - timedelta(hours=i + 1)) for i in range(successes)]
    deps.append(deployment("failed", END - timedelta(hours=1), status="failure"))
    assert dora.summarize(deps, [], END - timedelta(days=days), END, days)["deployment_frequency"]["tier"] == tier


@pytest.mark.parametrize(("metric", "value", "tier"), [
    ("lead", 23.99, "elite"), ("lead", 24, "high"), ("lead", 167.9, "high"), ("lead", 168, "medium"),
    ("lead", 720, "low"),
    ("ttr", 0.99, "elite"), ("ttr", 1, "high"), ("ttr", 24, "medium"), ("ttr", 168, "low"),
])
def test_time_tier_boundaries_are_strict(metric: str, value: float, tier: str) -> None:
    if metric == "lead":
        result = summarize([deployment("d", END - timedelta(days=1), lead_hours=value)])["lead_time_for_changes"]
    else:
        result = summarize([], [incident(END - timedelta(days=10), value)])["time_to_restore"]
    assert result["tier"] == tier


@pytest.mark.parametrize(("failed", "total", "tier"), [
    (3, 20, "elite"), (4, 20, "high"), (6, 20, "high"), (7, 20, "medium"), (9, 20, "medium"), (10, 20, "low"),
])
def test_change_failure_rate_tier_boundaries_are_inclusive(failed: int, total: int, tier: str) -> None:
    deps = [deployment(f"d{i}", END - timedelta(hours=i + 1), status="failure" if i < failed else "success")
            for i in range(total)]
    assert summarize(deps)["change_failure_rate"]["tier"] == tier


def test_true_median() -> None:
    assert dora.true_median([]) is None
    assert dora.true_median([5.0]) == 5.0
    assert dora.true_median([4.0, 1.0, 3.0]) == 3.0
    assert dora.true_median([1.0, 2.0, 3.0, 10.0]) == 2.5
