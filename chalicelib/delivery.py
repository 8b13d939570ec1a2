"""The pipeline measures itself: CodePipeline execution results become deployment and build events.

An EventBridge rule (declared on the handler in app.py) delivers "CodePipeline Pipeline Execution
State Change" events. A SUCCEEDED or FAILED execution of this stage's pipeline is recorded as one
build event and one deployment event, keyed by the execution id so that a redelivered event is a
duplicate, not a second deployment.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import constants as C

log = logging.getLogger("devops_metrics")

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

    def __init__(self, codepipeline: Any, codecommit: Any) -> None:
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
        except (ClientError, BotoCoreError) as error:
            log.warning("pipeline execution lookup failed: %s", error)
        return None

    def _commit_time(self, repository: str, commit_sha: str) -> datetime | None:
        try:
            commit = self._codecommit.get_commit(repositoryName=repository, commitId=commit_sha)["commit"]
            seconds = commit["committer"]["date"].split()[0]  # "<epoch seconds> <zone offset>"
            return datetime.fromtimestamp(int(seconds), tz=timezone.utc)
        except (ClientError, BotoCoreError, KeyError, ValueError, IndexError) as error:
            log.warning("commit lookup failed: %s", error)
            return None


def delivery_events(event: dict[str, Any], facts: ExecutionFacts, service: str, environment: str) -> list[dict]:
    """The build and deployment events for one finished pipeline execution (raw API bodies)."""
    detail = event["detail"]
    state = detail["state"]
    execution_id = detail["execution-id"]
    finished = _parse_time(event["time"])
    common = {"service": service, "environment": environment, "timestamp": _iso(finished),
              "pipeline": detail["pipeline"], "attributes": {"execution_id": execution_id, "source": "codepipeline"}}
    build: dict[str, Any] = {**common, "kind": "build", "id": f"codepipeline-build-{execution_id}",
                             "status": _BUILD_STATUS[state]}
    if facts.started_at is not None:
        build["duration_seconds"] = max(0.0, (finished - _aware(facts.started_at)).total_seconds())
    deployment: dict[str, Any] = {**common, "kind": "deployment", "id": f"codepipeline-deployment-{execution_id}",
                                  "status": _DEPLOYMENT_STATUS[state]}
    if facts.commit_sha:
        deployment["commit_sha"] = facts.commit_sha
    if facts.committed_at is not None and facts.committed_at <= finished:
        deployment["commit_timestamp"] = _iso(facts.committed_at)
    return [build, deployment]


def is_own_pipeline(event: dict[str, Any], stage: str) -> bool:
    detail = event.get("detail") or {}
    return detail.get("pipeline") == C.PIPELINE_NAME_PREFIX + stage and detail.get("state") in _DEPLOYMENT_STATUS


def _parse_time(value: str) -> datetime:
    return _aware(datetime.fromisoformat(value))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
