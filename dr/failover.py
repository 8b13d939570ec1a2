"""Fenced failover between the two regions.

The failover record (pk=_control, sk=failover: active region and epoch) is written into each region's
own table: a region takes writes only while it is the active region of the highest epoch it can see
(chalicelib/role.py reads its own record and the peer's). Failover:
  1. preflight: the target table is ACTIVE and its replication lag is under the RPO target (--force
     skips the lag check, for when the primary is gone and the lag cannot improve);
  2. fence: the old active region gets the new epoch naming the target, so it refuses writes;
  3. final sweep: if the old region answers, copy what it still holds that the target lacks;
  4. switch: the target gets the new epoch naming itself; it now takes writes, and because
     replication follows the active region, it now replicates towards the old one;
  5. notify the alert topic, and record an incident event in the target.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib import names
from chalicelib.aws_errors import AWS_ERRORS
from chalicelib.checks import age_seconds
from chalicelib.events import EventQuery
from chalicelib.models import parse_events
from chalicelib.replication import ReplicationSweep, Replicator
from chalicelib.role import RegionRole, current_role
from chalicelib.times import format_time, utc_now
from ops.regions import Regions

INCIDENT_PREFIX = "failover-epoch-"  # the ids of the incidents failovers record (service devops-metrics)

Step = Callable[[str], None]


class FailoverRefused(Exception):
    """A preflight check failed; nothing was changed."""


class FailoverConflict(Exception):
    """Another failover recorded this epoch or a later one while this one ran: this one stopped at
    that step, and `python -m dr status` shows which region the newer epoch names."""


@dataclass
class FailoverReport:
    from_region: str
    to_region: str
    epoch: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    fenced_old_region: bool = False
    final_sweep: dict[str, Any] | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def active_role(regions: Regions, region: str) -> RegionRole:
    """What `region` would decide, reading both records as the app does."""
    return current_role(regions.control(region), regions.settings(region), regions.control(regions.peer(region)))


def reachable(regions: Regions, region: str) -> bool:
    try:
        regions.table(region).status()
        return True
    except AWS_ERRORS:
        return False


def preflight(regions: Regions, to_region: str, force: bool, now: datetime) -> list[str]:
    """Reasons not to fail over to `to_region`; empty when it is safe."""
    problems = []
    try:
        status = regions.table(to_region).status()
        if status != "ACTIVE":
            problems.append(f"the {to_region} table is {status}, not ACTIVE")
    except AWS_ERRORS as error:
        return [f"the {to_region} table cannot be reached: {error}"]
    if force:
        return problems
    heartbeat = regions.control(to_region).get(C.HEARTBEAT_SK)
    if heartbeat is None:
        problems.append(f"no replication heartbeat has reached {to_region}: its data may be incomplete "
                        f"(run `python -m dr replicate`, or pass --force)")
    else:
        lag = float(heartbeat.get("lag_seconds", 0))
        age = age_seconds(heartbeat, now)
        if lag > C.RPO_TARGET_SECONDS or age > C.REPLICATION_STALL_SECONDS:
            problems.append(f"replication into {to_region} is behind (lag {lag:.1f} s, last heartbeat "
                            f"{age:.0f} s ago; target {C.RPO_TARGET_SECONDS} s): run `python -m dr replicate` "
                            f"if {regions.peer(to_region)} answers, or pass --force to accept the loss")
    return problems


def failover(regions: Regions, to_region: str, force: bool = False, step: Step = print,
             now: Callable[[], datetime] = utc_now) -> FailoverReport:
    started = time.monotonic()
    from_region = regions.peer(to_region)
    role = active_role(regions, to_region)
    if role.active_region == to_region:
        raise FailoverRefused(f"{to_region} is already the active region (epoch {role.epoch}).")
    problems = preflight(regions, to_region, force, now())
    if problems:
        raise FailoverRefused("; ".join(problems))
    epoch = role.epoch + 1
    report = FailoverReport(from_region, to_region, epoch)

    def done(name: str, **details: Any) -> None:
        report.steps.append({"step": name, "at_seconds": round(time.monotonic() - started, 3), **details})
        step(f"{name}: " + ", ".join(f"{k}={v}" for k, v in details.items()))

    done("preflight", target=to_region, force=force)
    old_alive = reachable(regions, from_region)
    if old_alive:
        _record(regions, from_region, to_region, epoch, now())
        report.fenced_old_region = True
        done("fence", region=from_region, epoch=epoch)
        sweep = ReplicationSweep(regions.table(from_region), Replicator(regions.table(to_region), from_region))
        report.final_sweep = sweep.run(now()).as_dict()
        done("final sweep", copied=report.final_sweep["copied"], found=report.final_sweep["changes_found"])
    else:
        done("fence", region=from_region, skipped="unreachable; it will read the new epoch from "
             f"{to_region} when it returns")
    _record(regions, to_region, to_region, epoch, now())
    done("switch", active=to_region, epoch=epoch)
    _notify(regions, to_region, from_region, epoch, old_alive)
    done("notify", topic=regions.topic_arn(to_region) or "none")
    _record_incident(regions, to_region, from_region, epoch, now())
    done("incident recorded", region=to_region)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _record(regions: Regions, in_region: str, active_region: str, epoch: int, now: datetime) -> None:
    """Write the failover record, never lowering an epoch already there."""
    if not regions.control(in_region).put_failover(active_region, epoch, now):
        raise FailoverConflict(f"{in_region} already holds failover epoch {epoch} or a later one: another "
                               f"failover ran meanwhile; see python -m dr status")


def _notify(regions: Regions, to_region: str, from_region: str, epoch: int, old_alive: bool) -> None:
    topic = regions.topic_arn(to_region)
    if topic is None:
        return
    body = {"event": "failover", "active_region": to_region, "previous_region": from_region, "epoch": epoch,
            "old_region_fenced": old_alive,
            "next": "Verify with `python -m dr status` and `python -m dr verify`; see dr/RUNBOOK.md."}
    regions.sns(to_region).publish(
        TopicArn=topic, Subject=f"[{names.table(regions.stage)}] failover to {to_region} (epoch {epoch})",
        Message=json.dumps(body, indent=2))


def _record_incident(regions: Regions, to_region: str, from_region: str, epoch: int, now: datetime) -> None:
    event = {"kind": "incident", "service": C.DELIVERY_SERVICE, "environment": regions.stage,
             "id": f"{INCIDENT_PREFIX}{epoch}", "opened_at": format_time(now), "severity": "sev1",
             "attributes": {"failover_from": from_region, "failover_to": to_region, "epoch": str(epoch)}}
    regions.events(to_region).put_events(parse_events(event, now), now)


def resolve_incidents(regions: Regions, now: datetime) -> list[str]:
    """Resolve the open incidents failovers recorded, in the active region: each gets a revision
    with resolved_at (and updated_at) now, so time to restore counts it. Already resolved ones are
    left alone, so running it again changes nothing."""
    active = active_role(regions, C.PRIMARY_REGION).active_region
    store = regions.events(active)
    query = EventQuery(environment=regions.stage, kinds=("incident",), service=C.DELIVERY_SERVICE,
                       limit=C.MAX_PAGE_SIZE)
    incidents, _ = store.list_events(query, {})
    stored_only = ("received_at", "first_received_at", "revision")
    revisions = [{**{k: v for k, v in i.items() if k not in stored_only}, "resolved_at": format_time(now),
                  "updated_at": format_time(now)}
                 for i in incidents if str(i["id"]).startswith(INCIDENT_PREFIX) and not i.get("resolved_at")]
    if revisions:
        store.put_events(parse_events({"events": revisions}, now), now)
    return [r["id"] for r in revisions]

