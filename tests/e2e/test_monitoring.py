"""Alerts on the local stack, as docs/monitoring.md tells a user to see them: make the primary's table
unavailable, run the scheduled health check, read the alert the console prints, bring the table
back. The commands are the ones the stack's banner prints."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest
import requests

from ops.templates import ROOT
from tests.e2e.stack import StackProcess, running

pytestmark = pytest.mark.e2e

ALERT = "ALERT e-mail from the us-east-1 topic"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    # scheduled health checks far apart, so that only the runs this test makes count
    with running("--no-demo-data --health-every 3600", follow=True) as stack:
        yield stack


def run_health_check(region: str = "us-east-1") -> None:
    result = subprocess.run([sys.executable, "-m", "local", "run", "health_check", "--region", region],
                            cwd=ROOT, env=StackProcess.environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_banner_tells_how_to_break_the_table_and_run_the_check(stack: StackProcess) -> None:
    banner = "".join(stack.output)
    assert f"curl -s -X POST {stack.endpoint}/_outage/us-east-1/dynamodb" in banner
    assert "python -m local run health_check --region us-east-1" in banner


def test_an_unavailable_table_prints_one_alert_and_one_recovery(stack: StackProcess) -> None:
    run_health_check()
    assert ALERT not in "".join(stack.output)
    # given the primary's table is unavailable
    assert requests.post(f"{stack.endpoint}/_outage/us-east-1/dynamodb", timeout=5).json() == ["us-east-1/dynamodb"]
    # when the scheduled health check runs, then exactly one alert is printed, with what to do first
    run_health_check()
    stack.wait_for_output(ALERT)
    printed = "".join(stack.output)
    assert "Subject: [devops-metrics dev us-east-1] UNHEALTHY: api, table" in printed
    assert "What to do first:" in printed
    # and nine more failing runs (ten in a row) print nothing more
    for _ in range(9):
        run_health_check()
    time.sleep(3)  # the console polls every second
    assert "".join(stack.output).count(ALERT) == 1
    # when the table is back, one "recovered" alert follows
    requests.delete(f"{stack.endpoint}/_outage/us-east-1/dynamodb", timeout=5)
    for _ in range(3):
        run_health_check()
    stack.wait_for_output(ALERT, count=2)
    time.sleep(3)
    printed = "".join(stack.output)
    assert printed.count(ALERT) == 2
    assert printed.count("RECOVERED: every check passes") == 1


def test_the_health_check_metrics_reach_the_emulators_cloudwatch(stack: StackProcess) -> None:
    run_health_check()
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=stack.endpoint,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
    deadline = time.monotonic() + 30
    found: set[str] = set()
    while time.monotonic() < deadline and "overall" not in found:
        metrics = cloudwatch.list_metrics(Namespace="DevOpsMetrics", MetricName="HealthCheckFailed")["Metrics"]
        found = {d["Value"] for m in metrics for d in m["Dimensions"] if d["Name"] == "Check"}
        time.sleep(1)
    assert {"overall", "api", "table"} <= found
