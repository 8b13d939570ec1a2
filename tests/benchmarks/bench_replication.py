"""Replication cost and lag: the sweep against a floor and a naive full copy, and the stream path's lag.

What it measures
  moto's server is started in a subprocess (local.emulator.Emulator, on a free port; tests/benchmarks/stage.py)
  and dr/regional.yaml is deployed in it (stage dev) in us-east-1, the source, and us-west-2, the replica. The
  measured code is handed each region's table as a chalicelib.dynamodb.Table. Every DynamoDB
  request of the measured code is counted by operation on both regions' clients (botocore
  'before-call.dynamodb'; moto reports no ConsumedCapacity, so requests and items are counted instead).

  1. Sweep cost. --items (default 20,000) items of ~450 bytes are loaded with BatchWriteItem (25 per call)
     into the source table, stamped (change_stamp) 2 hours ago, and the same items into the replica, so
     both start equal. The sweep checkpoint in the source is set to 1 hour ago. Then --changed-pct
     (default 1 %) of the items are re-written in the source, stamped now (a newer version, in the
     current hour's change bucket). Three ways of bringing the replica up to date are compared:
       ours   ReplicationSweep(source, Replicator(replica)).run(now): reads the `changes` index hour by
              hour since the checkpoint (minus the 60 s overlap), drops what the replica already holds
              (BatchGetItem, 100 keys), copies the rest with conditional TransactWriteItems (100), and saves its
              checkpoint every 1,000 changes and at the end (PutItem in the source) and a heartbeat item at the end.
       floor  what copying just the changes must cost at least: reading the checkpoint (GetItem), one Query
              page per hour bucket the changes fill (1 MB pages), ceil(changes / 100) TransactWriteItems
              calls, and saving the checkpoint (PutItem) (computed, not run).
       naive  a paginated full-table Scan of the source and one PutItem per item into the replica
              (sequential, one client; control items skipped). Run after ours, on the same tables: it
              copies every item whatever the replica holds, so its cost does not depend on the order.
     dr.verify.compare checks that both tables hold the same keys and versions after ours.
  2. Write requests per replicated item: the replica-side write requests of (1) divided by the items
     copied, for ours (floor 1/100 = 0.01) and naive (1.0), and for the stream path: the same number of
     changes, re-written in the source, applied with Replicator.apply (conditional TransactWriteItems of 100: 0.01).
  3. Replication lag through the stream path under a steady load: a writer thread puts --rate items/s
     (default 20) for --seconds (default 20) into the source with put_item; a poller thread reads the
     table's stream with local.streams.StreamReader every --poll-interval s (default 0.1; batches of up to
     100 records, as Lambda's event source mapping delivers them), collapses each batch with
     changes_from_stream and applies it with Replicator.apply. An item's lag is the moment apply()
     returned for its batch minus the moment its put_item returned in the writer.

How to read the output
  * "Sweep": requests by kind and wall time per approach. "write requests" counts every write the
    approach makes, in both regions (ours: its checkpoint saves and its heartbeat, PutItem in the
    source, and BatchWriteItem in the replica); "to replica" only those into the replica. "items read" is
    what DynamoDB reads: ScannedCount of Query/Scan pages plus items returned by BatchGetItem/GetItem.
    Under the table, the requests by operation and region, and the ratios: ours / floor (how far ours is
    from the least it could do; 1.0 is ideal) and naive / ours (what the sweep saves; > 1 means the naive
    way costs more).
    ours' reads follow the hours since its checkpoint (here 1 hour, as if the sweep had been down for
    an hour; about 5 minutes old in normal running, so 1 or 2 Query pages), the naive way's follow the table's size.
    Wall times are moto's: its Query of an index walks every item of the table, so ours' wall time here
    grows with --items, which it would not in AWS; the naive wall time is dominated by one HTTP round trip
    per item, which it would be in AWS too (with cross-region latency on top).
  * "Write requests per replicated item": lower is better; the TransactWriteItems floor is 0.01.
  * "Stream lag": p50/p90/p99/max in ms over every item written, against the goal p99 < 1 s. Locally it
    includes the poll interval (up to 0.1 s of waiting for the next GetRecords), which in AWS is Lambda's
    event source mapping polling the stream, and moto's own latency on 2 shared cores (writer, poller,
    8 apply threads and the server compete for them).

Run from the project root:  .venv/bin/python -m tests.benchmarks.bench_replication [--items N] [--rate R]
It takes about 4 minutes with the defaults on 2 cores: the naive copy (~20,000 PutItem at ~7 ms each in
moto) takes over half of it, loading the tables ~30 s, dr.verify.compare ~20 s, the lag test --seconds.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from tabulate import tabulate

from chalicelib import constants as C
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Item, Table, item_size
from chalicelib.keys import change_bucket, change_stamp
from chalicelib.replication import Change, ReplicationSweep, Replicator, changes_from_stream
from chalicelib.times import format_time, utc_now
from dr.verify import compare
from local.emulator import Emulator
from local.streams import StreamReader
from tests.benchmarks.stage import DR_REGION as REPLICA
from tests.benchmarks.stage import PRIMARY_REGION as SOURCE
from tests.benchmarks.stage import TABLE, emulated
from tests.benchmarks.stats import percentile

PARTITIONS = 200  # pk = bench#<i % 200>
BODY = "x" * 300
PAGE_BYTES = 1024 * 1024  # DynamoDB's Query/Scan page cap
LAG_GOAL_MS = 1000.0
READS = frozenset({"Query", "BatchGetItem", "GetItem", "Scan"})
WRITES = frozenset({"BatchWriteItem", "TransactWriteItems", "PutItem", "DeleteItem", "UpdateItem"})
# Write capacity units per item of up to 1 KB: a transactional write costs twice a plain one.
WCU = {"TransactWriteItems": 2}


# ---- counting DynamoDB requests -------------------------------------------------------------------

@dataclass
class RequestCounter:
    """Counts the DynamoDB requests (and items written) of the clients it is attached to."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (region, operation) -> requests
    written: Counter[str] = field(default_factory=Counter)  # region -> items in write requests
    read: Counter[str] = field(default_factory=Counter)  # region -> items read (ScannedCount, items returned)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any, region: str) -> None:
        client.meta.events.register("before-call.dynamodb",
                                    lambda **kwargs: self._before_call(region=region, **kwargs))
        client.meta.events.register("after-call.dynamodb",
                                    lambda **kwargs: self._after_call(region=region, **kwargs))

    def _before_call(self, model: Any, params: dict[str, Any], region: str, **_: Any) -> None:
        items = 0
        if model.name == "PutItem":
            items = 1
        elif model.name == "BatchWriteItem":
            body = json.loads(params.get("body") or b"{}")
            items = sum(len(requests) for requests in body.get("RequestItems", {}).values())
        elif model.name == "TransactWriteItems":
            items = len(json.loads(params.get("body") or b"{}").get("TransactItems", []))
        with self._lock:
            self.requests[(region, model.name)] += 1
            self.written[region] += items

    def _after_call(self, model: Any, parsed: dict[str, Any], region: str, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            items = int(parsed.get("ScannedCount", 0))
        elif model.name == "BatchGetItem":
            items = sum(len(found) for found in parsed.get("Responses", {}).values())
        elif model.name == "GetItem":
            items = int("Item" in parsed)
        else:
            return
        with self._lock:
            self.read[region] += items

    def take(self) -> Tally:
        with self._lock:
            tally = Tally(Counter(self.requests), Counter(self.written), sum(self.read.values()))
            self.requests.clear()
            self.written.clear()
            self.read.clear()
        return tally


@dataclass(frozen=True)
class Tally:
    requests: Counter[tuple[str, str]]
    written: Counter[str]
    items_read: int

    def count(self, operations: frozenset[str], region: str | None = None) -> int:
        return sum(n for (r, op), n in self.requests.items() if op in operations and region in (None, r))

    @property
    def reads(self) -> int:
        return self.count(READS)

    @property
    def writes(self) -> int:
        return self.count(WRITES)

    def describe(self) -> str:
        parts = []
        for region in (SOURCE, REPLICA):
            ops = sorted((op, n) for (r, op), n in self.requests.items() if r == region)
            if ops:
                parts.append(f"{region}: " + ", ".join(f"{op} x{n:,}" for op, n in ops))
        return "; ".join(parts) or "-"


# ---- helpers ------------------------------------------------------------------------------------

def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "-"


def bench_item(i: int, at: datetime) -> Item:
    pk, sk = f"bench#{i % PARTITIONS}", f"{i:06d}"
    return {"pk": {"S": pk}, "sk": {"S": sk}, "body": {"S": BODY}} | change_stamp(pk, sk, at, SOURCE)


def naive_copy(source: Table, replica: Table) -> int:
    """The naive full copy: a paginated Scan of the whole source (one segment, page after page), one
    PutItem per item into the replica."""
    copied = 0
    params: dict[str, Any] = {"TableName": source.name}
    while True:
        response = cast(dict[str, Any], source.call(source.client.scan, **params))
        for item in response.get("Items", []):
            if item["pk"]["S"] == C.CONTROL_PK:
                continue  # per-region control items are not data
            replica.put(item)
            copied += 1
        if "LastEvaluatedKey" not in response:
            return copied
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def floor_reads(changed: list[Item]) -> int:
    """Query pages the changes fill in the `changes` index: per hour bucket, ceil(bytes / 1 MB), at least 1."""
    buckets: Counter[str] = Counter()
    for item in changed:
        buckets[change_bucket(item["updated_at"]["S"])] += item_size(item)
    return max(1, sum(max(1, math.ceil(size / PAGE_BYTES)) for size in buckets.values()))


# ---- 1 and 2: the sweep, the floor, the naive copy ----------------------------------------------

@dataclass
class SweepFigures:
    rows: list[list[Any]]
    ratios: list[list[Any]]
    notes: list[str]
    per_item: list[list[Any]]


def bench_sweep(args: argparse.Namespace, source: Table, replica: Table, counter: RequestCounter) -> SweepFigures:
    now = utc_now()
    old = now - timedelta(hours=2)
    items = [bench_item(i, old) for i in range(args.items)]
    t0 = time.perf_counter()
    # The set-up, not measured: BatchWriteItem, 25 per call, unprocessed items sent again (Table.batch_write).
    source.batch_write(items)
    replica.batch_write(items)
    ControlStore(source).put(C.SWEEP_CHECKPOINT_SK, {"watermark": format_time(now - timedelta(hours=1))})
    step = max(1, round(100 / args.changed_pct))
    changed_at = utc_now()
    changed = [bench_item(i, changed_at) for i in range(0, args.items, step)]
    source.batch_write(changed)
    print(f"Loaded {args.items:,} items into both tables and changed {len(changed):,} in {SOURCE} "
          f"({time.perf_counter() - t0:.1f} s).")
    counter.take()

    # ours: the sweep
    t0 = time.perf_counter()
    report = ReplicationSweep(source, Replicator(replica, SOURCE)).run(utc_now())
    ours_seconds = time.perf_counter() - t0
    ours = counter.take()
    t0 = time.perf_counter()
    equal_after_ours = not compare(source, replica)
    compare_seconds = time.perf_counter() - t0
    counter.take()

    # floor: computed
    # Any sweep that copies only the changes reads where it left off and saves where it got to: one
    # GetItem and one PutItem in the source, on top of the index pages and the writes into the replica.
    floor_to_replica = math.ceil(len(changed) / C.TRANSACT_MAX_ITEMS)
    floor_read, floor_write = 1 + floor_reads(changed), 1 + floor_to_replica

    # stream path, for the per-item figure: the same keys re-written, applied one conditional put per key
    rewritten = [bench_item(i, utc_now()) for i in range(0, args.items, step)]
    source.batch_write(rewritten)
    counter.take()
    applied = Replicator(replica, SOURCE).apply(
        [Change({"pk": i["pk"], "sk": i["sk"]}, i, int(i["version"]["N"])) for i in rewritten],
        utc_now()).applied
    stream = counter.take()

    # naive: full Scan + one PutItem per item
    t0 = time.perf_counter()
    naive_items = naive_copy(source, replica)
    naive_seconds = time.perf_counter() - t0
    naive = counter.take()

    ours_to_replica = ours.count(WRITES, REPLICA)
    naive_to_replica = naive.count(WRITES, REPLICA)
    ours_w, naive_w = ours.written[REPLICA], naive.written[REPLICA]
    rows = [
        ["ours (ReplicationSweep)", f"{ours.reads:,}", f"{ours.items_read:,}", f"{ours.writes:,}",
         f"{ours_to_replica:,}", f"{ours_w:,}", f"{ours_seconds:.2f}"],
        ["floor (changes only)", f"{floor_read:,}", f"{len(changed):,}", f"{floor_write:,}", f"{floor_to_replica:,}",
         f"{len(changed):,}", "-"],
        ["naive (Scan + PutItem each)", f"{naive.reads:,}", f"{naive.items_read:,}", f"{naive.writes:,}",
         f"{naive_to_replica:,}", f"{naive_w:,}", f"{naive_seconds:.2f}"],
    ]
    figures: list[tuple[str, float, float, float | None]] = [  # (what, ours, floor, naive)
        ("read requests", ours.reads, floor_read, naive.reads),
        ("items read", ours.items_read, len(changed), naive.items_read),
        ("write requests (all)", ours.writes, floor_write, naive.writes),
        ("write requests to replica", ours_to_replica, floor_to_replica, naive_to_replica),
        ("all requests", ours.reads + ours.writes, floor_read + floor_write, naive.reads + naive.writes),
        ("items written to replica", ours_w, len(changed), naive_w),
        ("wall time s", ours_seconds, 0.0, naive_seconds),
    ]
    ratios = [[what, ratio(o, f), ratio(n, o) if n is not None else "-"] for what, o, f, n in figures]
    notes = [
        f"ours:  {ours.describe()}",
        f"naive: {naive.describe()}",
        f"sweep report: {report.changes_found} changes found, {report.copied} copied, "
        f"{report.already_current} already current, {report.pages} Query pages over {len(report.buckets)} "
        f"hour buckets, complete={report.complete}",
        f"tables equal after sweep: {'yes' if equal_after_ours else 'no'} (dr.verify.compare, {compare_seconds:.1f} s)",
        f"write capacity into the replica per item copied: ours {WCU['TransactWriteItems']} (transactional), "
        f"naive 1 (plain PutItem); at 1M events a month, ours {2 * 1_000_000:,} write request units "
        f"(${2 * 1.25:.2f} on demand at $1.25 per million), plain writes {1_000_000:,} ($1.25)",
    ]
    stream_writes = stream.count(WRITES, REPLICA)
    per_item = [
        ["ours: sweep (conditional TransactWriteItems)", ours_to_replica, report.copied,
         f"{ours_to_replica / max(report.copied, 1):.3f}",
         f"{ours.writes / max(report.copied, 1):.3f}"],
        ["floor: TransactWriteItems of 100", floor_to_replica, len(changed), f"{floor_to_replica / len(changed):.3f}",
         "-"],
        ["stream: Replicator.apply (conditional TransactWriteItems)", stream_writes, applied,
         f"{stream_writes / max(applied, 1):.3f}", f"{stream.writes / max(applied, 1):.3f}"],
        ["naive: PutItem per item", naive_to_replica, naive_items, f"{naive_to_replica / max(naive_items, 1):.3f}",
         f"{naive.writes / max(naive_items, 1):.3f}"],
    ]
    return SweepFigures(rows, ratios, notes, per_item)


# ---- 3: stream lag ------------------------------------------------------------------------------

@dataclass
class LagFigures:
    lags_ms: list[float]
    written: int
    applied_keys: int
    polls: int
    batches: int
    records: int
    apply_ms: list[float]
    writer_seconds: float
    late_writes: int
    replica_puts: int
    negative: int


def bench_lag(args: argparse.Namespace, emulator: Emulator, source: Table, replica: Table,
              counter: RequestCounter) -> LagFigures:
    arn = str(source.describe()["LatestStreamArn"])
    reader = StreamReader(emulator.client("dynamodbstreams", SOURCE), arn, SOURCE, start="LATEST")
    writer_client = emulator.client("dynamodb", SOURCE)  # the writer's own client, as the API's would be
    replicator = Replicator(replica, SOURCE)
    total = args.rate * args.seconds
    written_at: dict[tuple[str, str], float] = {}
    applied_at: dict[tuple[str, str], float] = {}
    apply_ms: list[float] = []
    stats = Counter[str]()
    writer_done = threading.Event()
    lock = threading.Lock()
    errors: list[BaseException] = []
    counter.take()

    def writer() -> None:
        start = time.perf_counter()
        try:
            for k in range(total):
                due = start + k / args.rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -0.05:
                    stats["late_writes"] += 1
                pk, sk = f"lag#{k % 10}", f"{k:06d}"
                item = {"pk": {"S": pk}, "sk": {"S": sk}, "body": {"S": BODY}} | change_stamp(
                    pk, sk, utc_now(), SOURCE)
                writer_client.put_item(TableName=TABLE, Item=item)
                done = time.perf_counter()
                with lock:
                    written_at[(pk, sk)] = done
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            stats["writer_ms"] = int((time.perf_counter() - start) * 1000)
            writer_done.set()

    def poller() -> None:
        next_poll = time.perf_counter()
        give_up = None
        try:
            while True:
                records = reader.poll(limit=C.STREAM_BATCH_SIZE)
                stats["polls"] += 1
                if records:
                    changes = changes_from_stream(records)
                    t0 = time.perf_counter()
                    replicator.apply(changes, utc_now())
                    done = time.perf_counter()
                    apply_ms.append((done - t0) * 1000)
                    stats["batches"] += 1
                    stats["records"] += len(records)
                    with lock:
                        for change in changes:
                            applied_at.setdefault((change.key["pk"]["S"], change.key["sk"]["S"]), done)
                if writer_done.is_set():
                    with lock:
                        caught_up = len(applied_at) >= len(written_at)
                    if caught_up and not records:
                        return
                    give_up = give_up or time.perf_counter() + 30
                    if time.perf_counter() > give_up:
                        return
                next_poll += args.poll_interval
                pause = next_poll - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                elif not records:
                    next_poll = time.perf_counter()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=poller, name="poller"), threading.Thread(target=writer, name="writer")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    tally = counter.take()
    lags, negative = [], 0
    for key, at in written_at.items():
        if key in applied_at:
            lag = (applied_at[key] - at) * 1000
            negative += lag < 0  # apply() returned before the writer's put_item did: counted as 0
            lags.append(max(0.0, lag))
    return LagFigures(lags, len(written_at), len(lags), stats["polls"], stats["batches"], stats["records"],
                      apply_ms, stats["writer_ms"] / 1000, stats["late_writes"], tally.count(WRITES, REPLICA),
                      negative)


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000, help="items in the table for the sweep (default 20000)")
    parser.add_argument("--changed-pct", type=float, default=1.0,
                        help="percentage of the items changed since the checkpoint (default 1)")
    parser.add_argument("--rate", type=int, default=20, help="items written per second in the lag test (default 20)")
    parser.add_argument("--seconds", type=int, default=20, help="duration of the lag test's load (default 20)")
    parser.add_argument("--poll-interval", type=float, default=0.1,
                        help="seconds between stream polls (default 0.1)")
    args = parser.parse_args(argv)
    if args.items < 100 or not 0 < args.changed_pct <= 100:
        parser.error("--items must be at least 100 and --changed-pct in (0, 100]")
    if args.rate < 1 or args.seconds < 1 or args.poll_interval <= 0:
        parser.error("--rate and --seconds must be at least 1, --poll-interval positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with emulated() as emulator:
        counter = RequestCounter()
        clients = {region: emulator.client("dynamodb", region) for region in (SOURCE, REPLICA)}
        for region, client in clients.items():
            counter.attach(client, region)
        source = Table(clients[SOURCE], TABLE, SOURCE)
        replica = Table(clients[REPLICA], TABLE, REPLICA)
        print(f"moto server at {emulator.endpoint}; table {TABLE} in {SOURCE} (source) and {REPLICA} (replica)\n")

        sweep = bench_sweep(args, source, replica, counter)
        lag = bench_lag(args, emulator, source, replica, counter)

    changed = math.ceil(args.items / max(1, round(100 / args.changed_pct)))
    print(f"\n1. Sweep: {args.items:,} items, {changed:,} changed since the checkpoint (1 hour ago)")
    print(tabulate(sweep.rows, headers=["approach", "read requests", "items read", "write requests", "to replica",
                                        "items written to replica", "wall time s"],
                   colalign=("left", "right", "right", "right", "right", "right", "right")))
    print("\n".join(sweep.notes))
    print()
    print(tabulate(sweep.ratios, headers=["", "ours / floor", "naive / ours"], colalign=("left", "right", "right")))

    print("\n2. Write requests per replicated item (replica side; last column counts every write, both regions)")
    print(tabulate(sweep.per_item, headers=["path", "write requests", "items", "per item", "all writes per item"],
                   colalign=("left", "right", "right", "right", "right"), disable_numparse=True))

    print(f"\n3. Stream lag: {args.rate} items/s for {args.seconds} s, polled every "
          f"{args.poll_interval * 1000:.0f} ms, applied with Replicator.apply "
          "(ms from put_item returning to apply() returning)")
    if lag.lags_ms:
        p99 = percentile(lag.lags_ms, 99)
        print(tabulate([[len(lag.lags_ms), f"{percentile(lag.lags_ms, 50):.0f}", f"{percentile(lag.lags_ms, 90):.0f}",
                         f"{p99:.0f}", f"{max(lag.lags_ms):.0f}"]],
                       headers=["items", "p50", "p90", "p99", "max"], colalign=("right",) * 5))
        verdict = "met" if p99 < LAG_GOAL_MS else "NOT met"
        print(f"goal: p99 < {LAG_GOAL_MS:.0f} ms -> {verdict} (p99 = {p99 / LAG_GOAL_MS:.2f}x the goal)")
    else:
        print("no item reached the replica")
    print(f"{lag.applied_keys:,} of {lag.written:,} items written reached the replica; {lag.polls:,} polls, "
          f"{lag.batches:,} non-empty batches, {lag.records:,} records "
          f"({lag.records / max(lag.batches, 1):.1f} per batch); apply() p50 "
          f"{percentile(lag.apply_ms, 50) if lag.apply_ms else 0:.0f} ms; {lag.replica_puts:,} write requests into the "
          f"replica ({lag.replica_puts / max(lag.applied_keys, 1):.2f} per item); writer took "
          f"{lag.writer_seconds:.1f} s, {lag.late_writes} writes more than 50 ms behind schedule; "
          f"{lag.negative} applied before the writer saw its put_item return (counted as 0)")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
