"""Teams: a named set of services whose DORA metrics are read together. Stored in one partition
(pk=TEAMS, sk=<team>), replicated like events (versioned, change-stamped, deleted by tombstone),
so a team fails over with its services' events."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dynamodb import Item, Table
from chalicelib.errors import Unavailable
from chalicelib.models import Name, Text


class TeamBody(BaseModel):
    """PUT /teams/{team}: the team's services (1 to 500, each once) and an optional description."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    services: Annotated[list[Name], Field(min_length=1, max_length=C.MAX_TEAM_SERVICES)]
    description: Text | None = None


@dataclass(frozen=True)
class Team:
    name: str
    services: tuple[str, ...]
    description: str | None
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"team": self.name, "services": list(self.services), "updated_at": self.updated_at}
        if self.description is not None:
            body["description"] = self.description
        return body


class TeamStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, name: str) -> Team | None:
        item = self.table.get(K.team_key(name))
        return _team(item) if item is not None and not K.is_tombstone(item) else None

    def all(self) -> list[Team]:
        teams: list[Team] = []
        for page in self.table.query_pages(KeyConditionExpression="pk = :p",
                                           ExpressionAttributeValues={":p": {"S": C.TEAMS_PK}},
                                           FilterExpression=K.LIVE):
            teams += [_team(item) for item in page.items]
        return teams

    def put(self, name: str, body: TeamBody, now: datetime) -> tuple[Team, bool]:
        """Create or replace a team; True when it is new. Conditional on the version read, so two
        writers of one team cannot interleave, and every write's version is above the last."""
        key = K.team_key(name)
        for _ in range(C.REVISION_ROUNDS):
            held = self.table.get(key)
            item: Item = {**key, "services": {"L": [{"S": s} for s in dict.fromkeys(body.services)]},
                          **({"description": {"S": body.description}} if body.description is not None else {})}
            item |= K.change_stamp(key["pk"]["S"], key["sk"]["S"], now, self.table.region,
                                   K.next_version(K.version_of(held)))
            condition, values = _unchanged(held)
            if self.table.put(item, condition=condition, values=values):
                return _team(item), held is None or K.is_tombstone(held)
        raise Unavailable("The team kept changing while it was being written; retry the request.")

    def delete(self, name: str, now: datetime) -> bool:
        """Delete a team (a tombstone, which replicates); False when there is no such team."""
        key = K.team_key(name)
        for _ in range(C.REVISION_ROUNDS):
            held = self.table.get(key)
            if held is None or K.is_tombstone(held):
                return False
            condition, values = _unchanged(held)
            gone = K.tombstone(key, K.next_version(K.version_of(held)), now, self.table.region)
            if self.table.put(gone, condition=condition, values=values):
                return True
        raise Unavailable("The team kept changing while it was being deleted; retry the request.")


def _unchanged(held: Item | None) -> tuple[str, Item | None]:
    if held is None:
        return "attribute_not_exists(pk)", None
    return "version = :v", {":v": {"N": str(K.version_of(held))}}


def _team(item: Item) -> Team:
    return Team(item["sk"]["S"], tuple(s["S"] for s in item["services"]["L"]),
                item["description"]["S"] if "description" in item else None, item["updated_at"]["S"])
