"""Dashboard bodies, the metrics they reference, and the template resolver."""
from __future__ import annotations

import pytest

from chalicelib import constants as C
from dashboards import bodies as B
from dashboards import referenced_metrics
from dashboards import template as T
from dashboards.deploy import validate_stages
from dashboards.references import dashboard_metrics, load_stages, search_metrics
from local.cloudwatch import put_alarm_arguments
from ops import templates
from ops.templates import load_template

NS = C.METRICS_NAMESPACE
ARGS = ("prod", "prod-dr", "us-west-2", "us-east-1")  # stage, chalice stage, region, peer region


def test_the_dora_dashboard_references_the_five_metrics_and_time_to_restore_by_search() -> None:
    refs = set(dashboard_metrics(B.dora(*ARGS)))
    any_service = frozenset({("Stage", "prod"), ("Service", None), ("Environment", None)})
    assert refs == {(NS, name, any_service) for name in
                    ("DeploymentsPerDay", "LeadTimeHours", "ChangeFailureRate", "FailedDeploymentRecoveryHours",
                     "DeploymentReworkRate", "TimeToRestoreHours")}


def test_the_pipeline_dashboard_references_hidden_metrics_of_its_math_but_not_the_math() -> None:
    project = frozenset({("ProjectName", "devops-metrics-prod-build")})
    refs = set(dashboard_metrics(B.pipeline(*ARGS)))
    assert {("AWS/CodeBuild", "SucceededBuilds", project), ("AWS/CodeBuild", "Builds", project)} <= refs
    assert (NS, "PipelineExecutions", frozenset({("Stage", "prod"), ("State", "FAILED")})) in refs
    assert all(len(ref) == 3 and ref[1] for ref in refs)


def test_search_names_the_schema_dimensions_and_fixes_the_values_it_gives() -> None:
    expression = "SEARCH('{DevOpsMetrics,Environment,Service,Stage} MetricName=\"LeadTimeHours\" Stage=\"dev\"', " \
                 "'Average', 3600)"
    assert list(search_metrics(expression)) == [
        (NS, "LeadTimeHours", frozenset({("Environment", None), ("Service", None), ("Stage", "dev")}))]
    assert list(search_metrics("100 * m1 / m2")) == []


def test_a_shorthand_metric_line_is_refused() -> None:
    body = {"widgets": [{"type": "metric", "properties": {"metrics": [[NS, "Requests", "Stage", "dev"],
                                                                      [".", ".", ".", "prod"]]}}]}
    with pytest.raises(ValueError, match="in full"):
        list(dashboard_metrics(body))


def test_referenced_metrics_holds_the_dashboards_and_the_alarms_of_the_region() -> None:
    refs = referenced_metrics(*ARGS)
    lag = frozenset({("Stage", "prod"), ("SourceRegion", "us-west-2"), ("Path", "stream")})
    assert (NS, "ReplicationLagSeconds", lag) in refs  # the alarm's and the DR dashboard's
    assert ("AWS/Lambda", "Errors", frozenset({("FunctionName", "devops-metrics-prod-dr-replication_sweep")})) in refs
    assert (NS, "HealthCheckFailed", frozenset({("Stage", "prod"), ("Check", "overall")})) in refs
    assert not any(value and "dev" == value for _, _, dims in refs for _, value in dims)


def test_the_bodies_come_from_their_parameters_only() -> None:
    primary = B.bodies("prod", "prod", "us-east-1", "us-west-2")
    standby = B.bodies("prod", "prod-dr", "us-west-2", "us-east-1")
    assert list(primary) == [f"devops-metrics-prod-{t}" for t in B.TOPICS]
    assert list(standby) == [f"devops-metrics-prod-dr-{t}" for t in B.TOPICS]
    for body in standby.values():
        for widget in body["widgets"]:
            regions = {widget["properties"].get("region")} | {
                m[-1]["region"] for m in widget["properties"].get("metrics", []) if isinstance(m[-1], dict)
                and "region" in m[-1]}
            assert regions - {None} <= {"us-west-2", "us-east-1"}
    primary = B.replication("prod", "prod", "us-east-1", "us-west-2")
    assert primary != B.replication("prod", "prod-dr", "us-west-2", "us-east-1")


@pytest.mark.parametrize("topic", B.TOPICS)
def test_widgets_fit_the_grid_without_overlapping(topic: str) -> None:
    widgets = B.BUILDERS[topic](*ARGS)["widgets"]
    cells = set()
    for w in widgets:
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24
        area = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not area & cells, w
        cells |= area


def test_the_resolver_reads_the_template_as_the_local_stack_loads_it() -> None:
    assert T.load() == load_template(T.ALARMS_TEMPLATE)
    names = {"Stage": "dev", "AWS::Region": "us-west-2"}
    assert templates.resolve({"Fn::Sub": "t-${Stage}-${AWS::Region}"}, names) == "t-dev-us-west-2"
    assert templates.resolve({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Stage"}}]}, names) == "dev-dev"
    assert templates.resolve([{"Fn::Ref": "Stage"}, "x"], names) == ["dev", "x"]
    with pytest.raises(templates.UnresolvedError):
        templates.resolve({"Fn::GetAtt": ["Topic", "Arn"]}, names)
    with pytest.raises(templates.UnresolvedError):
        templates.resolve({"Fn::Sub": "${Missing}"}, names)


def test_resolved_alarms_are_put_metric_alarm_arguments() -> None:
    stages = load_stages()
    params = {"Stage": "dev", "ChaliceStage": "dev-dr", "AlertTopicArn": "arn:aws:sns:us-west-2:123456789012:t",
              **{k: str(v) for k, v in stages["dev"]["thresholds"].items()}}
    alarms = T.resolved_alarms(params, "us-west-2")
    lag = put_alarm_arguments(alarms["ReplicationLagAlarm"])
    assert lag["AlarmName"] == "devops-metrics-dev-dr-replication-lag"
    assert lag["Threshold"] == float(stages["dev"]["thresholds"]["ReplicationLagThresholdSeconds"])
    assert {"Name": "SourceRegion", "Value": "us-west-2"} in lag["Dimensions"]
    with pytest.raises(templates.UnresolvedError, match="no value"):
        T.resolved_alarms({"Stage": "dev"}, "us-east-1")


def test_the_shipped_stages_file_is_valid_and_bad_ones_are_not() -> None:
    stages = load_stages()
    assert validate_stages(stages) == []
    assert validate_stages({"dev": {"alert_emails": ["not an address"], "thresholds": {}}}) != []
