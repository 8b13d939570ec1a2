"""CloudWatch metrics as Embedded Metric Format (EMF) log lines.

Why EMF and not PutMetricData: a Lambda function's stdout goes to CloudWatch Logs, which turns each
EMF line into metric data. So a request pays no extra AWS call, no extra latency and no extra
permission for its metrics, a CloudWatch outage cannot fail a request, and the numbers stay in the
log line beside the rest of the record (a request's log line *is* its metric record). PutMetricData
would cost a synchronous call per flush and an IAM grant. The local stack forwards the same lines to
the emulator's CloudWatch (local/emf.py), so the metrics are visible there too.

Every metric the service emits, in namespace DevOpsMetrics (dashboards and alarms reference these):
  Requests, ClientErrors, ServerErrors (Count), Latency (Milliseconds)   Stage, Route
  EventsIngested (Count)                                                  Stage, Kind
  HealthCheckFailed (Count: 1 failed, 0 passed)                           Stage, Check
  ItemsReplicated, SweepChangesFound (Count), ReplicationLagSeconds        Stage, SourceRegion, Path
  DeploymentsPerDay, LeadTimeHours, ChangeFailureRate,                    Stage, Service, Environment
  FailedDeploymentRecoveryHours, DeploymentReworkRate, TimeToRestoreHours
  PipelineExecutions (Count)                                              Stage, State
  LeaseRenewed (Count: 1 renewed, 0 not)                                  Stage, Region
  ReadinessFindings (Count)                                               Stage, Region
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from chalicelib import constants as C

Measurements = Mapping[str, tuple[float, str]]  # metric name -> (value, CloudWatch unit)

# DORA's metrics as CloudWatch metrics, per service: GET /metrics/summary's key -> the metric's name.
DORA_METRICS: Mapping[str, str] = {
    "deployment_frequency": "DeploymentsPerDay", "change_lead_time": "LeadTimeHours",
    "change_fail_rate": "ChangeFailureRate", "failed_deployment_recovery_time": "FailedDeploymentRecoveryHours",
    "deployment_rework_rate": "DeploymentReworkRate", "time_to_restore": "TimeToRestoreHours",
}


def emf_fields(metrics: Measurements, dimensions: Mapping[str, str], now_ms: int | None = None) -> dict[str, Any]:
    """The EMF part of a JSON log record: the `_aws` directive, the dimension values and the values."""
    return {
        "_aws": {
            "Timestamp": now_ms if now_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": C.METRICS_NAMESPACE,
                "Dimensions": [sorted(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in sorted(metrics.items())],
            }],
        },
        **dimensions,
        **{name: value for name, (value, _) in metrics.items()},
    }


def emf_line(metrics: Measurements, dimensions: Mapping[str, str], now_ms: int | None = None) -> str:
    return json.dumps(emf_fields(metrics, dimensions, now_ms), separators=(",", ":"))


def emit(metrics: Measurements, dimensions: Mapping[str, str], out: TextIO | None = None) -> None:
    print(emf_line(metrics, dimensions), file=out or sys.stdout, flush=True)
