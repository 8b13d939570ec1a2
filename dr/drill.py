"""A scripted game day against the local stack: lose us-east-1 under a write load, fail over, measure.

1. A client writes events to the primary API at a steady rate and keeps the ids it got a 201 for.
2. us-east-1 is taken away: its AWS endpoint stops answering (the local stack's region switch).
3. Detection: the time until the primary's deep health check reports the failure (503 or no answer).
4. Failover to us-west-2 with `dr failover` (the same code as the CLI; --force only if the preflight
   refuses, which it does when replication had fallen behind).
5. RTO: from the outage until the standby API accepts a write.
6. RPO: the acknowledged writes missing in us-west-2, and how old the newest lost one was.
7. us-east-1 comes back, stays fenced, gets us-west-2's writes; fail back; verify --repair; both
   tables are compared and must be equal.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from chalicelib import constants as C
from chalicelib.times import utc_now
from dr import failover as fo
from dr import verify as vf
from ops.regions import Regions

DRILL_SERVICE = "dr-drill"  # the drill's writes are gauge events of this service, in production


@dataclass
class DrillResult:
    writes_acknowledged: int = 0
    detection_seconds: float | None = None
    failover_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_lost_writes: int = 0
    rpo_seconds: float = 0.0
    forced: bool = False
    fenced_primary_refused_write: bool = False
    failback_seconds: float | None = None
    differences_after_failback: int | None = None
    log: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "log"}


class WriteLoad:
    """Posts one event every 1/rate seconds to the primary; keeps what was acknowledged, and when."""

    def __init__(self, url: str, rate: float, run_id: str) -> None:
        self.url, self.rate, self.run_id = url, rate, run_id
        self.acked: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(1 / self.rate):
            event_id = f"drill-{self.run_id}-{n}"
            n += 1
            try:
                response = requests.post(f"{self.url}/metrics", timeout=2, json={
                    "kind": "gauge", "service": DRILL_SERVICE, "id": event_id, "name": "drill_write", "value": n})
                if response.status_code == 201:
                    self.acked[event_id] = time.time()
            except requests.RequestException:
                pass


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


def _accepts_write(url: str, run_id: str) -> bool:
    try:
        response = requests.post(f"{url}/metrics", timeout=2, json={
            "kind": "gauge", "service": DRILL_SERVICE, "id": f"drill-{run_id}-probe-{uuid.uuid4().hex[:8]}",
            "name": "drill_probe", "value": 1})
        return response.status_code == 201
    except requests.RequestException:
        return False


def _stored_ids(regions: Regions, region: str, ids: list[str]) -> set[str]:
    return regions.events(region).live_ids(C.DEFAULT_ENVIRONMENT, DRILL_SERVICE, "gauge", ids)


def run_drill(regions: Regions, primary_url: str, standby_url: str, switch_url: str, rate: float = 10.0,
              warmup: float = 5.0, say: Callable[[str], None] = print) -> DrillResult:
    result = DrillResult()
    run_id = uuid.uuid4().hex[:6]
    if fo.active_role(regions, C.PRIMARY_REGION).active_region != C.PRIMARY_REGION:
        raise fo.FailoverRefused("us-east-1 must be active before a drill; run `python -m dr failback` first.")
    load = WriteLoad(primary_url, rate, run_id)
    load.start()
    say(f"write load: {rate:g}/s on {primary_url}; warming up {warmup:g} s")
    time.sleep(warmup)

    requests.post(f"{switch_url}/_outage/{C.PRIMARY_REGION}", timeout=5).raise_for_status()
    outage_at, outage_wall = time.monotonic(), time.time()
    say(f"{C.PRIMARY_REGION} taken away")
    detected = _until(lambda: _health_failed(primary_url), timeout=120)
    result.detection_seconds = round(detected, 3) if detected is not None else None
    say(f"detected by the deep health check after {result.detection_seconds} s")
    load.stop()

    started = time.monotonic()
    try:
        fo.failover(regions, C.DR_REGION, step=lambda line: say(f"  {line}"))
    except fo.FailoverRefused as refused:
        say(f"preflight refused ({refused}); failing over with --force")
        result.forced = True
        fo.failover(regions, C.DR_REGION, force=True, step=lambda line: say(f"  {line}"))
    result.failover_seconds = round(time.monotonic() - started, 3)
    _until(lambda: _accepts_write(standby_url, run_id), timeout=300)
    result.rto_seconds = round(time.monotonic() - outage_at, 3)
    say(f"{C.DR_REGION} accepts writes: RTO {result.rto_seconds} s")

    acked = {i: t for i, t in load.acked.items() if t <= outage_wall}
    result.writes_acknowledged = len(acked)
    lost = set(acked) - _stored_ids(regions, C.DR_REGION, list(acked))
    result.rpo_lost_writes = len(lost)
    result.rpo_seconds = round(max((outage_wall - acked[i] for i in lost), default=0.0), 3)
    say(f"RPO: {len(lost)} of {len(acked)} acknowledged writes missing in {C.DR_REGION}")

    requests.delete(f"{switch_url}/_outage/{C.PRIMARY_REGION}", timeout=5).raise_for_status()
    say(f"{C.PRIMARY_REGION} is back")
    _until(lambda: not _health_failed(primary_url), timeout=60)
    result.fenced_primary_refused_write = not _accepts_write(primary_url, run_id)
    say(f"the returning primary refuses writes: {result.fenced_primary_refused_write}")

    started = time.monotonic()
    fo.failover(regions, C.PRIMARY_REGION, force=True, step=lambda line: say(f"  {line}"))
    result.failback_seconds = round(time.monotonic() - started, 3)
    source, replica = regions.table(C.PRIMARY_REGION), regions.table(C.DR_REGION)
    differences = vf.compare(source, replica)
    vf.repair(differences, source, replica, utc_now(), time.monotonic() + 300)
    for _ in range(20):  # let the stream deliver what the failback itself wrote
        result.differences_after_failback = len(vf.compare(source, replica))
        if result.differences_after_failback == 0:
            break
        time.sleep(0.5)
    say(f"failed back; {result.differences_after_failback} difference(s) between the tables")
    return result


def format_result(result: DrillResult) -> str:
    from tabulate import tabulate

    rows = [
        ["detection (outage -> deep health check fails)", f"{result.detection_seconds} s"],
        ["failover command", f"{result.failover_seconds} s" + (" (--force)" if result.forced else "")],
        ["RTO (outage -> standby accepts writes)", f"{result.rto_seconds} s  (target < 300 s)"],
        ["RPO: acknowledged writes lost", f"{result.rpo_lost_writes} of {result.writes_acknowledged}"],
        ["RPO: age of the newest lost write", f"{result.rpo_seconds} s  (target < 60 s)"],
        ["returning primary refused a write", "yes" if result.fenced_primary_refused_write else "NO"],
        ["failback command", f"{result.failback_seconds} s"],
        ["differences after failback", result.differences_after_failback],
    ]
    return str(tabulate(rows, headers=["measure", "value"]))
