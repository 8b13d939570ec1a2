"""GitLab's webhooks (X-Gitlab-Event), mapped. Field names are GitLab's; docs/webhooks.md#gitlab.

  Deployment Hook    a deployment: id deployment_id, lifecycle from status
  Pipeline Hook      a finished pipeline: a build, status from object_attributes.status
  Push Hook          commits (commits[].id, commits[].timestamp), kept per project
  Issue Hook, Work Item Hook   an issue or work item of type Incident: an incident
"""
from __future__ import annotations

import re
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

_DEPLOYMENT_STATUSES = {"created": "in_progress", "running": "in_progress", "success": "success",
                        "failed": "failure"}
_PIPELINE_STATUSES = {"success": "succeeded", "failed": "failed"}
_SHA = re.compile(r"[0-9a-f]{40,64}$")


def map_delivery(event_type: str, payload: dict[str, Any]) -> Mapped:
    if event_type == "Deployment Hook":
        return _deployment(payload)
    if event_type == "Pipeline Hook":
        return _pipeline(payload)
    if event_type in ("Push Hook", "Tag Push Hook"):
        return _push(event_type, payload)
    if event_type in ("Issue Hook", "Work Item Hook"):
        return _incident(event_type, payload)
    return ignore(event_type)


def project(payload: dict[str, Any]) -> str:
    return str(get(payload, "project.path_with_namespace"))


def _service(payload: dict[str, Any]) -> str:
    """The project's path (the last part of path_with_namespace), which already fits a service name."""
    return fit_name(project(payload).rsplit("/", 1)[-1], "project.path_with_namespace")


def _deployment(payload: dict[str, Any]) -> Mapped:
    status = get(payload, "status")
    if status not in _DEPLOYMENT_STATUSES:
        return ignore("Deployment Hook", f"Deployment Hook.{status}")
    commit_url = get(payload, "commit_url", required=False) or ""
    full = commit_url.rstrip("/").rsplit("/", 1)[-1].lower()
    sha = full if _SHA.match(full) else str(get(payload, "short_sha", required=False) or "").lower()
    at = time_at(payload, "status_changed_at")
    event = {
        "kind": "deployment", "id": text_id(payload, "deployment_id"), "service": _service(payload),
        "environment": fit_name(get(payload, "environment"), "environment", C.MAX_ENVIRONMENT_LENGTH),
        "status": _DEPLOYMENT_STATUSES[status], "timestamp": at, "updated_at": at,
        "attributes": attributes(source="gitlab", project=project(payload), sha=sha or None,
                                 job=get(payload, "deployable_url", required=False)),
    }
    return Mapped("Deployment Hook", (Draft(event, ships=ships(project(payload), sha)),))


def _pipeline(payload: dict[str, Any]) -> Mapped:
    status = get(payload, "object_attributes.status")
    if status not in _PIPELINE_STATUSES:
        return ignore("Pipeline Hook", f"Pipeline Hook.{status}")
    created = time_at(payload, "object_attributes.created_at")
    finished = time_at(payload, "object_attributes.finished_at")
    assert created is not None and finished is not None
    duration = get(payload, "object_attributes.duration", (int, float), required=False)
    event = {
        "kind": "build", "id": text_id(payload, "object_attributes.id"), "service": _service(payload),
        "status": _PIPELINE_STATUSES[status], "timestamp": finished,
        "duration_seconds": min(float(duration) if duration is not None else seconds_between(created, finished),
                                float(C.MAX_BUILD_DURATION_SECONDS)),
        "pipeline": str(get(payload, "object_attributes.name", required=False)
                        or get(payload, "object_attributes.ref"))[:C.MAX_TEXT_LENGTH],
        "attributes": attributes(source="gitlab", project=project(payload),
                                 sha=get(payload, "object_attributes.sha", required=False),
                                 ref=get(payload, "object_attributes.ref", required=False)),
    }
    head = head_commit(payload, "commit")
    return Mapped("Pipeline Hook", (Draft(event),), heads=(Push(project(payload), (head,)),) if head else ())


def _push(event_type: str, payload: dict[str, Any]) -> Mapped:
    commits = commit_refs(payload, "commits")
    return Mapped(event_type, pushes=(Push(project(payload), commits),) if commits else ())


def _incident(event_type: str, payload: dict[str, Any]) -> Mapped:
    kind = (get(payload, "object_attributes.type", required=False)
            or get(payload, "object_attributes.issue_type", required=False) or "")
    if kind.lower() != "incident":
        return ignore(event_type, f"{event_type} (type {kind or 'unknown'}, not Incident)")
    closed = get(payload, "object_attributes.state", required=False) == "closed"
    event = {
        "kind": "incident", "id": text_id(payload, "object_attributes.id"), "service": _service(payload),
        "opened_at": time_at(payload, "object_attributes.created_at"),
        "resolved_at": (time_at(payload, "object_attributes.closed_at", required=False)
                        or time_at(payload, "object_attributes.updated_at")) if closed else None,
        "updated_at": time_at(payload, "object_attributes.updated_at"),
        "severity": get(payload, "object_attributes.severity", required=False),
        "attributes": attributes(source="gitlab", project=project(payload),
                                 iid=str(get(payload, "object_attributes.iid", int, required=False) or "") or None,
                                 title=get(payload, "object_attributes.title", required=False)),
    }
    return Mapped(event_type, (Draft(event),))
