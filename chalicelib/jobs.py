"""What the functions that are not the API do, apart from Chalice: the stream handler, the
replication sweep, the DORA publication, the health check and the pipeline's own events.
Plain inputs in, a summary of the run out (logged by chalicelib.logs.logged_run)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import constants as C
from chalicelib import delivery, lease, replication, rollups
from chalicelib.context import Context
from chalicelib.events import PutResult
from chalicelib.health_check import run_health_check
from chalicelib.metrics import DORA_METRICS, emit
from chalicelib.models import parse_events
from chalicelib.probes import Probes
from chalicelib.role import require_active
from chalicelib.summary import service_summary


def replicate_stream(ctx: Context, records: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """This table's daily rollups (chalicelib.rollups), in either region, then, in the active region,
    the stream -> the peer's table. A failure raises, so Lambda retries the batch: both are idempotent."""
    ctx.rollups.start(now, ctx.settings.region)
    kept = ctx.rollups.apply(rollups.changes_from_stream(records), now)
    if ctx.peer is None or not ctx.role().is_active:  # this region's changes are replicas
        return {"replicated": 0, "reason": "standby", "rollup_parts_written": kept.parts,
                "rollup_write_units": kept.units}

    changes = replication.changes_from_stream(records)
    result = replication.Replicator(ctx.peer, ctx.settings.region).apply(changes, now)
    lag = replication.stream_lag_seconds(records, now)
    measured: dict[str, tuple[float, str]] = {"ItemsReplicated": (result.applied, "Count")}
    if lag is not None:
        measured["ReplicationLagSeconds"] = (lag, "Seconds")
    emit(measured, {"Stage": ctx.settings.stage, "SourceRegion": ctx.settings.region, "Path": "stream"})
    return {"records": len(records), "keys": len(changes), "replicated": result.applied,
            "already_current": result.skipped_older, "rollup_parts_written": kept.parts,
            "rollup_write_units": kept.units, "lag_seconds": lag}


def renew_lease(ctx: Context, now: datetime) -> dict[str, Any]:
    """The scheduled lease renewal (chalicelib.lease): every minute, in both regions; the standby's
    run only learns of a failover it did not hear about."""
    renewal = lease.renew(ctx.settings, ctx.control, ctx.peer_control, now)
    ctx.forget_role()
    emit({"LeaseRenewed": (int(renewal.renewed), "Count")}, {"Stage": ctx.settings.stage,
                                                             "Region": ctx.settings.region})
    return renewal.as_dict()


def readiness_check(ctx: Context, now: datetime) -> dict[str, Any]:
    """The daily readiness check (chalicelib.readiness), in each region: ReadinessFindings, which
    the readiness alarm e-mails when it is not 0."""
    from chalicelib import readiness

    report = readiness.check(readiness.ClientSources(ctx.settings), now)
    emit({"ReadinessFindings": (len(report.findings), "Count")}, {"Stage": ctx.settings.stage,
                                                                  "Region": ctx.settings.region})
    return {"ready": report.ready, "findings": [f.as_dict() for f in report.findings], "notes": report.notes}


def sweep(ctx: Context, now: datetime, full: bool = False) -> dict[str, Any]:
    """The scheduled sweep: copy to the peer what the stream missed (active region only)."""
    if ctx.peer is None or not ctx.role().is_active:
        return {"copied": 0, "reason": "standby"}

    replicator = replication.Replicator(ctx.peer, ctx.settings.region)
    report = replication.ReplicationSweep(ctx.table, replicator).run(now, full=full)
    emit({"ItemsReplicated": (report.copied, "Count"), "SweepChangesFound": (report.changes_found, "Count")},
         {"Stage": ctx.settings.stage, "SourceRegion": ctx.settings.region, "Path": "sweep"})
    return report.as_dict()


def publish_dora(ctx: Context, now: datetime) -> dict[str, Any]:
    """Emit the DORA metrics of every service that deployed in the window (active region only: the
    standby's copy would publish the same numbers twice)."""
    if not ctx.role().is_active:
        return {"services": 0, "reason": "standby"}

    published = 0
    for environment in ctx.settings.dora_environments:
        start = now - timedelta(days=C.DORA_PUBLISH_DAYS)
        for service in ctx.events.services_with("deployment", environment, start, now):
            keys = service_summary(ctx.dora, service, environment, C.DORA_PUBLISH_DAYS, now)
            measured = {metric: (keys[key]["value"], "None") for key, metric in DORA_METRICS.items()
                        if keys[key]["value"] is not None}  # an empty input has no value, not 0
            if measured:
                emit(measured, {"Stage": ctx.settings.stage, "Service": service, "Environment": environment})
            published += 1
    return {"services": published, "environments": list(ctx.settings.dora_environments)}


def health_check(ctx: Context, probes: Probes, now: datetime) -> dict[str, Any]:
    """The scheduled health check (chalicelib.health_check)."""
    return run_health_check(ctx, probes, now).as_dict()


def record_pipeline_execution(ctx: Context, event: dict[str, Any], history: delivery.PipelineHistory,
                              now: datetime) -> PutResult | None:
    """A finished execution of this stage's pipeline -> a build and a deployment event; None for
    another stage's pipeline."""
    if not delivery.is_own_pipeline(event, ctx.settings.stage):
        return None
    pipeline = event["detail"]["pipeline"]
    facts = history.facts(pipeline, event["detail"]["execution-id"], repository=pipeline)
    raw = delivery.delivery_events(event, facts, C.DELIVERY_SERVICE, ctx.settings.stage)
    events = parse_events({"events": raw}, now)
    # Counted before the write, so the pipeline-failed alarm sees a failure even when recording it
    # fails (a Lambda retry after a successful write counts it twice).
    emit({"PipelineExecutions": (1, "Count")}, {"Stage": ctx.settings.stage, "State": event["detail"]["state"]})
    require_active(ctx.role())
    return ctx.events.put_events(events, now)
