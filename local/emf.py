"""What CloudWatch Logs does with the app's EMF lines, done locally: turn each Embedded Metric
Format record the app and its workers print into PutMetricData on the emulator, in the region of
the process that printed it. So the local stack's metrics can be listed and read like AWS's.

`metric_data(record)` is also what the tests use to read the metrics the code emits.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef


MAX_DATUMS_PER_CALL = 1000  # PutMetricData's limit


def emf_records(lines: Iterator[str] | list[str]) -> Iterator[dict[str, Any]]:
    """The EMF records among log lines (JSON objects with an `_aws.CloudWatchMetrics` directive)."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("_aws"), dict):
            yield record


def metric_data(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) for every metric and dimension set of one EMF record."""
    directive = record["_aws"]
    when = datetime.fromtimestamp(directive["Timestamp"] / 1000, tz=timezone.utc)
    out = []
    for block in directive["CloudWatchMetrics"]:
        for dimension_set in block["Dimensions"]:
            dimensions = [{"Name": name, "Value": str(record[name])} for name in dimension_set]
            for metric in block["Metrics"]:
                datum = {"MetricName": metric["Name"], "Dimensions": dimensions, "Timestamp": when,
                         "Value": float(record[metric["Name"]]), "Unit": metric.get("Unit", "None")}
                out.append((block["Namespace"], datum))
    return out


class EmfForwarder:
    """Tails log files (one per region) and forwards their EMF records to the emulator's CloudWatch."""

    def __init__(self, logs: dict[Path, str], cloudwatch: Callable[[str], CloudWatchClient]) -> None:
        self.logs = logs  # log file -> the region its process runs in
        self.cloudwatch = cloudwatch  # region -> a CloudWatch client
        self.forwarded = 0
        self._stop = threading.Event()
        self._offsets = {path: path.stat().st_size if path.exists() else 0 for path in logs}

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="emf-forwarder", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for path, region in self.logs.items():
                try:
                    self._forward(path, region)
                except Exception as error:  # noqa: BLE001 - a bad line or a busy emulator: say so, go on
                    print(f"==> metrics forwarder: {type(error).__name__}: {error}", flush=True)

    def _forward(self, path: Path, region: str) -> None:
        if not path.exists():
            return
        with open(path, "rb") as handle:
            handle.seek(self._offsets[path])
            chunk = handle.read()
        complete = chunk.rfind(b"\n") + 1  # leave a half-written last line for the next pass
        self._offsets[path] += complete
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for record in emf_records(chunk[:complete].decode("utf-8", "replace").splitlines()):
            for namespace, datum in metric_data(record):
                by_namespace.setdefault(namespace, []).append(datum)
        client = self.cloudwatch(region)
        for namespace, datums in by_namespace.items():
            for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
                chunk_data = cast("list[MetricDatumTypeDef]", datums[start:start + MAX_DATUMS_PER_CALL])  # EMF JSON
                client.put_metric_data(Namespace=namespace, MetricData=chunk_data)
                self.forwarded += len(datums[start:start + MAX_DATUMS_PER_CALL])
            time.sleep(0)
