"""The Lambda triggers of one region, run locally: a stream poller that feeds the app's real stream
handler with records from moto's GetRecords, and a scheduler that calls the app's real scheduled
handlers (replication_sweep, health_check, publish_dora). Started by the local stack, one process
per region, with that region's environment.

    python -m local.workers --region us-east-1 --stream-arn ARN [--sweep-every 60] [--health-every 60]
    python -m local.workers --region us-east-1 --stream-arn ARN --once health_check   # one run, now
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import Any

from local.streams import StreamReader, lambda_event


class _Context:
    """Just enough of a Lambda context for Chalice's handler wrappers."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = "local"
        self.memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _log(region: str, what: str, **fields: Any) -> None:
    print(json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "region": region,
                      "worker": what, **fields}, default=str), flush=True)


def poll_stream(app_module: Any, region: str, stream_arn: str, stop: threading.Event, interval: float) -> None:
    import boto3

    reader = StreamReader(boto3.client("dynamodbstreams", region_name=region), stream_arn, region)
    while not stop.is_set():
        records = reader.poll()
        for start in range(0, len(records), 100):
            batch = lambda_event(records[start:start + 100])
            for attempt in range(10):  # Lambda retries a failed batch; so do we
                try:
                    result = app_module.replicate_stream(batch, _Context("replicate_stream"))
                    if result.get("replicated"):
                        _log(region, "stream", **result)
                    break
                except Exception as error:  # noqa: BLE001 - report, back off, retry the same batch
                    _log(region, "stream", error=str(error), attempt=attempt + 1)
                    stop.wait(min(5.0, 0.2 * 2 ** attempt))
        stop.wait(interval)


SCHEDULED = ("replication_sweep", "health_check", "publish_dora")


def run_scheduled(app_module: Any, region: str, handler: str) -> dict[str, Any]:
    """One run of a scheduled handler, with the event EventBridge would send."""
    now = datetime.now(timezone.utc)
    event = {"version": "0", "id": f"local-{handler}-{now.timestamp():.0f}", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "time": now.isoformat(), "region": region,
             "resources": [], "detail": {}}
    result: dict[str, Any] = getattr(app_module, handler)(event, _Context(handler))
    return result


def run_schedule(app_module: Any, region: str, handler: str, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            _log(region, handler, **run_scheduled(app_module, region, handler))
        except Exception as error:  # noqa: BLE001 - a failed run is retried at the next tick, as in AWS
            _log(region, handler, error=str(error))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.workers", description=__doc__)
    parser.add_argument("--region", required=True)
    parser.add_argument("--stream-arn", required=True)
    parser.add_argument("--sweep-every", type=float, default=60.0, help="seconds between sweeps (AWS: 300)")
    parser.add_argument("--health-every", type=float, default=60.0, help="seconds between health checks (AWS: 300)")
    parser.add_argument("--dora-every", type=float, default=300.0,
                        help="seconds between DORA metric publications (AWS: 3600)")
    parser.add_argument("--poll-every", type=float, default=0.2, help="seconds between stream polls")
    parser.add_argument("--once", choices=SCHEDULED, help="run this scheduled handler once, print its result, exit")
    args = parser.parse_args(argv)
    os.environ["TABLE_STREAM_ARN"] = args.stream_arn  # the app registers its stream handler from it
    import app as app_module

    if args.once:
        print(json.dumps(run_scheduled(app_module, args.region, args.once), indent=2, default=str), flush=True)
        return 0

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=poll_stream, args=(app_module, args.region, args.stream_arn, stop,
                                                          args.poll_every), daemon=True),
               *(threading.Thread(target=run_schedule, args=(app_module, args.region, handler, stop, every),
                                  daemon=True)
                 for handler, every in (("replication_sweep", args.sweep_every), ("health_check", args.health_every),
                                        ("publish_dora", args.dora_every)))]
    for thread in threads:
        thread.start()
    _log(args.region, "started", stream=args.stream_arn, sweep_every=args.sweep_every,
         health_every=args.health_every, dora_every=args.dora_every)
    while not stop.wait(0.5):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
