"""GitHub's webhooks (X-GitHub-Event), mapped. Field names are GitHub's; docs/webhooks.md#github.

  deployment_status   a deployment: id deployment.id, lifecycle from deployment_status.state
  workflow_run        completed: a build, status from workflow_run.conclusion
  push                commits (commits[].id, commits[].timestamp), kept per repository
  issues              labelled "incident": an incident, opened and closed with the issue
"""
from __future__ import annotations

from typing import Any

from chalicelib import constants as C
from chalicelib.sources import (
    Draft,
    Mapped,
    Push,
    attributes,
    commit_refs,
    fit_name,
    get,
    head_commit,
    ignore,
    seconds_between,
    ships,
    text_id,
    time_at,
)

_DEPLOYMENT_STATES = {"pending": "in_progress", "queued": "in_progress", "in_progress": "in_progress",
                      "success": "success", "failure": "failure", "error": "failure"}
_BUILD_CONCLUSIONS = {"success": "succeeded", "failure": "failed", "timed_out": "failed",
                      "startup_failure": "failed"}


def map_delivery(event_type: str, payload: dict[str, Any]) -> Mapped:
    if event_type == "deployment_status":
        return _deployment_status(payload)
    if event_type == "workflow_run":
        return _workflow_run(payload)
    if event_type == "push":
        return _push(payload)
    if event_type == "issues":
        return _issue(payload)
    return ignore(event_type)


def repository(payload: dict[str, Any]) -> str:
    return str(get(payload, "repository.full_name"))


def _service(payload: dict[str, Any]) -> str:
    return fit_name(get(payload, "repository.name"), "repository.name")


def _deployment_status(payload: dict[str, Any]) -> Mapped:
    state = get(payload, "deployment_status.state")
    if state not in _DEPLOYMENT_STATES:
        return ignore("deployment_status", f"deployment_status.{state}")
    environment = (get(payload, "deployment_status.environment", required=False)
                   or get(payload, "deployment.environment"))
    sha = str(get(payload, "deployment.sha"))
    at = time_at(payload, "deployment_status.created_at")
    event = {
        "kind": "deployment", "id": text_id(payload, "deployment.id"), "service": _service(payload),
        "environment": fit_name(environment, "deployment.environment", C.MAX_ENVIRONMENT_LENGTH),
        "status": _DEPLOYMENT_STATES[state], "timestamp": at,
        "updated_at": time_at(payload, "deployment_status.updated_at", required=False) or at,
        "attributes": attributes(source="github", repository=repository(payload), sha=sha,
                                  ref=get(payload, "deployment.ref", required=False)),
    }
    return Mapped("deployment_status", (Draft(event, ships=ships(repository(payload), sha)),))


def _workflow_run(payload: dict[str, Any]) -> Mapped:
    action = get(payload, "action")
    if action != "completed":
        return ignore("workflow_run", f"workflow_run.{action}")
    conclusion = get(payload, "workflow_run.conclusion", required=False)
    if conclusion not in _BUILD_CONCLUSIONS:
        return ignore("workflow_run", f"workflow_run.completed.{conclusion}")
    run_id = text_id(payload, "workflow_run.id")
    attempt = get(payload, "workflow_run.run_attempt", int, required=False)
    started = (time_at(payload, "workflow_run.run_started_at", required=False)
               or time_at(payload, "workflow_run.created_at"))
    finished = time_at(payload, "workflow_run.updated_at")
    assert started is not None and finished is not None
    event = {
        "kind": "build", "id": f"{run_id}.{attempt}" if attempt else run_id, "service": _service(payload),
        "status": _BUILD_CONCLUSIONS[conclusion], "timestamp": finished,
        "duration_seconds": min(seconds_between(started, finished), float(C.MAX_BUILD_DURATION_SECONDS)),
        "pipeline": str(get(payload, "workflow_run.name"))[:C.MAX_TEXT_LENGTH] or None,
        "attributes": attributes(source="github", repository=repository(payload),
                                  sha=get(payload, "workflow_run.head_sha", required=False),
                                  branch=get(payload, "workflow_run.head_branch", required=False)),
    }
    head = head_commit(payload, "workflow_run.head_commit")
    return Mapped("workflow_run", (Draft(event),), heads=(Push(repository(payload), (head,)),) if head else ())


def _push(payload: dict[str, Any]) -> Mapped:
    commits = commit_refs(payload, "commits")
    return Mapped("push", pushes=(Push(repository(payload), commits),) if commits else ())


def _issue(payload: dict[str, Any]) -> Mapped:
    labels = get(payload, "issue.labels", list, required=False) or []
    names = {label["name"].lower() for label in labels
             if isinstance(label, dict) and isinstance(label.get("name"), str)}
    action = get(payload, "action")
    if C.INCIDENT_LABEL not in names:
        return ignore("issues", f"issues.{action} (no '{C.INCIDENT_LABEL}' label)")
    closed = get(payload, "issue.state") == "closed"
    event = {
        "kind": "incident", "id": text_id(payload, "issue.id"), "service": _service(payload),
        "opened_at": time_at(payload, "issue.created_at"),
        "resolved_at": time_at(payload, "issue.closed_at") if closed else None,
        "updated_at": time_at(payload, "issue.updated_at"),
        "attributes": attributes(source="github", repository=repository(payload),
                                  issue=str(get(payload, "issue.number", int)),
                                  title=get(payload, "issue.title", required=False)),
    }
    return Mapped("issues", (Draft(event),))

