"""Events as they really happen: ids per service, revisions (updated, duplicate, stale, create-only),
lifecycles the summary follows, corrections by GET and DELETE, and deletes that reach the standby on
every replication path. Through chalice.test.Client against moto's server with the real template."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import jobs
from chalicelib.dynamodb import Table
from chalicelib.events import EventStore, Identity
from chalicelib.models import parse_events
from dr import verify as vf
from tests.conftest import DR, JSON, PRIMARY, TABLE, count_items, post
from tests.integration.test_replication import deliver, drain

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def counts(response: Any) -> tuple[int, int, int, int]:
    assert response.status_code == 201, response.body
    body = response.json_body
    return body["created"], body["updated"], body["duplicates"], body["stale"]


def get(client: Any, kind: str, event_id: str, service: str, environment: str | None = None) -> Any:
    query = f"service={service}" + (f"&environment={environment}" if environment else "")
    return client.http.get(f"/metrics/{kind}/{event_id}?{query}")


def summary(client: Any, service: str) -> dict[str, Any]:
    body: dict[str, Any] = client.http.get(f"/metrics/summary?service={service}&days=7").json_body
    return body


# ---- identity ----------------------------------------------------------------------------------

def test_the_same_id_in_two_services_is_two_events(client, aws) -> None:
    release = {"kind": "deployment", "status": "success", "id": "release-1", "timestamp": iso(NOW)}
    assert counts(post(client, {**release, "service": "a"})) == (1, 0, 0, 0)
    assert counts(post(client, {**release, "service": "b", "status": "failure"})) == (1, 0, 0, 0)
    assert counts(post(client, {**release, "service": "a", "environment": "staging"})) == (1, 0, 0, 0)
    assert get(client, "deployment", "release-1", "a").json_body["status"] == "success"
    assert get(client, "deployment", "release-1", "b").json_body["status"] == "failure"
    assert get(client, "deployment", "release-1", "a", "staging").status_code == 200
    assert get(client, "build", "release-1", "a").status_code == 404  # another kind: another identity


# ---- revisions -----------------------------------------------------------------------------------

def test_update_duplicate_stale_and_create_only(client, aws) -> None:
    opened = {"kind": "incident", "service": "shop", "id": "INC-1", "opened_at": iso(NOW - timedelta(hours=2)),
              "timestamp": iso(NOW - timedelta(hours=2)), "updated_at": iso(NOW - timedelta(hours=2))}
    acknowledged = {**opened, "acknowledged_at": iso(NOW - timedelta(hours=1)),
                    "updated_at": iso(NOW - timedelta(hours=1))}
    resolved = {**acknowledged, "resolved_at": iso(NOW - timedelta(minutes=10)),
                "updated_at": iso(NOW - timedelta(minutes=10))}
    assert counts(post(client, opened)) == (1, 0, 0, 0)
    assert counts(post(client, resolved)) == (0, 1, 0, 0)
    assert counts(post(client, resolved)) == (0, 0, 1, 0)  # a redelivery
    before = count_items(aws)
    assert counts(post(client, acknowledged)) == (0, 0, 0, 1)  # a late delivery of an older revision
    assert count_items(aws) == before
    stored = get(client, "incident", "INC-1", "shop").json_body
    assert (stored["revision"], stored["resolved_at"]) == (2, resolved["resolved_at"])
    assert stored["first_received_at"] < stored["received_at"]
    # create-only: 412 for an identity that exists, and nothing in the request is stored
    fresh = {**opened, "id": "INC-2"}
    refused = client.http.post("/metrics", headers={**JSON, "If-None-Match": "*"},
                               body=json.dumps({"events": [fresh, resolved]}))
    assert refused.status_code == 412 and refused.json_body["error"]["code"] == "precondition_failed"
    assert refused.json_body["error"]["details"][0]["field"] == "events[1].id"
    assert count_items(aws) == before and get(client, "incident", "INC-2", "shop").status_code == 404
    created = client.http.post("/metrics", headers={**JSON, "If-None-Match": "*"}, body=json.dumps(fresh))
    assert counts(created) == (1, 0, 0, 0)


def test_a_create_only_post_that_loses_a_race_stores_nothing(client, aws) -> None:
    # given a create-only batch of 60 events (two transactions), and a rival writer that creates one
    # of them after the batch read the identity records and before its transaction arrives
    batch = [{"kind": "build", "service": "ci", "id": f"r-{i}", "status": "succeeded"} for i in range(60)]
    rival = {**batch[0], "status": "failed"}
    rival_store = EventStore(Table(aws.client("dynamodb", PRIMARY), TABLE, PRIMARY))
    ddb = app_module.context().table.client
    raced: list[bool] = []

    def rival_first(request: Any, **_: Any) -> None:
        if b"TransactWriteItems" in request.headers.get("X-Amz-Target", b"") and b'"r-0"' in request.body \
                and not raced:
            raced.append(True)
            rival_store.put_events(parse_events(rival, datetime.now(timezone.utc)), datetime.now(timezone.utc))

    ddb.meta.events.register("before-send.dynamodb", rival_first)
    try:
        response = client.http.post("/metrics", headers={**JSON, "If-None-Match": "*"},
                                    body=json.dumps({"events": batch}))
    finally:
        ddb.meta.events.unregister("before-send.dynamodb", rival_first)
    # then it answers 412, and of its 60 events none is stored: only the rival's
    assert raced and response.status_code == 412, response.body
    items = client.http.get("/metrics?service=ci&limit=500").json_body["items"]
    assert [(i["id"], i["status"]) for i in items] == [("r-0", "failed")]


def test_without_updated_at_the_later_post_wins(client, aws) -> None:
    build = {"kind": "build", "service": "ci", "id": "b-1", "status": "failed", "timestamp": iso(NOW)}
    post(client, build)
    assert counts(post(client, {**build, "status": "succeeded"})) == (0, 1, 0, 0)
    assert get(client, "build", "b-1", "ci").json_body["status"] == "succeeded"


def test_an_update_without_a_timestamp_keeps_the_event_time_and_one_that_moves_it_leaves_one_event(client, aws) -> None:
    first = {"kind": "deployment", "service": "api", "id": "d-1", "status": "in_progress"}
    post(client, first)
    started = get(client, "deployment", "d-1", "api").json_body["timestamp"]
    post(client, {**first, "status": "success"})
    assert get(client, "deployment", "d-1", "api").json_body["timestamp"] == started
    post(client, {**first, "status": "failure", "timestamp": iso(NOW - timedelta(hours=3))})
    items = client.http.get("/metrics?service=api").json_body["items"]
    assert [(i["id"], i["status"], i["revision"]) for i in items] == [("d-1", "failure", 3)]


# ---- lifecycles --------------------------------------------------------------------------------

def test_an_incident_opened_resolved_and_reopened_is_followed_by_the_summary(client, aws) -> None:
    incident = {"kind": "incident", "service": "pay", "id": "PD-42", "opened_at": iso(NOW - timedelta(hours=3))}
    post(client, {**incident, "updated_at": iso(NOW - timedelta(hours=3))})
    assert summary(client, "pay")["time_to_restore"]["count"] == 0
    post(client, {**incident, "resolved_at": iso(NOW - timedelta(hours=1)),
                  "updated_at": iso(NOW - timedelta(hours=1))})
    restored = summary(client, "pay")["time_to_restore"]
    assert (restored["count"], restored["value"]) == (1, 2.0)
    post(client, {**incident, "updated_at": iso(NOW - timedelta(minutes=30))})  # reopened
    assert summary(client, "pay")["time_to_restore"]["count"] == 0
    post(client, {**incident, "resolved_at": iso(NOW), "updated_at": iso(NOW)})
    restored = summary(client, "pay")["time_to_restore"]
    assert (restored["count"], restored["value"]) == (1, 3.0)
    assert get(client, "incident", "PD-42", "pay").json_body["revision"] == 4


def test_a_deployment_in_progress_then_successful_counts_once(client, aws) -> None:
    deployment = {"kind": "deployment", "service": "web", "id": "gh-981", "timestamp": iso(NOW - timedelta(hours=1))}
    post(client, {**deployment, "status": "in_progress"})
    keys = summary(client, "web")
    assert keys["deployment_frequency"]["count"] == 0 and keys["change_failure_rate"]["count"] == 0
    assert keys["change_failure_rate"]["value"] is None  # an unfinished deployment is not a deployment yet
    post(client, {**deployment, "status": "success"})
    keys = summary(client, "web")
    assert keys["deployment_frequency"]["count"] == 1 and keys["change_failure_rate"]["count"] == 1
    assert keys["change_failure_rate"]["value"] == 0.0


def test_lead_time_is_the_median_over_every_commit(client, aws) -> None:
    deployed = NOW - timedelta(hours=1)
    commits = [{"sha": f"{n:07x}abc", "timestamp": iso(deployed - timedelta(hours=hours))}
               for n, hours in enumerate((1, 2, 10, 30))]
    post(client, {"kind": "deployment", "service": "lt", "status": "success", "id": "r1", "timestamp": iso(deployed),
                  "commits": commits})
    # a later deployment ships one commit again (counted once, at its first) and one new commit
    post(client, {"kind": "deployment", "service": "lt", "status": "success", "id": "r2", "timestamp": iso(NOW),
                  "commits": [commits[0], {"sha": "ffffff0", "timestamp": iso(NOW - timedelta(hours=5))}]})
    lead = summary(client, "lt")["lead_time_for_changes"]
    assert (lead["count"], lead["value"]) == (5, 5.0)  # median of 1, 2, 5, 10, 30 hours


# ---- corrections -------------------------------------------------------------------------------

def test_get_and_delete_one_event(client, aws) -> None:
    post(client, {"kind": "gauge", "service": "m", "id": "g-1", "name": "coverage", "value": 80.5})
    event = get(client, "gauge", "g-1", "m").json_body
    assert (event["value"], event["revision"]) == (80.5, 1) and event["first_received_at"] == event["received_at"]
    assert client.http.delete("/metrics/gauge/g-1?service=m").status_code == 204
    assert get(client, "gauge", "g-1", "m").status_code == 404
    assert client.http.get("/metrics?service=m").json_body["items"] == []
    gone = client.http.delete("/metrics/gauge/g-1?service=m")
    assert gone.status_code == 404 and gone.json_body["error"]["code"] == "not_found"


def test_a_deleted_event_does_not_come_back_from_an_older_revision_but_a_newer_post_recreates_it(client, aws) -> None:
    build = {"kind": "build", "service": "ci", "id": "late", "status": "failed",
             "updated_at": iso(NOW - timedelta(hours=1))}
    post(client, build)
    client.http.delete("/metrics/build/late?service=ci")
    assert counts(post(client, build)) == (0, 0, 0, 1)  # the webhook's redelivery, older than the delete
    assert get(client, "build", "late", "ci").status_code == 404
    newer = datetime.now(timezone.utc) + timedelta(minutes=1)  # than the delete, which happened just now
    assert counts(post(client, {**build, "updated_at": iso(newer)})) == (1, 0, 0, 0)
    assert get(client, "build", "late", "ci").json_body["revision"] == 1


def test_a_delete_reaches_the_standby_through_the_stream(client, regions, stream) -> None:
    post(client, {"events": [{"kind": "build", "service": "ci", "id": f"s-{i}", "status": "succeeded"}
                             for i in range(3)]})
    deliver(client, stream.poll())
    assert client.http.delete("/metrics/build/s-1?service=ci").status_code == 204
    deliver(client, stream.poll())
    standby = regions.events(DR)
    assert standby.live_ids("production", "ci", "build", ["s-0", "s-1", "s-2"]) == {"s-0", "s-2"}
    assert standby.get_event(Identity("production", "ci", "build", "s-1")) is None
    assert vf.compare(regions.table(PRIMARY), regions.table(DR)) == []


def test_a_delete_reaches_the_standby_through_the_sweep_with_the_stream_down(client, regions) -> None:
    post(client, {"events": [{"kind": "build", "service": "ci", "id": f"w-{i}", "status": "succeeded"}
                             for i in range(3)]})
    jobs.sweep(app_module.context(), datetime.now(timezone.utc))  # the first sweep: a full copy
    assert client.http.delete("/metrics/build/w-0?service=ci").status_code == 204
    # the stream is down: only the sweep runs
    report = jobs.sweep(app_module.context(), datetime.now(timezone.utc) + timedelta(seconds=1))
    assert report["copied"] >= 2  # the event's tombstone and its record's
    standby = regions.events(DR)
    assert standby.live_ids("production", "ci", "build", ["w-0", "w-1", "w-2"]) == {"w-1", "w-2"}
    assert vf.compare(regions.table(PRIMARY), regions.table(DR)) == []
    # and an old copy sent again cannot bring it back
    jobs.sweep(app_module.context(), datetime.now(timezone.utc) + timedelta(seconds=2), full=True)
    assert "w-0" not in standby.live_ids("production", "ci", "build", ["w-0"])


def test_verify_repair_carries_a_delete_the_standby_missed(client, regions) -> None:
    post(client, {"kind": "build", "service": "ci", "id": "v-0", "status": "succeeded"})
    jobs.sweep(app_module.context(), datetime.now(timezone.utc))
    client.http.delete("/metrics/build/v-0?service=ci")  # neither the stream nor the sweep runs
    found = vf.compare(regions.table(PRIMARY), regions.table(DR))
    assert {d.problem for d in found} == {vf.EXTRA} and len(found) == 2
    vf.repair(found, regions.table(PRIMARY), regions.table(DR), datetime.now(timezone.utc), float("inf"))
    assert vf.compare(regions.table(PRIMARY), regions.table(DR)) == []
    assert regions.events(DR).live_ids("production", "ci", "build", ["v-0"]) == set()


def test_concurrent_updates_of_one_identity_converge_to_the_newest_in_both_regions(client, regions, stream) -> None:
    store = app_module.context().events

    revisions = [{"kind": "incident", "service": "race", "id": "INC-9", "opened_at": iso(NOW - timedelta(hours=1)),
                  "severity": f"sev{n}", "updated_at": iso(NOW - timedelta(minutes=60 - n))} for n in range(16)]
    start = threading.Barrier(len(revisions))

    def write(revision: dict[str, Any]) -> None:
        events = parse_events(revision, datetime.now(timezone.utc))
        start.wait()
        store.put_events(events, datetime.now(timezone.utc))

    threads = [threading.Thread(target=write, args=(r,)) for r in reversed(revisions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain(client, stream)
    identity = Identity("production", "race", "incident", "INC-9")
    for region in (PRIMARY, DR):
        event = regions.events(region).get_event(identity)
        assert event is not None and event["severity"] == "sev15", region
    assert vf.compare(regions.table(PRIMARY), regions.table(DR)) == []


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("patch", "field"), [
    ({"commits": [{"sha": "xyz1234", "timestamp": "2026-11-01T00:00:00Z"}]}, "commits[0].sha"),
    ({"commits": [{"sha": "abc12", "timestamp": "2026-11-01T00:00:00Z"}]}, "commits[0].sha"),
    ({"commits": [{"sha": f"{n:07x}", "timestamp": "2026-11-01T00:00:00Z"} for n in range(1001)]}, "commits"),
    ({"commit_sha": "not-a-sha"}, "commit_sha"),
    ({"updated_at": iso(datetime.now(timezone.utc) + timedelta(hours=25))}, "updated_at"),
    ({"status": "queued"}, "status"),
])
def test_bad_deployments_are_refused_and_store_nothing(client, aws, patch, field) -> None:
    body = {"kind": "deployment", "service": "x", "status": "success", **patch}
    response = client.http.post("/metrics", headers=JSON, body=json.dumps(body))
    assert response.status_code == 400, response.body
    assert field in [d["field"] for d in response.json_body["error"]["details"]]
    assert count_items(aws) == 0


def test_an_incident_acknowledged_before_it_opened_is_refused(client, aws) -> None:
    response = post(client, {"kind": "incident", "service": "x", "opened_at": iso(NOW),
                             "acknowledged_at": iso(NOW - timedelta(minutes=1))})
    assert response.status_code == 400 and "acknowledged_at" in response.json_body["error"]["details"][0]["message"]
    assert count_items(aws) == 0


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/metrics/release/r-1?service=x", 400),
    ("delete", "/metrics/release/r-1?service=x", 400),
    ("delete", "/metrics/build/b-1", 400),
    ("get", "/metrics/build/b-1", 400),
    ("delete", "/metrics/build/b-1?service=x&surprise=1", 400),
    ("delete", "/metrics/build/has%20space?service=x", 400),
    ("delete", "/metrics/build/b-1?service=x", 404),
])
def test_bad_corrections_get_a_4xx_in_the_error_shape(client, aws, method, path, status) -> None:
    post(client, {"kind": "build", "service": "y", "id": "b-1", "status": "succeeded"})
    before = count_items(aws)
    response = getattr(client.http, method)(path)
    assert response.status_code == status, response.body
    assert set(response.json_body["error"]) == {"code", "message", "details"}
    assert count_items(aws) == before


def test_the_standby_refuses_deletes(standby_client, aws) -> None:
    response = standby_client.http.delete("/metrics/build/b-1?service=x")
    assert response.status_code == 503 and response.json_body["error"]["code"] == "standby_region"


def test_if_none_match_takes_only_a_star(client, aws) -> None:
    response = client.http.post("/metrics", headers={**JSON, "If-None-Match": '"abc"'},
                                body=json.dumps({"kind": "build", "service": "x", "status": "failed"}))
    assert response.status_code == 400 and count_items(aws) == 0
