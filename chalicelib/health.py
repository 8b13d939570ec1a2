"""GET /health: a shallow liveness answer and a deep check of this region's dependencies."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib.aws_errors import AWS_ERRORS, reason
from chalicelib.checks import age_seconds, replication_check, table_check
from chalicelib.context import Context
from chalicelib.control import ControlStore
from chalicelib.keys import health_state_sk


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
        "table": table_check(ctx.table),
        "replication": replication_check(ctx.replica(role), now),
        "last_health_check": _last_health_check(ctx.control, settings.region, now),
    }
    healthy = all(check["status"] != "fail" for check in checks.values())
    body.update(status="ok" if healthy else "unhealthy", checks=checks)
    return HealthReport(healthy, body)


def _last_health_check(store: ControlStore, region: str, now: datetime) -> dict[str, Any]:
    """When the scheduled check last ran and what it last alerted. Informational: it never fails the
    deep check, which the scheduled check itself probes."""
    try:
        record = store.get(health_state_sk(region))
    except AWS_ERRORS as error:
        return {"status": "unknown", "detail": reason(error)}
    if record is None:
        return {"status": "unknown", "detail": "no scheduled health check recorded yet"}
    age = round(age_seconds(record, now), 3)
    check = {"status": "ok", "age_seconds": age, "state": record.get("alerted"), "failed": record.get("failed") or None}
    if age > C.HEALTH_STALE_SECONDS:
        check.update(status="stale", detail=f"the scheduled health check has not run for {age:.0f} s")
    return check
