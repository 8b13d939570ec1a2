"""Request models: what a client may send, with every size bounded and unknown fields rejected."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chalicelib import constants as C
from chalicelib.errors import ValidationFailed


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 string with a zone -> aware UTC datetime. Numbers and naive times are refused."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO-8601 timestamp, e.g. 2026-11-01T12:00:00Z") from None
    else:
        raise ValueError("must be an ISO-8601 timestamp string, e.g. 2026-11-01T12:00:00Z")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must include a time zone, e.g. 2026-11-01T12:00:00Z")
    parsed = parsed.astimezone(timezone.utc)
    if parsed.year < 1970:
        raise ValueError("must not be before 1970")
    return parsed


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
Name = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=C.MAX_SERVICE_LENGTH, pattern=C.NAME_PATTERN)
]
Environment = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=C.MAX_ENVIRONMENT_LENGTH, pattern=C.NAME_PATTERN)
]
EventId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=C.MAX_ID_LENGTH, pattern=C.ID_PATTERN)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=C.MAX_TEXT_LENGTH)]
AttributeKey = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=C.MAX_ATTRIBUTE_KEY_LENGTH)]
AttributeValue = Annotated[str, StringConstraints(strict=True, max_length=C.MAX_ATTRIBUTE_VALUE_LENGTH)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Sha = Annotated[str, StringConstraints(strict=True, pattern=C.SHA_PATTERN)]

CloudWatchUnit = Literal[
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
]  # fmt: skip


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: Name
    timestamp: Timestamp | None = None
    environment: Environment = C.DEFAULT_ENVIRONMENT
    id: EventId | None = None
    # When the source changed the event: of two revisions of one event, the later one wins. Without
    # it, the time the service received the revision counts (chalicelib.revisions).
    updated_at: Timestamp | None = None
    attributes: dict[AttributeKey, AttributeValue] = Field(default_factory=dict, max_length=C.MAX_ATTRIBUTES)

    @field_validator("timestamp", "updated_at", "commit_timestamp", "opened_at", "acknowledged_at", "resolved_at",
                     check_fields=False)
    @classmethod
    def _not_in_future(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value > _now(info) + timedelta(seconds=C.MAX_FUTURE_SKEW_SECONDS):
            raise ValueError("must not be more than 24 hours in the future")
        return value


def _now(info: ValidationInfo) -> datetime:
    now: datetime = (info.context or {}).get("now") or datetime.now(timezone.utc)
    return now


class Commit(BaseModel):
    """One change a deployment shipped: its lead time runs from `timestamp` to the deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha: Sha
    timestamp: Timestamp


class DeploymentEvent(EventBase):
    kind: Literal["deployment"]
    # in_progress: started, not finished; only finished deployments count in any metric.
    status: Literal["in_progress", "success", "failure", "rolled_back"]
    commits: list[Commit] | None = Field(default=None, min_length=1, max_length=C.MAX_COMMITS)
    commit_sha: Sha | None = None  # with commit_timestamp: a one-commit list, as before `commits`
    commit_timestamp: Timestamp | None = None
    pipeline: Text | None = None
    # Rework: a deployment that was not planned but made to fix something in production.
    planned: Annotated[bool, Field(strict=True)] | None = None
    remediates: EventId | None = None  # the id of the incident it remediates (unplanned, then)

    @model_validator(mode="after")
    def _committed_before_deployed(self, info: ValidationInfo) -> DeploymentEvent:
        if self.commits is not None and (self.commit_sha is not None or self.commit_timestamp is not None):
            raise ValueError("send either commits or commit_sha and commit_timestamp, not both")
        deployed = self.timestamp or _now(info)
        if self.commit_timestamp is not None and self.commit_timestamp > deployed:
            raise ValueError("commit_timestamp must not be after the deployment's timestamp")
        late = [c.sha for c in self.commits or () if c.timestamp > deployed]
        if late:
            raise ValueError(f"commits must not be after the deployment's timestamp: {', '.join(late[:5])}")
        return self


class BuildEvent(EventBase):
    kind: Literal["build"]
    status: Literal["succeeded", "failed"]
    duration_seconds: Annotated[Number, Field(ge=0, le=C.MAX_BUILD_DURATION_SECONDS)] | None = None
    pipeline: Text | None = None


class IncidentEvent(EventBase):
    kind: Literal["incident"]
    # Its lifecycle: opened, maybe acknowledged, resolved; a newer revision without resolved_at reopens it.
    opened_at: Timestamp
    acknowledged_at: Timestamp | None = None
    resolved_at: Timestamp | None = None
    severity: Text | None = None
    deployment_id: EventId | None = None

    @model_validator(mode="after")
    def _in_lifecycle_order(self) -> IncidentEvent:
        if self.acknowledged_at is not None and self.acknowledged_at < self.opened_at:
            raise ValueError("acknowledged_at must not be before opened_at")
        if self.resolved_at is not None and self.resolved_at < self.opened_at:
            raise ValueError("resolved_at must not be before opened_at")
        return self


class GaugeEvent(EventBase):
    kind: Literal["gauge"]
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=C.MAX_GAUGE_NAME_LENGTH)]
    value: Number
    unit: CloudWatchUnit = "None"


Event = Annotated[
    Union[DeploymentEvent, BuildEvent, IncidentEvent, GaugeEvent], Field(discriminator="kind")
]
_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)

AnyEvent = Union[DeploymentEvent, BuildEvent, IncidentEvent, GaugeEvent]


# Fields added after release 0.1.0: left out of the hash while unset, so that an event posted
# before them hashes as it did then, and its repeat is still a duplicate.
_FIELDS_SINCE_0_1 = ("updated_at", "commits", "acknowledged_at", "planned", "remediates")


def content_hash(event: AnyEvent) -> str:
    """What makes two posts "the same content" for idempotency.

    The canonical JSON of the validated event: equal instants in different notations hash alike, and
    a timestamp the server defaulted to "now" is left out, so a retried post without one is a duplicate.
    `updated_at` is content: a source that sends the same state again with a later time has told us
    something newer.
    """
    exclude = {name for name in _FIELDS_SINCE_0_1 if getattr(event, name, None) is None}
    if "timestamp" not in event.model_fields_set:
        exclude.add("timestamp")
    data = event.model_dump(mode="json", exclude=exclude)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def error_details(error: ValidationError, prefix: str) -> list[dict[str, Any]]:
    details = []
    for err in error.errors(include_input=False, include_url=False):
        loc = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif part in ("deployment", "build", "incident", "gauge") and loc == prefix:
                continue  # the discriminator's own tag, not a field
            else:
                loc += f".{part}" if loc else str(part)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = f"{prefix}.kind" if prefix else "kind"
            message = f"must be one of: {', '.join(C.KINDS)}"
        details.append({"field": loc or "(body)", "message": message, "type": err["type"]})
    return details


def parse_events(payload: Any, now: datetime) -> list[AnyEvent]:
    """A decoded JSON body -> validated events. Raises ValidationFailed with per-field details."""
    if isinstance(payload, dict) and "events" in payload:
        extra = sorted(set(payload) - {"events"})
        if extra:
            raise ValidationFailed(
                "A batch body holds only 'events'.",
                [{"field": name, "message": "unknown field", "type": "extra_forbidden"} for name in extra],
            )
        raw_events = payload["events"]
        if not isinstance(raw_events, list) or not 1 <= len(raw_events) <= C.MAX_EVENTS_PER_REQUEST:
            raise ValidationFailed(
                f"'events' must be a list of 1 to {C.MAX_EVENTS_PER_REQUEST} events.",
                [{"field": "events", "message": "wrong type or length", "type": "events_length"}],
            )
        prefix = "events"
    elif isinstance(payload, dict):
        raw_events, prefix = [payload], ""
    else:
        raise ValidationFailed(
            "The body must be a JSON object: one event, or {\"events\": [...]}.",
            [{"field": "(body)", "message": "must be a JSON object", "type": "object_type"}],
        )
    events: list[AnyEvent] = []
    details: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        where = f"{prefix}[{index}]" if prefix else ""
        try:
            events.append(_EVENT_ADAPTER.validate_python(raw, context={"now": now}))
        except ValidationError as error:
            details.extend(error_details(error, where))
    if details:
        raise ValidationFailed("The request body is not a valid event.", details)
    return events
