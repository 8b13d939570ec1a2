"""The Lambda triggers of one region, run locally: a stream poller that feeds the app's real stream
handler with records from moto's GetRecords, and a scheduler that calls the app's real scheduled
handlers (replication_sweep, health_check, publish_dora). Started by the local stack, one process
per region, with that region's environment. The poller reads the stream from its start and follows
new shards (local.streams), as Lambda's event source mapping with TRIM_HORIZON does.

    python -m local.workers --region us-east-1 --stream-arn ARN [--sweep-every 60] [--health-every 60]
    python -m local.workers --region us-east-1 --stream-arn ARN --once health_check   # one run, now
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading
from types import ModuleType
from typing import Any

from chalicelib import clients
from chalicelib import constants as C
from chalicelib.dynamodb import retry_remaining
from chalicelib.errors import Unavailable
from chalicelib.logs import log_event
from chalicelib.times import format_time, utc_now
from local.harness import LambdaContext
from local.streams import StreamReader, lambda_event

# Lambda retries a failed batch until it succeeds or its records expire (24 hours); the local stack
# tries a batch ten times over about half a minute, then drops it for the sweep to carry across.
STREAM_RETRIES = 9


def poll_stream(app_module: ModuleType, region: str, stream_arn: str, stop: threading.Event, interval: float) -> None:
    """Lambda's event source mapping, locally: one thread reads the stream (GetRecords, STREAM_BATCH_SIZE
    records at a time, from TRIM_HORIZON) while this one hands the handler the batches, in order, so a
    batch is read while the one before it runs. A failed batch goes again (STREAM_RETRIES), then is
    dropped for the sweep to carry across; a failed read (its region taken away) is tried again."""
    batches: queue.Queue[list[dict[str, Any]]] = queue.Queue(maxsize=10)

    def read() -> None:
        reader = StreamReader(clients.dynamodbstreams(region, "api"), stream_arn, region)
        while not stop.is_set():
            try:
                records = reader.poll(limit=C.STREAM_BATCH_SIZE)
            except Exception as error:  # noqa: BLE001 - the region may be away: read again shortly
                log_event("WARNING", "stream read failed, reading again", worker="stream", error=str(error)[:300])
                stop.wait(1.0)
                continue
            for start in range(0, len(records), C.STREAM_BATCH_SIZE):
                batch = records[start:start + C.STREAM_BATCH_SIZE]
                while not stop.is_set():
                    try:
                        batches.put(batch, timeout=0.5)  # waits while the handler is ten batches behind
                        break
                    except queue.Full:
                        continue
            if not records:
                stop.wait(interval)

    threading.Thread(target=read, name="stream-reader", daemon=True).start()
    while not stop.is_set():
        try:
            batch = batches.get(timeout=0.5)
        except queue.Empty:
            continue

        def deliver(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
            try:  # the handler logs its own run (chalicelib.logs.logged_run)
                app_module.replicate_stream(pending[0], LambdaContext("replicate_stream"))
            except Exception as error:  # noqa: BLE001 - report it, and the same batch goes again
                log_event("WARNING", "stream batch failed, sending it again", worker="stream", error=str(error))
                return pending
            return []

        try:
            retry_remaining(deliver, [lambda_event(batch)], "the stream batch kept failing", rounds=STREAM_RETRIES,
                            wait=lambda attempt: stop.wait(min(5.0, 0.2 * 2 ** attempt)))
        except Unavailable as error:
            log_event("ERROR", "stream batch dropped; the sweep copies it", worker="stream", error=error.message)


SCHEDULED = ("replication_sweep", "health_check", "publish_dora", "renew_lease", "readiness_check")


def run_scheduled(app_module: ModuleType, region: str, handler: str) -> dict[str, Any]:
    """One run of a scheduled handler, with the event EventBridge would send."""
    now = utc_now()
    event = {"version": "0", "id": f"local-{handler}-{now.timestamp():.0f}", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "time": format_time(now), "region": region,
             "resources": [], "detail": {}}
    result: dict[str, Any] = getattr(app_module, handler)(event, LambdaContext(handler))
    return result


def run_schedule(app_module: ModuleType, region: str, handler: str, stop: threading.Event, every: float,
                 first: float | None = None) -> None:
    """Run the handler every `every` seconds, the first time after `first` (default: `every`)."""
    wait = every if first is None else first
    while not stop.wait(wait):
        wait = every
        try:  # the handler logs its own run and result (chalicelib.logs.logged_run)
            run_scheduled(app_module, region, handler)
        except Exception as error:  # noqa: BLE001 - a failed run is retried at the next tick, as in AWS
            log_event("WARNING", "run failed, retried at the next tick", worker=handler, error=str(error))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.workers", description=__doc__)
    parser.add_argument("--region", required=True)
    parser.add_argument("--stream-arn", required=True)
    parser.add_argument("--sweep-every", type=float, default=60.0, help="seconds between sweeps (AWS: 300)")
    parser.add_argument("--health-every", type=float, default=60.0, help="seconds between health checks (AWS: 300)")
    parser.add_argument("--dora-every", type=float, default=300.0,
                        help="seconds between DORA metric publications (AWS: 3600)")
    parser.add_argument("--lease-every", type=float, default=20.0,
                        help="seconds between lease renewals (AWS: 60)")
    parser.add_argument("--readiness-every", type=float, default=3600.0,
                        help="seconds between readiness checks (AWS: one a day)")
    parser.add_argument("--poll-every", type=float, default=0.2, help="seconds between stream polls")
    parser.add_argument("--once", choices=SCHEDULED, help="run this scheduled handler once, print its result, exit")
    args = parser.parse_args(argv)
    os.environ[C.ENV_TABLE_STREAM_ARN] = args.stream_arn  # the app registers its stream handler from it
    import app as app_module

    if args.once:
        print(json.dumps(run_scheduled(app_module, args.region, args.once), indent=2, default=str), flush=True)
        return 0

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # The sweep runs once at the start: it writes the heartbeat that tells the standby (and `dr status`,
    # and `dr failover`) how far behind it is, and copies what the stream missed while nothing ran.
    schedules = (("replication_sweep", args.sweep_every, 0.0), ("health_check", args.health_every, None),
                 ("publish_dora", args.dora_every, None), ("renew_lease", args.lease_every, None),
                 ("readiness_check", args.readiness_every, None))
    threads = [threading.Thread(target=poll_stream, args=(app_module, args.region, args.stream_arn, stop,
                                                          args.poll_every), daemon=True),
               *(threading.Thread(target=run_schedule, args=(app_module, args.region, handler, stop, every, first),
                                  daemon=True)
                 for handler, every, first in schedules)]
    for thread in threads:
        thread.start()
    log_event("INFO", "started", worker="all", stream=args.stream_arn, sweep_every=args.sweep_every,
              health_every=args.health_every, dora_every=args.dora_every)
    while not stop.wait(0.5):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
