"""CloudWatch metrics as Embedded Metric Format log lines.

A Lambda function's stdout goes to CloudWatch Logs, which turns each EMF line into metric data: no
PutMetricData call on the request path, no extra permission, no extra latency, and the numbers stay
in the log line beside the rest of the record.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from chalicelib import constants as C


def emf_line(metrics: Mapping[str, tuple[float, str]], dimensions: Mapping[str, str],
             now_ms: int | None = None) -> str:
    """One EMF record: `metrics` maps a name to (value, CloudWatch unit)."""
    record: dict[str, object] = {
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
    return json.dumps(record, separators=(",", ":"))


def emit(metrics: Mapping[str, tuple[float, str]], dimensions: Mapping[str, str], out: TextIO | None = None) -> None:
    print(emf_line(metrics, dimensions), file=out or sys.stdout, flush=True)
