"""Which region is active, and whether it may write now. The one place the app reads it; the lease
keeper (chalicelib.lease) renews it and the DR tooling (dr/failover.py) moves it.

The failover record is a control item in each region's own table (pk=_control, sk=failover): the
active region, the failover epoch, and, for the active region, the time its write lease runs until.
With no record, the configured primary region is active (epoch 0) and still needs a lease. A region
decides on its own record alone: a write costs no call to the other region.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import LeaseExpired, StandbyRegion
from chalicelib.times import format_time


@dataclass(frozen=True)
class RegionRole:
    region: str
    active_region: str
    epoch: int
    lease_until: str | None = None  # stored time: the active region takes writes until then
    sole: bool = False  # its peer is fenced at this epoch: it renews without reaching the peer
    now: str | None = None  # when the role was judged (stored time)

    @property
    def is_active(self) -> bool:
        """Named the active region by its record (it may still be outside its lease)."""
        return self.region == self.active_region

    @property
    def writable(self) -> bool:
        return self.is_active and self.lease_until is not None and self.now is not None and self.now < self.lease_until

    @property
    def name(self) -> str:
        """active (takes writes), standby, or fenced (named active, outside its lease)."""
        if not self.is_active:
            return "standby"
        return "active" if self.writable else "fenced"


def role_from_record(settings: Settings, record: dict[str, Any] | None, now: datetime) -> RegionRole:
    """This region's role from its own failover record (None: the configured primary, epoch 0)."""
    at = format_time(now)
    if record is None:
        return RegionRole(settings.region, settings.primary_region, 0, now=at)
    lease = record.get("lease_until")
    return RegionRole(settings.region, str(record["active_region"]), int(record["epoch"]),
                      str(lease) if lease else None, bool(record.get("sole")), at)


def require_active(role: RegionRole) -> None:
    """Writes are accepted only in the active region, inside its lease."""
    if not role.is_active:
        raise StandbyRegion(
            f"{role.region} is the standby region and is read-only; send writes to {role.active_region}.",
            [{"region": role.region, "active_region": role.active_region, "epoch": role.epoch}],
        )
    if not role.writable:
        raise LeaseExpired(
            f"{role.region} is the active region but its write lease ran out (at "
            f"{role.lease_until or 'never granted'}): it cannot confirm through its peer that no failover "
            "happened. Retry shortly.",
            [{"region": role.region, "active_region": role.active_region, "epoch": role.epoch,
              "lease_until": role.lease_until}],
        )


def latest(records: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The record of the highest epoch among some regions' records."""
    known = [r for r in records if r]
    return max(known, key=lambda r: int(r["epoch"])) if known else None


