"""What each route does, apart from Chalice: plain inputs in, (status, body) out, ApiError on a 4xx."""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.errors import BodyTooLarge, InvalidJson, UnsupportedMediaType, ValidationFailed
from chalicelib.metrics import emit  # loaded at cold start anyway, by chalicelib.http
from chalicelib.models import Environment, Name, Timestamp, format_timestamp, parse_events
from chalicelib.role import require_active
from chalicelib.store import EventQuery, PutResult

if TYPE_CHECKING:
    from chalicelib.delivery import PipelineHistory

# Every function of the app imports this module on a cold start, and a POST is the common first
# request: the modules only other handlers need are imported inside those handlers.

Reply = tuple[int, dict[str, Any]]


def post_metrics(ctx: Context, headers: Mapping[str, str], raw_body: bytes | str, now: datetime) -> Reply:
    _require_json(headers)
    if isinstance(raw_body, str):
        raw_body = raw_body.encode()
    if len(raw_body) > C.MAX_BODY_BYTES:
        raise BodyTooLarge(f"The body is {len(raw_body)} bytes; the limit is {C.MAX_BODY_BYTES}.")
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):
        raise InvalidJson("The body is not valid JSON.") from None
    events = parse_events(payload, now)
    require_active(ctx.role())
    result = ctx.store.put_events(events, now)
    _count_ingested(ctx, [event.kind for event in events])
    return 201, {"ids": result.ids, "created": result.created, "duplicates": result.duplicates}


def _count_ingested(ctx: Context, kinds: list[str]) -> None:
    for kind in sorted(set(kinds)):
        emit({"EventsIngested": (kinds.count(kind), "Count")}, {"Stage": ctx.settings.stage, "Kind": kind})


def _require_json(headers: Mapping[str, str]) -> None:
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not JSON; send 'Content-Type: application/json'."
        )


class _Params(BaseModel):
    # Built on first use, not at import: a cold start that serves a POST never needs them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ListParams(_Params):
    service: Name | None = None
    kind: Literal["deployment", "build", "incident", "gauge"] | None = None
    environment: Environment = C.DEFAULT_ENVIRONMENT
    since: Timestamp | None = None
    until: Timestamp | None = None
    limit: int = Field(default=C.DEFAULT_PAGE_SIZE, ge=1, le=C.MAX_PAGE_SIZE)
    next_token: str | None = Field(default=None, max_length=4096)


class SummaryParams(_Params):
    service: Name
    environment: Environment = C.DEFAULT_ENVIRONMENT
    days: int = Field(default=C.DEFAULT_SUMMARY_DAYS, ge=1, le=C.MAX_SUMMARY_DAYS)


class HealthParams(_Params):
    deep: Literal["true", "false"] = "false"


def _params(model: type[_Params], query: Mapping[str, str] | None) -> Any:
    try:
        return model.model_validate(dict(query or {}), context={})
    except ValidationError as error:
        details = [{"field": ".".join(str(p) for p in err["loc"]) or "(query)",
                    "message": err["msg"].removeprefix("Value error, "), "type": err["type"]}
                   for err in error.errors(include_input=False, include_url=False)]
        raise ValidationFailed("Invalid query parameters.", details) from None


def list_metrics(ctx: Context, query: Mapping[str, str] | None) -> Reply:
    params: ListParams = _params(ListParams, query)
    if params.since and params.until and params.since > params.until:
        raise ValidationFailed("'since' is after 'until'.",
                               [{"field": "since", "message": "must not be after until", "type": "range"}])
    event_query = EventQuery(
        environment=params.environment,
        kinds=(params.kind,) if params.kind else C.KINDS,
        service=params.service,
        since=params.since,
        until=params.until,
        limit=params.limit,
    )
    from chalicelib.pagination import decode_token, encode_token

    cursors = decode_token(params.next_token, event_query)
    items, next_cursors = ctx.store.list_events(event_query, cursors)
    return 200, {"items": items, "next_token": encode_token(event_query, next_cursors)}


def metrics_summary(ctx: Context, query: Mapping[str, str] | None, now: datetime) -> Reply:
    params: SummaryParams = _params(SummaryParams, query)
    return 200, four_keys(ctx, params.service, params.environment, params.days, now)


def four_keys(ctx: Context, service: str, environment: str, days: int, now: datetime) -> dict[str, Any]:
    start = now - timedelta(days=days)
    deployments = list(ctx.store.events_between(environment, service, "deployment", start, now))
    incident_start = start - timedelta(days=C.INCIDENT_LOOKBACK_DAYS)
    incidents = list(ctx.store.events_between(environment, service, "incident", incident_start, now))
    body: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "days": days,
        "window": {"start": format_timestamp(start), "end": format_timestamp(now)},
    }
    from chalicelib import dora

    body.update(dora.summarize(deployments, incidents, start, now, days))
    return body


# The four keys as CloudWatch metrics, per service (GET /metrics/summary's numbers, DORA_PUBLISH_DAYS).
DORA_METRICS = {"deployment_frequency": "DeploymentsPerDay", "lead_time_for_changes": "LeadTimeHours",
                "change_failure_rate": "ChangeFailureRate", "time_to_restore": "TimeToRestoreHours"}


def publish_dora(ctx: Context, now: datetime) -> dict[str, Any]:
    """Emit the four keys of every service that deployed in the window (active region only: the
    standby's copy would publish the same numbers twice)."""
    if not ctx.role().is_active:
        return {"services": 0, "reason": "standby"}

    published = 0
    for environment in ctx.settings.dora_environments:
        start = now - timedelta(days=C.DORA_PUBLISH_DAYS)
        for service in ctx.store.services_with("deployment", environment, start, now):
            keys = four_keys(ctx, service, environment, C.DORA_PUBLISH_DAYS, now)
            measured = {metric: (keys[key]["value"], "None") for key, metric in DORA_METRICS.items()
                        if keys[key]["value"] is not None}  # an empty input has no value, not 0
            if measured:
                emit(measured, {"Stage": ctx.settings.stage, "Service": service, "Environment": environment})
            published += 1
    return {"services": published, "environments": list(ctx.settings.dora_environments)}


def health(ctx: Context, query: Mapping[str, str] | None, now: datetime) -> Reply:
    params: HealthParams = _params(HealthParams, query)
    from chalicelib.health import check_health

    report = check_health(ctx, now, deep=params.deep == "true")
    return report.status_code, report.body


def health_check(ctx: Context, probes: Any, now: datetime) -> dict[str, Any]:
    """The scheduled health check (chalicelib.health_check)."""
    from chalicelib.health_check import run_health_check

    return run_health_check(ctx, probes, now).as_dict()


def record_pipeline_execution(ctx: Context, event: dict[str, Any], history: PipelineHistory,
                              now: datetime) -> PutResult | None:
    """A finished execution of this stage's pipeline -> a build and a deployment event; None for
    another stage's pipeline."""
    from chalicelib import delivery

    if not delivery.is_own_pipeline(event, ctx.settings.stage):
        return None
    pipeline = event["detail"]["pipeline"]
    facts = history.facts(pipeline, event["detail"]["execution-id"], repository=pipeline)
    raw = delivery.delivery_events(event, facts, C.DELIVERY_SERVICE, ctx.settings.stage)
    events = parse_events({"events": raw}, now)
    # Counted before the write, so the pipeline-failed alarm sees a failure even when recording it
    # fails (a Lambda retry after a successful write counts it twice).
    emit({"PipelineExecutions": (1, "Count")}, {"Stage": ctx.settings.stage, "State": event["detail"]["state"]})
    require_active(ctx.role())
    return ctx.store.put_events(events, now)


def replicate_stream(ctx: Context, records: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The active region's stream -> the peer's table. A failure raises, so Lambda retries the batch."""
    from chalicelib import replication

    if ctx.peer is None or not ctx.role().is_active:
        return {"replicated": 0, "reason": "standby"}  # this region's changes are replicas

    changes = replication.changes_from_stream(records)
    result = replication.Replicator(ctx.peer, ctx.settings.region).apply(changes, now)
    lag = replication.stream_lag_seconds(records, now)
    measured: dict[str, tuple[float, str]] = {"ItemsReplicated": (result.applied, "Count")}
    if lag is not None:
        measured["ReplicationLagSeconds"] = (lag, "Seconds")
    emit(measured, {"Stage": ctx.settings.stage, "SourceRegion": ctx.settings.region, "Path": "stream"})
    return {"records": len(records), "keys": len(changes), "replicated": result.applied,
            "already_current": result.skipped_older, "lag_seconds": lag}


def sweep(ctx: Context, now: datetime, full: bool = False) -> dict[str, Any]:
    """The scheduled sweep: copy to the peer what the stream missed (active region only)."""
    from chalicelib import replication

    if ctx.peer is None or not ctx.role().is_active:
        return {"copied": 0, "reason": "standby"}

    replicator = replication.Replicator(ctx.peer, ctx.settings.region)
    report = replication.ReplicationSweep(ctx.store, replicator).run(now, full=full)
    emit({"ItemsReplicated": (report.copied, "Count"), "SweepChangesFound": (report.changes_found, "Count")},
         {"Stage": ctx.settings.stage, "SourceRegion": ctx.settings.region, "Path": "sweep"})
    return report.as_dict()
