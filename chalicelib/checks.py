"""The health checks themselves: each looks at one thing and says ok, fail or skipped.

GET /health?deep=true uses the table and replication checks; the scheduled health check
(chalicelib.health_check) runs them all:
  api            GET <HEALTH_CHECK_URL>/health?deep=true over HTTP (skipped when no URL is configured)
  table          this region's table is ACTIVE
  replica-table  the active region only: the peer table that replication writes to is ACTIVE
  replication    the last heartbeat in the replica is recent and its lag under the RPO (the
                 standby checks the active region's data still arriving)
  lambda         this app's functions in this region are Active and their last update did not fail
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib.aws_errors import AWS_ERRORS, reason
from chalicelib.context import Context
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from chalicelib.probes import Probes
from chalicelib.role import RegionRole, role_from_record
from chalicelib.times import parse_time, utc_now


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "ok", "fail" or "skipped"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


# ---- the checks GET /health?deep=true shares (plain dicts: they are its body) -------------------

def table_check(table: Table) -> dict[str, Any]:
    try:
        status = table.status()
    except AWS_ERRORS as error:
        return {"status": "fail", "table": table.name, "detail": reason(error)}
    return {"status": "ok" if status == "ACTIVE" else "fail", "table": table.name, "table_status": status}


def age_seconds(record: dict[str, Any], now: datetime) -> float:
    """How long ago a control record was written (its updated_at)."""
    return (now - parse_time(str(record["updated_at"]))).total_seconds()


def replication_check(replica: Table, now: datetime) -> dict[str, Any]:
    """The last heartbeat that reached the replica: its lag, and how long ago it arrived."""
    try:
        record = ControlStore(replica).get(C.HEARTBEAT_SK)
    except AWS_ERRORS as error:
        return {"status": "fail", "detail": reason(error)}
    if record is None:
        return {"status": "unknown", "detail": "no replication heartbeat has reached the replica yet"}
    lag = float(record.get("lag_seconds", 0))
    since = age_seconds(record, now)
    check: dict[str, Any] = {"status": "ok", "replica_region": replica.region, "lag_seconds": lag,
                             "last_heartbeat_seconds_ago": round(since, 3)}
    if lag > C.RPO_TARGET_SECONDS:
        check.update(status="fail", detail=f"lag over the {C.RPO_TARGET_SECONDS} s RPO target")
    elif since > C.REPLICATION_STALL_SECONDS:
        check.update(status="fail",
                     detail=f"no heartbeat for over {C.REPLICATION_STALL_SECONDS} s: replication stalled")
    return check


# ---- the scheduled check's run of every check ---------------------------------------------------

def run_checks(ctx: Context, probes: Probes, now: datetime) -> list[CheckResult]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-probe") as pool:
        api = pool.submit(_api_check, probes)  # an HTTP round trip: overlap it with the AWS calls
        lambdas = pool.submit(_lambda_check, probes)
        table = _table_result("table", ctx.table)
        checks = [table]
        role = _role(ctx, table.failed)
        if role.is_active and ctx.peer is not None:
            checks.append(_table_result("replica-table", ctx.peer))
            checks.append(_replication_result(replication_check(ctx.peer, now)))
        elif not table.failed:  # the standby: is the active region's data still arriving?
            checks.append(_replication_result(replication_check(ctx.table, now)))
        return [api.result(), *checks, lambdas.result()]


def _replication_result(check: dict[str, Any]) -> CheckResult:
    if "detail" in check:
        detail = str(check["detail"])
    else:
        detail = f"lag {check.get('lag_seconds')} s, last heartbeat {check.get('last_heartbeat_seconds_ago')} s ago"
    return CheckResult("replication", "fail" if check["status"] == "fail" else "ok", detail)


def _role(ctx: Context, own_table_failed: bool) -> RegionRole:
    """This region's role; with its table down, the peer's failover record decides (and with no
    record anywhere, the configured primary is active)."""
    if not own_table_failed:
        try:
            return ctx.role()
        except AWS_ERRORS:
            pass
    record = None
    if ctx.peer_control is not None:
        try:
            record = ctx.peer_control.get(C.FAILOVER_SK)
        except AWS_ERRORS:
            pass
    return role_from_record(ctx.settings, record, utc_now())


def _api_check(probes: Probes) -> CheckResult:
    if not probes.api_url:
        return CheckResult("api", "skipped", "HEALTH_CHECK_URL is not set for this stage")
    url = probes.api_url.rstrip("/") + "/health?deep=true"
    try:
        status, body = probes.http_get(url, C.HEALTH_PROBE_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure to get an answer is the finding
        return CheckResult("api", "fail", f"GET {url} got no answer: {type(error).__name__}")
    if status == 200:
        return CheckResult("api", "ok", f"GET {url} -> 200")
    checks = body.get("checks")
    failing = [f"{name}: {check.get('detail') or check.get('status')}"
               for name, check in (checks.items() if isinstance(checks, dict) else [])
               if isinstance(check, dict) and check.get("status") == "fail"]
    return CheckResult("api", "fail", f"GET {url} -> {status}" + (f" ({'; '.join(failing)})" if failing else ""))


def _table_result(name: str, table: Table) -> CheckResult:
    check = table_check(table)
    where = f"{table.name} in {table.region}"
    return CheckResult(name, check["status"], f"{where}: {check.get('table_status') or check.get('detail')}")


def _lambda_check(probes: Probes) -> CheckResult:
    if not probes.function_names:
        return CheckResult("lambda", "skipped", "not running in Lambda")
    client = probes.lambda_client()
    problems = []
    for name in probes.function_names:
        try:
            config = client.get_function_configuration(FunctionName=name)
        except AWS_ERRORS as error:
            problems.append(f"{name}: {reason(error)}")
            continue
        state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
        if state != "Active" or update == "Failed":
            problems.append(f"{name}: State {state}, LastUpdateStatus {update} "
                            f"({config.get('StateReason') or config.get('LastUpdateStatusReason') or 'no reason'})")
    if problems:
        return CheckResult("lambda", "fail", "; ".join(problems))
    return CheckResult("lambda", "ok", f"{len(probes.function_names)} functions Active")
