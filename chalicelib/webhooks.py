"""POST /webhooks/<source>, apart from Chalice: a delivery from GitHub, GitLab, PagerDuty or a
CDEvents producer, authenticated by its source's scheme and mapped to events (chalicelib.sources).

The order of the checks: the body's size (413), the signature against the secret's live versions
(401), the body (400), the region (503 on the standby), the delivery's id (a delivery seen before
changes nothing), the mapping (202 for a type the service does not record, 400 for a field it cannot
read). Then the pushes are kept, the deployments' commits found, the events written as revisions
(chalicelib.events), and the delivery remembered. Every step is idempotent, so a source that retries
a delivery whose answer it never got stores one event.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from pydantic import Field

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib import names
from chalicelib import webhook_auth as auth
from chalicelib.commit_log import CommitLog
from chalicelib.context import Context
from chalicelib.dynamodb import Item
from chalicelib.errors import BodyTooLarge, InvalidJson, NotFound, Unauthorized, Unavailable, UnsupportedMediaType
from chalicelib.events import Identity
from chalicelib.http import Reply
from chalicelib.ingest import count_ingested
from chalicelib.lifecycle import is_finished
from chalicelib.models import Environment, Name, parse_events
from chalicelib.params import QueryParams, parse_query
from chalicelib.role import require_active
from chalicelib.secrets import SecretCache
from chalicelib.sources import Draft, Mapped, MappingError, cdevents, github, gitlab, pagerduty


class WebhookQuery(QueryParams):
    """?service= and ?environment= on the webhook URL override what the mapping derives."""

    service: Name | None = Field(default=None, description="The service every event of this hook is recorded under.")
    environment: Environment | None = Field(default=None, description="The environment of every event of this hook.")


@dataclass(frozen=True)
class Source:
    """How one source names its deliveries, and maps them."""

    describe: Callable[[Mapping[str, str], Any], tuple[str, str | None]]  # (event type, delivery id)
    map: Callable[[str, Any], Mapped]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name.lower()) or headers.get(name) or None


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = _header(headers, name)
    if not value:
        raise MappingError(name, "header is missing")
    return value


SOURCES: dict[str, Source] = {
    "github": Source(lambda h, p: (_required_header(h, "X-GitHub-Event"), _header(h, "X-GitHub-Delivery")),
                     github.map_delivery),
    "gitlab": Source(lambda h, p: (_required_header(h, "X-Gitlab-Event"), _header(h, "X-Gitlab-Event-UUID")),
                     gitlab.map_delivery),
    "pagerduty": Source(lambda h, p: (pagerduty.event_type(p), pagerduty.delivery_id(p)),
                        lambda kind, p: pagerduty.map_delivery(p)),
    "cdevents": Source(lambda h, p: (cdevents.event_type(p), cdevents.delivery_id(p)),
                       lambda kind, p: cdevents.map_delivery(p)),
}


def receive(ctx: Context, secrets: SecretCache, source: str, headers: Mapping[str, str], raw_body: bytes | str,
            query: Mapping[str, str] | None, now: datetime) -> Reply:
    if source not in SOURCES:
        raise NotFound(f"No webhook source {source!r}; the sources are: {', '.join(C.WEBHOOK_SOURCES)}.")
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    if len(body) > C.MAX_WEBHOOK_BODY_BYTES:
        raise BodyTooLarge(f"The body is {len(body)} bytes; the limit for a webhook is {C.MAX_WEBHOOK_BODY_BYTES}.")
    authenticate(secrets, ctx.settings.stage, source, headers, body)
    overrides = parse_query(WebhookQuery, query)
    payload = _payload(source, headers, body)
    require_active(ctx.role())
    adapter = SOURCES[source]
    event_type, delivery = adapter.describe(headers, payload)
    mapped = adapter.map(event_type, payload)
    if mapped.ignored is not None:
        return 202, {"ignored": mapped.ignored}
    if delivery is None:
        raise MappingError("delivery id", "is missing: the source's delivery header or field names each delivery")
    key = _delivery_key(source, event_type, delivery)
    seen = ctx.table.get(key)
    if seen is not None:
        return 200, {"delivery": delivery, "event": event_type, "replayed": True,
                     "ids": json.loads(seen["ids"]["S"]), "created": 0, "updated": 0, "duplicates": 0,
                     "stale": 0, "commits": 0}
    answer = _apply(ctx, source, delivery, mapped, overrides, now)
    expires = int((now + timedelta(days=C.DELIVERY_TTL_DAYS)).timestamp())
    ctx.table.put({**key, "delivery": {"S": delivery}, "event": {"S": event_type},
                   "ids": {"S": json.dumps(answer["ids"])}, C.TTL_ATTRIBUTE: {"N": str(expires)}}
                  | K.change_stamp(key["pk"]["S"], key["sk"]["S"], now, ctx.table.region))
    return 200, {"delivery": delivery, "event": event_type, "replayed": False, **answer}


def authenticate(secrets: SecretCache, stage: str, source: str, headers: Mapping[str, str], body: bytes) -> None:
    """401 unless the delivery carries its source's proof for a live version of the secret. Neither
    the proof, the secret nor the body is ever put in an answer or a log line."""
    header = auth.SCHEMES[source].header
    proof = auth.proof(source, headers)
    if proof is None:
        raise Unauthorized(f"The delivery has no {header} header; configure the hook's secret "
                           f"({names.webhook_secret(stage, source)} in Secrets Manager).",
                           [{"field": header, "message": "missing", "type": "webhook_signature"}])
    name = names.webhook_secret(stage, source)
    if not secrets.versions(name):
        raise Unavailable(f"The secret {name} is not in this region's Secrets Manager; deploy the regional "
                          "stack (dr/regional.yaml) here, then python -m dr sync-secrets.")
    if not secrets.verify(name, lambda secret: auth.proves(source, proof, body, secret)):
        raise Unauthorized(f"The {header} header does not match the hook's secret "
                           f"({names.webhook_secret(stage, source)} in Secrets Manager).",
                           [{"field": header, "message": "does not match", "type": "webhook_signature"}])


def _payload(source: str, headers: Mapping[str, str], body: bytes) -> Any:
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if source == "github" and content_type == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", "replace"))  # GitHub's other content type: payload=<JSON>
        if "payload" not in form:
            raise MappingError("payload", "form field is missing")
        body = form["payload"][0].encode()
    elif content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type {content_type or '(none)'!r} is not JSON; "
                                   "set the hook's content type to application/json.")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidJson("The body is not valid JSON.",
                          [{"field": "(body)", "message": "is not valid JSON", "type": "json_invalid"}]) from None
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    return payload


def _apply(ctx: Context, source: str, delivery: str, mapped: Mapped, overrides: WebhookQuery,
           now: datetime) -> dict[str, Any]:
    """Validate every event first, so that a delivery answered 4xx leaves nothing behind; then keep
    the pushes, find each finished deployment's commits, and write the events."""
    drafts = [(draft, _event(ctx, draft, overrides)) for draft in mapped.drafts]
    if drafts:
        parse_events({"events": [event for _, event in drafts]}, now)
    log = CommitLog(ctx.table)
    for push in mapped.pushes:
        log.record(source, push, delivery, now)
    for head in mapped.heads:
        log.record(source, head, delivery, now, head=True)
    commits = sum(len(push.commits) for push in (*mapped.pushes, *mapped.heads))
    if not drafts:
        return {"ids": [], "created": 0, "updated": 0, "duplicates": 0, "stale": 0, "commits": commits}
    for draft, event in drafts:
        if draft.ships is not None and is_finished(event):
            shipped = log.ship(source, draft.ships.repository, event["environment"], event["id"], draft.ships.sha,
                               event["timestamp"], event["status"] == "success", now)
            if shipped.found:  # a commit is never later than the deployment that ships it
                event["commits"] = [{"sha": c.sha, "timestamp": min(c.timestamp, event["timestamp"])}
                                    for c in shipped.commits]
    events = parse_events({"events": [event for _, event in drafts]}, now)
    result = ctx.events.put_events(events, now)
    count_ingested(ctx, events)
    return {**result.body(), "commits": commits}


def _event(ctx: Context, draft: Draft, overrides: WebhookQuery) -> dict[str, Any]:
    """A draft as the event to post: the URL's overrides, the defaults, what the stored revision
    knows that this delivery cannot (draft.keep), and no null fields."""
    event = dict(draft.event)
    if overrides.service:
        event["service"] = overrides.service
    if overrides.environment:
        event["environment"] = overrides.environment
    if not event.get("environment"):
        event["environment"] = C.DEFAULT_ENVIRONMENT
    if not event.get("service"):
        raise MappingError("service", "is not in the payload: give it on the hook's URL, ?service=<name>")
    if draft.keep:
        stored = ctx.events.get_event(Identity(event["environment"], event["service"], event["kind"], event["id"]))
        for name in draft.keep:  # what the stored revision knows wins
            if stored and stored.get(name):
                event[name] = stored[name]
    if event["kind"] == "incident" and not event.get("timestamp"):
        event["timestamp"] = event["opened_at"]  # an incident is filed at its opening
    return {name: value for name, value in event.items() if value is not None}


def _delivery_key(source: str, event_type: str, delivery: str) -> Item:
    """The record of one delivery. A source's delivery id is unique per delivery, and the event type
    is part of the key too: CDEvents ids are unique per producer and type, not across them."""
    digest = hashlib.sha256(f"{event_type}\n{delivery}".encode()).hexdigest()[:40]
    return K.key(f"{C.DELIVERY_PK_PREFIX}{source}#{digest}", C.DELIVERY_SK)
