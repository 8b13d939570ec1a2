"""Scripted game days against the local stack. Clients write through the Global API, the local
stand-in for the global endpoint's name, as a client in AWS writes through its DNS name.

outage     us-east-1 is taken away (its AWS endpoint stops answering) under a steady write load.
           Detection: until the primary's deep health check fails. Failover with `dr failover`
           (--force when the preflight refuses, which it does once replication has stopped). RTO:
           from the outage to the first write the Global API acknowledges again. RPO: the
           acknowledged writes missing in us-west-2, and the age of the newest lost one. Then
           us-east-1 returns, stays fenced, and the drill fails back and compares the tables.
partition  the regions are cut off from each other, and the operator is cut off from us-east-1,
           while clients still reach both regions (each straight, and through the Global API). The
           operator fails over with --force, which waits out us-east-1's lease. The drill shows
           that no moment had both regions acknowledging writes (so no epoch had two writers),
           that the isolated us-east-1 refused writes within one lease of the failover, and, once
           the partition heals and the drill fails back, that every acknowledged write is in both
           tables.
crash      a failover is killed after each of its steps in turn (fo.failover(stop_after=...)),
           then resumed with --resume; each time the drill checks that it converged (both records
           carry the new epoch and name the target, no failover is pending, the incident of the
           epoch is recorded once, a write acknowledged just before is in the target). The
           failovers alternate between the regions; the drill ends with us-east-1 active.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from chalicelib import constants as C
from chalicelib import global_endpoint as ge
from chalicelib.times import format_time, parse_time, utc_now
from dr import failover as fo
from dr import verify as vf
from ops.regions import Regions

DRILL_SERVICE = "dr-drill"  # the drill's writes are gauge events of this service, in production
SCENARIOS = ("outage", "partition", "crash")
SERVED_BY_HEADER = ge.SERVED_BY_HEADER
Say = Callable[[str], None]


@dataclass(frozen=True)
class Urls:
    global_url: str
    primary: str
    standby: str
    switch: str  # the region switch in front of the emulator (its AWS endpoint)


@dataclass
class Ack:
    sent: float  # wall-clock time the request was sent
    at: float  # wall-clock time of the 201
    region: str


class WriteLoad:
    """Posts one event every 1/rate seconds to `url`; keeps each acknowledged id, when and by which
    region it was acknowledged."""

    def __init__(self, url: str, rate: float, run_id: str, region: str | None = None) -> None:
        self.url, self.rate, self.run_id, self.region = url, rate, run_id, region
        self.acked: dict[str, Ack] = {}
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> WriteLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(1 / self.rate):
            event_id = f"drill-{self.run_id}-{n}"
            n += 1
            sent = time.time()
            try:
                response = requests.post(f"{self.url}/metrics", timeout=2, json={
                    "kind": "gauge", "service": DRILL_SERVICE, "id": event_id, "name": "drill_write", "value": n})
            except requests.RequestException:
                self.refused += 1
                continue
            if response.status_code == 201:
                region = self.region or response.headers.get(SERVED_BY_HEADER, "?")
                self.acked[event_id] = Ack(sent, time.time(), region)
            else:
                self.refused += 1

    def first_ack_after(self, wall: float) -> Ack | None:
        """The first acknowledgement of a write sent after `wall` (one in flight at `wall` may be
        acknowledged a moment later: it was written before)."""
        return min((a for a in list(self.acked.values()) if a.sent > wall), key=lambda a: a.at, default=None)


def _until(predicate: Callable[[], bool], timeout: float, every: float = 0.25) -> float | None:
    """Seconds until predicate() is true, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(every)
    return None


def _health_failed(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", params={"deep": "true"}, timeout=2).status_code != 200
    except requests.RequestException:
        return True


def _write(url: str, event_id: str) -> bool:
    """Whether `url` acknowledges a write of this id (201; 200 when it already holds it)."""
    try:
        response = requests.post(f"{url}/metrics", timeout=2, json={
            "kind": "gauge", "service": DRILL_SERVICE, "id": event_id, "name": "drill_probe", "value": 1})
        return response.status_code in (200, 201)
    except requests.RequestException:
        return False


def _accepts_write(url: str, run_id: str) -> bool:
    return _write(url, f"drill-{run_id}-probe-{uuid.uuid4().hex[:8]}")


def _write_served_by(url: str) -> str | None:
    """The region that acknowledged a probe write through the Global API (None: none did). Right
    after a failover the name may already answer from the new region while its functions still hold
    the standby role (up to ROLE_CACHE_SECONDS), or before it has its first lease."""
    try:
        response = requests.post(f"{url}/metrics", timeout=2, json={
            "kind": "gauge", "service": DRILL_SERVICE, "id": f"drill-probe-{uuid.uuid4().hex[:8]}",
            "name": "drill_probe", "value": 1})
    except requests.RequestException:
        return None
    return response.headers.get(SERVED_BY_HEADER) if response.status_code == 201 else None


def _stored_ids(regions: Regions, region: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 100):
        found |= regions.events(region).live_ids(C.DEFAULT_ENVIRONMENT, DRILL_SERVICE, "gauge", ids[start:start + 100])
    return found


def _switch(urls: Urls, method: str, scope: str, caller: str | None = None) -> None:
    params = {"from": caller} if caller else None
    requests.request(method, f"{urls.switch}/_outage/{scope}", params=params, timeout=5).raise_for_status()


def _failback_and_compare(regions: Regions, say: Say) -> tuple[float, int]:
    """Fail back to us-east-1, repair, and compare; returns (failback seconds, differences left)."""
    started = time.monotonic()
    fo.failover(regions, C.PRIMARY_REGION, force=True, step=lambda line: say(f"  {line}"))
    seconds = round(time.monotonic() - started, 3)
    source, replica = regions.table(C.PRIMARY_REGION), regions.table(C.DR_REGION)
    vf.repair(vf.compare(source, replica), source, replica, utc_now(), time.monotonic() + 300)
    differences = -1
    for _ in range(40):  # let the stream deliver what the failback itself wrote
        differences = len(vf.compare(source, replica))
        if differences == 0:
            break
        time.sleep(0.5)
    return seconds, differences


def _require_primary_active(regions: Regions, urls: Urls) -> None:
    """us-east-1 active, and the Global API answering from it (after a failback, its health check
    turns healthy only after FailureThreshold passes)."""
    if fo.active_role(regions, C.PRIMARY_REGION).active_region != C.PRIMARY_REGION:
        raise fo.FailoverRefused("us-east-1 must be active before a drill; run `python -m dr failback` first.")
    if _until(lambda: _write_served_by(urls.global_url) == C.PRIMARY_REGION, timeout=120) is None:
        raise fo.FailoverRefused(f"the Global API ({urls.global_url}) takes no write in us-east-1")


# ---- outage -------------------------------------------------------------------------------------

@dataclass
class OutageResult:
    HEADERS = ("measure", "value")
    writes_acknowledged: int = 0
    detection_seconds: float | None = None
    failover_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_lost_writes: int = 0
    rpo_seconds: float = 0.0
    forced: bool = False
    served_by_after_failover: str | None = None
    fenced_primary_refused_write: bool = False
    served_by_after_failback: str | None = None
    failback_seconds: float | None = None
    differences_after_failback: int | None = None

    @property
    def passed(self) -> bool:
        return (self.rto_seconds is not None and self.rto_seconds < C.RTO_TARGET_SECONDS
                and self.rpo_seconds < C.RPO_TARGET_SECONDS and self.fenced_primary_refused_write
                and self.served_by_after_failover == C.DR_REGION and self.differences_after_failback == 0
                and self.served_by_after_failback == C.PRIMARY_REGION)

    def rows(self) -> list[list[Any]]:
        return [
            ["detection (outage -> deep health check fails)", f"{self.detection_seconds} s"],
            ["failover command", f"{self.failover_seconds} s" + (" (--force)" if self.forced else "")],
            ["RTO (outage -> Global API acknowledges a write)", f"{self.rto_seconds} s  (target < 300 s)"],
            ["Global API served by, after the failover", self.served_by_after_failover],
            ["RPO: acknowledged writes lost", f"{self.rpo_lost_writes} of {self.writes_acknowledged}"],
            ["RPO: age of the newest lost write", f"{self.rpo_seconds} s  (target < 60 s)"],
            ["returning primary refused a write", "yes" if self.fenced_primary_refused_write else "NO"],
            ["failback command", f"{self.failback_seconds} s"],
            ["Global API served by, after the failback", self.served_by_after_failback],
            ["differences after failback", self.differences_after_failback],
        ]


def outage(regions: Regions, urls: Urls, rate: float, warmup: float, say: Say) -> OutageResult:
    result = OutageResult()
    run_id = uuid.uuid4().hex[:6]
    _require_primary_active(regions, urls)
    load = WriteLoad(urls.global_url, rate, run_id).start()
    say(f"write load: {rate:g}/s through the Global API {urls.global_url}; warming up {warmup:g} s")
    time.sleep(warmup)

    _switch(urls, "POST", C.PRIMARY_REGION)
    outage_at, outage_wall = time.monotonic(), time.time()
    say(f"{C.PRIMARY_REGION} taken away")
    detected = _until(lambda: _health_failed(urls.primary), timeout=120)
    result.detection_seconds = round(detected, 3) if detected is not None else None
    say(f"detected by the deep health check after {result.detection_seconds} s")

    started = time.monotonic()
    try:
        fo.failover(regions, C.DR_REGION, step=lambda line: say(f"  {line}"))
    except fo.FailoverRefused as refused:
        say(f"preflight refused ({refused}); failing over with --force")
        result.forced = True
        fo.failover(regions, C.DR_REGION, force=True, step=lambda line: say(f"  {line}"))
    result.failover_seconds = round(time.monotonic() - started, 3)
    _until(lambda: load.first_ack_after(outage_wall) is not None, timeout=300)
    load.stop()
    first = load.first_ack_after(outage_wall)
    result.rto_seconds = round(first.at - outage_wall, 3) if first is not None else None
    result.served_by_after_failover = first.region if first is not None else None
    say(f"the Global API acknowledges writes again, from {result.served_by_after_failover}: RTO "
        f"{result.rto_seconds} s (the failover began {started - outage_at:.1f} s after the outage)")

    acked = {i: a.at for i, a in load.acked.items() if a.sent <= outage_wall}  # in flight at the outage too
    result.writes_acknowledged = len(acked)
    lost = set(acked) - _stored_ids(regions, C.DR_REGION, list(acked))
    result.rpo_lost_writes = len(lost)
    result.rpo_seconds = round(max((max(0.0, outage_wall - acked[i]) for i in lost), default=0.0), 3)
    say(f"RPO: {len(lost)} of {len(acked)} acknowledged writes missing in {C.DR_REGION}")

    _switch(urls, "DELETE", C.PRIMARY_REGION)
    say(f"{C.PRIMARY_REGION} is back")
    _until(lambda: not _health_failed(urls.primary), timeout=60)
    result.fenced_primary_refused_write = not _accepts_write(urls.primary, run_id)
    say(f"the returning primary refuses writes: {result.fenced_primary_refused_write}")
    result.failback_seconds, result.differences_after_failback = _failback_and_compare(regions, say)
    _until(lambda: _write_served_by(urls.global_url) == C.PRIMARY_REGION, timeout=120)
    result.served_by_after_failback = _write_served_by(urls.global_url)
    say(f"failed back; {result.differences_after_failback} difference(s) between the tables; the Global API "
        f"takes writes in {result.served_by_after_failback}")
    return result


# ---- partition ----------------------------------------------------------------------------------

@dataclass
class PartitionResult:
    HEADERS = ("measure", "value")
    lease_seconds: float = 0.0
    failover_seconds: float | None = None
    waited_out_lease_seconds: float = 0.0
    old_primary_last_ack_after_failover_start: float | None = None  # s; None: it acknowledged none after
    new_primary_first_ack_after_failover_start: float | None = None
    overlap_seconds: float = 0.0  # how long both regions acknowledged writes at once (0: never)
    acknowledged_by_old_primary: int = 0
    acknowledged_by_new_primary: int = 0
    lost_after_heal: int | None = None  # acknowledged writes missing from either table at the end
    failback_seconds: float | None = None
    differences_after_failback: int | None = None

    @property
    def passed(self) -> bool:
        last = self.old_primary_last_ack_after_failover_start
        within_lease = last is None or last <= self.lease_seconds + C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS
        return (self.overlap_seconds == 0 and within_lease and self.new_primary_first_ack_after_failover_start
                is not None and self.lost_after_heal == 0 and self.differences_after_failback == 0)

    def rows(self) -> list[list[Any]]:
        last = self.old_primary_last_ack_after_failover_start
        return [
            ["the old primary's lease", f"{self.lease_seconds:g} s"],
            ["failover --force (of which waiting out the lease)",
             f"{self.failover_seconds} s ({self.waited_out_lease_seconds} s)"],
            ["us-east-1's last acknowledged write", "before the failover" if last is None else
             f"{last} s after the failover began  (limit: one lease, {self.lease_seconds:g} s + "
             f"{C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS} s)"],
            ["us-west-2's first acknowledged write", f"{self.new_primary_first_ack_after_failover_start} s after "
                                                     f"the failover began"],
            ["both regions acknowledging at once", "never" if self.overlap_seconds == 0 else
             f"FOR {self.overlap_seconds} s"],
            ["writes acknowledged by us-east-1 / us-west-2", f"{self.acknowledged_by_old_primary} / "
                                                            f"{self.acknowledged_by_new_primary}"],
            ["acknowledged writes missing after the heal", self.lost_after_heal],
            ["failback command", f"{self.failback_seconds} s"],
            ["differences after failback", self.differences_after_failback],
        ]


def _lease_seconds(regions: Regions) -> float:
    """The old primary's lease length, from its own record (the app may run with LEASE_SECONDS). Just
    after a failback the record names the region active without a lease yet: its first renewal
    (within a minute) writes one, so this waits for it."""
    def record() -> dict[str, Any]:
        return regions.control(C.PRIMARY_REGION).get(C.FAILOVER_SK) or {}

    if _until(lambda: bool(record().get("lease_until") and record().get("updated_at")),
              timeout=60 * C.LEASE_RENEW_MINUTES + 30) is None:
        return C.LEASE_SECONDS
    held = record()
    return (parse_time(str(held["lease_until"])) - parse_time(str(held["updated_at"]))).total_seconds()


def partition(regions: Regions, urls: Urls, rate: float, warmup: float, say: Say) -> PartitionResult:
    result = PartitionResult()
    run_id = uuid.uuid4().hex[:6]
    _require_primary_active(regions, urls)
    operator = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
    result.lease_seconds = round(_lease_seconds(regions), 1)
    loads = [WriteLoad(urls.primary, rate / 2, f"{run_id}-e", C.PRIMARY_REGION).start(),
             WriteLoad(urls.standby, rate / 2, f"{run_id}-w", C.DR_REGION).start(),
             WriteLoad(urls.global_url, rate, f"{run_id}-g").start()]
    say(f"write load: {rate:g}/s through the Global API, and {rate / 2:g}/s straight to each region's API; "
        f"warming up {warmup:g} s")
    time.sleep(warmup)
    _switch(urls, "POST", "partition")
    _switch(urls, "POST", C.PRIMARY_REGION, caller=operator)
    say(f"partition: the regions cannot reach each other, and this operator cannot reach {C.PRIMARY_REGION}; "
        f"clients still reach both")
    started_wall, started = time.time(), time.monotonic()
    report = fo.failover(regions, C.DR_REGION, force=True, step=lambda line: say(f"  {line}"))
    result.failover_seconds = round(time.monotonic() - started, 3)
    result.waited_out_lease_seconds = round(report.waited_out_lease_seconds, 1)
    time.sleep(max(5.0, 2 * C.ROLE_CACHE_SECONDS))  # let us-west-2 take writes for a while
    for load in loads:
        load.stop()
    acks = [ack for load in loads for ack in load.acked.values()]
    old = [a.at for a in acks if a.region == C.PRIMARY_REGION]
    new = [a.at for a in acks if a.region == C.DR_REGION]
    old_after = [t for t in old if t > started_wall]
    result.old_primary_last_ack_after_failover_start = round(max(old_after) - started_wall, 3) if old_after else None
    result.new_primary_first_ack_after_failover_start = round(min(new) - started_wall, 3) if new else None
    result.overlap_seconds = round(max(0.0, max(old, default=0.0) - min(new, default=float("inf"))), 3)
    result.acknowledged_by_old_primary, result.acknowledged_by_new_primary = len(old), len(new)
    say(f"us-east-1 acknowledged {len(old)} writes, the last {result.old_primary_last_ack_after_failover_start} s "
        f"after the failover began; us-west-2 {len(new)}, the first "
        f"{result.new_primary_first_ack_after_failover_start} s after")

    _switch(urls, "DELETE", C.PRIMARY_REGION, caller=operator)
    _switch(urls, "DELETE", "partition")
    say("the partition heals")
    _until(lambda: fo.active_role(regions, C.PRIMARY_REGION).active_region == C.DR_REGION, timeout=120)
    ids = [i for load in loads for i, a in load.acked.items() if a.region == C.DR_REGION]
    _until(lambda: not set(ids) - _stored_ids(regions, C.PRIMARY_REGION, ids), timeout=120,
           every=1.0)  # us-west-2's writes reach us-east-1
    result.failback_seconds, result.differences_after_failback = _failback_and_compare(regions, say)
    every_id = [i for load in loads for i in load.acked]
    result.lost_after_heal = sum(len(set(every_id) - _stored_ids(regions, region, every_id)) for region in C.REGIONS)
    say(f"failed back; {result.lost_after_heal} acknowledged write(s) missing, "
        f"{result.differences_after_failback} difference(s) between the tables")
    return result


# ---- crash --------------------------------------------------------------------------------------

@dataclass
class CrashResult:
    HEADERS = ("failover killed after its step", "resumed in", "then")
    steps: list[dict[str, Any]] = field(default_factory=list)  # one per step the failover was killed after

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(not s["problems"] for s in self.steps)

    def rows(self) -> list[list[Any]]:
        return [[f"{s['killed_after']} (to {s['to']})", f"{s['resume_seconds']} s",
                 "converged" if not s["problems"] else "; ".join(s["problems"])] for s in self.steps]


def convergence_problems(regions: Regions, to_region: str, epoch: int, written: str) -> list[str]:
    """What is not yet as a finished failover to `to_region` at `epoch` leaves it."""
    problems = []
    for region in C.REGIONS:
        record = regions.control(region).get(C.FAILOVER_SK) or {}
        if (record.get("active_region"), int(record.get("epoch", -1))) != (to_region, epoch):
            problems.append(f"{region} records {record.get('active_region')} at epoch {record.get('epoch')}")
    if fo.pending_intent(regions, to_region) is not None:
        problems.append("a failover is still pending")
    incident = f"{fo.INCIDENT_PREFIX}{epoch}"
    if regions.events(to_region).live_ids(regions.stage, C.DELIVERY_SERVICE, "incident", [incident]) != {incident}:
        problems.append(f"the incident {incident} is not recorded")
    if not _stored_ids(regions, to_region, [written]):
        problems.append(f"the write acknowledged before the failover ({written}) is not in {to_region}")
    return problems


def crash(regions: Regions, urls: Urls, say: Say, steps: Sequence[str] = fo.STEPS[:-1]) -> CrashResult:
    """Each failover goes the other way from the one before (us-west-2, back to us-east-1, ...), so
    no failback is needed between them; the drill ends with us-east-1 active."""
    result = CrashResult()
    run_id = uuid.uuid4().hex[:6]
    _require_primary_active(regions, urls)
    target = C.DR_REGION
    for step in steps:
        written = f"drill-{run_id}-before-{step.replace(' ', '-')}"
        if _until(lambda event_id=written: _write(urls.global_url, event_id), timeout=60) is None:  # type: ignore[misc]
            raise fo.FailoverRefused(f"the Global API ({urls.global_url}) takes no write")
        killed = fo.failover(regions, target, force=True, step=lambda _: None, stop_after=step)
        started = time.monotonic()
        resumed = fo.failover(regions, target, force=True, resume=True, step=lambda _: None)
        seconds = round(time.monotonic() - started, 3)
        problems = convergence_problems(regions, target, killed.epoch, written)
        if resumed.epoch != killed.epoch:
            problems.append(f"resumed with epoch {resumed.epoch}, not {killed.epoch}")
        say(f"failover to {target} killed after '{step}', resumed in {seconds} s: "
            + ("converged" if not problems else "; ".join(problems)))
        result.steps.append({"killed_after": step, "to": target, "epoch": killed.epoch, "resume_seconds": seconds,
                             "problems": problems})
        target = regions.peer(target)
    if target == C.PRIMARY_REGION:  # the last failover went to us-west-2
        fo.failover(regions, C.PRIMARY_REGION, force=True, step=lambda _: None)
    return result


# ---- the drill ----------------------------------------------------------------------------------

@dataclass
class DrillReport:
    outage: OutageResult | None = None
    partition: PartitionResult | None = None
    crash: CrashResult | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in (self.outage, self.partition, self.crash) if r is not None)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed}
        for name in SCENARIOS:
            result = getattr(self, name)
            if result is not None:
                out[name] = {**result.__dict__, "passed": result.passed}
        return out


def run_drill(regions: Regions, urls: Urls, scenarios: Sequence[str] = ("outage",), rate: float = 10.0,
              warmup: float = 5.0, say: Say = print) -> DrillReport:
    report = DrillReport()
    for scenario in scenarios:
        say(f"== scenario: {scenario}")
        if scenario == "outage":
            report.outage = outage(regions, urls, rate, warmup, say)
        elif scenario == "partition":
            report.partition = partition(regions, urls, rate, warmup, say)
        elif scenario == "crash":
            report.crash = crash(regions, urls, say)
        else:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    record: dict[str, str | int] = {"at": format_time(utc_now()), "passed": int(report.passed),
                                    "scenarios": ",".join(scenarios)}
    for region in C.REGIONS:  # what `dr readiness` reads as the last drill
        regions.control(region).put(C.LAST_DRILL_SK, record)
    return report


def format_report(report: DrillReport) -> str:
    from tabulate import tabulate

    parts = []
    for name in SCENARIOS:
        result = getattr(report, name)
        if result is not None:
            verdict = "passed" if result.passed else "FAILED"
            parts.append(f"{name} ({verdict})\n" + str(tabulate(result.rows(), headers=list(result.HEADERS))))
    return "\n\n".join(parts)
