"""GET /health: a shallow liveness answer and a deep check of this region's dependencies."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.errors import AWS_ERRORS
from chalicelib.store import MetricsStore


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.healthy else 503


def check_health(ctx: Context, now: datetime, deep: bool) -> HealthReport:
    settings = ctx.settings
    body: dict[str, Any] = {"status": "ok", "region": settings.region, "role": None, "version": settings.version}
    try:
        role = ctx.role()
        body["role"] = role.name
    except AWS_ERRORS:  # the table is unreachable, missing or refusing us
        body["status"] = "unhealthy"
        return HealthReport(False, body)
    if not deep:
        return HealthReport(True, body)
    checks = {
        "table": table_check(ctx.store),
        "replication": replication_check(ctx.replica(role), now),
        "last_health_check": _last_health_check(ctx.store, settings.region, now),
    }
    healthy = all(check["status"] != "fail" for check in checks.values())
    body.update(status="ok" if healthy else "unhealthy", checks=checks)
    return HealthReport(healthy, body)


def table_check(store: MetricsStore) -> dict[str, Any]:
    try:
        status = store.table_status()
    except AWS_ERRORS as error:
        return {"status": "fail", "table": store.table_name, "detail": getattr(error, "message", type(error).__name__)}
    return {"status": "ok" if status == "ACTIVE" else "fail", "table": store.table_name, "table_status": status}


def _age(record: dict[str, Any], now: datetime) -> float:
    return (now - datetime.fromisoformat(str(record["updated_at"]))).total_seconds()


def replication_check(replica: MetricsStore, now: datetime) -> dict[str, Any]:
    """The last heartbeat that reached the replica: its lag, and how long ago it arrived."""
    try:
        record = replica.get_control(C.HEARTBEAT_SK)
    except AWS_ERRORS as error:
        return {"status": "fail", "detail": getattr(error, "message", type(error).__name__)}
    if record is None:
        return {"status": "unknown", "detail": "no replication heartbeat has reached the replica yet"}
    lag = float(record.get("lag_seconds", 0))
    since = _age(record, now)
    check: dict[str, Any] = {"status": "ok", "replica_region": replica.region, "lag_seconds": lag,
                             "last_heartbeat_seconds_ago": round(since, 3)}
    if lag > C.RPO_TARGET_SECONDS:
        check.update(status="fail", detail=f"lag over the {C.RPO_TARGET_SECONDS} s RPO target")
    elif since > C.REPLICATION_STALL_SECONDS:
        check.update(status="fail",
                     detail=f"no heartbeat for over {C.REPLICATION_STALL_SECONDS} s: replication stalled")
    return check


def _last_health_check(store: MetricsStore, region: str, now: datetime) -> dict[str, Any]:
    """When the scheduled check last ran and what it last alerted. Informational: it never fails the
    deep check, which the scheduled check itself probes."""
    try:
        record = store.get_control(C.HEALTH_STATE_SK_PREFIX + region)
    except AWS_ERRORS as error:
        return {"status": "unknown", "detail": getattr(error, "message", type(error).__name__)}
    if record is None:
        return {"status": "unknown", "detail": "no scheduled health check recorded yet"}
    age = round(_age(record, now), 3)
    check = {"status": "ok", "age_seconds": age, "state": record.get("alerted"), "failed": record.get("failed") or None}
    if age > C.HEALTH_STALE_SECONDS:
        check.update(status="stale", detail=f"the scheduled health check has not run for {age:.0f} s")
    return check
