"""The active region's write lease: the fence that costs a write nothing.

The active region takes writes only until `lease_until` in its own failover record. Its scheduled
`renew_lease` function (every LEASE_RENEW_MINUTES) and, when a function finds its lease run out, that
function itself extend it, but only after reading the peer region's failover record:
  - the peer holds a higher epoch (a failover away from this region): this region takes the peer's
    record as its own and is a standby from now on;
  - a failover into the peer is in progress (its intent record): no renewal;
  - otherwise the lease is written into the peer's record first, then into this region's own: the
    copy in the peer is never earlier than the lease in force, so a forced failover that cannot
    reach this region waits out the copy.
A region that cannot read its peer does not renew, and stops taking writes when its lease runs out,
unless its record says it may renew alone (`sole`: a failover made the DR region active, or made a
region active without reaching the old one; the peer is fenced at its epoch or had its lease waited
out). That region renews alone: the peer can only become active again through a failover, which
reaches this region or is told it cannot wait it out. A failover grants no lease itself: the
target's first renewal does, through the peer's copy, so every lease in force has its copy there.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib import constants as C
from chalicelib.aws_errors import AWS_ERRORS
from chalicelib.config import Settings
from chalicelib.control import ControlStore, Value
from chalicelib.times import format_time


@dataclass(frozen=True)
class Renewal:
    renewed: bool
    reason: str  # renewed | renewed alone | standby | adopted the peer's epoch | peer unreachable | ...
    lease_until: str | None = None
    epoch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"renewed": self.renewed, "reason": self.reason, "lease_until": self.lease_until, "epoch": self.epoch}


def own_record(settings: Settings, record: dict[str, Any] | None) -> dict[str, Any]:
    """A region's failover record, or the configured one (primary active, epoch 0)."""
    return dict(record) if record else {"active_region": settings.primary_region, "epoch": 0}


def renew(settings: Settings, control: ControlStore, peer: ControlStore | None, now: datetime) -> Renewal:
    stored = control.get(C.FAILOVER_SK)
    record = own_record(settings, stored)
    epoch = int(record["epoch"])
    me = settings.region
    try:
        peer_record = peer.get(C.FAILOVER_SK) if peer is not None else None
        intent = peer.get(C.FAILOVER_INTENT_SK) if peer is not None else None
    except AWS_ERRORS:
        if record["active_region"] == me and record.get("sole"):
            return _extend(control, None, record, stored is None, me, epoch, now, settings, alone=True)
        return Renewal(False, "peer unreachable: the lease runs out at "
                       f"{record.get('lease_until') or 'once granted'}", record.get("lease_until"), epoch)
    if peer_record is not None and int(peer_record["epoch"]) > epoch:
        adopted: dict[str, Value] = {"active_region": peer_record["active_region"], "epoch": int(peer_record["epoch"]),
                                     "sole": int(bool(peer_record.get("sole"))), "updated_at": format_time(now)}
        control.put_failover_record(adopted, higher_than=epoch)
        return Renewal(False, f"adopted the peer's epoch {adopted['epoch']} ({adopted['active_region']} is active)",
                       None, int(adopted["epoch"]))
    if record["active_region"] != me:
        return Renewal(False, "standby", None, epoch)
    if intent is not None and not intent.get("done") and int(intent["epoch"]) > epoch:
        return Renewal(False, f"a failover to {intent['to_region']} (epoch {intent['epoch']}) is in progress",
                       record.get("lease_until"), epoch)
    if peer is None:
        return Renewal(False, "no peer region configured", record.get("lease_until"), epoch)
    return _extend(control, peer, record, stored is None, me, epoch, now, settings, alone=False)


def _extend(control: ControlStore, peer: ControlStore | None, record: dict[str, Any], first: bool, me: str,
            epoch: int, now: datetime, settings: Settings, alone: bool) -> Renewal:
    until = format_time(now + timedelta(seconds=settings.lease_seconds))
    if peer is not None:
        copy: dict[str, Value] = {"active_region": me, "epoch": epoch, "lease_until": until,
                                  "sole": int(bool(record.get("sole"))), "updated_at": format_time(now)}
        if not peer.put_failover_record(copy, not_after=(me, epoch)):  # a peer at an older epoch is fenced too
            return Renewal(False, "the peer's record changed meanwhile", record.get("lease_until"), epoch)
    renewed = {**record, "active_region": me, "epoch": epoch, "lease_until": until, "updated_at": format_time(now)}
    if not control.put_failover_record(renewed, same_epoch_of=(me, epoch)):
        return Renewal(False, "this region's record changed meanwhile (a failover)", None, epoch)
    return Renewal(True, "renewed alone (the peer is fenced)" if alone else "renewed", until, epoch)
