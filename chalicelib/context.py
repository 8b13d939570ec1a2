"""What every handler is given: settings, this region's and the peer region's tables, and the
region's role, read from its own failover record at most every ROLE_CACHE_SECONDS."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib import constants as C
from chalicelib import lease
from chalicelib.config import Settings
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from chalicelib.events import EventStore
from chalicelib.role import RegionRole, role_from_record
from chalicelib.teams import TeamStore
from chalicelib.times import utc_now

if TYPE_CHECKING:
    from chalicelib.rollups import DoraSource, RollupStore


@dataclass
class _RoleCache:
    record: dict[str, Any] | None = None
    read_at: float | None = None  # time.monotonic() of the last read
    renewal_tried_at: float | None = None


@dataclass(frozen=True)
class Context:
    settings: Settings
    table: Table
    peer: Table | None = None
    _roles: _RoleCache = field(default_factory=_RoleCache, compare=False, repr=False)

    @cached_property
    def events(self) -> EventStore:
        return EventStore(self.table)

    @cached_property
    def rollups(self) -> RollupStore:
        from chalicelib.rollups import RollupStore  # not on a POST's path (its cold start)

        return RollupStore(self.table)

    @cached_property
    def dora(self) -> DoraSource:
        """Where summaries and trends read their inputs: the daily rollups, or the events."""
        from chalicelib.rollups import DoraSource

        return DoraSource(self.events, self.rollups)

    @cached_property
    def teams(self) -> TeamStore:
        return TeamStore(self.table)

    @cached_property
    def control(self) -> ControlStore:
        return ControlStore(self.table)

    @cached_property
    def peer_control(self) -> ControlStore | None:
        return ControlStore(self.peer) if self.peer is not None else None

    def role(self, now: datetime | None = None) -> RegionRole:
        """This region's role from its own record: no call to the peer region. A region named active
        whose lease has run out tries one renewal (which reads the peer), at most every
        ROLE_CACHE_SECONDS: a new deployment gets its first lease so, and a lapsed one comes back."""
        now = now or utc_now()
        cache, clock = self._roles, time.monotonic()
        if cache.read_at is None or clock - cache.read_at >= C.ROLE_CACHE_SECONDS:
            cache.record, cache.read_at = self.control.get(C.FAILOVER_SK), clock
        role = role_from_record(self.settings, cache.record, now)
        if role.is_active and not role.writable and (
                cache.renewal_tried_at is None or clock - cache.renewal_tried_at >= C.ROLE_CACHE_SECONDS):
            cache.renewal_tried_at = clock
            lease.renew(self.settings, self.control, self.peer_control, now)  # or it learnt of a failover
            cache.record, cache.read_at = self.control.get(C.FAILOVER_SK), clock
            role = role_from_record(self.settings, cache.record, now)
        return role

    def forget_role(self) -> None:
        """Read the record again on the next call (after this process changed it)."""
        self._roles.read_at = self._roles.renewal_tried_at = None

    def replica(self, role: RegionRole) -> Table:
        """The table that receives replication: the peer's when this region is active."""
        return self.peer if self.peer is not None and role.is_active else self.table
