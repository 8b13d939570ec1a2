"""PUT, GET and DELETE /teams/{team} and GET /teams, apart from Chalice."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import ValidationError

from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.http import Reply, read_json
from chalicelib.models import error_details
from chalicelib.role import require_active
from chalicelib.teams import TeamBody

_NAME = re.compile(C.NAME_PATTERN)


def team_name(team: str) -> str:
    if not (0 < len(team) <= C.MAX_SERVICE_LENGTH and _NAME.match(team)):
        raise ValidationFailed("The team name is not a name.",
                               [{"field": "team", "message": f"1 to {C.MAX_SERVICE_LENGTH} characters of "
                                                            "[A-Za-z0-9._-]", "type": "string_pattern_mismatch"}])
    return team


def put_team(ctx: Context, team: str, headers: Mapping[str, str], raw_body: bytes | str, now: datetime) -> Reply:
    name = team_name(team)
    payload = read_json(headers, raw_body)
    try:
        body = TeamBody.model_validate(payload)
    except ValidationError as error:
        raise ValidationFailed("The body is not a valid team.", error_details(error, "")) from None
    require_active(ctx.role())
    stored, created = ctx.teams.put(name, body, now)
    return (201 if created else 200), stored.as_dict()


def get_team(ctx: Context, team: str) -> Reply:
    stored = ctx.teams.get(team_name(team))
    if stored is None:
        raise NotFound(f"No team {team!r}.")
    return 200, stored.as_dict()


def list_teams(ctx: Context) -> Reply:
    return 200, {"teams": [t.as_dict() for t in ctx.teams.all()]}


def delete_team(ctx: Context, team: str, now: datetime) -> Reply:
    name = team_name(team)
    require_active(ctx.role())
    if not ctx.teams.delete(name, now):
        raise NotFound(f"No team {team!r}.")
    return 204, {}
