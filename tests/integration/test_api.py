"""The HTTP API through chalice.test.Client, against moto's server with the real template deployed."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import constants as C
from local.demo import demo_events
from tests.conftest import DR, JSON, PRIMARY, TABLE, count_items, post

NOW = datetime.now(timezone.utc)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def deployment(id_: str | None = "d-1", **extra: Any) -> dict[str, Any]:
    event = {"kind": "deployment", "service": "checkout", "status": "success", **extra}
    if id_:
        event["id"] = id_
    return event


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    error = response.json_body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    return error


# ---- POST /metrics ---------------------------------------------------------------------------

def test_a_valid_deployment_is_created_and_can_be_read_back(client, aws) -> None:
    response = post(client, deployment(commit_sha="abc1234", timestamp=iso(NOW)))
    assert response.status_code == 201
    assert response.json_body == {"ids": ["d-1"], "created": 1, "updated": 0, "duplicates": 0, "stale": 0}
    items = client.http.get("/metrics?service=checkout").json_body["items"]
    assert [(i["id"], i["status"], i["commit_sha"]) for i in items] == [("d-1", "success", "abc1234")]
    assert items[0]["environment"] == "production" and items[0]["revision"] == 1
    assert items[0]["received_at"] == items[0]["first_received_at"]


def test_reposting_the_same_id_and_content_is_a_duplicate(client, aws) -> None:
    body = deployment(timestamp=iso(NOW))
    post(client, body)
    before = count_items(aws)
    response = post(client, body)
    assert response.json_body == {"ids": ["d-1"], "created": 0, "updated": 0, "duplicates": 1, "stale": 0}
    assert count_items(aws) == before


def test_a_retry_without_a_timestamp_is_still_a_duplicate(client, aws) -> None:
    post(client, deployment())
    assert post(client, deployment()).json_body["duplicates"] == 1
    assert len(client.http.get("/metrics?service=checkout").json_body["items"]) == 1




def test_a_batch_reports_ids_in_order_with_created_and_duplicate_counts(client, aws) -> None:
    post(client, deployment("known"))
    events = [deployment("known"), deployment(None), deployment("fresh"), deployment("fresh")]
    response = post(client, {"events": events})
    assert response.status_code == 201
    ids = response.json_body["ids"]
    assert ids[0] == "known" and ids[2:] == ["fresh", "fresh"] and len(ids[1]) == 32
    assert (response.json_body["created"], response.json_body["duplicates"]) == (2, 2)


def test_a_batch_repeating_an_identity_applies_its_revisions_in_order(client, aws) -> None:
    response = post(client, {"events": [deployment("x", status="in_progress"), deployment("x", status="failure")]})
    assert response.json_body == {"ids": ["x", "x"], "created": 1, "updated": 1, "duplicates": 0, "stale": 0}
    (stored,) = client.http.get("/metrics?service=checkout").json_body["items"]
    assert (stored["status"], stored["revision"]) == ("failure", 2)


def test_a_full_batch_of_100_events_with_ids_is_stored_atomically_per_chunk(client, aws) -> None:
    events = [deployment(f"bulk-{i}", timestamp=iso(NOW - timedelta(minutes=i))) for i in range(100)]
    response = post(client, {"events": events})
    assert response.json_body["created"] == 100
    assert count_items(aws) == 200  # each event and its identity record


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ("{not json", JSON, 400, "invalid_json"),
    (json.dumps({"events": [deployment(), {"kind": "deployment"}]}), JSON, 400, "validation_error"),
    (json.dumps([deployment()]), JSON, 400, "validation_error"),
    (json.dumps(deployment()), {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    (json.dumps(deployment()), {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    (json.dumps({"events": [deployment(f"big-{i}", attributes={"pad": "x" * 1000}) for i in range(100)] * 3}),
     JSON, 413, "body_too_large"),
])
def test_bad_requests_get_the_error_shape_and_store_nothing(client, aws, body, headers, status, code) -> None:
    response = post(client, body, headers)
    assert_error(response, status, code)
    assert count_items(aws) == 0


def test_validation_details_name_the_field(client, aws) -> None:
    response = post(client, {"events": [deployment(), deployment(status="maybe")]})
    error = assert_error(response, 400, "validation_error")
    assert [d["field"] for d in error["details"]] == ["events[1].status"]
    assert "maybe" not in json.dumps(error)  # input values are not echoed


def test_the_standby_region_refuses_writes_with_503_and_stores_nothing(standby_client, aws) -> None:
    response = post(standby_client, deployment())
    error = assert_error(response, 503, "standby_region")
    assert "us-east-1" in error["message"]
    assert count_items(aws, DR) == 0


def test_the_role_follows_the_failover_record(standby_client, aws) -> None:
    # given the DR tooling has recorded us-west-2 as active in epoch 1
    aws.client("dynamodb", DR).put_item(TableName=TABLE, Item={
        "pk": {"S": C.CONTROL_PK}, "sk": {"S": C.FAILOVER_SK},
        "active_region": {"S": DR}, "epoch": {"N": "1"}})
    # then the DR app is active and takes writes
    assert standby_client.http.get("/health").json_body["role"] == "active"
    assert post(standby_client, deployment()).status_code == 201


# ---- GET /metrics ----------------------------------------------------------------------------

def load(client: Any, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 100):
        response = post(client, {"events": events[start:start + 100]})
        assert response.status_code == 201, response.body


def mixed_events(service: str = "checkout", count: int = 23, environment: str = "production") -> list[dict]:
    kinds = [
        lambda i: {"kind": "build", "status": "succeeded"},
        lambda i: {"kind": "deployment", "status": "success"},
        lambda i: {"kind": "incident", "opened_at": iso(NOW - timedelta(hours=i + 1))},
        lambda i: {"kind": "gauge", "name": "queue_depth", "value": float(i)},
    ]
    return [{"service": service, "environment": environment, "id": f"{service}-{environment}-{i}",
             "timestamp": iso(NOW - timedelta(minutes=i // 2)), **kinds[i % 4](i)} for i in range(count)]


def read_all(client: Any, query: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    for _ in range(100):
        url = f"/metrics?{query}&limit={limit}" + (f"&next_token={token}" if token else "")
        body = client.http.get(url).json_body
        items += body["items"]
        token = body["next_token"]
        if token is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 4, 5, 23, 500])
def test_pages_cover_every_event_once_newest_first(client, aws, limit) -> None:
    events = mixed_events()
    load(client, events + mixed_events("billing", 5))
    items = read_all(client, "service=checkout", limit)
    assert sorted(i["id"] for i in items) == sorted(e["id"] for e in events)
    stamps = [i["timestamp"] for i in items]
    assert stamps == sorted(stamps, reverse=True)


def test_filters_by_kind_environment_and_time(client, aws) -> None:
    load(client, mixed_events() + mixed_events(environment="staging", count=8))
    builds = read_all(client, "service=checkout&kind=build", 3)
    assert {i["kind"] for i in builds} == {"build"} and len(builds) == 6
    staging = read_all(client, "service=checkout&environment=staging", 100)
    assert {i["environment"] for i in staging} == {"staging"} and len(staging) == 8
    since, until = iso(NOW - timedelta(minutes=5)), iso(NOW - timedelta(minutes=2))
    window = read_all(client, f"service=checkout&since={since}&until={until}", 2)
    assert window and all(since <= i["timestamp"].replace("Z", ".000000Z")[:27] or True for i in window)
    assert {i["id"] for i in window} == {e["id"] for e in mixed_events() if 4 <= int(e["id"].rsplit("-", 1)[1]) <= 11}


def test_without_a_service_the_cross_service_index_is_read(client, aws) -> None:
    load(client, mixed_events("checkout", 8) + mixed_events("billing", 8))
    deployments = read_all(client, "kind=deployment", 1)
    assert {i["service"] for i in deployments} == {"checkout", "billing"} and len(deployments) == 4
    everything = read_all(client, "environment=production", 3)
    assert len(everything) == 16


@pytest.mark.parametrize("query", [
    "limit=0", "limit=501", "limit=ten", "kind=release", "since=yesterday", "service=bad%20name", "unknown=1",
    f"since={iso(NOW)}&until={iso(NOW - timedelta(days=1))}",
])
def test_bad_query_parameters_are_400(client, aws, query) -> None:
    assert_error(client.http.get(f"/metrics?{query}"), 400, "validation_error")


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_forged_and_tampered_tokens_are_400(client, aws) -> None:
    load(client, mixed_events(count=12))
    first = client.http.get("/metrics?kind=build&limit=1").json_body
    payload = json.loads(base64.urlsafe_b64decode(first["next_token"] + "=="))
    # a well-formed cursor whose key parts disagree with each other
    payload["c"]["build"]["pk"] = "M#production#someone-else"
    payload["c"]["build"]["gsi1sk"] = "zzz"
    for token in ["garbage", first["next_token"][:-3], forged(payload), forged({"v": 1})]:
        response = client.http.get(f"/metrics?kind=build&limit=1&next_token={token}")
        assert response.status_code == 400, (token, response.body)
        assert response.json_body["error"]["code"] == "invalid_next_token"
    # a token from one query is refused for another
    other = client.http.get(f"/metrics?kind=deployment&limit=1&next_token={first['next_token']}")
    assert_error(other, 400, "invalid_next_token")


# ---- GET /metrics/summary --------------------------------------------------------------------

def test_the_demo_data_shows_every_tier(client, aws) -> None:
    load(client, list(demo_events(NOW)))
    tiers: dict[str, dict[str, str | None]] = {}
    for service in ("checkout", "payments", "inventory", "legacy-billing", "data-pipeline"):
        body = client.http.get(f"/metrics/summary?service={service}&days=30").json_body
        for key in ("deployment_frequency", "change_lead_time", "change_fail_rate", "failed_deployment_recovery_time",
                    "time_to_restore"):
            tiers.setdefault(key, {})[service] = body[key]["tier"]
    # the profiles of local/demo.py, rated by the 2024 table: frequency and lead time show all four tiers
    assert tiers["deployment_frequency"] == {"checkout": "elite", "payments": "high", "inventory": "medium",
                                             "legacy-billing": "low", "data-pipeline": "medium"}  # 1 in 30 days
    assert tiers["change_lead_time"] == {"checkout": "elite", "payments": "high", "inventory": "medium",
                                         "legacy-billing": None, "data-pipeline": "low"}  # legacy: no success
    assert all(len({t for t in by_service.values() if t}) >= 2 for by_service in tiers.values()), tiers
    payments = client.http.get("/metrics/summary?service=payments").json_body
    assert payments["change_failure_rate"] == {"value": 3 / 14, "unit": "ratio", "count": 14, "tier": "high"}
    assert payments["deployment_frequency"]["count"] == 11


def test_the_summary_rates_by_the_benchmark_asked_for_and_explains_its_numbers(client, aws) -> None:
    load(client, list(demo_events(NOW)))
    newest = client.http.get("/metrics/summary?service=payments").json_body
    older = client.http.get("/metrics/summary?service=payments&benchmark=2021").json_body
    assert (newest["benchmark"]["name"], older["benchmark"]["name"]) == ("2024", "2021")
    # recovery time 48 h: more than a day is low in 2024; between a day and a week is medium in 2021
    assert newest["failed_deployment_recovery_time"]["value"] == 48.0
    assert (newest["failed_deployment_recovery_time"]["tier"], older["failed_deployment_recovery_time"]["tier"]) == (
        "low", "medium")
    explained = client.http.get("/metrics/summary?service=payments&explain=true").json_body["change_fail_rate"]
    assert explained["matching"] == {"ids": [f"demo-payments-deployment-{i}" for i in (3, 7, 11)], "truncated": False}
    assert len(explained["events"]["ids"]) == explained["count"] == 14
    assert "events" not in newest["change_fail_rate"]


@pytest.mark.parametrize("query", ["service=x&benchmark=2019", "service=x&explain=yes", "benchmark=2024"])
def test_a_bad_summary_query_is_a_400(client, aws, query) -> None:
    assert_error(client.http.get(f"/metrics/summary?{query}"), 400, "validation_error")


def test_summary_of_an_unknown_service_has_nulls_not_zeros(client, aws) -> None:
    body = client.http.get("/metrics/summary?service=nobody&days=7").json_body
    assert body["days"] == 7 and body["service"] == "nobody"
    assert body["lead_time_for_changes"]["value"] is None
    assert body["change_failure_rate"]["value"] is None
    assert body["deployment_frequency"]["value"] == 0


@pytest.mark.parametrize("query", ["", "service=a&days=0", "service=a&days=366", "service=a&days=x", "service=a&x=1"])
def test_summary_rejects_bad_parameters(client, aws, query) -> None:
    assert_error(client.http.get(f"/metrics/summary?{query}"), 400, "validation_error")


# ---- GET /health -----------------------------------------------------------------------------

def test_shallow_health(client, aws) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok", "region": PRIMARY, "role": "active",
                                  "version": response.json_body["version"]}


def test_deep_health_checks_the_table(client, aws) -> None:
    body = client.http.get("/health?deep=true").json_body
    assert body["status"] == "ok" and body["checks"]["table"]["table_status"] == "ACTIVE"


@pytest.mark.parametrize(("lag", "arrived_seconds_ago", "healthy"), [
    (0.4, 30, True),
    (C.RPO_TARGET_SECONDS + 1, 30, False),  # the last heartbeat arrived late
    (0.4, C.REPLICATION_STALL_SECONDS + 1, False),  # no heartbeat has arrived for too long
])
def test_deep_health_judges_the_replication_heartbeat(standby_client, aws, lag, arrived_seconds_ago, healthy) -> None:
    arrived = iso(datetime.now(timezone.utc) - timedelta(seconds=arrived_seconds_ago))
    aws.client("dynamodb", DR).put_item(TableName=TABLE, Item={
        "pk": {"S": C.CONTROL_PK}, "sk": {"S": C.HEARTBEAT_SK}, "updated_at": {"S": arrived},
        "lag_seconds": {"N": str(lag)}, "source_region": {"S": PRIMARY}})
    response = standby_client.http.get("/health?deep=true")
    assert response.status_code == (200 if healthy else 503)
    assert response.json_body["checks"]["replication"]["status"] == ("ok" if healthy else "fail")
    assert response.json_body["role"] == "standby"


def test_the_active_region_reports_the_heartbeat_its_replica_received(client, aws) -> None:
    aws.client("dynamodb", DR).put_item(TableName=TABLE, Item={
        "pk": {"S": C.CONTROL_PK}, "sk": {"S": C.HEARTBEAT_SK}, "lag_seconds": {"N": "0.2"},
        "updated_at": {"S": iso(datetime.now(timezone.utc))}})
    replication = client.http.get("/health?deep=true").json_body["checks"]["replication"]
    assert replication["replica_region"] == DR and replication["lag_seconds"] == 0.2


# ---- cross-cutting ---------------------------------------------------------------------------

def test_the_correlation_id_is_echoed_or_created(client, aws) -> None:
    echoed = client.http.get("/health", headers={"X-Correlation-Id": "req-42"})
    assert echoed.headers["X-Correlation-Id"] == "req-42"
    created = client.http.get("/health", headers={"X-Correlation-Id": "bad id with spaces"})
    assert len(created.headers["X-Correlation-Id"]) == 32


def test_request_paths_only_query_never_scan(client, aws) -> None:
    from chalicelib import jobs
    from chalicelib.times import utc_now

    jobs.renew_lease(app_module.context(), utc_now())  # as the scheduled function keeps it
    operations: list[str] = []
    ddb = app_module.context().table.client
    ddb.meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name))
    load(client, mixed_events())
    read_all(client, "service=checkout", 4)
    read_all(client, "kind=build", 4)
    client.http.get("/metrics/summary?service=checkout")
    client.http.get("/health?deep=true")
    assert operations and "Scan" not in operations
    assert set(operations) <= {"Query", "GetItem", "BatchGetItem", "TransactWriteItems", "DescribeTable"}


def test_each_request_writes_one_structured_log_line_without_the_body(client, aws, capsys) -> None:
    capsys.readouterr()
    post(client, deployment(commit_sha="5ec7e7100c1ab5e5"), {**JSON, "X-Correlation-Id": "trace-7"})
    post(client, deployment(status="maybe"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"message":"request"' in line]
    assert [(r["status"], r["level"], r["error_code"]) for r in lines] == [
        (201, "INFO", None), (400, "WARNING", "validation_error")]
    first = lines[0]
    assert first["correlation_id"] == "trace-7"
    assert (first["method"], first["route"], first["stage"], first["region"]) == ("POST", "/metrics", "dev", PRIMARY)
    assert first["duration_ms"] >= 0 and first["service"] == "devops-metrics"
    assert "5ec7e7100c1ab5e5" not in json.dumps(lines)
