"""The local stack as a user runs it: what its region switch adds to an AWS call, how soon a burst of
writes reaches the standby, and what keeping the daily rollups costs the stream handler.

What it measures
  The whole local stack is started in-process (tests/benchmarks/stage.local_stack: local.stack.LocalStack on free
  ports, no demo data, its logs in a temporary directory): moto's server behind the region switch, both apps
  under `chalice local`, and both regions' workers (stream poller every 0.2 s, scheduler).
  1. Region switch: --calls (default 300) GetItems of one key, one client each way, straight to moto's server and
     through the region switch (local/outage.py) that the apps and workers talk to. The floor is moto itself:
     the switch's cost is the difference of the medians.
  2. A burst: 3 POSTs of 100 deployments with ids to the primary API, one after the other, as a CI system
     backfilling would; then the standby's table is polled (BatchGetItem of the 300 event items, every 20 ms)
     until it holds all of them. The figure is the time from the last POST's answer until then (goal: under
     2 s). Its floor is the poller's interval (0.2 s): the stream cannot be read sooner.
  3. Rollup upkeep: the primary stream handler's own results (its "run" log lines: records, rollup parts
     written, their write units) over the burst, then over --trickle (default 40) single-event POSTs 0.5 s apart,
     where each batch carries one event (the worst case: every batch rewrites its day's newest part).

Run from the project root:  .venv/bin/python -m tests.benchmarks.bench_local_stack [--calls N] [--trickle N]
It takes about 1 minute (the stack starts in about 20 s).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from tabulate import tabulate

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.times import format_time, utc_now
from local.emulator import Emulator
from tests.benchmarks.stage import DR_REGION, PRIMARY_REGION, TABLE, local_stack
from tests.benchmarks.stats import percentile

BURST_POSTS, BURST_SIZE = 3, 100


def switch_latency(backend: Emulator, switch: Emulator, calls: int) -> list[list[Any]]:
    """GetItem p50/p99 in ms straight to moto and through the region switch."""
    rows = []
    medians = []
    for label, emulator in (("straight to moto's server", backend), ("through the region switch", switch)):
        client = emulator.client("dynamodb", PRIMARY_REGION)
        key = K.control_key(C.FAILOVER_SK)
        client.get_item(TableName=TABLE, Key=key)  # the connection, opened once
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            client.get_item(TableName=TABLE, Key=key)
            times.append((time.perf_counter() - started) * 1000)
        medians.append(percentile(times, 50))
        rows.append([label, calls, f"{percentile(times, 50):.1f}", f"{percentile(times, 99):.1f}"])
    rows.append(["added by the switch (p50)", "", f"{medians[1] - medians[0]:+.1f}", ""])
    return rows


def handler_results(log: Path, since: str) -> list[dict[str, Any]]:
    """The stream handler's results the worker logged at or after `since`."""
    results = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("handler") == "replicate_stream" and entry.get("time", "") >= since and "result" in entry:
            results.append(entry["result"])
    return results


def wait_for(standby: Any, keys: list[dict[str, Any]], timeout: float = 60.0) -> float:
    """Poll the standby until it holds every key; returns when it did (time.perf_counter())."""
    deadline = time.perf_counter() + timeout
    missing = list(keys)
    while missing and time.perf_counter() < deadline:
        found = set()
        for start in range(0, len(missing), 100):
            answer = standby.batch_get_item(RequestItems={TABLE: {"Keys": missing[start:start + 100],
                                                                 "ConsistentRead": True}})
            found |= {K.key_tuple(item) for item in answer["Responses"].get(TABLE, [])}
        missing = [key for key in missing if K.key_tuple(key) not in found]
        if missing:
            time.sleep(0.02)
    if missing:
        raise SystemExit(f"the standby still lacks {len(missing)} of the burst's events after {timeout:.0f} s")
    return time.perf_counter()


def upkeep_row(label: str, events: int, results: list[dict[str, Any]]) -> list[Any]:
    parts = sum(r.get("rollup_parts_written", 0) for r in results)
    units = sum(r.get("rollup_write_units", 0) for r in results)
    return [label, events, len(results), sum(r.get("records", 0) for r in results), parts, f"{parts / events:.2f}",
            f"{units / events:.2f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="GetItems each way through the switch (default 300)")
    parser.add_argument("--trickle", type=int, default=40, help="single-event POSTs, 0.5 s apart (default 40)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with local_stack() as stack:
        assert stack.backend is not None and stack.emulator is not None
        print("\nAn AWS call through the local stack's region switch (GetItem, ms)")
        print(tabulate(switch_latency(stack.backend, stack.emulator, args.calls),
                       headers=["path", "calls", "p50", "p99"], colalign=("left", "right", "right", "right")))

        log = stack.log_dir / f"workers-{PRIMARY_REGION}.log"
        since = format_time(utc_now())
        now = utc_now()
        events = [{"kind": "deployment", "service": "burst", "status": "success", "id": f"burst-{n}",
                   "timestamp": format_time(now - timedelta(seconds=n))} for n in range(BURST_POSTS * BURST_SIZE)]
        keys = [K.key(K.event_pk(C.DEFAULT_ENVIRONMENT, "burst"), K.event_sk("deployment", e["timestamp"], e["id"]))
                for e in events]
        session = requests.Session()
        posted = time.perf_counter()
        for start in range(0, len(events), BURST_SIZE):
            answer = session.post(f"{stack.primary_url}/metrics", json={"events": events[start:start + BURST_SIZE]},
                                  timeout=30)
            if answer.status_code != 201:
                raise SystemExit(f"POST /metrics answered {answer.status_code}: {answer.text[:300]}")
        acknowledged = time.perf_counter()
        arrived = wait_for(stack.emulator.client("dynamodb", DR_REGION), keys)
        time.sleep(1.0)  # the handler logs its run once it returns
        burst = handler_results(log, since)
        print(f"\nA burst of {len(events)} events ({BURST_POSTS} POSTs of {BURST_SIZE} with ids): the POSTs took "
              f"{acknowledged - posted:.2f} s; the standby held all of them {arrived - acknowledged:.2f} s after the "
              f"last acknowledgement (goal: under 2 s; floor: the poller's 0.2 s interval).")

        since = format_time(utc_now())
        for n in range(args.trickle):
            session.post(f"{stack.primary_url}/metrics", timeout=30, json={
                "kind": "deployment", "service": "trickle", "status": "success", "id": f"trickle-{n}"})
            time.sleep(0.5)
        time.sleep(1.5)
        trickle = handler_results(log, since)
        print("\nWhat keeping the daily rollups costs the primary's stream handler (its own logged results)")
        print(tabulate([upkeep_row(f"the burst ({len(events)} events)", len(events), burst),
                        upkeep_row(f"one event per POST, 0.5 s apart ({args.trickle})", args.trickle, trickle)],
                       headers=["writes", "events", "handler runs", "records", "parts written", "parts per event",
                                "write units per event"],
                       colalign=("left", "right", "right", "right", "right", "right", "right")))
        sizes = [r.get("rollup_write_units", 0) / max(r.get("rollup_parts_written", 0), 1) for r in trickle
                 if r.get("rollup_parts_written")]
        print(f"(records include each event's identity record and the rollups' own writes, which the handler "
              f"passes over; a part costs {statistics.fmean(sizes) if sizes else 0:.1f} write units on average in the "
              f"trickle. The events themselves cost 4 write units each: a transaction of the event and its "
              f"identity record.)")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
