"""GET /health: a shallow liveness answer and a deep check of this region's dependencies."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib.config import Settings
from chalicelib.errors import ApiError
from chalicelib.role import current_role
from chalicelib.store import MetricsStore


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.healthy else 503


def check_health(settings: Settings, store: MetricsStore, now: datetime, deep: bool) -> HealthReport:
    body: dict[str, Any] = {"status": "ok", "region": settings.region, "role": None, "version": settings.version}
    try:
        body["role"] = current_role(store, settings).name
    except ApiError:
        body["status"] = "unhealthy"
        return HealthReport(False, body)
    if not deep:
        return HealthReport(True, body)
    checks = {
        "table": _table_check(store),
        "replication": _age_check(store, C.HEARTBEAT_SK, now, "no replication heartbeat recorded yet",
                                  limit_seconds=C.RPO_TARGET_SECONDS),
        "last_health_check": _age_check(store, C.HEALTH_SK, now, "no scheduled health check recorded yet"),
    }
    healthy = all(check["status"] != "fail" for check in checks.values())
    body.update(status="ok" if healthy else "unhealthy", checks=checks)
    return HealthReport(healthy, body)


def _table_check(store: MetricsStore) -> dict[str, Any]:
    try:
        status = store.table_status()
    except ApiError as error:
        return {"status": "fail", "table": store.table_name, "detail": error.message}
    return {"status": "ok" if status == "ACTIVE" else "fail", "table": store.table_name, "table_status": status}


def _age_check(store: MetricsStore, sort_key: str, now: datetime, missing: str,
               limit_seconds: float | None = None) -> dict[str, Any]:
    """Age of a control item's `updated_at`; fails when older than `limit_seconds` (if given)."""
    try:
        record = store.get_control(sort_key)
    except ApiError as error:
        return {"status": "fail", "detail": error.message}
    if record is None or "updated_at" not in record:
        return {"status": "unknown", "detail": missing}
    age = (now - datetime.fromisoformat(str(record["updated_at"]))).total_seconds()
    check: dict[str, Any] = {"status": "ok", "age_seconds": round(age, 3), "updated_at": record["updated_at"]}
    if limit_seconds is not None and age > limit_seconds:
        check.update(status="fail", detail=f"older than the {limit_seconds:g} s target")
    if "state" in record:
        check["state"] = record["state"]
    return check
