"""`python -m dashboards deploy` against the emulator: the monitoring stack in both regions, its
alarms read back from CloudWatch, the dashboards, and the e-mail subscriptions.

moto's CloudFormation accepts the alarms and creates none of them, so, as the local stack does,
local/cloudwatch.py puts them from the same template and the parameters the stack was deployed with.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib import constants as C
from chalicelib import names
from dashboards import bodies as B
from dashboards.references import load_stages
from local.cloudwatch import apply_monitoring_stack_alarms
from local.emulator import Emulator
from ops.templates import ROOT
from tests.conftest import DR, PRIMARY, STAGE

CHALICE_STAGES = names.chalice_stages(STAGE)
EMAIL = "oncall@devops-metrics.test"


@dataclass
class Deployed:
    emulator: Emulator
    stages_file: Path
    thresholds: dict[str, Any]
    topics: dict[str, str]  # region -> the regional stack's AlertTopicArn
    first: subprocess.CompletedProcess[str]


def run_deploy(emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": emulator.endpoint}
    return subprocess.run([sys.executable, "-m", "dashboards", "deploy", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def topic_arn(emulator: Emulator, region: str) -> str:
    stack = emulator.client("cloudformation", region).describe_stacks(StackName=f"devops-metrics-{STAGE}")
    return next(o["OutputValue"] for o in stack["Stacks"][0]["Outputs"] if o["OutputKey"] == "AlertTopicArn")


def email_subscriptions(emulator: Emulator, region: str, topic: str) -> list[dict[str, Any]]:
    subs = emulator.client("sns", region).list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return [s for s in subs if s["Protocol"] == "email"]


@pytest.fixture(scope="module")
def deployed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    stages = load_stages()
    stages[STAGE]["alert_emails"] = [EMAIL]
    stages_file = tmp_path_factory.mktemp("monitoring") / "stages.json"
    stages_file.write_text(json.dumps(stages))
    first = run_deploy(emulator, "--stage", STAGE, "--stages-file", str(stages_file))
    assert first.returncode == 0, first.stdout + first.stderr
    for region in (PRIMARY, DR):
        apply_monitoring_stack_alarms(emulator, region, STAGE)
    topics = {region: topic_arn(emulator, region) for region in (PRIMARY, DR)}
    yield Deployed(emulator, stages_file, stages[STAGE]["thresholds"], topics, first)
    for region, topic in topics.items():  # leave the shared topics as the other tests expect them
        sns = emulator.client("sns", region)
        for sub in email_subscriptions(emulator, region, topic):
            sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])


def alarms_by_name(emulator: Emulator, region: str) -> dict[str, dict[str, Any]]:
    prefix = names.alarm(CHALICE_STAGES[region], "")
    found = emulator.client("cloudwatch", region).describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return {a["AlarmName"].removeprefix(prefix): a for a in found}


def dims(alarm_or_metric: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm_or_metric.get("Dimensions", [])}


@pytest.mark.parametrize("region", [PRIMARY, DR])
def test_each_single_metric_alarm_watches_the_right_metric(deployed: Deployed, region: str) -> None:
    t = deployed.thresholds
    expected = {  # name: (namespace, metric, dimensions, statistic, comparison, threshold, missing data)
        "api-5xx": ("AWS/ApiGateway", "5XXError", {"ApiName": "devops-metrics", "Stage": "api"}, "Sum",
                    "GreaterThanThreshold", t["Api5xxThreshold"], "notBreaching"),
        "health-check-failed": (C.METRICS_NAMESPACE, "HealthCheckFailed", {"Stage": STAGE, "Check": "overall"},
                                "Maximum", "GreaterThanOrEqualToThreshold", 1, "breaching"),
        # only the active region replicates, and reports its lag under its own name
        "replication-lag": (C.METRICS_NAMESPACE, "ReplicationLagSeconds",
                            {"Stage": STAGE, "SourceRegion": region, "Path": "stream"}, "Maximum",
                            "GreaterThanThreshold", t["ReplicationLagThresholdSeconds"], "notBreaching"),
        "pipeline-failed": (C.METRICS_NAMESPACE, "PipelineExecutions", {"Stage": STAGE, "State": "FAILED"}, "Sum",
                            "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
        "build-failed": ("AWS/CodeBuild", "FailedBuilds", {"ProjectName": f"devops-metrics-{STAGE}-build"}, "Sum",
                         "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
        "pipeline-events-dead-letters": (
            "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            {"QueueName": f"devops-metrics-{CHALICE_STAGES[region]}-pipeline-events-dlq"}, "Maximum",
            "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
    }
    alarms = alarms_by_name(deployed.emulator, region)
    for name, (namespace, metric, dimensions, stat, comparison, threshold, missing) in expected.items():
        alarm = alarms[name]
        got = (alarm["Namespace"], alarm["MetricName"], dims(alarm), alarm["Statistic"],
               alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"])
        assert got == (namespace, metric, dimensions, stat, comparison, float(threshold), missing), name
        assert alarm["AlarmActions"] == alarm["OKActions"] == [deployed.topics[region]], name


@pytest.mark.parametrize("region", [PRIMARY, DR])
def test_the_lambda_errors_alarm_sums_every_function_of_the_app(deployed: Deployed, region: str) -> None:
    alarm = alarms_by_name(deployed.emulator, region)["lambda-errors"]
    assert alarm["AlarmActions"] == alarm["OKActions"] == [deployed.topics[region]]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanThreshold", float(deployed.thresholds["LambdaErrorsThreshold"]))
    returned = [q for q in alarm["Metrics"] if q.get("ReturnData")]
    stats = [q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q]
    assert len(returned) == 1 and returned[0]["Expression"].startswith("SUM(")
    assert all(q["Id"] in returned[0]["Expression"] for q in alarm["Metrics"] if "MetricStat" in q)
    assert {(s["Metric"]["Namespace"], s["Metric"]["MetricName"], s["Stat"], s["Period"]) for s in stats} == {
        ("AWS/Lambda", "Errors", "Sum", 300)}
    chalice_stage = CHALICE_STAGES[region]
    functions = {f"devops-metrics-{chalice_stage}"} | {f"devops-metrics-{chalice_stage}-{n}" for n in C.APP_FUNCTIONS}
    assert len(stats) == len(functions)
    assert {tuple(dims(s["Metric"]).items()) for s in stats} == {(("FunctionName", f),) for f in functions}


@pytest.mark.parametrize("region", [PRIMARY, DR])
def test_every_dashboard_is_there_with_the_body_of_its_region(deployed: Deployed, region: str) -> None:
    chalice_stage = CHALICE_STAGES[region]
    cloudwatch = deployed.emulator.client("cloudwatch", region)
    names = {d["DashboardName"] for d in cloudwatch.list_dashboards(
        DashboardNamePrefix=f"devops-metrics-{chalice_stage}-")["DashboardEntries"]}
    expected = {f"devops-metrics-{chalice_stage}-{topic}" for topic in B.TOPICS}
    assert expected <= names  # (us-east-1's dev prefix is not dev-dr's: those live in us-west-2)
    peer = DR if region == PRIMARY else PRIMARY
    for name, body in B.bodies(STAGE, chalice_stage, region, peer).items():
        stored = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
        assert stored == body


def test_the_addresses_of_the_stages_file_are_subscribed_in_both_regions(deployed: Deployed) -> None:
    for region in (PRIMARY, DR):
        assert [s["Endpoint"] for s in email_subscriptions(deployed.emulator, region, deployed.topics[region])] == [
            EMAIL]
    assert deployed.first.stdout.count(EMAIL) == 2 and "stack" in deployed.first.stdout


def test_deploying_again_changes_nothing(deployed: Deployed) -> None:
    emulator = deployed.emulator
    before = {r: (sorted(alarms_by_name(emulator, r)), len(emulator.client("cloudwatch", r).list_dashboards()[
        "DashboardEntries"])) for r in (PRIMARY, DR)}
    again = run_deploy(emulator, "--stage", STAGE, "--stages-file", str(deployed.stages_file))
    assert again.returncode == 0, again.stdout + again.stderr
    # moto reports an update where AWS says "No updates are to be performed" (it compares Number
    # parameters as numbers with the strings given); both end in the same stack
    assert again.stdout.count("already subscribed") == 2
    # against an emulator (AWS_ENDPOINT_URL), no AWS console link is printed: there is nothing there
    assert "console.aws.amazon.com" not in again.stdout
    for region in (PRIMARY, DR):
        apply_monitoring_stack_alarms(emulator, region, STAGE)
        after = (sorted(alarms_by_name(emulator, region)), len(emulator.client("cloudwatch", region).list_dashboards()[
            "DashboardEntries"]))
        assert after == before[region]
        assert len(email_subscriptions(emulator, region, deployed.topics[region])) == 1
        stack = emulator.client("cloudformation", region).describe_stacks(
            StackName=f"devops-metrics-{STAGE}-monitoring")["Stacks"][0]
        assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


def test_without_the_regional_stack_deploy_says_what_to_do_first(emulator: Emulator) -> None:
    result = run_deploy(emulator, "--stage", "prod")  # the emulator holds stage dev only
    assert result.returncode == 1
    assert "devops-metrics-prod is not in us-east-1" in result.stderr and "dr/regional.yaml" in result.stderr


def test_a_stages_file_without_a_threshold_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    stages = load_stages()
    del stages[STAGE]["thresholds"]["Api5xxThreshold"]
    bad = tmp_path / "stages.json"
    bad.write_text(json.dumps(stages))
    result = run_deploy(emulator, "--stage", STAGE, "--stages-file", str(bad))
    assert result.returncode == 1 and "thresholds must be exactly" in result.stderr
