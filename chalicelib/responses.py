"""What each route answers, as pydantic models: the response half of the OpenAPI document
(chalicelib.openapi). The handlers build these bodies as plain dicts; the schemathesis run and the
tests hold every answer to these models, so a body that drifts from its schema fails a test."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

from chalicelib.models import BuildEvent, DeploymentEvent, EventId, GaugeEvent, IncidentEvent, Timestamp

StoredTime = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
                                  examples=["2026-11-22T10:00:00.000000Z"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = None
    message: str | None = None
    type: str | None = None


class ErrorInfo(_Body):
    code: str = Field(examples=["validation_error"])
    message: str
    details: list[ErrorDetail]


class ErrorBody(_Body):
    """Every 4xx and 5xx, whatever the route."""

    error: ErrorInfo


class PostResult(_Body):
    """POST /metrics: the events' ids in request order, and what each revision came to."""

    ids: list[str]
    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    stale: int = Field(ge=0)


class WebhookResult(PostResult):
    """POST /webhooks/{source}: a delivery recorded (or recognised as one seen before)."""

    delivery: str = Field(description="the source's id of the delivery")
    event: str = Field(description="what the source calls it, e.g. deployment_status or incident.resolved")
    replayed: bool = Field(description="true when this delivery was recorded before: nothing changed")
    commits: int = Field(ge=0, description="commits of a push (or a build's head commit) kept for lead time")


class WebhookIgnored(_Body):
    """POST /webhooks/{source}: a delivery of a type the service does not record (202, so the source
    neither retries it nor disables the hook)."""

    ignored: str = Field(examples=["star", "deployment_status.inactive"])


class _Stored(BaseModel):
    """What a stored event carries besides what was posted."""

    id: EventId
    timestamp: Timestamp
    received_at: StoredTime = Field(description="when this revision arrived")
    first_received_at: StoredTime = Field(description="when the event's first revision arrived")
    revision: int = Field(ge=1, description="how many revisions of the event were applied")


class StoredDeployment(_Stored, DeploymentEvent):  # type: ignore[misc]  # _Stored narrows id and timestamp
    pass


class StoredBuild(_Stored, BuildEvent):  # type: ignore[misc]  # _Stored narrows id and timestamp
    pass


class StoredIncident(_Stored, IncidentEvent):  # type: ignore[misc]  # _Stored narrows id and timestamp
    pass


class StoredGauge(_Stored, GaugeEvent):  # type: ignore[misc]  # _Stored narrows id and timestamp
    pass


class StoredEvent(RootModel[Annotated[Union[StoredDeployment, StoredBuild, StoredIncident, StoredGauge],
                                      Field(discriminator="kind")]]):
    """GET /metrics/{kind}/{id}: one event as stored, at its current revision."""


class EventPage(_Body):
    """GET /metrics: one page of events, newest first."""

    items: list[StoredEvent]
    next_token: str | None = Field(description="pass it back, with the same parameters, for the next page")


class EventIds(_Body):
    ids: list[str] = Field(max_length=100)
    truncated: bool


class KeyMetric(_Body):
    value: float | None
    unit: str
    count: int = Field(ge=0)
    tier: Literal["elite", "high", "medium", "low"] | None
    events: EventIds | None = Field(default=None, description="explain=true: the events behind count")
    matching: EventIds | None = Field(default=None,
                                      description="explain=true, a ratio: the events behind its numerator")


class BenchmarkSource(_Body):
    name: Literal["2021", "2023", "2024"]
    report: str
    where: str
    url: str


class Window(_Body):
    start: StoredTime
    end: StoredTime


class Metrics(_Body):
    """DORA's five metrics and time to restore, as a summary or a trend bucket gives them."""

    deployment_frequency: KeyMetric
    change_lead_time: KeyMetric
    change_fail_rate: KeyMetric
    failed_deployment_recovery_time: KeyMetric
    deployment_rework_rate: KeyMetric
    time_to_restore: KeyMetric


class Summary(Metrics):
    """GET /metrics/summary: DORA's five metrics and time to restore, of one service or team."""

    service: str | None = Field(default=None, description="with service=")
    team: str | None = Field(default=None, description="with team=")
    services: list[str] | None = Field(default=None, description="with team=: the team's services")
    environment: str
    days: int
    window: Window
    lead_time_for_changes: KeyMetric = Field(description="deprecated: change_lead_time, under its 2021 name")
    change_failure_rate: KeyMetric = Field(description="deprecated: change_fail_rate, under its 2021 name")
    benchmark: BenchmarkSource


class TrendBucket(Metrics):
    start: StoredTime
    end: StoredTime = Field(description="the next bucket's start; for the current bucket, now")
    partial: bool = Field(description="the current week or month, still running")


class Trends(_Body):
    """GET /metrics/trends: the metrics per ISO week or calendar month (UTC), oldest first."""

    service: str | None = None
    team: str | None = None
    services: list[str] | None = None
    environment: str
    bucket: Literal["week", "month"]
    count: int
    benchmark: BenchmarkSource
    buckets: list[TrendBucket]


class Team(_Body):
    """PUT, GET /teams/{team}: a team and its services."""

    team: str
    services: list[str]
    description: str | None = None
    updated_at: StoredTime


class TeamList(_Body):
    """GET /teams."""

    teams: list[Team]


class Check(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "fail", "unknown", "stale"]
    detail: str | None = None


class Checks(_Body):
    table: Check
    replication: Check
    last_health_check: Check


class Health(_Body):
    """GET /health (and, with checks, ?deep=true)."""

    status: Literal["ok", "unhealthy"]
    region: str
    role: Literal["active", "standby"] | None
    version: str
    checks: Checks | None = None


class OpenApiDocument(RootModel[dict[str, Any]]):
    """GET /openapi.json: this document."""
