"""Which region is active. The one place the app reads it; the DR tooling writes it.

The failover record is a control item in each region's own table (pk=_control, sk=failover) holding
the active region and the failover epoch. With no record, the configured primary region is active.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib import constants as C
from chalicelib.aws_errors import AWS_ERRORS
from chalicelib.config import Settings
from chalicelib.control import ControlStore
from chalicelib.errors import StandbyRegion

_PEER_READS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peer-role")


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


def current_role(control: ControlStore, settings: Settings, peer: ControlStore | None = None) -> RegionRole:
    """The active region of the highest epoch this region can see: its own record and, when the
    peer region answers, the peer's. So a primary that comes back after a failover it did not hear
    about reads the newer epoch from the DR region and stays fenced."""
    peer_record: Future[dict[str, Any] | None] | None = None
    if peer is not None:  # read both regions at once: the peer is a cross-region round trip
        peer_record = _PEER_READS.submit(peer.get, C.FAILOVER_SK)
    records = [control.get(C.FAILOVER_SK)]
    if peer_record is not None:
        try:
            records.append(peer_record.result())
        except AWS_ERRORS:
            pass  # the peer region is unreachable or not set up: decide on this region's record alone
    return role_from_records(settings, records)


def role_from_records(settings: Settings, records: list[dict[str, Any] | None]) -> RegionRole:
    """The role the highest epoch among failover records gives this region; with no record, the
    configured primary region is active."""
    known = [RegionRole(settings.region, str(r["active_region"]), int(r["epoch"])) for r in records if r]
    if not known:
        return RegionRole(settings.region, settings.primary_region, 0)
    return max(known, key=lambda role: role.epoch)


def require_active(role: RegionRole) -> None:
    """Writes are accepted only in the active region."""
    if not role.is_active:
        raise StandbyRegion(
            f"{role.region} is the standby region and is read-only; send writes to {role.active_region}.",
            [{"region": role.region, "active_region": role.active_region, "epoch": role.epoch}],
        )
