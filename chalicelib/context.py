"""What every handler is given: settings, this region's table, and the peer region's table."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Settings
from chalicelib.role import RegionRole, current_role
from chalicelib.store import MetricsStore


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: MetricsStore
    peer: MetricsStore | None = None

    def role(self) -> RegionRole:
        return current_role(self.store, self.settings, self.peer)

    def replica(self, role: RegionRole) -> MetricsStore:
        """The table that receives replication: the peer's when this region is active."""
        return self.peer if self.peer is not None and role.is_active else self.store
