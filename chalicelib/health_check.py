"""The scheduled health check (every HEALTH_CHECK_INTERVAL_MINUTES, in each region): one run.

Each run performs the checks (chalicelib.checks), emits HealthCheckFailed per check (and
"overall"), records a sample in the table (TTL), and e-mails through SNS only when the overall
state changes (chalicelib.alerts decides; chalicelib.alert_state remembers, in both regions;
chalicelib.alert_email words it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib import alerts
from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.alert_email import compose_alert
from chalicelib.alert_state import load_state, save_state
from chalicelib.aws_errors import AWS_ERRORS, reason
from chalicelib.checks import CheckResult, run_checks
from chalicelib.context import Context
from chalicelib.control import ControlStore
from chalicelib.logs import log_event
from chalicelib.metrics import emit
from chalicelib.probes import Probes
from chalicelib.times import format_time


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
        _record_sample(ctx.control, checks, healthy, now, report)
    stores = ([ctx.control] if own_table_up else []) + ([ctx.peer_control] if ctx.peer_control is not None else [])
    key = K.health_state_sk(settings.region)
    previous = load_state(stores, key)
    if previous is not None and previous.pending_subject:  # an earlier run decided it but could not send it
        if _publish(probes, previous.pending_subject, previous.pending_message, report):
            previous = previous.with_pending("", "")
    state, kind = alerts.next_state(previous, healthy, failed, now)
    report.alerted = state.alerted
    if kind is not None:
        subject, message = compose_alert(kind, settings, probes.function_names, checks, state)
        # Remember the alert before sending it: a crash after this line re-sends it, never loses it;
        # and when no table can remember it, it is not sent, so a broken check cannot mail every run.
        state = save_state(stores, key, state.with_pending(subject, message), report.notes)
        if _publish(probes, subject, message, report):
            state = state.with_pending("", "")
            report.alert = kind
    save_state(stores, key, state, report.notes)
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


def _record_sample(store: ControlStore, checks: list[CheckResult], healthy: bool, now: datetime,
                   report: RunReport) -> None:
    at = format_time(now)
    sample: dict[str, str | int | float] = {
        "updated_at": at, "healthy": int(healthy),
        "checks": ",".join(f"{c.name}={c.status}" for c in checks),
        C.TTL_ATTRIBUTE: int((now + timedelta(days=C.HEALTH_SAMPLE_TTL_DAYS)).timestamp()),
    }
    try:
        store.put(K.health_sample_sk(store.region, at), sample)
    except AWS_ERRORS as error:
        report.notes.append(f"sample not recorded: {reason(error)}")
