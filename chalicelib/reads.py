"""The read routes, apart from Chalice: GET /metrics, GET /metrics/summary, GET /metrics/trends and
GET /health.
Plain inputs in, (status, body) out, ApiError on a 4xx."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.events import EventQuery
from chalicelib.health import check_health
from chalicelib.http import Reply
from chalicelib.models import Environment, Name, Timestamp
from chalicelib.pagination import decode_token, encode_token
from chalicelib.params import QueryParams, parse_query
from chalicelib.summary import service_summary, team_summary
from chalicelib.teams import Team
from chalicelib.trends import trends


class ListParams(QueryParams):
    service: Name | None = None
    kind: Literal["deployment", "build", "incident", "gauge"] | None = None
    environment: Environment = C.DEFAULT_ENVIRONMENT
    since: Timestamp | None = None
    until: Timestamp | None = None
    limit: int = Field(default=C.DEFAULT_PAGE_SIZE, ge=1, le=C.MAX_PAGE_SIZE)
    next_token: str | None = Field(default=None, max_length=4096)


class SummaryParams(QueryParams):
    service: Name | None = None
    team: Name | None = None
    environment: Environment = C.DEFAULT_ENVIRONMENT
    days: int = Field(default=C.DEFAULT_SUMMARY_DAYS, ge=1, le=C.MAX_SUMMARY_DAYS)
    benchmark: Literal["2021", "2023", "2024"] = C.DEFAULT_BENCHMARK
    explain: Literal["true", "false"] = "false"


class TrendParams(QueryParams):
    service: Name | None = None
    team: Name | None = None
    environment: Environment = C.DEFAULT_ENVIRONMENT
    bucket: Literal["week", "month"] = "week"
    count: int = Field(default=C.DEFAULT_TREND_WEEKS, ge=1, le=C.MAX_TREND_WEEKS)
    benchmark: Literal["2021", "2023", "2024"] = C.DEFAULT_BENCHMARK
    explain: Literal["true", "false"] = "false"


class HealthParams(QueryParams):
    deep: Literal["true", "false"] = "false"


def list_metrics(ctx: Context, query: Mapping[str, str] | None) -> Reply:
    params = parse_query(ListParams, query)
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
    cursors = decode_token(params.next_token, event_query)
    items, next_cursors = ctx.events.list_events(event_query, cursors)
    return 200, {"items": items, "next_token": encode_token(event_query, next_cursors)}


def metrics_summary(ctx: Context, query: Mapping[str, str] | None, now: datetime) -> Reply:
    params = parse_query(SummaryParams, query)
    explain = params.explain == "true"
    team = _team(ctx, params.service, params.team)
    if team is not None:
        return 200, team_summary(ctx.dora, team, params.environment, params.days, now, params.benchmark, explain)
    assert params.service is not None
    return 200, service_summary(ctx.dora, params.service, params.environment, params.days, now,
                                params.benchmark, explain)


def metrics_trends(ctx: Context, query: Mapping[str, str] | None, now: datetime) -> Reply:
    params = parse_query(TrendParams, query)
    if params.bucket == "month" and params.count > C.MAX_TREND_MONTHS:
        raise ValidationFailed(f"count is at most {C.MAX_TREND_MONTHS} months.",
                               [{"field": "count", "message": f"at most {C.MAX_TREND_MONTHS} with bucket=month",
                                 "type": "less_than_equal"}])
    team = _team(ctx, params.service, params.team)
    services = list(team.services) if team is not None else [str(params.service)]
    named = {"team": team.name, "services": services} if team is not None else {"service": params.service}
    return 200, named | trends(ctx.dora, services, params.environment, params.bucket, params.count, now,
                               params.benchmark, params.explain == "true")


def _team(ctx: Context, service: str | None, team: str | None) -> Team | None:
    """The team a query names, None when it names a service; a 4xx when it names both or neither."""
    if (service is None) == (team is None):
        raise ValidationFailed("Name either a service or a team.",
                               [{"field": "service", "message": "give service or team, one of them",
                                 "type": "service_or_team"}])
    if team is None:
        return None
    found = ctx.teams.get(team)
    if found is None:
        raise NotFound(f"No team {team!r}.")
    return found


def health(ctx: Context, query: Mapping[str, str] | None, now: datetime) -> Reply:
    params = parse_query(HealthParams, query)
    report = check_health(ctx, now, deep=params.deep == "true")
    body: dict[str, Any] = report.body
    return report.status_code, body
