"""Which region is active. The one place the app reads it; the DR tooling writes it.

The failover record is a control item in each region's own table (pk=_control, sk=failover) holding
the active region and the failover epoch. With no record, the configured primary region is active.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import constants as C
from chalicelib.config import Settings
from chalicelib.errors import StandbyRegion
from chalicelib.store import MetricsStore


@dataclass(frozen=True)
class RegionRole:
    region: str
    active_region: str
    epoch: int

    @property
    def is_active(self) -> bool:
        return self.region == self.active_region

    @property
    def name(self) -> str:
        return "active" if self.is_active else "standby"


def current_role(store: MetricsStore, settings: Settings) -> RegionRole:
    record = store.get_control(C.FAILOVER_SK)
    if record is None:
        return RegionRole(settings.region, settings.primary_region, 0)
    return RegionRole(settings.region, str(record["active_region"]), int(record["epoch"]))


def require_active(role: RegionRole) -> None:
    """Writes are accepted only in the active region."""
    if not role.is_active:
        raise StandbyRegion(
            f"{role.region} is the standby region and is read-only; send writes to {role.active_region}.",
            [{"region": role.region, "active_region": role.active_region, "epoch": role.epoch}],
        )
