"""What every handler is given: settings, and this region's and the peer region's tables."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from chalicelib.config import Settings
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from chalicelib.events import EventStore
from chalicelib.role import RegionRole, current_role
from chalicelib.teams import TeamStore


@dataclass(frozen=True)
class Context:
    settings: Settings
    table: Table
    peer: Table | None = None

    @cached_property
    def events(self) -> EventStore:
        return EventStore(self.table)

    @cached_property
    def teams(self) -> TeamStore:
        return TeamStore(self.table)

    @cached_property
    def control(self) -> ControlStore:
        return ControlStore(self.table)

    @cached_property
    def peer_control(self) -> ControlStore | None:
        return ControlStore(self.peer) if self.peer is not None else None

    def role(self) -> RegionRole:
        return current_role(self.control, self.settings, self.peer_control)

    def replica(self, role: RegionRole) -> Table:
        """The table that receives replication: the peer's when this region is active."""
        return self.peer if self.peer is not None and role.is_active else self.table
