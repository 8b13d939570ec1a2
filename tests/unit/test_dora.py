"""DORA's metrics on hand-computed reference cases, and every tier boundary of every benchmark
(docs/api.md, GET /metrics/summary; chalicelib/benchmarks.py for the tables and their sources)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chalicelib import dora
from chalicelib.benchmarks import BENCHMARKS, DAY, HOUR, MONTH, SIX_MONTHS, WEEK

END = datetime(2026, 11, 30, tzinfo=timezone.utc)
START = END - timedelta(days=30)
LATEST = BENCHMARKS["2024"]


def at(value: datetime) -> str:
    return value.isoformat()


def deployment(id_: str, when: datetime, status: str = "success", lead_hours: float | None = None,
               **extra: Any) -> dict[str, Any]:
    event = {"kind": "deployment", "id": id_, "service": "s", "environment": "production", "timestamp": at(when),
             "status": status, **extra}
    if lead_hours is not None:
        event["commit_timestamp"] = at(when - timedelta(hours=lead_hours))
    return event


def incident(opened: datetime, restore_hours: float | None, deployment_id: str | None = None) -> dict[str, Any]:
    event = {"kind": "incident", "id": f"i-{opened.isoformat()}", "timestamp": at(opened), "opened_at": at(opened)}
    if restore_hours is not None:
        event["resolved_at"] = at(opened + timedelta(hours=restore_hours))
    if deployment_id:
        event["deployment_id"] = deployment_id
    return event


def summarize(deployments: list[dict[str, Any]], incidents: list[dict[str, Any]] | None = None, days: int = 30,
              benchmark: str = "2024", explain: bool = False) -> dict[str, Any]:
    return dora.summarize(deployments, incidents or [], START, END, days, BENCHMARKS[benchmark], explain)


def hours_ago(hours: float) -> datetime:
    return END - timedelta(hours=hours)


# ---- reference cases, one per metric -------------------------------------------------------------

def test_empty_input_gives_null_not_zero_except_a_frequency_of_zero() -> None:
    summary = summarize([], [])
    assert summary["deployment_frequency"] == {"value": 0.0, "unit": "per_day", "count": 0, "tier": "low"}
    for key, unit in (("change_lead_time", "hours"), ("change_fail_rate", "ratio"),
                      ("failed_deployment_recovery_time", "hours"), ("deployment_rework_rate", "ratio"),
                      ("time_to_restore", "hours")):
        assert summary[key] == {"value": None, "unit": unit, "count": 0, "tier": None}, key


def test_deployment_frequency_counts_successes_per_day_and_not_unfinished_ones() -> None:
    deps = [deployment(f"d{i}", hours_ago(10 * i + 1)) for i in range(9)]
    deps += [deployment("f", hours_ago(5), "failure"), deployment("running", hours_ago(2), "in_progress")]
    frequency = summarize(deps)["deployment_frequency"]
    # 9 successes / 30 days = 0.3 a day: at least once a week (1/7 = 0.142...), under once a day
    assert (frequency["value"], frequency["count"], frequency["tier"]) == (0.3, 9, "high")


def test_change_lead_time_is_the_median_over_every_commit_odd_and_even() -> None:
    # one deployment with commits 1, 2 and 10 hours old: odd count, median 2
    commits = [{"sha": f"{n:07x}", "timestamp": at(hours_ago(24 + h))} for n, h in enumerate((1, 2, 10))]
    odd = summarize([deployment("d1", hours_ago(24), commits=commits)])["change_lead_time"]
    assert (odd["value"], odd["count"]) == (2.0, 3)
    # a second deployment ships commit 0 again (counted once, at its first) and a new one, 4 h old:
    # commits 1, 2, 4, 10 -> (2 + 4) / 2 = 3
    again = commits[:1] + [{"sha": "abcdef0", "timestamp": at(hours_ago(4))}]
    even = summarize([deployment("d1", hours_ago(24), commits=commits),
                      deployment("d2", hours_ago(0), commits=again)])["change_lead_time"]
    assert (even["value"], even["count"]) == (3.0, 4)


def test_change_lead_time_ignores_failed_deployments_and_reads_the_one_commit_form() -> None:
    deps = [deployment("ok", hours_ago(24), lead_hours=30), deployment("failed", hours_ago(48), "failure", 1),
            deployment("no-commit", hours_ago(72))]
    lead = summarize(deps)["change_lead_time"]
    assert (lead["value"], lead["count"], lead["tier"]) == (30.0, 1, "high")
    assert summarize(deps)["lead_time_for_changes"] == lead  # the deprecated name, same value


def test_change_fail_rate_counts_a_deployment_once_however_it_failed() -> None:
    # d2 failed and an incident names it; d3 succeeded but two incidents name it; d1, d4 fine
    deps = [deployment(f"d{i}", END - timedelta(days=i), "failure" if i == 2 else "success") for i in range(1, 5)]
    incidents = [incident(END - timedelta(days=2), 1, "d2"), incident(END - timedelta(days=3), 1, "d3"),
                 incident(END - timedelta(days=3), 2, "d3")]
    rate = summarize(deps, incidents)["change_fail_rate"]
    # 2 of 4 = 0.5, nearest 2024 cluster value 0.40: low
    assert rate == {"value": 0.5, "unit": "ratio", "count": 4, "tier": "low"}
    assert summarize(deps, incidents)["change_failure_rate"] == rate


def test_failed_deployment_recovery_time_runs_to_the_next_success() -> None:
    deps = [deployment("a", hours_ago(100)), deployment("b", hours_ago(90), "failure"),
            deployment("c", hours_ago(88), "rolled_back"), deployment("d", hours_ago(80)),
            deployment("e", hours_ago(50), "failure"), deployment("f", hours_ago(49)),
            deployment("g", hours_ago(5), "failure")]  # not recovered yet: not counted
    # b -> d: 10 h, c -> d: 8 h, e -> f: 1 h; median of 1, 8, 10 = 8
    recovery = summarize(deps)["failed_deployment_recovery_time"]
    assert (recovery["value"], recovery["count"], recovery["tier"]) == (8.0, 3, "high")


def test_recovery_is_per_service_and_environment() -> None:
    deps = [deployment("x-fail", hours_ago(10), "failure"), deployment("y-ok", hours_ago(9), service="other"),
            deployment("x-ok", hours_ago(4))]
    recovery = summarize(deps)["failed_deployment_recovery_time"]
    assert (recovery["value"], recovery["count"]) == (6.0, 1)  # x-fail -> x-ok, not y-ok


def test_deployment_rework_rate_is_unplanned_successes_over_finished_deployments() -> None:
    deps = [deployment("planned", hours_ago(10)), deployment("hotfix", hours_ago(9), planned=False),
            deployment("fix", hours_ago(8), remediates="INC-7"), deployment("failed-fix", hours_ago(7), "failure",
                                                                              planned=False),
            deployment("running", hours_ago(1), "in_progress", planned=False)]
    rework = summarize(deps)["deployment_rework_rate"]
    # 2 unplanned successes of 4 finished deployments; no report publishes rework clusters
    assert rework == {"value": 0.5, "unit": "ratio", "count": 4, "tier": None}


def test_time_to_restore_counts_incidents_resolved_inside_the_window() -> None:
    incidents = [incident(START - timedelta(days=2), 72),  # 72 h, resolved inside
                 incident(END - timedelta(days=5), 2), incident(END - timedelta(days=4), 4),
                 incident(END - timedelta(days=1), None)]  # still open: ignored
    restore = summarize([], incidents)["time_to_restore"]
    assert restore == {"value": 4.0, "unit": "hours", "count": 3, "tier": "high"}  # 2024: under a day is high


def test_events_just_outside_the_window_are_excluded_and_its_edges_included() -> None:
    tick = timedelta(microseconds=1)
    deps = [deployment("before", START - tick), deployment("at-start", START),
            deployment("at-end", END), deployment("after", END + tick)]
    incidents = [incident(START - timedelta(hours=3), 3 - 1e-9), incident(START - timedelta(hours=3), 3),
                 incident(END - timedelta(hours=1), 2)]
    summary = summarize(deps, incidents)
    assert summary["deployment_frequency"]["count"] == 2
    assert summary["time_to_restore"]["count"] == 1
    assert summary["time_to_restore"]["value"] == pytest.approx(3.0)


def test_explain_lists_the_events_behind_each_number_capped_at_100() -> None:
    deps = [deployment(f"d{i:03}", hours_ago(i + 1), "failure" if i % 3 == 0 else "success") for i in range(120)]
    summary = summarize(deps, explain=True)
    frequency = summary["deployment_frequency"]
    # 120 deployments, every third failed: 80 successes, listed in full
    assert frequency["count"] == 80 and frequency["events"]["truncated"] is False
    assert set(frequency["events"]["ids"]) == {d["id"] for d in deps if d["status"] == "success"}
    rate = summary["change_fail_rate"]
    assert rate["events"]["truncated"] is True and len(rate["events"]["ids"]) == 100
    assert set(rate["matching"]["ids"]) == {d["id"] for d in deps if d["status"] == "failure"}
    assert rate["matching"]["truncated"] is False
    assert "events" not in summarize(deps)["change_fail_rate"]


def test_the_answer_names_its_benchmark() -> None:
    assert summarize([], benchmark="2021")["benchmark"]["name"] == "2021"
    assert "dora.dev" in summarize([])["benchmark"]["url"]


# ---- every tier boundary of every benchmark ------------------------------------------------------

@pytest.mark.parametrize(("benchmark", "per_day", "tier"), [
    ("2021", 1.0, "elite"), ("2021", 0.99, "high"), ("2021", 1 / 7, "high"), ("2021", 1 / 30, "high"),
    ("2021", 1 / 31, "medium"), ("2021", 1 / 180, "medium"), ("2021", 1 / 181, "low"),
    ("2023", 1.0, "elite"), ("2023", 0.99, "high"), ("2023", 1 / 7, "high"), ("2023", 1 / 8, "medium"),
    ("2023", 1 / 30, "medium"), ("2023", 1 / 31, "low"),
    ("2024", 1.0, "elite"), ("2024", 0.99, "high"), ("2024", 1 / 7, "high"), ("2024", 1 / 8, "medium"),
    ("2024", 1 / 30, "medium"), ("2024", 1 / 31, "low"), ("2024", 0.0, "low"),
])
def test_deployment_frequency_tiers(benchmark: str, per_day: float, tier: str) -> None:
    assert BENCHMARKS[benchmark].rate("deployment_frequency", per_day) == tier


@pytest.mark.parametrize(("benchmark", "hours", "tier"), [
    ("2021", 0.99, "elite"), ("2021", HOUR, "high"), ("2021", DAY, "high"), ("2021", WEEK, "high"),
    ("2021", WEEK + 0.01, "medium"), ("2021", SIX_MONTHS, "medium"), ("2021", SIX_MONTHS + 0.01, "low"),
    ("2023", DAY - 0.01, "elite"), ("2023", DAY, "high"), ("2023", WEEK, "high"), ("2023", WEEK + 0.01, "medium"),
    ("2023", MONTH, "medium"), ("2023", MONTH + 0.01, "low"),
    ("2024", DAY - 0.01, "elite"), ("2024", DAY, "high"), ("2024", WEEK, "high"), ("2024", WEEK + 0.01, "medium"),
    ("2024", MONTH, "medium"), ("2024", MONTH + 0.01, "low"),
])
def test_change_lead_time_tiers(benchmark: str, hours: float, tier: str) -> None:
    assert BENCHMARKS[benchmark].rate("change_lead_time", hours) == tier


@pytest.mark.parametrize(("benchmark", "ratio", "tier"), [
    # 2021: elite 0-15 %, high = medium = low 16-30 %
    ("2021", 0.0, "elite"), ("2021", 0.15, "elite"), ("2021", 0.16, "high"), ("2021", 0.30, "high"),
    ("2021", 0.31, "low"),
    # 2023: nearest of 5, 10, 15, 64 %; midpoints 7.5, 12.5, 39.5 % go to the better cluster
    ("2023", 0.075, "elite"), ("2023", 0.076, "high"), ("2023", 0.125, "high"), ("2023", 0.126, "medium"),
    ("2023", 0.395, "medium"), ("2023", 0.396, "low"),
    # 2024: nearest of 5 (elite), 20 (high), 10 (medium), 40 % (low); midpoints 7.5, 15, 30 %
    ("2024", 0.075, "elite"), ("2024", 0.076, "medium"), ("2024", 0.10, "medium"), ("2024", 0.149, "medium"),
    ("2024", 0.15, "high"), ("2024", 0.30, "high"), ("2024", 0.301, "low"), ("2024", 1.0, "low"),
])
def test_change_fail_rate_tiers(benchmark: str, ratio: float, tier: str) -> None:
    assert BENCHMARKS[benchmark].rate("change_fail_rate", ratio) == tier


@pytest.mark.parametrize(("benchmark", "hours", "tier"), [
    ("2021", 0.99, "elite"), ("2021", HOUR, "high"), ("2021", DAY - 0.01, "high"), ("2021", DAY, "medium"),
    ("2021", WEEK, "medium"), ("2021", WEEK + 0.01, "low"),
    ("2023", 0.99, "elite"), ("2023", HOUR, "high"), ("2023", DAY, "medium"), ("2023", WEEK, "medium"),
    ("2023", WEEK + 0.01, "low"),
    ("2024", 0.99, "elite"), ("2024", HOUR, "high"), ("2024", DAY - 0.01, "high"), ("2024", DAY, "low"),
])
def test_failed_deployment_recovery_time_tiers(benchmark: str, hours: float, tier: str) -> None:
    assert BENCHMARKS[benchmark].rate("failed_deployment_recovery_time", hours) == tier


def test_rework_rate_has_no_tier_in_any_benchmark_and_no_value_has_no_tier() -> None:
    assert all(b.rate("deployment_rework_rate", 0.1) is None for b in BENCHMARKS.values())
    assert LATEST.rate("change_fail_rate", None) is None


def test_every_benchmark_publishes_four_clusters_per_rated_metric() -> None:
    for benchmark in BENCHMARKS.values():
        for metric, scale in benchmark.scales.items():
            if scale is not None:
                assert [tier for tier, _ in scale.published] == ["elite", "high", "medium", "low"], metric


def test_true_median() -> None:
    assert dora.true_median([]) is None
    assert dora.true_median([5.0]) == 5.0
    assert dora.true_median([4.0, 1.0, 3.0]) == 3.0
    assert dora.true_median([1.0, 2.0, 3.0, 10.0]) == 2.5
