"""PagerDuty's Webhooks v3 (event.event_type), mapped. Field names are PagerDuty's;
docs/webhooks.md#pagerduty.

Each delivery updates the one incident of its PagerDuty incident (event.data.id). The revision is
stamped with event.occurred_at, so deliveries apply in the order they happened: a late
incident.triggered never reopens an incident that was resolved after it.
"""
from __future__ import annotations

from typing import Any

from chalicelib.sources import Draft, Mapped, attributes, fit_name, get, ignore, text_id, time_at

_INCIDENT_EVENTS = ("incident.triggered", "incident.acknowledged", "incident.resolved", "incident.reopened")


def event_type(payload: dict[str, Any]) -> str:
    return str(get(payload, "event.event_type"))


def delivery_id(payload: dict[str, Any]) -> str | None:
    value = get(payload, "event.id", (str, int), required=False)
    return str(value) if value is not None else None


def map_delivery(payload: dict[str, Any]) -> Mapped:
    kind = event_type(payload)
    if kind not in _INCIDENT_EVENTS:
        return ignore(kind)
    occurred = time_at(payload, "event.occurred_at")
    opened = time_at(payload, "event.data.created_at", required=False) or occurred
    event: dict[str, Any] = {
        "kind": "incident", "id": text_id(payload, "event.data.id"),
        "service": fit_name(get(payload, "event.data.service.summary"), "event.data.service.summary"),
        "opened_at": opened, "updated_at": occurred,
        "severity": get(payload, "event.data.urgency", required=False),
        "attributes": attributes(source="pagerduty", number=str(get(payload, "event.data.number", int,
                                                                    required=False) or "") or None,
                                 title=get(payload, "event.data.title", required=False),
                                 url=get(payload, "event.data.html_url", required=False)),
    }
    keep: tuple[str, ...] = ()
    if kind == "incident.acknowledged":
        event["acknowledged_at"] = occurred
    elif kind == "incident.resolved":
        event["resolved_at"] = occurred
        keep = ("acknowledged_at",)  # the resolve says nothing of the acknowledgement before it
    return Mapped(kind, (Draft(event, keep=keep),))
