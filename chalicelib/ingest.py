"""POST /metrics, apart from Chalice: the body's checks, validation, fencing, the write, the count.

A POST is the common first request of a cold start, so this module and what it imports are all
that request loads (app.py imports the other routes' modules when they are first used).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from chalicelib.context import Context
from chalicelib.errors import ValidationFailed
from chalicelib.http import Reply, read_json
from chalicelib.metrics import emit
from chalicelib.models import AnyEvent, parse_events
from chalicelib.role import require_active


def post_metrics(ctx: Context, headers: Mapping[str, str], raw_body: bytes | str, now: datetime) -> Reply:
    payload = read_json(headers, raw_body)
    events = parse_events(payload, now)
    create_only = _create_only(headers)
    require_active(ctx.role())
    result = ctx.events.put_events(events, now, create_only=create_only)
    count_ingested(ctx, events)
    return 201, result.body()


def _create_only(headers: Mapping[str, str]) -> bool:
    """If-None-Match: * asks to create only; any other value is refused rather than ignored."""
    value = headers.get("if-none-match")
    if value is None:
        return False
    if value.strip() != "*":
        raise ValidationFailed("If-None-Match takes only '*' (create only).",
                               [{"field": "If-None-Match", "message": "must be '*'", "type": "header_value"}])
    return True


def count_ingested(ctx: Context, events: list[AnyEvent]) -> None:
    kinds = [event.kind for event in events]
    for kind in sorted(set(kinds)):
        emit({"EventsIngested": (kinds.count(kind), "Count")}, {"Stage": ctx.settings.stage, "Kind": kind})
