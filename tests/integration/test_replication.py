"""Replication from the active region to the standby: the app's stream handler fed with real
GetRecords output, the sweep, verify/repair, faults at the AWS boundary, and fenced failover."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import constants as C
from chalicelib import jobs
from chalicelib import keys as K
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Item, Table
from chalicelib.errors import Unavailable
from chalicelib.keys import change_stamp, key
from chalicelib.replication import Change, ReplicationSweep, Replicator
from chalicelib.times import format_time
from dr import failover as fo
from dr import verify as vf
from local.streams import StreamReader
from ops.regions import Regions
from ops.templates import ROOT
from tests.conftest import DR, PRIMARY, STAGE, post
from tests.faults import FaultInjector


def item(pk: str, sk: str, at: datetime, **extra: str) -> Item:
    base: Item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in extra.items()}}
    return base | change_stamp(pk, sk, at, PRIMARY)


def put_items(table: Table, items: list[Item]) -> None:
    table.batch_write(items)


def deliver(client: Any, records: list[dict[str, Any]], attempts: int = 50) -> int:
    """What Lambda does with a stream: batches of 100, each retried until the handler succeeds."""
    failures = 0
    for start in range(0, len(records), C.STREAM_BATCH_SIZE):
        batch = {"Records": records[start:start + C.STREAM_BATCH_SIZE]}
        errors = []
        for _ in range(attempts):
            try:
                client.lambda_.invoke("replicate_stream", batch)
                break
            except Exception as error:  # noqa: BLE001 - the handler raised: Lambda retries the same batch
                failures += 1
                errors.append(repr(error)[:200])
        else:
            raise AssertionError(f"a batch never succeeded: {errors[-3:]}")
    return failures


def drain(client: Any, stream: StreamReader, records: list[dict[str, Any]] | None = None) -> int:
    """Deliver `records` (or what the stream holds), then what those deliveries wrote in their turn
    (the daily rollups and their state), until the stream is quiet."""
    delivered = 0
    pending = records if records is not None else stream.poll()
    while pending:
        deliver(client, pending)
        delivered += len(pending)
        pending = stream.poll()
    return delivered


def differences(regions: Regions, source: str = PRIMARY, replica: str = DR) -> list[vf.Difference]:
    return vf.compare(regions.table(source), regions.table(replica))


def data_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stream records of replicated items: without the region's own items (the lease's renewals, the
    daily rollups and their state), which the handler does not replicate."""
    return [r for r in records if K.is_replicated(r["dynamodb"]["Keys"])]


def test_the_stream_handler_replicates_what_the_api_writes(client, regions, stream) -> None:
    events = [{"kind": "build", "service": "ci", "status": "succeeded", "id": f"s-{i}"} for i in range(30)]
    assert post(client, {"events": events}).status_code == 201
    records = data_records(stream.poll())
    assert len(records) == 60  # each event and its idempotency record
    drain(client, stream, records)
    assert differences(regions) == []
    assert len(vf.live_versions(regions.table(DR))) == 60


def test_out_of_order_and_repeated_batches_never_let_an_old_version_win(client, regions, stream) -> None:
    primary = regions.table(PRIMARY)
    now = datetime.now(timezone.utc)
    for version in (1, 2, 3):
        put_items(primary, [item("k", "1", now, note=f"v{version}") | {"version": {"N": str(version)}}])
    v1, v2, v3 = data_records(stream.poll())
    for batch in ([v3], [v1], [v2], [v3], [v1, v2]):  # newest first, then stale and repeated ones
        deliver(client, batch)
    held = regions.table(DR).get(key("k", "1"))
    assert held is not None
    assert (held["version"]["N"], held["note"]["S"]) == ("3", "v3")
    # a delete, then a late copy of an older image: the item stays deleted
    primary.delete(key("k", "1"))
    (removal,) = data_records(stream.poll())
    deliver(client, [removal])
    deliver(client, [v2, v1])
    assert differences(regions) == []
    assert vf.live_versions(regions.table(DR)) == {}


def test_the_sweep_reads_only_what_changed_since_its_checkpoint(regions) -> None:
    primary, replica = regions.table(PRIMARY), regions.table(DR)
    now = datetime.now(timezone.utc)
    put_items(primary, [item("old", str(i), now - timedelta(minutes=30)) for i in range(300)])
    sweep = ReplicationSweep(primary, Replicator(replica, PRIMARY))
    first = sweep.run(now - timedelta(minutes=20))  # no checkpoint yet: a full copy
    assert first.copied == 300  # the heartbeat is written after the run, for the stream or the next sweep
    put_items(primary, [item("new", str(i), now) for i in range(10)])
    calls: list[str] = []
    for store in (primary, replica):
        store.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    second = sweep.run(now + timedelta(seconds=1))
    assert second.copied == 11 and second.changes_found == 11  # 10 new and the heartbeat; not the 300 older
    assert calls.count("Scan") == 0 and calls.count("TransactWriteItems") == 1
    assert differences(regions) == []
    heartbeat = ControlStore(replica).get(C.HEARTBEAT_SK)
    assert heartbeat is not None and heartbeat["source_region"] == PRIMARY


def pending_changes(regions: Regions, pk: str, count: int, spacing_seconds: int) -> tuple[Table, Table, datetime,
                                                                                     ReplicationSweep]:
    """`count` changes in the primary, `spacing_seconds` apart back from now, all since a checkpoint 3
    hours old: the primary, the replica, now, and a sweep between them."""
    primary, replica = regions.table(PRIMARY), regions.table(DR)
    now = datetime.now(timezone.utc)
    put_items(primary, [item(pk, f"{i:05d}", now - timedelta(seconds=spacing_seconds * i)) for i in range(count)])
    ControlStore(primary).put(C.SWEEP_CHECKPOINT_SK, {"watermark": format_time(now - timedelta(hours=3))})
    return primary, replica, now, ReplicationSweep(primary, Replicator(replica, PRIMARY))


def source_puts(table: Table) -> list[str]:
    """The sk of every PutItem sent to `table`, from now on."""
    puts: list[str] = []
    table.client.meta.events.register("before-parameter-build.dynamodb.PutItem",
                                      lambda params, **_: puts.append(params["Item"]["sk"]["S"]))
    return puts


def test_a_sweep_saves_its_checkpoint_once_per_thousand_changes_and_where_it_stopped(regions) -> None:
    # given 2,500 changes over two hours since the checkpoint
    primary, replica, now, sweep = pending_changes(regions, "c", 2500, 2)
    puts = source_puts(primary)

    # when one sweep runs out of budget during its first transaction, and the next one finishes
    slowed: list[str] = []

    def slow_first_write(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and not slowed:
            slowed.append("yes")
            time.sleep(1.2)

    replica.client.meta.events.register("before-call.dynamodb", slow_first_write)
    stopped = sweep.run(now, budget_seconds=1.0)
    replica.client.meta.events.unregister("before-call.dynamodb", slow_first_write)
    stopped_at = ControlStore(primary).get(C.SWEEP_CHECKPOINT_SK)
    assert stopped_at is not None
    saves_when_stopped = puts.count(C.SWEEP_CHECKPOINT_SK)
    finished = sweep.run(now)

    # then the stopped one saved where it got to, once, and the finished one once per 1,000 and at the end
    assert not stopped.complete and stopped.copied == C.TRANSACT_MAX_ITEMS and saves_when_stopped == 1
    assert stopped_at["watermark"] == format_time(now - timedelta(seconds=2 * (2500 - C.TRANSACT_MAX_ITEMS)))
    assert finished.complete and finished.copied == 2500 - C.TRANSACT_MAX_ITEMS
    assert puts.count(C.SWEEP_CHECKPOINT_SK) - saves_when_stopped == 3  # at 1,000, at 2,000, at the end
    assert puts.count(K.heartbeat_key(PRIMARY)["sk"]["S"]) == 1
    assert differences(regions) == []


class Killed(BaseException):
    """The process died: nothing catches this, as nothing survives a real crash."""


def test_a_sweep_killed_at_a_random_point_converges_when_run_again(regions) -> None:
    primary, replica, now, sweep = pending_changes(regions, "m", 1500, 5)
    for seed in (1, 2, 3):
        writes = {"n": 0, "die_at": random.Random(seed).randint(1, 4)}  # 1,500 changes: 15 transactions

        def kill(model: Any, writes: dict = writes, **_: Any) -> None:
            if model.name == "TransactWriteItems":
                writes["n"] += 1
                if writes["n"] == writes["die_at"]:
                    raise Killed

        replica.client.meta.events.register("before-call.dynamodb", kill)
        with pytest.raises(Killed):
            sweep.run(now)
        replica.client.meta.events.unregister("before-call.dynamodb", kill)
    report = sweep.run(now)
    assert report.complete
    assert differences(regions) == []


def test_a_stream_write_between_the_sweeps_read_and_its_write_keeps_the_newer_version(regions) -> None:
    # given 300 changes in the source that the sweep will copy, version 1 each
    primary, replica = regions.table(PRIMARY), regions.table(DR)
    now = datetime.now(timezone.utc)
    put_items(primary, [item("race", f"{i:03d}", now) | {"version": {"N": "1"}} for i in range(300)])
    ControlStore(primary).put(C.SWEEP_CHECKPOINT_SK, {"watermark": format_time(now - timedelta(minutes=5))})
    stream_path = Replicator(replica, PRIMARY)
    newer = {f"{i:03d}": item("race", f"{i:03d}", now, note="newer") | {"version": {"N": "5"}}
             for i in range(0, 300, 7)}
    deleted = [f"{i:03d}" for i in range(3, 300, 11)]
    raced: list[str] = []

    # when the stream writes newer versions (and deletes) into the replica after the sweep has read
    # what the replica holds (BatchGetItem) and before the sweep writes (TransactWriteItems)
    def stream_lands(model: Any, **_: Any) -> None:
        if model.name in ("TransactWriteItems", "BatchWriteItem") and not raced:
            raced.append("yes")
            changes = [Change(key("race", k), image, 5) for k, image in newer.items()]
            changes += [Change(key("race", k), None, 5) for k in deleted if k not in newer]
            stream_path.apply(changes, now)

    replica.client.meta.events.register("before-call.dynamodb", stream_lands)
    try:
        report = ReplicationSweep(primary, Replicator(replica, PRIMARY)).run(now)
    finally:
        replica.client.meta.events.unregister("before-call.dynamodb", stream_lands)
    # then every newer version and every delete survives the sweep's older copies
    assert raced and report.complete
    held = {i["sk"]["S"]: i for i in replica.batch_get([key("race", f"{i:03d}") for i in range(300)])}
    assert all(held[k]["version"]["N"] == "5" and held[k]["note"]["S"] == "newer" for k in newer)
    assert all(K.is_tombstone(held[k]) for k in deleted if k not in newer)
    others = [k for k in held if k not in newer and k not in deleted]
    assert len(others) > 200 and all(held[k]["version"]["N"] == "1" for k in others)
    assert report.copied == len(others)
    assert report.already_current == len(newer) + len([k for k in deleted if k not in newer])


@pytest.fixture
def faulty(client) -> Iterator[list[FaultInjector]]:
    """20% of the app's DynamoDB calls in both regions fail, in every way the boundary fails."""
    context = app_module.context()
    tables = (context.table, context.peer)
    injectors = [FaultInjector(rate=0.2, seed=seed).attach(table.client)
                 for seed, table in enumerate(tables) if table is not None]
    yield injectors
    for injector, table in zip(injectors, tables, strict=True):
        assert table is not None
        injector.detach(table.client)


def test_5000_changes_under_faults_converge_with_nothing_lost_or_resurrected(client, regions, stream,
                                                                           faulty) -> None:
    primary = regions.table(PRIMARY)
    now = datetime.now(timezone.utc)
    keys = [f"{i:04d}" for i in range(3000)]
    put_items(primary, [item("c", k, now) for k in keys])  # 3,000 puts
    put_items(primary, [item("c", k, now, note="updated") for k in keys[:1000]])  # 1,000 updates
    deleted = keys[1000:2000]
    primary.batch_write(deletes=[key("c", k) for k in deleted])
    records = stream.poll(limit=10000)
    assert len(records) == 5000
    deliver(client, records)  # the stream, in order, with Lambda's retries
    deliver(client, records[::-1][:300])  # and some stale batches delivered again, newest last
    for _ in range(20):  # the scheduled sweep, under faults too: a failed run is redone at the next tick
        try:
            jobs.sweep(app_module.context(), datetime.now(timezone.utc))
            break
        except Unavailable:
            continue
    else:
        raise AssertionError("the sweep never completed")
    injected = [fault for i in faulty for fault in i.injected]
    # 100 changes per transaction: about 60 transactions in all, a fifth of them failed
    assert len(injected) > 10 and any(fault.startswith("TransactWriteItems:") for fault in injected), injected
    assert differences(regions) == []
    live = vf.live_versions(regions.table(DR))
    assert len([k for k in live if k[0] == "c"]) == 2000 and not any(("c", k) in live for k in deleted)


def test_verify_finds_and_repairs_every_kind_of_difference(regions) -> None:
    primary, replica = regions.table(PRIMARY), regions.table(DR)
    now = datetime.now(timezone.utc)

    def at(version: int, pk: str, numbers: range) -> list[Item]:
        return [item(pk, str(i), now) | {"version": {"N": str(version)}} for i in numbers]

    put_items(primary, at(5, "v", range(50)))
    put_items(replica, at(5, "v", range(10, 50)))  # 0-9 missing in the replica
    put_items(primary, at(6, "v", range(10, 15)))  # 10-14 stale in the replica
    put_items(replica, at(1, "gone", range(5)))  # extra in the replica
    put_items(replica, at(9, "v", range(45, 50)))  # 45-49 newer in the replica: reported, not touched
    found = differences(regions)
    counts = {problem: sum(d.problem == problem for d in found) for problem in
              (vf.MISSING, vf.STALE, vf.EXTRA, vf.NEWER_IN_REPLICA)}
    assert counts == {vf.MISSING: 10, vf.STALE: 5, vf.EXTRA: 5, vf.NEWER_IN_REPLICA: 5}
    assert vf.repair(found, primary, replica, now, deadline=float("inf")) == 20
    assert [d.problem for d in differences(regions)] == [vf.NEWER_IN_REPLICA] * 5


def test_split_brain_is_refused_and_failback_leaves_both_tables_equal(client, regions, monkeypatch) -> None:
    def in_region(region: str) -> Any:
        """The same app as deployed in `region` (dev and dev-dr differ only in their region)."""
        monkeypatch.setenv("AWS_DEFAULT_REGION", region)
        monkeypatch.setattr(app_module, "_CONTEXT", None)
        return client

    monkeypatch.setenv(C.ENV_LEASE_SECONDS, "2")  # a short lease, so that the forced failover waits it out fast
    build = {"kind": "build", "service": "ci", "status": "succeeded"}
    assert post(in_region(PRIMARY), {**build, "id": "before"}).status_code == 201  # and it holds a lease
    # given the operator cannot reach us-east-1 when failing over (so it cannot be fenced)
    outage = FaultInjector(rate=1.0, kinds=("dropped_connection",)).attach(regions.table(PRIMARY).client)
    report = fo.failover(regions, DR, force=True, step=lambda _: None)
    outage.detach(regions.table(PRIMARY).client)
    # then the failover waited out the lease us-east-1 last copied into us-west-2
    assert (report.epoch, report.fenced_old_region) == (1, False)
    assert 0 < report.waited_out_lease_seconds <= 2 + C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS
    # and the DR region takes writes
    assert post(in_region(DR), {**build, "id": "after"}).status_code == 201
    # and us-east-1, its lease over, reads the higher epoch from us-west-2 when it tries to renew,
    # and refuses writes as the standby
    refused = post(in_region(PRIMARY), {**build, "id": "split"})
    assert refused.status_code == 503 and refused.json_body["error"]["code"] == "standby_region"
    assert client.http.get("/health").json_body["role"] == "standby"
    # when the operator fails back, the final sweep carries the DR writes home
    fo.failover(regions, PRIMARY, force=True, step=lambda _: None)
    # and verify --repair then copies what us-east-1 took before the outage and never replicated
    unreplicated = differences(regions)
    assert {d.problem for d in unreplicated} == {vf.MISSING}  # 'before' and the failback's incident
    assert {"ID#build#before", "ID#incident#failover-epoch-2"} <= {d.sk for d in unreplicated}
    vf.repair(unreplicated, regions.table(PRIMARY), regions.table(DR), datetime.now(timezone.utc), float("inf"))
    assert differences(regions) == []
    assert post(in_region(PRIMARY), {**build, "id": "home"}).status_code == 201
    ids = {i["id"] for i in client.http.get("/metrics?service=ci").json_body["items"]}
    assert {"before", "after", "home"} <= ids and "split" not in ids


def run_dr(aws: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dr", *args, "--stage", STAGE, "--endpoint-url", aws.endpoint],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing",
                               "AWS_SECRET_ACCESS_KEY": "testing"})


def test_the_dr_cli(client, aws) -> None:
    post(client, {"events": [{"kind": "build", "service": "ci", "status": "succeeded"} for _ in range(5)]})
    status = run_dr(aws, "status", "--json")
    assert status.returncode == 0, status.stderr
    regions_seen = {r["region"]: r for r in json.loads(status.stdout)["regions"]}
    assert regions_seen[PRIMARY]["role"] == "active" and regions_seen[DR]["role"] == "standby"
    unequal = run_dr(aws, "verify")
    assert unequal.returncode == 1 and "missing" in unequal.stdout
    assert run_dr(aws, "replicate").returncode == 0
    equal = run_dr(aws, "verify", "--json")
    assert equal.returncode == 0 and json.loads(equal.stdout)["differences"] == 0
    refused = run_dr(aws, "failover", "--to", DR)  # no --yes and no terminal: refuses
    assert refused.returncode == 1 and "--yes" in refused.stderr
    table = run_dr(aws, "status")
    assert "us-east-1" in table.stdout and "active" in table.stdout


def test_the_stream_handler_emits_the_lag_as_a_cloudwatch_metric(client, regions, stream, capsys) -> None:
    post(client, {"kind": "build", "service": "ci", "status": "succeeded", "id": "metric"})
    deliver(client, stream.poll())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (record,) = [r for r in lines if r.get("Path") == "stream"]
    definition = record["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == C.METRICS_NAMESPACE
    assert definition["Dimensions"] == [["Path", "SourceRegion", "Stage"]]
    assert {m["Name"]: m["Unit"] for m in definition["Metrics"]} == {
        "ItemsReplicated": "Count", "ReplicationLagSeconds": "Seconds"}
    assert record["ItemsReplicated"] == 2 and 0 <= record["ReplicationLagSeconds"] < C.RPO_TARGET_SECONDS
    assert (record["Stage"], record["SourceRegion"]) == (STAGE, PRIMARY)


def test_no_failover_record_is_ever_lowered(regions) -> None:
    """A fence or a switch is written only over an earlier epoch, or the same epoch naming the same
    region (a resumed failover writes it again); a renewal only over its own epoch."""
    now = format_time(datetime.now(timezone.utc))
    control = regions.control(DR)
    assert control.put_failover_record({"active_region": DR, "epoch": 5, "updated_at": now}, not_after=(DR, 5))
    assert control.put_failover_record({"active_region": DR, "epoch": 5, "updated_at": now}, not_after=(DR, 5))
    assert not control.put_failover_record({"active_region": PRIMARY, "epoch": 3, "updated_at": now},
                                           not_after=(PRIMARY, 3))  # lower
    assert not control.put_failover_record({"active_region": PRIMARY, "epoch": 5, "updated_at": now},
                                           not_after=(PRIMARY, 5))  # equal, another region
    assert not control.put_failover_record({"active_region": PRIMARY, "epoch": 5, "updated_at": now},
                                           same_epoch_of=(PRIMARY, 5))
    record = control.get(C.FAILOVER_SK)
    assert record is not None and (record["active_region"], record["epoch"]) == (DR, 5)
