"""Event validation: what POST /metrics accepts and how it explains a refusal."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import constants as C
from chalicelib.errors import ValidationFailed
from chalicelib.models import content_hash, parse_events
from chalicelib.times import format_time as format_timestamp

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
DEPLOY = {"kind": "deployment", "service": "api", "status": "success"}


def fields_of(error: ValidationFailed) -> list[str]:
    return [d["field"] for d in error.details]


def test_a_single_event_gets_its_defaults() -> None:
    (event,) = parse_events(DEPLOY, NOW)
    assert event.environment == "production"
    assert event.timestamp is None and event.id is None and event.attributes == {}


def test_timestamps_are_normalised_to_utc() -> None:
    (event,) = parse_events({**DEPLOY, "timestamp": "2026-11-22T14:00:00+02:00"}, NOW)
    assert format_timestamp(event.timestamp) == "2026-11-22T12:00:00.000000Z"


@pytest.mark.parametrize(("patch", "field"), [
    ({"kind": "release"}, "kind"),
    ({"status": "ok"}, "status"),
    ({"service": ""}, "service"),
    ({"service": "a" * (C.MAX_SERVICE_LENGTH + 1)}, "service"),
    ({"service": "has space"}, "service"),
    ({"service": 42}, "service"),
    ({"timestamp": "2026-11-22T12:00:00"}, "timestamp"),  # no zone
    ({"timestamp": 1700000000}, "timestamp"),  # a number, not ISO-8601
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": format_timestamp(NOW + timedelta(days=2))}, "timestamp"),
    ({"commit_timestamp": format_timestamp(NOW + timedelta(hours=1)), "timestamp": format_timestamp(NOW)},
     "(body)"),
    ({"id": "has/slash"}, "id"),
    ({"attributes": {f"k{i}": "v" for i in range(C.MAX_ATTRIBUTES + 1)}}, "attributes"),
    ({"attributes": {"k": 1}}, "attributes.k"),
    ({"attributes": {"k": "v" * (C.MAX_ATTRIBUTE_VALUE_LENGTH + 1)}}, "attributes.k"),
    ({"surprise": True}, "surprise"),
])
def test_invalid_fields_are_named_in_the_details(patch: dict, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_events({**DEPLOY, **patch}, NOW)
    assert field in fields_of(caught.value)
    assert caught.value.status == 400


@pytest.mark.parametrize("payload", [
    {"kind": "gauge", "service": "api", "name": "x", "value": "1"},  # a string is not a number
    {"kind": "gauge", "service": "api", "name": "x", "value": True},
    {"kind": "build", "service": "api", "status": "failed", "duration_seconds": -1},
    {"kind": "incident", "service": "api", "opened_at": "2026-11-02T00:00:00Z", "resolved_at": "2026-11-01T00:00:00Z"},
    {"kind": "incident", "service": "api"},  # opened_at is required
    {"kind": "gauge", "service": "api", "name": "x", "value": 1, "unit": "Parsecs"},
])
def test_kind_specific_rules(payload: dict) -> None:
    with pytest.raises(ValidationFailed):
        parse_events(payload, NOW)


def test_batch_errors_carry_the_event_index() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_events({"events": [DEPLOY, {**DEPLOY, "status": "nope"}]}, NOW)
    assert fields_of(caught.value) == ["events[1].status"]


@pytest.mark.parametrize("payload", [
    {"events": []}, {"events": [DEPLOY] * (C.MAX_EVENTS_PER_REQUEST + 1)}, {"events": DEPLOY},
    {"events": [DEPLOY], "extra": 1}, [DEPLOY], "text", None,
])
def test_batch_shape_is_enforced(payload: object) -> None:
    with pytest.raises(ValidationFailed):
        parse_events(payload, NOW)


def test_content_hash_ignores_notation_but_not_content() -> None:
    (a,) = parse_events({**DEPLOY, "id": "x", "timestamp": "2026-11-22T12:00:00Z"}, NOW)
    (b,) = parse_events({**DEPLOY, "id": "x", "timestamp": "2026-11-22T14:00:00+02:00",
                         "environment": "production"}, NOW)
    (c,) = parse_events({**DEPLOY, "id": "x", "timestamp": "2026-11-22T12:00:01Z"}, NOW)
    assert content_hash(a) == content_hash(b) != content_hash(c)


def test_a_defaulted_timestamp_does_not_make_a_retry_look_different() -> None:
    (first,) = parse_events({**DEPLOY, "id": "x"}, NOW)
    (retry,) = parse_events({**DEPLOY, "id": "x"}, NOW + timedelta(minutes=5))
    assert content_hash(first) == content_hash(retry)
