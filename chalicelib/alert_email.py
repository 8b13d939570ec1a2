"""The health check's e-mail: a subject that says what happened where, a body that says what to
do first."""
from __future__ import annotations

from chalicelib import alerts, names
from chalicelib import constants as C
from chalicelib.checks import CheckResult
from chalicelib.config import Settings

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


def compose_alert(kind: alerts.AlertKind, settings: Settings, function_names: tuple[str, ...],
                  checks: list[CheckResult], state: alerts.AlertState) -> tuple[str, str]:
    """(subject, body) of the e-mail for one alert."""
    where = f"{names.APP_NAME} {settings.stage} {settings.region}"
    lines = [f"Time: {state.updated_at}", f"Stage: {settings.stage}", f"Region: {settings.region}", ""]
    failed = [c for c in checks if c.failed]
    if kind == "unhealthy":
        subject = f"[{where}] UNHEALTHY: {', '.join(c.name for c in failed)}"
        lines.append("What failed:")
        lines += [f"  - {c.name}: {c.detail}" for c in failed]
        lines += ["", "What to do first:"]
        fill = {"region": settings.region, "peer": settings.peer_region,
                "functions": ", ".join(function_names) or names.api_function("<stage>")}
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
