"""The metrics the code emits, read from what it actually prints: every handler is exercised against
the emulator and its EMF lines are parsed as CloudWatch Logs would parse them (local/emf.py)."""
from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import constants as C
from chalicelib import jobs
from chalicelib.metrics import DORA_METRICS
from chalicelib.probes import aws_probes
from chalicelib.times import utc_now
from local.emf import emf_records, metric_data
from local.streams import StreamReader, lambda_event
from tests.conftest import DR, PRIMARY, STAGE, TABLE, post
from tests.integration.test_delivery import execution_event, pipeline  # noqa: F401 - a fixture

Emitted = set[tuple[str, str, frozenset[tuple[str, str]]]]  # (namespace, metric, {dimension: value})


def emitted_in(output: str) -> Emitted:
    return {(namespace, datum["MetricName"], frozenset((d["Name"], d["Value"]) for d in datum["Dimensions"]))
            for record in emf_records(output.splitlines()) for namespace, datum in metric_data(record)}


def scheduled(client: Any) -> dict[str, Any]:
    return client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                           resources=[])


def exercise_everything(client: Any, aws: Any, pipeline_client: Any) -> None:  # noqa: F811
    """Every route with every outcome class, every kind of event, every scheduled, stream and event
    handler: what a day of the service in production would make it emit."""
    now = datetime.now(timezone.utc)
    for kind, extra in (("deployment", {"status": "success", "commit_timestamp": (now - timedelta(hours=3))
                                        .isoformat()}),
                        ("build", {"status": "succeeded", "duration_seconds": 30}),
                        ("incident", {"opened_at": (now - timedelta(hours=2)).isoformat(),
                                      "resolved_at": (now - timedelta(hours=1)).isoformat()}),
                        ("gauge", {"name": "queue_depth", "value": 3, "unit": "Count"})):
        assert post(client, {"kind": kind, "service": "checkout", **extra}).status_code == 201
    # a failed deployment and the fix that recovers it, so that recovery time has a value
    for hours, status in ((5, "failure"), (4, "success")):
        fix = {"kind": "deployment", "service": "checkout", "status": status,
               "timestamp": (now - timedelta(hours=hours)).isoformat()}
        assert post(client, fix).status_code == 201
    assert post(client, {"kind": "deployment"}).status_code == 400
    client.http.get("/metrics?service=checkout")
    client.http.get("/metrics/summary?service=checkout")
    client.http.get("/health")
    client.http.get("/health?deep=true")
    # the stream handler, fed with the table's real stream records, then the sweep
    arn = aws.client("dynamodb", PRIMARY).describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    records = StreamReader(aws.client("dynamodbstreams", PRIMARY), arn, PRIMARY).poll()
    client.lambda_.invoke("replicate_stream", lambda_event(records[:100]))
    client.lambda_.invoke("replication_sweep", scheduled(client))
    # a pipeline execution of each outcome
    for state in ("SUCCEEDED", "FAILED"):
        execution = pipeline_client.start_pipeline_execution(name=f"devops-metrics-{STAGE}")["pipelineExecutionId"]
        client.lambda_.invoke("record_pipeline_execution", execution_event(client, execution, state, now))
    # the scheduled health check and the DORA publication
    ctx = app_module.context()
    probes = dataclasses.replace(aws_probes(ctx.settings, None),
                                 api_url="http://api.test", publish=lambda subject, message: None,
                                 http_get=lambda url, timeout: (200, {}), function_names=(f"devops-metrics-{STAGE}",))
    jobs.health_check(ctx, probes, utc_now())
    client.lambda_.invoke("publish_dora", scheduled(client))
    client.lambda_.invoke("renew_lease", scheduled(client))
    client.lambda_.invoke("readiness_check", scheduled(client))


@pytest.fixture
def emitted(client, aws, pipeline, capsys) -> Emitted:  # noqa: F811
    capsys.readouterr()
    exercise_everything(client, aws, pipeline)
    return emitted_in(capsys.readouterr().out)


def names(emitted: Emitted) -> set[tuple[str, tuple[str, ...]]]:
    return {(metric, tuple(sorted(name for name, _ in dims))) for _, metric, dims in emitted}


def test_every_metric_of_the_catalogue_is_emitted_with_its_dimensions(emitted: Emitted) -> None:
    """The list in chalicelib/metrics.py's docstring is what the code really prints."""
    assert names(emitted) == {
        ("Requests", ("Route", "Stage")), ("ClientErrors", ("Route", "Stage")),
        ("ServerErrors", ("Route", "Stage")), ("Latency", ("Route", "Stage")),
        ("EventsIngested", ("Kind", "Stage")),
        ("HealthCheckFailed", ("Check", "Stage")),
        ("ItemsReplicated", ("Path", "SourceRegion", "Stage")),
        ("ReplicationLagSeconds", ("Path", "SourceRegion", "Stage")),
        ("SweepChangesFound", ("Path", "SourceRegion", "Stage")),
        ("DeploymentsPerDay", ("Environment", "Service", "Stage")),
        ("LeadTimeHours", ("Environment", "Service", "Stage")),
        ("ChangeFailureRate", ("Environment", "Service", "Stage")),
        ("FailedDeploymentRecoveryHours", ("Environment", "Service", "Stage")),
        ("DeploymentReworkRate", ("Environment", "Service", "Stage")),
        ("TimeToRestoreHours", ("Environment", "Service", "Stage")),
        ("PipelineExecutions", ("Stage", "State")),
        ("LeaseRenewed", ("Region", "Stage")),
        ("ReadinessFindings", ("Region", "Stage")),
    }
    assert {namespace for namespace, _, _ in emitted} == {"DevOpsMetrics"}
    routes = {dict(dims)["Route"] for _, metric, dims in emitted if metric == "Requests"}
    assert routes == {"POST /metrics", "GET /metrics", "GET /metrics/summary", "GET /health"}


# Metrics AWS publishes itself, with their documented dimension names (CloudWatch user guide,
# "AWS services that publish CloudWatch metrics"): dashboards and alarms may use these too.
AWS_METRICS = {
    "AWS/Lambda": ({"Errors", "Duration", "Throttles", "Invocations"}, {"FunctionName"}),
    "AWS/ApiGateway": ({"4XXError", "5XXError", "Count", "Latency"}, {"ApiName", "Stage"}),
    "AWS/CodeBuild": ({"Builds", "SucceededBuilds", "FailedBuilds", "Duration"}, {"ProjectName"}),
    "AWS/DynamoDB": ({"ReadThrottleEvents", "WriteThrottleEvents", "ThrottledRequests"}, {"TableName"}),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible"}, {"QueueName"}),
}
REGION_VALUED = {"SourceRegion", "Region"}  # either region replicates (the active one); each runs its own checks


def matches(reference: tuple[str, str, frozenset[tuple[str, str | None]]], emitted: Emitted) -> bool:
    """A referenced metric is emitted when the namespace, the name and the dimension names are the
    same, and every dimension value the reference fixes is a value the code emitted."""
    namespace, name, dims = reference
    for e_namespace, e_name, e_dims in emitted:
        values = dict(e_dims)
        if (e_namespace, e_name) != (namespace, name) or set(values) != {d for d, _ in dims}:
            continue
        if all(value is None or values[d] == value or (d in REGION_VALUED and value in (PRIMARY, DR))
               for d, value in dims):
            return True
    return False


def test_every_metric_a_dashboard_or_alarm_references_is_one_the_code_emits(emitted: Emitted) -> None:
    """dashboards/ (bodies and alarms.yaml, both regions) against what the code printed above."""
    from dashboards import referenced_metrics

    references = (referenced_metrics(STAGE, STAGE, PRIMARY, DR) | referenced_metrics(STAGE, f"{STAGE}-dr", DR, PRIMARY))
    ours = {r for r in references if r[0] == C.METRICS_NAMESPACE}
    assert len(ours) > 30
    missing = sorted((name, sorted(dims, key=str)) for _, name, dims in ours if not matches((_, name, dims), emitted))
    assert missing == [], f"referenced but never emitted: {missing}"
    # and every metric the code emits is on a dashboard (an emitted metric nobody looks at is a gap)
    unseen = {name for _, name, _ in emitted} - {name for _, name, _ in ours}
    assert unseen == set()


def test_aws_metrics_referenced_are_documented_ones_named_after_this_app(emitted: Emitted) -> None:
    from dashboards import referenced_metrics

    functions = {f"devops-metrics-{chalice_stage}{suffix}" for chalice_stage in (STAGE, f"{STAGE}-dr")
                 for suffix in ["", *(f"-{name}" for name in C.APP_FUNCTIONS)]}
    assert os.environ.get("TABLE_STREAM_ARN")  # tests/conftest.py: the stream handler is registered
    assert set(C.APP_FUNCTIONS) == {source.name for source in app_module.app.event_sources}
    known_values = {"FunctionName": functions, "ApiName": {app_module.app.app_name}, "Stage": {"api"},
                    "ProjectName": {f"devops-metrics-{STAGE}-build"}, "TableName": {TABLE},
                    # the dead-letter queue .chalice/package-merge.json names after the app stage
                    "QueueName": {f"devops-metrics-{s}-pipeline-events-dlq" for s in (STAGE, f"{STAGE}-dr")}}
    references = referenced_metrics(STAGE, STAGE, PRIMARY, DR) | referenced_metrics(STAGE, f"{STAGE}-dr", DR, PRIMARY)
    for namespace, name, dims in references:
        if namespace == C.METRICS_NAMESPACE:
            continue
        assert namespace in AWS_METRICS, namespace
        names, dimension_names = AWS_METRICS[namespace]
        assert name in names and {d for d, _ in dims} == dimension_names, (namespace, name, dims)
        for dimension, value in dims:
            assert value in known_values[dimension], (namespace, name, dimension, value)


def test_published_dora_values_are_the_summary_values(client, aws, capsys) -> None:
    now = datetime.now(timezone.utc)
    for service, hours in (("checkout", 2.0), ("payments", 30.0)):
        for day in range(3):
            at = now - timedelta(days=day, hours=1)
            post(client, {"kind": "deployment", "service": service, "status": "success",
                          "timestamp": at.isoformat(), "commit_timestamp": (at - timedelta(hours=hours)).isoformat()})
    capsys.readouterr()
    result = client.lambda_.invoke("publish_dora", scheduled(client)).payload
    assert result["services"] == 2
    published = {(dict(d)["Service"], metric): value
                 for record in emf_records(capsys.readouterr().out.splitlines())
                 for _, datum in metric_data(record)
                 for metric, d, value in [(datum["MetricName"], [(x["Name"], x["Value"]) for x in datum["Dimensions"]],
                                           datum["Value"])]
                 if metric in DORA_METRICS.values()}
    for service in ("checkout", "payments"):
        summary = client.http.get(f"/metrics/summary?service={service}").json_body
        assert published[(service, "LeadTimeHours")] == pytest.approx(summary["lead_time_for_changes"]["value"])
        assert published[(service, "DeploymentsPerDay")] == pytest.approx(summary["deployment_frequency"]["value"])
        assert published[(service, "ChangeFailureRate")] == summary["change_failure_rate"]["value"] == 0
        assert (service, "TimeToRestoreHours") not in published  # no incidents: no value, not 0


def test_the_standby_publishes_no_dora_metrics(standby_client, aws) -> None:
    result = standby_client.lambda_.invoke("publish_dora", scheduled(standby_client)).payload
    assert result == {"services": 0, "reason": "standby"}

