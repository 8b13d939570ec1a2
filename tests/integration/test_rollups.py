"""The daily rollups (chalicelib.rollups): kept by the real stream handler fed with the table's real
stream records, corrected by updates, moves and deletes, unchanged by redelivery, equal to what the
events say (summaries, trends, teams, explain), checked by `dr verify` and rebuilt by `dr rollups`."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib import rollups
from chalicelib.dynamodb import Table
from chalicelib.events import EventStore
from chalicelib.summary import summary_of
from chalicelib.trends import trends
from dr import verify as vf
from local.streams import StreamReader
from ops.templates import ROOT
from tests.conftest import DR, PRIMARY, STAGE, TABLE, app_client, post
from tests.integration.test_replication import deliver, drain

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def check(table: Table) -> vf.RollupReport:
    return vf.check_rollups(table)


def history(rng: random.Random, service: str, days: int, per_day: int) -> list[dict[str, Any]]:
    """Deployments (with commits, some shipped again, failures, rollbacks, rework, some in progress)
    and incidents naming some of them, over `days` days."""
    events: list[dict[str, Any]] = []
    shas = [f"{n:040x}" for n in range(1, 400)]
    for n in range(days * per_day):
        at = NOW - timedelta(days=days) + timedelta(minutes=rng.randrange(days * 24 * 60))
        status = rng.choices(["success", "failure", "rolled_back", "in_progress"], [80, 8, 7, 5])[0]
        deployment: dict[str, Any] = {"kind": "deployment", "service": service, "id": f"{service}-d{n}",
                                      "status": status, "timestamp": iso(at)}
        if rng.random() < 0.6:
            deployment["commits"] = [{"sha": rng.choice(shas),
                                      "timestamp": iso(at - timedelta(hours=rng.randrange(1, 90)))}
                                     for _ in range(rng.randrange(1, 4))]
        elif rng.random() < 0.5:
            deployment |= {"commit_sha": rng.choice(shas), "commit_timestamp": iso(at - timedelta(hours=3))}
        if rng.random() < 0.1:
            deployment["planned"] = False
        events.append(deployment)
        if status != "in_progress" and rng.random() < 0.08:
            opened = at + timedelta(minutes=10)
            incident = {"kind": "incident", "service": service, "id": f"{service}-i{n}", "timestamp": iso(opened),
                        "opened_at": iso(opened), "deployment_id": deployment["id"], "severity": "sev2"}
            if rng.random() < 0.8:
                incident["resolved_at"] = iso(opened + timedelta(minutes=rng.randrange(5, 600)))
            events.append(incident)
    return events


def post_all(client: Any, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 100):
        response = post(client, {"events": events[start:start + 100]})
        assert response.status_code == 201, response.body


def test_the_stream_handler_keeps_the_rollups_through_updates_moves_deletes_and_redelivery(
        client, regions, stream) -> None:
    primary = regions.table(PRIMARY)
    deployment = {"kind": "deployment", "service": "roll", "id": "r-1", "status": "in_progress",
                  "timestamp": iso(NOW - timedelta(hours=5))}
    incident = {"kind": "incident", "service": "roll", "id": "i-1", "opened_at": iso(NOW - timedelta(hours=4)),
                "deployment_id": "r-1"}
    post_all(client, [deployment, incident, {"kind": "build", "service": "roll", "status": "succeeded"}])
    records = delivered(client, stream)
    report = check(primary)
    assert report.differing == [] and report.not_covered == [] and report.days == 2  # a deployment day, an incident day

    post_all(client, [{**deployment, "status": "success"},  # an update: the same entry, newer
                      {**incident, "resolved_at": iso(NOW - timedelta(hours=3))}])
    records += delivered(client, stream)
    moved = {**deployment, "status": "success", "timestamp": iso(NOW - timedelta(days=2)),
             "updated_at": iso(datetime.now(timezone.utc) + timedelta(seconds=5))}  # a move to another day
    post_all(client, [moved])
    assert client.http.delete("/metrics/incident/i-1?service=roll").status_code == 204
    records += delivered(client, stream)
    report = check(primary)
    assert report.differing == [], report.as_dict()
    entries = [e for part in rollups.RollupStore(primary).parts(K.event_pk("production", "roll"), "deployment",
                                                                   iso(NOW - timedelta(days=9))[:10], iso(NOW)[:10])
               for e in part.entries.values() if not rollups.is_removed(e)]
    assert [(e["id"], e["status"], e["timestamp"]) for e in entries] == [("r-1", "success", moved["timestamp"])]
    (incidents,) = rollups.RollupStore(primary).parts(K.event_pk("production", "roll"), "incident", "2000-01-01",
                                                      "2999-12-31")
    assert [rollups.is_removed(e) for e in incidents.entries.values()] == [True]  # deleted: a marker

    # every record again, in order and then backwards: nothing changes, no part is written again
    for batch in (records, list(reversed(records))):
        parts_before = {p.sk: p.held for p in _all_parts(primary)}
        deliver(client, batch)
        assert {p.sk: p.held for p in _all_parts(primary)} == parts_before
    assert check(primary).differing == []
    drain(client, stream)
    assert vf.compare(primary, regions.table(DR)) == []  # the events replicate; the rollups stay per region


def test_the_standby_keeps_its_own_rollups_from_what_replication_brings(client, regions, stream, aws,
                                                                         monkeypatch) -> None:
    """The standby's stream handler replicates nothing, and keeps the rollups of the events
    replication writes into its table, so a failover finds them whole, whichever way (stream, sweep,
    repair) an event reached it. Rollups are never replicated."""
    arn = aws.client("dynamodb", DR).describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    standby_stream = StreamReader(aws.client("dynamodbstreams", DR), arn, DR, start="LATEST")
    post_all(client, history(random.Random(5), "standby", 6, 8))
    drain(client, stream)
    assert not [i for i in _all_parts(regions.table(DR))]  # nothing of the primary's rollups replicated
    with app_client(monkeypatch, DR, f"{STAGE}-dr") as standby:
        records = standby_stream.poll()
        assert records
        drain(standby, standby_stream, records)
    standby_table, primary = regions.table(DR), regions.table(PRIMARY)
    assert check(standby_table).differing == [] and check(standby_table).days == check(primary).days
    for days in (7, 30):
        assert summary_of(rollups.RollupStore(standby_table), ["standby"], "production", days, NOW, "2024", True) == (
            summary_of(EventStore(primary), ["standby"], "production", days, NOW, "2024", True))


def delivered(client: Any, stream: StreamReader) -> list[dict[str, Any]]:
    """What the stream holds, delivered (and what that wrote in turn); returns the first records."""
    records = stream.poll()
    drain(client, stream, records)
    return records


def _all_parts(table: Table) -> list[rollups.Part]:
    return [rollups.Part.of(item) for page in table.scan_pages() for item in page if K.is_rollup(item)]


def test_summaries_trends_and_teams_from_the_rollups_equal_those_from_the_events(client, regions, stream) -> None:
    rng = random.Random(16)
    post_all(client, history(rng, "alpha", 40, 12) + history(rng, "beta", 40, 6))
    drain(client, stream)
    table = regions.table(PRIMARY)
    assert check(table).differing == []
    events, rolled = EventStore(table), rollups.RollupStore(table)
    calls: list[tuple[str, int]] = []
    table.client.meta.events.register("after-call.dynamodb.Query", lambda parsed, **_: calls.append(
        ("Query", parsed.get("ScannedCount", 0))))
    for services in (["alpha"], ["alpha", "beta"]):
        for days in (1, 7, 30):
            for explain in (False, True):
                calls.clear()
                want = summary_of(events, services, "production", days, NOW, "2024", explain)
                read_events = sum(scanned for _, scanned in calls)
                calls.clear()
                got = summary_of(rolled, services, "production", days, NOW, "2024", explain)
                assert got == want, (services, days, explain)
                if days == 30:
                    assert sum(scanned for _, scanned in calls) < read_events / 5  # items: about one a day
        for bucket, count in (("week", 6), ("month", 2)):
            assert trends(rolled, services, "production", bucket, count, NOW, "2023", True) == trends(
                events, services, "production", bucket, count, NOW, "2023", True)


def test_reads_use_the_rollups_only_once_they_are_whole(client, regions, stream, monkeypatch) -> None:
    """Just after an upgrade the rollups lack the events written before: reads go to the events
    until the rollups are whole for their window (MAX_FUTURE_SKEW after the first stream batch),
    or until a rebuild."""
    table = regions.table(PRIMARY)
    old = [{"kind": "deployment", "service": "upgrade", "id": f"u-{n}", "status": "success",
            "timestamp": iso(NOW - timedelta(days=3, hours=n))} for n in range(5)]
    post_all(client, old)
    stream.poll()  # written before the rollups existed: never delivered
    source = rollups.DoraSource(EventStore(table), rollups.RollupStore(table))
    summary = summary_of(source, ["upgrade"], "production", 30, NOW, "2024", False)
    assert summary["deployment_frequency"]["count"] == 5 and source.rollups.complete_from() is None

    post_all(client, [{**old[0], "id": "u-new", "timestamp": iso(NOW - timedelta(hours=1))}])
    drain(client, stream)
    state = rollups.RollupStore(table).complete_from()
    assert state is not None and state > iso(NOW + timedelta(hours=23))
    fresh = rollups.DoraSource(EventStore(table), rollups.RollupStore(table))
    assert summary_of(fresh, ["upgrade"], "production", 30, NOW, "2024", False)[
        "deployment_frequency"]["count"] == 6  # from the events: the rollups are not whole yet
    report = check(table)
    assert report.differing == [] and len(report.not_covered) == 1  # the older day, named as not built

    days, written = vf.rebuild_rollups(table, datetime.now(timezone.utc))
    assert days == 1 and written.parts == 1 and written.units >= 1
    rebuilt = rollups.DoraSource(EventStore(table), rollups.RollupStore(table))
    assert rebuilt.rollups.complete_from() == rollups.BEGINNING
    calls: list[str] = []
    table.client.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: calls.append(
        params["ExpressionAttributeValues"][":lo"]["S"]))
    assert summary_of(rebuilt, ["upgrade"], "production", 30, NOW, "2024", False)[
        "deployment_frequency"]["count"] == 6
    assert calls and all(lo.startswith(C.ROLLUP_SK_PREFIX) for lo in calls)  # from the rollups now


def test_dr_verify_names_wrong_rollups_and_dr_rollups_rebuild_repairs_them(client, regions, stream, aws) -> None:
    table = regions.table(PRIMARY)
    post_all(client, history(random.Random(3), "verify", 5, 10))
    drain(client, stream)
    vf.rebuild_rollups(table, datetime.now(timezone.utc))
    parts = _all_parts(table)
    assert len(parts) > 3
    broken, emptied = parts[0], parts[1]
    first = next(iter(broken.entries))
    broken.entries[first] = {**broken.entries[first], "status": "failure" if broken.entries[first].get(
        "status") == "success" else "success"}
    broken.entries["deployment#2000-01-01T00:00:00Z#ghost"] = {"id": "ghost", "v": 1}
    lost = len(emptied.entries)
    emptied.entries = {}
    for part in (broken, emptied):
        table.put(part.item(datetime.now(timezone.utc), PRIMARY))

    env = {"AWS_ENDPOINT_URL": aws.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "dr", *args, "--stage", STAGE, "--json"],  # noqa: E731
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    verified = run("verify")
    assert verified.returncode == 1, verified.stderr
    found = json.loads(verified.stdout)["rollups"][PRIMARY]
    assert (found["stale"], found["extra"], found["missing"]) == (1, 1, lost) and found["differing_days"] == 2
    rebuilt = run("rollups", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert all(region["differing_days"] == 0 and region["days_before_complete_from"] == 0
               for region in json.loads(rebuilt.stdout)["regions"].values())
    assert f"{PRIMARY}: rebuilt 2 day(s)" in rebuilt.stderr  # and the standby's, never built here, all of them


def test_writers_racing_for_one_part_each_land(regions) -> None:
    """Eight writers (as eight stream shards would) put entries into the same day's part at once:
    the conditional writes make the losers read again, and every entry lands."""
    table = regions.table(PRIMARY)
    pk = K.event_pk("production", "race")
    hour = iso(NOW.replace(minute=0, second=0))[:13]
    start = threading.Barrier(8)

    def write(writer: int) -> None:
        store = rollups.RollupStore(table)
        changes = [rollups.EntryChange(pk, f"deployment#{hour}:{n:02d}:{writer:02d}Z#w{writer}-{n}",
                                       {"id": f"w{writer}-{n}", "status": "success", "v": 1}, 1) for n in range(5)]
        start.wait()
        for change in changes:
            store.apply([change], datetime.now(timezone.utc))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parts = rollups.RollupStore(table).parts(pk, "deployment", hour[:10], hour[:10])
    assert sum(len(part.entries) for part in parts) == 40


def test_a_day_fills_parts_one_after_the_other_and_a_summary_reads_them_all(regions, monkeypatch) -> None:
    monkeypatch.setattr(C, "ROLLUP_PART_BYTES", 2_000)
    table = regions.table(PRIMARY)
    pk = K.event_pk("production", "spill")
    at = NOW.replace(hour=0, minute=0, second=0) + timedelta(hours=1)
    changes = [rollups.EntryChange(pk, f"deployment#{iso(at + timedelta(seconds=n))}#s{n}",
                                   {"id": f"s{n}", "status": "success", "timestamp": iso(at + timedelta(seconds=n)),
                                    "v": 1}, 1) for n in range(60)]
    store = rollups.RollupStore(table)
    for start in range(0, 60, 7):  # batches, as the stream delivers them
        store.apply(changes[start:start + 7], datetime.now(timezone.utc))
    parts = rollups.RollupStore(table).parts(pk, "deployment", iso(at)[:10], iso(at)[:10])
    assert len(parts) > 2 and all(p.size <= 2_000 for p in parts)
    assert [p.sk.rsplit("#", 1)[1] for p in parts] == [f"{n:03d}" for n in range(len(parts))]
    read = list(rollups.RollupStore(table).events_between("production", "spill", "deployment", at, NOW))
    assert [e["id"] for e in read] == [f"s{n}" for n in range(60)]


def test_a_stream_write_during_a_rebuild_makes_the_rebuild_read_again(regions) -> None:
    """The rebuild reads a day's parts, then its events, then writes the parts conditionally: a
    stream batch that lands in between (a newer revision of an event the events read missed) makes
    the write fail, so the rebuild never puts an older entry back."""
    table = regions.table(PRIMARY)
    pk = K.event_pk("production", "rebuild-race")
    day = iso(NOW)[:10]
    sk = f"deployment#{day}T01:00:00Z#d1"
    store = rollups.RollupStore(table)
    store.apply([rollups.EntryChange(pk, sk, {"id": "d1", "status": "in_progress", "v": 1}, 1)],
                datetime.now(timezone.utc))

    def stale_read(first: str, last: str) -> dict[str, dict[str, dict[str, Any]]]:
        # what the events said when the rebuild read them; the stream handler then applies v2
        rollups.RollupStore(table).apply([rollups.EntryChange(pk, sk, {"id": "d1", "status": "success", "v": 2}, 2)],
                                         datetime.now(timezone.utc))
        return {day: {sk: {"id": "d1", "status": "failure", "v": 1}}}

    assert store.replace_days(pk, "deployment", [day], stale_read, datetime.now(timezone.utc)) is None
    (part,) = store.parts(pk, "deployment", day, day)
    assert part.entries[sk]["status"] == "success" and part.entries[sk]["v"] == 2
