"""Fenced, crash-safe failover between the two regions.

Each region's failover record (pk=_control, sk=failover) names the active region and the epoch, and
the active region's write lease (chalicelib/lease.py). A failover to region T from region O:
  1. preflight: T's table is ACTIVE and its replication lag is under the RPO target (--force skips
     the lag check, for when O is gone and the lag cannot improve);
  2. intent: T's control item `failover-intent` records the new epoch, the target and the step
     reached. It is written only if no failover holds that epoch or a later one, so of two operators
     failing over at once, one wins and the other is told; and a failover that was killed is resumed
     from it (`--resume`), with the same epoch, every step being idempotent;
  3. fence: O's record gets the new epoch naming T, so O stops taking writes (once its functions'
     cached role expires, ROLE_CACHE_SECONDS); if O cannot be reached, wait out its lease instead, as
     last recorded in T (O cannot renew it without reading T, where the intent now is);
  4. final sweep: if O answers, copy what it still holds that T lacks;
  5. switch: T's record gets the new epoch naming T, and no lease: T's first renewal grants one,
     written into O's copy first. When T is the DR region, or O could not be fenced, also `sole`
     (O is fenced, or down, so T renews its lease even when O is gone); a planned failback leaves
     the primary renewing through its peer, as before any failover;
  6. notify the alert topic (once), and record an incident event in T (its id is the epoch's);
  7. done: the intent is marked done.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib import constants as C
from chalicelib import names
from chalicelib.aws_errors import AWS_ERRORS
from chalicelib.checks import age_seconds
from chalicelib.control import Value
from chalicelib.events import EventQuery
from chalicelib.models import parse_events
from chalicelib.replication import ReplicationSweep, Replicator
from chalicelib.role import RegionRole, latest, role_from_record
from chalicelib.times import format_time, parse_time, utc_now
from ops.regions import Regions

INCIDENT_PREFIX = "failover-epoch-"  # the ids of the incidents failovers record (service devops-metrics)
STEPS = ("intent", "fence", "final sweep", "switch", "notify", "incident recorded", "done")

Step = Callable[[str], None]


class FailoverRefused(Exception):
    """A preflight check failed; nothing was changed."""


class FailoverConflict(Exception):
    """Another failover holds this epoch or a later one, or is in progress: this one stopped, and
    `python -m dr status` shows what the other one did."""


@dataclass
class FailoverReport:
    from_region: str
    to_region: str
    epoch: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    fenced_old_region: bool = False
    waited_out_lease_seconds: float = 0.0
    final_sweep: dict[str, Any] | None = None
    resumed: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def active_role(regions: Regions, region: str, now: datetime | None = None) -> RegionRole:
    """What `region` decides from its own record, as the app does."""
    return role_from_record(regions.settings(region), regions.control(region).get(C.FAILOVER_SK), now or utc_now())


def known_active(regions: Regions) -> str:
    """The active region of the highest epoch either region records (the ones that answer)."""
    records = []
    for region in C.REGIONS:
        try:
            records.append(regions.control(region).get(C.FAILOVER_SK))
        except AWS_ERRORS:
            pass
    record = latest(records)
    return str(record["active_region"]) if record else C.PRIMARY_REGION


def pending_intent(regions: Regions, region: str) -> dict[str, Any] | None:
    """A failover into `region` that started and did not finish (None when there is none)."""
    intent = regions.control(region).get(C.FAILOVER_INTENT_SK)
    return intent if intent is not None and not intent.get("done") else None


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
             now: Callable[[], datetime] = utc_now, resume: bool = False, old_region_down: bool = False,
             sleep: Callable[[float], None] = time.sleep, stop_after: str | None = None) -> FailoverReport:
    """Fail over to `to_region`. `stop_after` (a step's name) ends the run there, as a crash would:
    the drill's crash scenario and the tests use it."""
    started = time.monotonic()
    from_region = regions.peer(to_region)
    target = regions.control(to_region)
    intent = pending_intent(regions, to_region)
    other = pending_intent(regions, from_region) if reachable(regions, from_region) else None
    if other is not None:
        raise FailoverConflict(f"a failover to {from_region} (epoch {other['epoch']}) is in progress or was "
                               f"interrupted; finish it first: python -m dr failover --to {from_region} --yes --resume")
    if intent is not None and not resume:
        raise FailoverConflict(
            f"a failover to {to_region} (epoch {intent['epoch']}, started {intent['started_at']}) is in progress "
            f"or was interrupted after '{intent['step']}'. If no one is running it any more, finish it: "
            f"python -m dr failover --to {to_region} --yes --resume")
    target_record = target.get(C.FAILOVER_SK)
    if intent is None:
        if resume:
            raise FailoverRefused(f"no failover to {to_region} is in progress: nothing to resume")
        role = role_from_record(regions.settings(to_region), latest([target_record, _record_of(regions, from_region)]),
                                now())
        if role.is_active:
            _converge_old(regions, from_region, to_region, role.epoch, now(), step)
            raise FailoverRefused(f"{to_region} is already the active region (epoch {role.epoch}).")
        problems = preflight(regions, to_region, force, now())
        old_alive = reachable(regions, from_region)
        if not old_alive:
            problems += _wait_problems(target_record, from_region, force, old_region_down)
        if problems:
            raise FailoverRefused("; ".join(problems))
        epoch = _highest_epoch(regions, target_record, from_region) + 1
        intent = {"epoch": epoch, "to_region": to_region, "from_region": from_region, "owner": uuid.uuid4().hex,
                  "started_at": format_time(now()), "step": "intent", "done": 0, "notified": 0}
        if not target.put_intent(intent):
            theirs = target.get(C.FAILOVER_INTENT_SK) or {}
            raise FailoverConflict(f"another failover got epoch {theirs.get('epoch', epoch)} first (to "
                                   f"{theirs.get('to_region', '?')}, started {theirs.get('started_at', '?')}); "
                                   f"see python -m dr status")
    epoch = int(intent["epoch"])
    report = FailoverReport(from_region, to_region, epoch, resumed=resume)

    def done(name: str, **details: Any) -> bool:
        """Record a step; True when the run must stop here (stop_after)."""
        intent["step"] = name
        intent["updated_at"] = format_time(now())
        target.put(C.FAILOVER_INTENT_SK, intent)
        report.steps.append({"step": name, "at_seconds": round(time.monotonic() - started, 3), **details})
        step(f"{name}: " + ", ".join(f"{k}={v}" for k, v in details.items()))
        return stop_after == name

    if done("intent", target=to_region, epoch=epoch, force=force, resumed=resume):
        return report
    old_alive = reachable(regions, from_region)
    # `sole` (the target renews alone) when the target is the DR region, taking over in a disaster, or
    # when the old region cannot be fenced; a planned failback leaves the primary renewing through its
    # peer, as before any failover. Both records carry it, so a later forced failover knows.
    sole = int(to_region != regions.settings(to_region).primary_region or not old_alive)
    if old_alive:
        fence: dict[str, Value] = {"active_region": to_region, "epoch": epoch, "sole": sole,
                                   "updated_at": format_time(now())}
        if not regions.control(from_region).put_failover_record(fence, not_after=(to_region, epoch)):
            raise FailoverConflict(f"{from_region} holds an epoch later than {epoch}: another failover ran; "
                                   f"see python -m dr status")
        report.fenced_old_region = True
        sleep(C.ROLE_CACHE_SECONDS)  # the old region's functions may hold its role this long
        stop = done("fence", region=from_region, epoch=epoch)
    else:
        report.waited_out_lease_seconds = _wait_out_lease(target_record, from_region, now, sleep)
        stop = done("fence", region=from_region, skipped="unreachable", waited_out_lease_seconds=round(
            report.waited_out_lease_seconds, 1))
    if stop:
        return report
    if old_alive:
        sweep = ReplicationSweep(regions.table(from_region), Replicator(regions.table(to_region), from_region))
        report.final_sweep = sweep.run(now()).as_dict()
        stop = done("final sweep", copied=report.final_sweep["copied"], found=report.final_sweep["changes_found"])
    else:
        stop = done("final sweep", skipped=f"{from_region} unreachable")
    if stop:
        return report
    # No lease here: the target's first renewal (its next write, its /health, or renew_lease within a
    # minute) grants it, and writes it into the old region's copy first, so that a forced failover
    # away from the target always has a lease to wait out.
    switch: dict[str, Value] = {"active_region": to_region, "epoch": epoch, "sole": sole,
                                "updated_at": format_time(now())}
    if not target.put_failover_record(switch, not_after=(to_region, epoch)):
        raise FailoverConflict(f"{to_region} holds an epoch later than {epoch}: another failover ran; "
                               f"see python -m dr status")
    if done("switch", active=to_region, epoch=epoch):
        return report
    if not intent.get("notified"):
        _notify(regions, to_region, from_region, epoch, report.fenced_old_region)
        intent["notified"] = 1
    if done("notify", topic=regions.topic_arn(to_region) or "none"):
        return report
    _record_incident(regions, to_region, from_region, epoch, now())
    if done("incident recorded", region=to_region):
        return report
    intent["done"] = 1
    done("done", active=to_region, epoch=epoch)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _record_of(regions: Regions, region: str) -> dict[str, Any] | None:
    """A region's failover record, or None when it has none or cannot be reached."""
    try:
        return regions.control(region).get(C.FAILOVER_SK)
    except AWS_ERRORS:
        return None


def _highest_epoch(regions: Regions, target_record: dict[str, Any] | None, from_region: str) -> int:
    """The highest epoch the regions that answer record."""
    epochs = [int(target_record["epoch"])] if target_record else [0]
    try:
        old = regions.control(from_region).get(C.FAILOVER_SK)
        epochs += [int(old["epoch"])] if old else []
    except AWS_ERRORS:
        pass
    return max(epochs)


def _wait_problems(target_record: dict[str, Any] | None, from_region: str, force: bool,
                   old_region_down: bool) -> list[str]:
    """Why a failover cannot go ahead while the old region is unreachable."""
    if not force:
        longest = C.LEASE_SECONDS + C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS
        return [f"{from_region} cannot be reached, so it cannot be fenced: pass --force to wait out its write "
                f"lease (at most {longest:g} s) before the target takes writes"]
    sole = target_record is not None and target_record["active_region"] == from_region and \
        bool(target_record.get("sole"))  # the old region's own flag, copied here with its lease
    if sole and not old_region_down:
        return [f"{from_region} became active through a failover (epoch {target_record['epoch']}), so it renews "  # type: ignore[index]
                f"its lease without reaching this region, and waiting cannot fence it. Fail over only when "
                f"{from_region} is down, not just unreachable from here: add --old-region-down to say so"]
    return []


def _wait_out_lease(target_record: dict[str, Any] | None, from_region: str, now: Callable[[], datetime],
                    sleep: Callable[[float], None]) -> float:
    """Sleep until the old region's lease, as last copied into the target, has run out (and its
    functions' cached role with it). Returns the seconds waited."""
    lease = target_record.get("lease_until") if target_record and target_record["active_region"] == from_region \
        else None
    if not lease:
        return 0.0
    ends = parse_time(str(lease)) + timedelta(seconds=C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS)
    wait = max(0.0, (ends - now()).total_seconds())
    if wait:
        sleep(wait)
    return wait


def _converge_old(regions: Regions, from_region: str, to_region: str, epoch: int, now: datetime, step: Step) -> None:
    """The target is active: make sure the old region's record says so too, when it answers (a
    failover killed between its switch and a fence it skipped, or a region that returned)."""
    try:
        record = regions.control(from_region).get(C.FAILOVER_SK)
        if record is None or int(record["epoch"]) < epoch:
            target = regions.control(to_region).get(C.FAILOVER_SK) or {}
            fence: dict[str, Value] = {"active_region": to_region, "epoch": epoch,
                                       "sole": int(bool(target.get("sole"))), "updated_at": format_time(now)}
            regions.control(from_region).put_failover_record(fence, not_after=(to_region, epoch))
            step(f"fence: {from_region} brought to epoch {epoch}")
    except AWS_ERRORS:
        pass


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
    active = known_active(regions)
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

