"""The metrics the code emits, read from what it actually prints: every handler is exercised against
the emulator and its EMF lines are parsed as CloudWatch Logs would parse them (local/emf.py)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import api
from chalicelib.health_check import aws_probes
from chalicelib.store import utc_now
from local.emf import emf_records, metric_data
from local.streams import StreamReader, lambda_event
from tests.conftest import PRIMARY, STAGE, TABLE, post
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
    assert post(client, {"kind": "deployment"}).status_code == 400
    client.http.get("/metrics?service=checkout")
    client.http.get("/metrics/summary?service=checkout")
    client.http.get("/health")
    client.http.get("/health?deep=true")
    # the stream handler, fed with the table's real stream records, then the sweep
    arn = aws.client("dynamodb", PRIMARY).describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    records = StreamReader(aws.client("dynamodbstreams", PRIMARY), arn, PRIMARY, from_start=True).poll()
    client.lambda_.invoke("replicate_stream", lambda_event(records[:100]))
    client.lambda_.invoke("replication_sweep", scheduled(client))
    # a pipeline execution of each outcome
    for state in ("SUCCEEDED", "FAILED"):
        execution = pipeline_client.start_pipeline_execution(name=f"devops-metrics-{STAGE}")["pipelineExecutionId"]
        client.lambda_.invoke("record_pipeline_execution", execution_event(client, execution, state, now))
    # the scheduled health check and the DORA publication
    ctx = app_module.context()
    probes = dataclasses.replace(aws_probes(ctx.settings, None, lambda service: aws.client(service, PRIMARY)),
                                 api_url="http://api.test", publish=lambda subject, message: None,
                                 http_get=lambda url, timeout: (200, {}))
    api.health_check(ctx, probes, utc_now())
    client.lambda_.invoke("publish_dora", scheduled(client))


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
        ("TimeToRestoreHours", ("Environment", "Service", "Stage")),
        ("PipelineExecutions", ("Stage", "State")),
    }
    assert {namespace for namespace, _, _ in emitted} == {"DevOpsMetrics"}
    routes = {dict(dims)["Route"] for _, metric, dims in emitted if metric == "Requests"}
    assert routes == {"POST /metrics", "GET /metrics", "GET /metrics/summary", "GET /health"}


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
                 if metric in api.DORA_METRICS.values()}
    for service in ("checkout", "payments"):
        summary = client.http.get(f"/metrics/summary?service={service}").json_body
        assert published[(service, "LeadTimeHours")] == pytest.approx(summary["lead_time_for_changes"]["value"])
        assert published[(service, "DeploymentsPerDay")] == pytest.approx(summary["deployment_frequency"]["value"])
        assert published[(service, "ChangeFailureRate")] == summary["change_failure_rate"]["value"] == 0
        assert (service, "TimeToRestoreHours") not in published  # no incidents: no value, not 0


def test_the_standby_publishes_no_dora_metrics(standby_client, aws) -> None:
    result = standby_client.lambda_.invoke("publish_dora", scheduled(standby_client)).payload
    assert result == {"services": 0, "reason": "standby"}

