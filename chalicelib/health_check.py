"""The scheduled health check (every HEALTH_CHECK_INTERVAL_MINUTES, in each region).

Each region watches what it owns:
  api            GET <HEALTH_CHECK_URL>/health?deep=true over HTTP (skipped when no URL is configured)
  table          this region's table is ACTIVE
  replica-table  the active region only: the peer table that replication writes to is ACTIVE
  replication    the active region only: the last heartbeat in the replica is recent, its lag under the RPO
  lambda         this app's functions in this region are Active and their last update did not fail
Every run emits HealthCheckFailed per check (and "overall"), records a sample in the table (TTL),
and e-mails through SNS only when the overall state changes (chalicelib.alerts).

The alert state is kept in both regions' tables, so the check remembers what it last sent even
while its own table is the thing that is down.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import alerts
from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.errors import AWS_ERRORS, ApiError
from chalicelib.health import replication_check, table_check
from chalicelib.logs import log_event
from chalicelib.metrics import emit
from chalicelib.role import RegionRole
from chalicelib.store import MetricsStore

# What the on-call engineer should do first when a check fails.
FIRST_STEPS: dict[str, str] = {
    "api": "curl the URL with ?deep=true and see which of its checks fails; then read the API "
           "function's log group (/aws/lambda/{functions}) for ERROR lines.",
    "table": "python -m dr status. If DynamoDB in {region} is down or the table is not ACTIVE and does "
             "not recover, fail over: dr/RUNBOOK.md.",
    "replica-table": "python -m dr status. The DR copy in {peer} is not taking writes, so the RPO grows; "
                     "once it is ACTIVE again run: python -m dr replicate.",
    "replication": "python -m dr status, then python -m dr replicate; if lag stays over the RPO, "
                   "python -m dr verify --repair.",
    "lambda": "aws lambda get-function-configuration --region {region} --function-name <the function above> "
              "and read State and LastUpdateStatusReason; redeploy with chalice deploy --stage <stage>.",
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "ok", "fail" or "skipped"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass(frozen=True)
class Probes:
    """What the check reaches outside the table: the API over HTTP, Lambda, SNS."""

    api_url: str | None
    http_get: Callable[[str, float], tuple[int, dict[str, Any]]]
    lambda_client: Callable[[], Any]
    function_names: tuple[str, ...]
    publish: Callable[[str, str], None]  # (subject, message) -> the alert topic


@dataclass
class RunReport:
    healthy: bool
    checks: list[CheckResult]
    alerted: str
    alert: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "alerted": self.alerted, "alert": self.alert,
                "checks": {c.name: c.status for c in self.checks}, "notes": self.notes}


def run_health_check(ctx: Context, probes: Probes, now: datetime) -> RunReport:
    settings = ctx.settings
    checks = run_checks(ctx, probes, now)
    failed = [c.name for c in checks if c.failed]
    healthy = not failed
    dims = {"Stage": settings.stage}
    for check in checks:
        if check.status != "skipped":
            emit({"HealthCheckFailed": (int(check.failed), "Count")}, {**dims, "Check": check.name})
    emit({"HealthCheckFailed": (int(not healthy), "Count")}, {**dims, "Check": "overall"})

    report = RunReport(healthy, checks, alerted="healthy")
    # While this region's table fails its check, leave it alone: each call to it would only wait
    # out its timeouts, and the alert state lives on in the peer region's table.
    own_table_up = not next(c for c in checks if c.name == "table").failed
    if own_table_up:
        _record_sample(ctx.store, checks, healthy, now, report)
    tables = ([ctx.store] if own_table_up else []) + ([ctx.peer] if ctx.peer is not None else [])
    key = C.HEALTH_STATE_SK_PREFIX + settings.region
    previous = _load_state(tables, key)
    if previous is not None and previous.pending_subject:  # an earlier run decided it but could not send it
        if _publish(probes, previous.pending_subject, previous.pending_message, report):
            previous = previous.with_pending("", "")
    state, kind = alerts.next_state(previous, healthy, failed, now)
    report.alerted = state.alerted
    if kind is not None:
        subject, message = compose_alert(kind, ctx, probes, checks, state)
        # Remember the alert before sending it: a crash after this line re-sends it, never loses it;
        # and when no table can remember it, it is not sent, so a broken check cannot mail every run.
        state = _save_state(tables, key, state.with_pending(subject, message), report)
        if _publish(probes, subject, message, report):
            state = state.with_pending("", "")
            report.alert = kind
    _save_state(tables, key, state, report)
    return report


def _publish(probes: Probes, subject: str, message: str, report: RunReport) -> bool:
    """Send one alert; a failure is logged and the alert stays pending for the next run."""
    try:
        probes.publish(subject, message)
    except Exception as error:  # noqa: BLE001 - SNS down, a missing permission or topic: keep it pending
        report.notes.append(f"alert not published, kept for the next run: {type(error).__name__}")
        log_event("ERROR", "alert not published", subject=subject, error=type(error).__name__)
        return False
    return True


def run_checks(ctx: Context, probes: Probes, now: datetime) -> list[CheckResult]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-probe") as pool:
        api = pool.submit(_api_check, probes)  # an HTTP round trip: overlap it with the AWS calls
        lambdas = pool.submit(_lambda_check, probes)
        table = _table_check("table", ctx.store)
        checks = [table]
        role = _role(ctx, table.failed)
        if role.is_active and ctx.peer is not None:
            checks.append(_table_check("replica-table", ctx.peer))
            checks.append(_replication_result(replication_check(ctx.peer, now)))
        elif not table.failed:  # the standby: is the active region's data still arriving?
            checks.append(_replication_result(replication_check(ctx.store, now)))
        return [api.result(), *checks, lambdas.result()]


def _replication_result(check: dict[str, Any]) -> CheckResult:
    return CheckResult("replication", "fail" if check["status"] == "fail" else "ok", _describe(check))


def _role(ctx: Context, own_table_failed: bool) -> RegionRole:
    """This region's role; with its table down, the peer's failover record decides (and with no
    record anywhere, the configured primary is active)."""
    settings = ctx.settings
    if not own_table_failed:
        try:
            return ctx.role()
        except AWS_ERRORS:
            pass
    if ctx.peer is not None:
        try:
            record = ctx.peer.get_control(C.FAILOVER_SK)
        except AWS_ERRORS:
            record = None
        if record:
            return RegionRole(settings.region, str(record["active_region"]), int(record["epoch"]))
    return RegionRole(settings.region, settings.primary_region, 0)


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


def _table_check(name: str, store: MetricsStore) -> CheckResult:
    check = table_check(store)
    where = f"{store.table_name} in {store.region}"
    return CheckResult(name, check["status"], f"{where}: {check.get('table_status') or check.get('detail')}")


def _lambda_check(probes: Probes) -> CheckResult:
    if not probes.function_names:
        return CheckResult("lambda", "skipped", "not running in Lambda")
    client = probes.lambda_client()
    problems = []
    for name in probes.function_names:
        try:
            config = client.get_function_configuration(FunctionName=name)
        except (ClientError, BotoCoreError) as error:
            problems.append(f"{name}: {_reason(error)}")
            continue
        state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
        if state != "Active" or update == "Failed":
            problems.append(f"{name}: State {state}, LastUpdateStatus {update} "
                            f"({config.get('StateReason') or config.get('LastUpdateStatusReason') or 'no reason'})")
    if problems:
        return CheckResult("lambda", "fail", "; ".join(problems))
    return CheckResult("lambda", "ok", f"{len(probes.function_names)} functions Active")


def _reason(error: Exception) -> str:
    if isinstance(error, ApiError):
        return error.message
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__


def _describe(check: dict[str, Any]) -> str:
    if "detail" in check:
        return str(check["detail"])
    return f"lag {check.get('lag_seconds')} s, last heartbeat {check.get('last_heartbeat_seconds_ago')} s ago"


def _record_sample(store: MetricsStore, checks: list[CheckResult], healthy: bool, now: datetime,
                   report: RunReport) -> None:
    sample: dict[str, str | int | float] = {
        "updated_at": now.isoformat(), "healthy": int(healthy),
        "checks": ",".join(f"{c.name}={c.status}" for c in checks),
        C.TTL_ATTRIBUTE: int((now + timedelta(days=C.HEALTH_SAMPLE_TTL_DAYS)).timestamp()),
    }
    try:
        store.put_control(f"{C.HEALTH_SAMPLE_SK_PREFIX}{store.region}#{now.isoformat()}", sample)
    except AWS_ERRORS as error:
        report.notes.append(f"sample not recorded: {_reason(error)}")


def _load_state(tables: list[MetricsStore], key: str) -> alerts.AlertState | None:
    """The newest copy of this region's alert state among the tables that answer."""
    found = []
    for store in tables:
        try:
            record = store.get_control(key)
        except AWS_ERRORS:
            continue
        if record:
            found.append(alerts.AlertState.from_record(record))
    return max(found, key=lambda s: (s.seq, s.updated_at), default=None)


class AlertStateUnavailable(Exception):
    """No table could store the alert state, so no alert is sent (the metrics still are)."""


def _save_state(tables: list[MetricsStore], key: str, state: alerts.AlertState,
                report: RunReport) -> alerts.AlertState:
    """Write the state, one save later than the last, to every table that answers; at least one must."""
    state = replace(state, seq=state.seq + 1)
    saved = 0
    for store in tables:
        try:
            store.put_control(key, state.as_record())
            saved += 1
        except AWS_ERRORS as error:
            note = f"alert state not saved in {store.region}: {_reason(error)}"
            if note not in report.notes:
                report.notes.append(note)
    if not saved:
        raise AlertStateUnavailable("; ".join(report.notes) or "no table to keep the alert state in")
    return state


def compose_alert(kind: alerts.AlertKind, ctx: Context, probes: Probes, checks: list[CheckResult],
                  state: alerts.AlertState) -> tuple[str, str]:
    """The e-mail: a subject that says what happened where, a body that says what to do first."""
    settings = ctx.settings
    where = f"devops-metrics {settings.stage} {settings.region}"
    lines = [f"Time: {state.updated_at}", f"Stage: {settings.stage}", f"Region: {settings.region}", ""]
    failed = [c for c in checks if c.failed]
    if kind == "unhealthy":
        subject = f"[{where}] UNHEALTHY: {', '.join(c.name for c in failed)}"
        lines.append("What failed:")
        lines += [f"  - {c.name}: {c.detail}" for c in failed]
        lines += ["", "What to do first:"]
        fill = {"region": settings.region, "peer": settings.peer_region,
                "functions": ", ".join(probes.function_names) or "devops-metrics-<stage>"}
        lines += [f"  - {c.name}: {FIRST_STEPS[c.name].format(**fill)}" for c in failed]
    elif kind == "recovered":
        subject = f"[{where}] RECOVERED: every check passes"
        lines.append(f"Every check passed in the last {C.HEALTH_RECOVERY_RUNS} runs.")
    else:
        subject = f"[{where}] FLAPPING: alerts paused"
        lines.append(f"The health check changed between pass and fail {state.changes} times in the last "
                     f"{len(state.history)} runs (oldest first: {state.history}; F = failed).")
        lines.append("Alerts are paused until it settles; one more e-mail will give the settled state.")
        if failed:
            lines += ["Failing in this run:"] + [f"  - {c.name}: {c.detail}" for c in failed]
    lines += ["", "Checks in this run:"] + [f"  {c.name}: {c.status} {c.detail}".rstrip() for c in checks]
    return subject[:C.ALERT_SUBJECT_MAX], "\n".join(lines)


def http_get_json(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    import requests  # only the health check function needs it

    response = requests.get(url, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def function_names(own_name: str | None) -> tuple[str, ...]:
    """This app's Lambda functions in this region, named after the health check's own name
    (<app>-<stage>-health_check; the API handler is <app>-<stage>). Empty outside Lambda."""
    suffix = "-" + C.HEALTH_CHECK_FUNCTION
    if not own_name or not own_name.endswith(suffix):
        return ()
    prefix = own_name.removesuffix(suffix)
    return (prefix, *(f"{prefix}-{name}" for name in C.APP_FUNCTIONS))


def alert_topic_arn(settings: Any, invoked_function_arn: str | None) -> str | None:
    """ALERT_TOPIC_ARN when set; else the regional stack's topic in this function's account."""
    if settings.alert_topic_arn:
        return str(settings.alert_topic_arn)
    if not invoked_function_arn or invoked_function_arn.count(":") < 5:
        return None
    account = invoked_function_arn.split(":")[4]
    return f"arn:aws:sns:{settings.region}:{account}:{C.TABLE_NAME_PREFIX}{settings.stage}-alerts"


def aws_probes(settings: Any, lambda_context: Any, client: Callable[[str], Any]) -> Probes:
    """The probes of a deployed (or locally run) health check; `client(service)` makes a boto3 client."""
    topic = alert_topic_arn(settings, getattr(lambda_context, "invoked_function_arn", None))
    sns: list[Any] = []

    def publish(subject: str, message: str) -> None:
        if topic is None:
            raise RuntimeError("no alert topic: set ALERT_TOPIC_ARN or run in Lambda")
        if not sns:
            sns.append(client("sns"))
        sns[0].publish(TopicArn=topic, Subject=subject, Message=message)

    lambdas: list[Any] = []

    def lambda_client() -> Any:
        if not lambdas:
            lambdas.append(client("lambda"))
        return lambdas[0]

    return Probes(api_url=settings.health_check_url, http_get=http_get_json, lambda_client=lambda_client,
                  function_names=function_names(getattr(lambda_context, "function_name", None)), publish=publish)
