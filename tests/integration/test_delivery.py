"""The pipeline feeds the service: real-shaped CodePipeline execution events, delivered through
chalice.test's CloudWatch event generator to the app's handler, become DORA events."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.stub import Stubber

from chalicelib import clients
from chalicelib.delivery import ExecutionFacts, PipelineHistory, delivery_events
from tests.conftest import PRIMARY

PIPELINE = "devops-metrics-dev"  # the dev stage's pipeline


@pytest.fixture
def pipeline(aws) -> Iterator[Any]:
    """A pipeline in the emulator's CodePipeline (moto does not create it from CloudFormation)."""
    iam = aws.client("iam", PRIMARY)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    try:
        role = iam.get_role(RoleName="pipeline-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="pipeline-test", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    codepipeline = aws.client("codepipeline", PRIMARY)
    action = {"name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit",
                                                 "version": "1"},
              "configuration": {"RepositoryName": PIPELINE, "BranchName": "main"},
              "outputArtifacts": [{"name": "Source"}]}
    build = {"name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                               "version": "1"},
             "configuration": {"ProjectName": f"{PIPELINE}-build"}, "inputArtifacts": [{"name": "Source"}]}
    codepipeline.create_pipeline(pipeline={
        "name": PIPELINE, "roleArn": role,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [{"name": "Source", "actions": [action]}, {"name": "Build", "actions": [build]}]})
    yield codepipeline
    codepipeline.delete_pipeline(name=PIPELINE)


def execution_event(client: Any, execution_id: str, state: str, when: datetime,
                    pipeline: str = PIPELINE) -> dict[str, Any]:
    """What EventBridge delivers for "CodePipeline Pipeline Execution State Change"."""
    event = client.events.generate_cw_event(
        source="aws.codepipeline", detail_type="CodePipeline Pipeline Execution State Change",
        detail={"pipeline": pipeline, "execution-id": execution_id, "state": state, "version": 1,
                "execution-trigger": {"trigger-type": "StartPipelineExecution"}},
        resources=[f"arn:aws:codepipeline:{PRIMARY}:123456789012:{pipeline}"], region=PRIMARY)
    event["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def summary(client: Any) -> dict[str, Any]:
    return client.http.get("/metrics/summary?service=devops-metrics&environment=dev&days=7").json_body


def test_succeeded_and_failed_executions_become_deployments_and_builds(client, pipeline) -> None:
    now = datetime.now(timezone.utc)
    good = pipeline.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
    bad = pipeline.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
    # when EventBridge delivers a SUCCEEDED and a FAILED execution
    client.lambda_.invoke("record_pipeline_execution", execution_event(client, good, "SUCCEEDED", now))
    client.lambda_.invoke("record_pipeline_execution", execution_event(client, bad, "FAILED", now))
    # then each is a build and a deployment of the service, in the stage's environment
    items = client.http.get("/metrics?service=devops-metrics&environment=dev").json_body["items"]
    recorded = {(i["kind"], i["status"], i["attributes"]["execution_id"]) for i in items}
    assert recorded == {("deployment", "success", good), ("build", "succeeded", good),
                        ("deployment", "failure", bad), ("build", "failed", bad)}
    assert all(i["pipeline"] == PIPELINE for i in items)
    assert all("duration_seconds" in i for i in items if i["kind"] == "build")  # from the execution's start
    # and the summary counts them
    body = summary(client)
    assert body["deployment_frequency"]["count"] == 1
    assert body["change_failure_rate"] == {"value": 0.5, "unit": "ratio", "count": 2, "tier": "low"}


def test_a_redelivered_event_is_not_a_second_deployment(client, pipeline) -> None:
    execution = pipeline.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
    event = execution_event(client, execution, "SUCCEEDED", datetime.now(timezone.utc))
    for _ in range(3):  # EventBridge delivers at least once
        client.lambda_.invoke("record_pipeline_execution", event)
    assert summary(client)["deployment_frequency"]["count"] == 1


def test_an_unknown_execution_is_still_recorded_without_commit_or_duration(client, aws) -> None:
    client.lambda_.invoke("record_pipeline_execution",
                          execution_event(client, "not-in-codepipeline", "SUCCEEDED", datetime.now(timezone.utc)))
    items = client.http.get("/metrics?service=devops-metrics&environment=dev").json_body["items"]
    assert {i["kind"] for i in items} == {"build", "deployment"}
    assert not any("commit_sha" in i or "duration_seconds" in i for i in items)


def test_other_pipelines_and_states_are_ignored(client, aws) -> None:
    now = datetime.now(timezone.utc)
    client.lambda_.invoke("record_pipeline_execution",
                          execution_event(client, "x", "SUCCEEDED", now, pipeline="devops-metrics-prod"))
    client.lambda_.invoke("record_pipeline_execution", execution_event(client, "y", "STARTED", now))
    assert client.http.get("/metrics?environment=dev&kind=deployment").json_body["items"] == []


def test_commit_and_lead_time_come_from_the_source_revision() -> None:
    # given CodePipeline's and CodeCommit's answers, as their APIs shape them
    finished = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    codepipeline = clients.codepipeline(PRIMARY, "api", aws_access_key_id="x", aws_secret_access_key="x")
    codecommit = clients.codecommit(PRIMARY, "api", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(codepipeline) as cp, Stubber(codecommit) as cc:
        cp.add_response("list_pipeline_executions", {"pipelineExecutionSummaries": [{
            "pipelineExecutionId": "exec-1", "status": "Succeeded", "startTime": finished - timedelta(minutes=14),
            "sourceRevisions": [{"actionName": "Source", "revisionId": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                                 "revisionSummary": "Fix the summary", "revisionUrl": "https://example.com"}]}]})
        committed = f"{int(finished.timestamp()) - 3 * 3600} +0000"  # CodeCommit's "<epoch> <offset>"
        cc.add_response("get_commit", {"commit": {"commitId": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                                                  "committer": {"date": committed},
                                                  "treeId": "t", "parents": [], "message": "m"}})
        history = PipelineHistory(codepipeline, codecommit)
        facts = history.facts("devops-metrics-prod", "exec-1", "devops-metrics-prod")
    assert facts == ExecutionFacts(finished - timedelta(minutes=14), "9fceb02d0ae598e95dc970b74767f19372d61af8",
                                   finished - timedelta(hours=3))
    # when the events are built
    event = {"time": "2026-11-20T12:00:00Z",
             "detail": {"pipeline": "devops-metrics-prod", "execution-id": "exec-1", "state": "SUCCEEDED"}}
    build, deployment = delivery_events(event, facts, "devops-metrics", "prod")
    # then the build lasted 14 minutes and the change took 3 hours to reach production
    assert build["duration_seconds"] == 14 * 60
    assert deployment["commit_sha"].startswith("9fceb02")
    assert deployment["commit_timestamp"] == "2026-11-20T09:00:00.000000Z"  # the stored form (chalicelib.times)
