"""CDEvents (context.type), mapped. Field names are the CDEvents specification's;
docs/webhooks.md#cdevents. The body is the CDEvent itself, or a structured CloudEvent whose data is.

  dev.cdevents.service.deployed.*     a successful deployment of subject.id, id context.id
  dev.cdevents.incident.detected.*    an incident, id subject.id, opened at context.timestamp
  dev.cdevents.incident.resolved.*    the same incident, resolved at context.timestamp
"""
from __future__ import annotations

from typing import Any

from chalicelib import constants as C
from chalicelib.sources import Draft, Mapped, attributes, fit_name, get, ignore, text_id, time_at

_PREFIX = "dev.cdevents."


def _event(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    return data if "context" not in payload and isinstance(data, dict) else payload


def event_type(payload: dict[str, Any]) -> str:
    return str(get(_event(payload), "context.type"))


def delivery_id(payload: dict[str, Any]) -> str | None:
    """context.id, which CloudEvents makes unique per context.source: both name the delivery."""
    cdevent = _event(payload)
    value = get(cdevent, "context.id", (str, int), required=False)
    origin = get(cdevent, "context.source", str, required=False)
    return None if value is None else f"{origin}/{value}" if origin else str(value)


def _subject_type(kind: str) -> str:
    """"dev.cdevents.service.deployed.0.2.0" -> "service.deployed"."""
    parts = kind.removeprefix(_PREFIX).split(".")
    return ".".join(parts[:2]) if kind.startswith(_PREFIX) else kind


def map_delivery(payload: dict[str, Any]) -> Mapped:
    cdevent = _event(payload)
    kind = event_type(payload)
    subject = _subject_type(kind)
    at = time_at(cdevent, "context.timestamp")
    environment = get(cdevent, "subject.content.environment.id", required=False)
    common: dict[str, Any] = {
        "environment": fit_name(environment, "subject.content.environment.id", C.MAX_ENVIRONMENT_LENGTH)
        if environment else None,
        "updated_at": at,
    }
    if subject == "service.deployed":
        event = {**common, "kind": "deployment", "id": text_id(cdevent, "context.id"),
                 "service": fit_name(str(get(cdevent, "subject.id")).rsplit("/", 1)[-1], "subject.id"),
                 "status": "success", "timestamp": at,
                 "attributes": attributes(source="cdevents", artifact=get(cdevent, "subject.content.artifactId",
                                                                           required=False),
                                          origin=get(cdevent, "context.source", required=False))}
        return Mapped(kind, (Draft(event),))
    if subject in ("incident.detected", "incident.resolved"):
        service = get(cdevent, "subject.content.service.id", required=False)
        event = {**common, "kind": "incident", "id": text_id(cdevent, "subject.id"),
                 "service": fit_name(service.rsplit("/", 1)[-1], "subject.content.service.id") if service else None,
                 "opened_at": at,
                 "attributes": attributes(source="cdevents",
                                          description=get(cdevent, "subject.content.description", required=False),
                                          origin=get(cdevent, "context.source", required=False))}
        if subject == "incident.resolved":
            # The resolution does not say when the incident opened: the stored detection does.
            return Mapped(kind, (Draft({**event, "resolved_at": at}, keep=("opened_at", "acknowledged_at")),))
        return Mapped(kind, (Draft(event),))
    return ignore(kind)
