"""A load test of the local stack: N clients for a fixed time through the Global API, then how long
the standby takes to catch up. It stops by itself.

What it does
  Starts the whole local stack (tests/benchmarks/stage.local_stack: what `make up` runs, on free ports, no demo
  data), then --clients (default 8) threads, each with its own HTTP session, send requests to the Global API
  (the URL the README tells users to use) for --seconds (default 60), back to back, in this mix:
    30 %  POST /metrics, one deployment without an id
    30 %  POST /metrics, one deployment with an id (one in five an id posted before: a duplicate or an update)
    20 %  GET /metrics?service=S&limit=50
    20 %  GET /metrics/summary?service=S&days=30 (from the daily rollups)
  over 5 services. Every answer is checked: an error is any status other than the one expected (201, 200) or a
  failed connection. Once the clients stop, the standby's identity records of every written event are read
  every 50 ms until each is at the primary's version: "replication lag at the end" is how long after the last
  acknowledged write that took. Then dr verify's comparison and its rollup check must find nothing.

How to read the output
  Per route: requests, throughput, p50 and p99 latency in ms (client side: the Global API's forwarding, the app
  under `chalice local`, and moto on the same 2 cores), and errors (goal: 0). All of it runs on one machine, so
  the figures say what the local stack sustains, not what AWS would.

Run from the project root:  make load   (or .venv/bin/python -m tests.benchmarks.load --clients 8 --seconds 60)
"""
from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import requests
from tabulate import tabulate

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dynamodb import Table
from dr import verify
from tests.benchmarks.stage import DR_REGION, PRIMARY_REGION, local_stack
from tests.benchmarks.stats import percentile

SERVICES = [f"load-{n}" for n in range(5)]
ROUTES = (("POST /metrics (no id)", 30), ("POST /metrics (with id)", 30), ("GET /metrics", 20),
          ("GET /metrics/summary", 20))


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    written: set[tuple[str, str]] = field(default_factory=set)  # (service, id) of every acknowledged write
    last_write: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, seconds: float, error: str | None, wrote: tuple[str, str] | None) -> None:
        with self.lock:
            self.latencies[route].append(seconds * 1000)
            if error is not None:
                self.errors[route].append(error)
            elif wrote is not None:
                self.written.add(wrote)
                self.last_write = max(self.last_write, time.perf_counter())


def client(url: str, number: int, until: float, tally: Tally) -> None:
    rng = random.Random(number)
    session = requests.Session()
    posted: list[str] = []
    sent = 0
    while time.perf_counter() < until:
        route = rng.choices([r for r, _ in ROUTES], [w for _, w in ROUTES])[0]
        service = rng.choice(SERVICES)
        started = time.perf_counter()
        error = None
        wrote = None
        try:
            if route.startswith("POST"):
                body = {"kind": "deployment", "service": service, "status": rng.choice(["success", "failure"])}
                if route.endswith("(with id)"):
                    if posted and rng.random() < 0.2:
                        body["id"] = rng.choice(posted)
                    else:
                        sent += 1
                        body["id"] = f"load-{number}-{sent}"
                        posted.append(body["id"])
                answer = session.post(f"{url}/metrics", json=body, timeout=30)
                expected = 201
            elif route == "GET /metrics":
                answer = session.get(f"{url}/metrics", params={"service": service, "limit": 50}, timeout=30)
                expected = 200
            else:
                answer = session.get(f"{url}/metrics/summary", params={"service": service, "days": 30}, timeout=30)
                expected = 200
            if answer.status_code != expected:
                error = f"{answer.status_code}: {answer.text[:120]}"
            elif route.startswith("POST"):
                wrote = (service, answer.json()["ids"][0])
        except requests.RequestException as failure:
            error = type(failure).__name__
        tally.record(route, time.perf_counter() - started, error, wrote)


def caught_up(primary: Table, standby: Table, written: set[tuple[str, str]], timeout: float) -> float | None:
    """When the standby held every written event's identity record at the primary's version (polled
    every 50 ms), or None after `timeout` seconds."""
    keys = [K.identity_key(C.DEFAULT_ENVIRONMENT, service, "deployment", event_id) for service, event_id in written]
    want = {K.key_tuple(item): K.version_of(item) for item in primary.batch_get(keys, projection="pk, sk, version")}
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        have = {K.key_tuple(item): K.version_of(item) for item in standby.batch_get(keys, projection="pk, sk, version")}
        if all(have.get(key, 0) >= version for key, version in want.items()):
            return time.perf_counter()
        time.sleep(0.05)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they send requests (default 60)")
    args = parser.parse_args(argv)
    with local_stack() as stack:
        assert stack.emulator is not None
        tally = Tally()
        print(f"{args.clients} clients for {args.seconds:g} s against the Global API, {stack.global_url} ...")
        started = time.perf_counter()
        until = started + args.seconds
        threads = [threading.Thread(target=client, args=(stack.global_url, n, until, tally))
                   for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        tables = {region: Table(stack.emulator.dynamodb(region), stack.outputs[region]["TableName"], region)
                  for region in (PRIMARY_REGION, DR_REGION)}
        done = caught_up(tables[PRIMARY_REGION], tables[DR_REGION], tally.written, timeout=120)
        time.sleep(2.0)  # the rollups' last writes, which replicate through the next batch
        differences = verify.compare(tables[PRIMARY_REGION], tables[DR_REGION])
        rollups = [day for table in tables.values() for day in verify.check_rollups(table).differing]

    rows = []
    for route, _ in ROUTES:
        times = tally.latencies[route]
        if times:
            rows.append([route, len(times), f"{len(times) / elapsed:.1f}", f"{percentile(times, 50):.0f}",
                         f"{percentile(times, 99):.0f}", len(tally.errors[route])])
    everything = [t for times in tally.latencies.values() for t in times]
    errors = sum(len(e) for e in tally.errors.values())
    rows.append(["all", len(everything), f"{len(everything) / elapsed:.1f}", f"{percentile(everything, 50):.0f}",
                 f"{percentile(everything, 99):.0f}", errors])
    print(tabulate(rows, headers=["route", "requests", "per second", "p50 ms", "p99 ms", "errors"],
                   colalign=("left", "right", "right", "right", "right", "right")))
    for route, seen in tally.errors.items():
        if seen:
            print(f"  {route}: {len(seen)} errors, the first: {seen[0]}")
    lag = f"{done - tally.last_write:.2f} s" if done is not None else "more than 120 s"
    print(f"\nErrors: {errors} (goal: 0). Replication lag at the end: the standby held all {len(tally.written):,} "
          f"written events at the primary's versions {lag} after the last acknowledged write. Then dr verify's "
          f"comparison found {len(differences)} differences, and its rollup check of both regions {len(rollups)} "
          f"differing days.")
    return 0 if errors == 0 and done is not None and not differences and not rollups else 1


if __name__ == "__main__":
    sys.exit(main())
