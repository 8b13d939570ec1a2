"""The HTML report's words for each value, and its promise to fetch nothing (the picture itself is
checked in a real browser: tests/e2e/test_local_stack.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chalicelib import dora
from chalicelib.benchmarks import BENCHMARKS
from dashboards.report import METRICS, render, value_text


@pytest.mark.parametrize(("metric", "text"), [
    ({"value": None, "unit": "hours"}, "no data"),
    ({"value": 2.0, "unit": "per_day"}, "2.00 a day"),
    ({"value": 1 / 14, "unit": "per_day"}, "0.50 a week"),
    ({"value": 0.2143, "unit": "ratio"}, "21.4 %"),
    ({"value": 3.0, "unit": "hours"}, "3.0 h"),
    ({"value": 72.0, "unit": "hours"}, "3.0 days"),
])
def test_values_read_as_people_say_them(metric: dict[str, Any], text: str) -> None:
    assert value_text(metric) == text


def test_the_page_shows_every_metric_and_fetches_nothing() -> None:
    end = datetime(2026, 11, 30, tzinfo=timezone.utc)
    deployments = [{"kind": "deployment", "id": "d<1>", "service": "s", "environment": "production",
                    "timestamp": (end - timedelta(days=1)).isoformat(), "status": "success"}]
    metrics = dora.summarize(deployments, [], end - timedelta(days=7), end, 7, BENCHMARKS["2024"], explain=True)
    summary = {"service": "s", "environment": "production", "days": 7,
               "window": {"start": "2026-11-23T00:00:00.000000Z", "end": "2026-11-30T00:00:00.000000Z"}, **metrics}
    bucket = {"start": "2026-11-23T00:00:00.000000Z", "end": "2026-11-30T00:00:00.000000Z", "partial": True,
              **{k: v for k, v in metrics.items() if k != "benchmark"}}
    page = render(summary, {"buckets": [bucket]})
    assert all(title in page for _, title, _ in METRICS)
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "d&lt;1&gt;" in page and "d<1>" not in page  # ids are escaped
