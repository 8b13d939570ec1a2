"""The pipeline measures itself: CodePipeline execution results become deployment and build events.

An EventBridge rule (declared on the handler in app.py) delivers "CodePipeline Pipeline Execution
State Change" events. A SUCCEEDED or FAILED execution of this stage's pipeline is recorded as one
build event and one deployment event, keyed by the execution id so that a redelivered event is a
duplicate, not a second deployment.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from chalicelib import constants as C
from chalicelib import names
from chalicelib.aws_errors import AWS_ERRORS, first_line, reason
from chalicelib.logs import log_event
from chalicelib.times import format_time, parse_time

if TYPE_CHECKING:
    from mypy_boto3_codecommit import CodeCommitClient
    from mypy_boto3_codepipeline import CodePipelineClient

# A commit look-up fails as an AWS call does, or on an answer not shaped as documented.
_COMMIT_LOOKUP_FAILURES: tuple[type[Exception], ...] = (*AWS_ERRORS, KeyError, ValueError, IndexError)
_DEPLOYMENT_STATUS = {"SUCCEEDED": "success", "FAILED": "failure"}
_BUILD_STATUS = {"SUCCEEDED": "succeeded", "FAILED": "failed"}


@dataclass(frozen=True)
class ExecutionFacts:
    """What CodePipeline and CodeCommit know about one execution beyond the event itself."""

    started_at: datetime | None = None
    commit_sha: str | None = None
    committed_at: datetime | None = None


class PipelineHistory:
    """Read-only look-ups in CodePipeline and CodeCommit. A failed look-up yields fewer facts, never
    a lost event: the deployment is still recorded, without commit or duration."""

    def __init__(self, codepipeline: CodePipelineClient, codecommit: CodeCommitClient) -> None:
        self._codepipeline = codepipeline
        self._codecommit = codecommit

    def facts(self, pipeline: str, execution_id: str, repository: str) -> ExecutionFacts:
        summary = self._execution_summary(pipeline, execution_id)
        if summary is None:
            return ExecutionFacts()
        revisions = summary.get("sourceRevisions") or []
        commit_sha = revisions[0].get("revisionId") if revisions else None
        committed_at = self._commit_time(repository, commit_sha) if commit_sha else None
        return ExecutionFacts(summary.get("startTime"), commit_sha, committed_at)

    def _execution_summary(self, pipeline: str, execution_id: str) -> dict[str, Any] | None:
        try:
            pages = self._codepipeline.get_paginator("list_pipeline_executions").paginate(
                pipelineName=pipeline, PaginationConfig={"MaxItems": C.PIPELINE_EXECUTION_LOOKBACK})
            for page in pages:
                for summary in page.get("pipelineExecutionSummaries", []):
                    if summary.get("pipelineExecutionId") == execution_id:
                        return dict(summary)
        except AWS_ERRORS as error:
            log_event("WARNING", "pipeline execution lookup failed", pipeline=pipeline, error=reason(error),
                      detail=first_line(error))
        return None

    def _commit_time(self, repository: str, commit_sha: str) -> datetime | None:
        try:
            commit = self._codecommit.get_commit(repositoryName=repository, commitId=commit_sha)["commit"]
            seconds = commit["committer"]["date"].split()[0]  # "<epoch seconds> <zone offset>"
            return datetime.fromtimestamp(int(seconds), tz=timezone.utc)
        except _COMMIT_LOOKUP_FAILURES as error:
            log_event("WARNING", "commit lookup failed", repository=repository, error=reason(error),
                      detail=first_line(error))
            return None


def delivery_events(event: dict[str, Any], facts: ExecutionFacts, service: str,
                    environment: str) -> list[dict[str, Any]]:
    """The build and deployment events for one finished pipeline execution (raw API bodies)."""
    detail = event["detail"]
    state = detail["state"]
    execution_id = detail["execution-id"]
    finished = parse_time(event["time"])
    common = {"service": service, "environment": environment, "timestamp": format_time(finished),
              "pipeline": detail["pipeline"], "attributes": {"execution_id": execution_id, "source": "codepipeline"}}
    build: dict[str, Any] = {**common, "kind": "build", "id": f"codepipeline-build-{execution_id}",
                             "status": _BUILD_STATUS[state]}
    if facts.started_at is not None:
        build["duration_seconds"] = max(0.0, (finished - _aware(facts.started_at)).total_seconds())
    deployment: dict[str, Any] = {**common, "kind": "deployment", "id": f"codepipeline-deployment-{execution_id}",
                                  "status": _DEPLOYMENT_STATUS[state]}
    if facts.commit_sha and re.match(C.SHA_PATTERN, facts.commit_sha):  # a source's revision may be no commit
        deployment["commit_sha"] = facts.commit_sha
    if facts.committed_at is not None and facts.committed_at <= finished:
        deployment["commit_timestamp"] = format_time(facts.committed_at)
    return [build, deployment]


def is_own_pipeline(event: dict[str, Any], stage: str) -> bool:
    detail = event.get("detail") or {}
    return detail.get("pipeline") == names.pipeline(stage) and detail.get("state") in _DEPLOYMENT_STATUS


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
