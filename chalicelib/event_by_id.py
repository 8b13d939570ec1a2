"""GET and DELETE /metrics/{kind}/{id}, apart from Chalice: one event, named by its identity
(environment, service, kind, id), read or deleted."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.events import Identity
from chalicelib.http import Reply
from chalicelib.models import Environment, Name
from chalicelib.params import QueryParams, parse_query
from chalicelib.role import require_active

_ID = re.compile(C.ID_PATTERN)


class IdentityParams(QueryParams):
    service: Name
    environment: Environment = C.DEFAULT_ENVIRONMENT


def get_event(ctx: Context, kind: str, event_id: str, query: Mapping[str, str] | None) -> Reply:
    identity = _identity(kind, event_id, query)
    event = ctx.events.get_event(identity)
    if event is None:
        raise NotFound(_missing(identity))
    return 200, event


def delete_event(ctx: Context, kind: str, event_id: str, query: Mapping[str, str] | None, now: datetime) -> Reply:
    identity = _identity(kind, event_id, query)
    require_active(ctx.role())
    if not ctx.events.delete_event(identity, now):
        raise NotFound(_missing(identity))
    return 204, {}


def _identity(kind: str, event_id: str, query: Mapping[str, str] | None) -> Identity:
    if kind not in C.KINDS:
        raise ValidationFailed(f"{kind[:40]!r} is not an event kind.",
                               [{"field": "kind", "message": f"must be one of: {', '.join(C.KINDS)}",
                                 "type": "literal_error"}])
    if not (0 < len(event_id) <= C.MAX_ID_LENGTH and _ID.match(event_id)):
        raise ValidationFailed("The id is not an event id.",
                               [{"field": "id", "message": f"1 to {C.MAX_ID_LENGTH} characters of [A-Za-z0-9._:-]",
                                 "type": "string_pattern_mismatch"}])
    params = parse_query(IdentityParams, query)
    return Identity(params.environment, params.service, kind, event_id)


def _missing(identity: Identity) -> str:
    return (f"No {identity.kind} {identity.event_id!r} of service {identity.service!r} in environment "
            f"{identity.environment!r}.")
