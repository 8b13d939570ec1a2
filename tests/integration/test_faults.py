"""Faults at the AWS boundary lose nothing: throttling, 5xx, connections dropped before or after
DynamoDB acted, unprocessed batch items, with posts, revisions and deletes in the mix."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from tests.conftest import post
from tests.faults import FAULTS, FaultInjector

NOW = datetime.now(timezone.utc)


def events(prefix: str, count: int, with_timestamp: bool = True) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        event = {"kind": "build", "service": "ci", "id": f"{prefix}-{i}", "status": "succeeded",
                 "duration_seconds": float(i)}
        if with_timestamp:
            event["timestamp"] = (NOW - timedelta(seconds=i)).isoformat()
        out.append(event)
    return out


def stored(client: Any) -> Counter[str]:
    """How many times each event id can be read back."""
    ids: Counter[str] = Counter()
    token = None
    while True:
        url = "/metrics?service=ci&limit=500" + (f"&next_token={token}" if token else "")
        body = client.http.get(url).json_body
        ids.update(item["id"] for item in body["items"])
        token = body["next_token"]
        if token is None:
            return ids


def ddb() -> Any:
    return app_module.context().table.client


def post_until_accepted(client: Any, body: dict[str, Any], attempts: int = 20) -> list[int]:
    """What a well-behaved client does: retry a 503 with the same body."""
    statuses = []
    for _ in range(attempts):
        response = post(client, body)
        statuses.append(response.status_code)
        if response.status_code != 503:
            assert response.status_code == 201, response.body
            return statuses
    raise AssertionError(f"never accepted: {statuses}")


def test_transient_faults_are_retried_inside_the_request(client, aws) -> None:
    # given the next three DynamoDB calls fail with a mix of throttling, 5xx and dropped connections
    injector = FaultInjector(burst=3, kinds=("throttle", "server_error", "dropped_connection")).attach(ddb())
    # when a batch is posted
    response = post(client, {"events": events("t", 30)})
    injector.detach(ddb())
    # then the client never notices, and every event is stored once
    assert response.status_code == 201 and response.json_body["created"] == 30
    assert len(injector.injected) == 3
    assert stored(client) == Counter({f"t-{i}": 1 for i in range(30)})


def delete_until_done(client: Any, path: str, attempts: int = 20) -> list[int]:
    """A client that retries a 503; a 404 after a retry means an earlier attempt deleted it."""
    statuses = []
    for _ in range(attempts):
        response = client.http.delete(path)
        statuses.append(response.status_code)
        if response.status_code != 503:
            assert response.status_code == 204 or (response.status_code == 404 and len(statuses) > 1), statuses
            return statuses
    raise AssertionError(f"never done: {statuses}")


def contents(client: Any) -> dict[str, float]:
    """Each stored event's duration, by id; asserts no id is stored twice."""
    ids = stored(client)
    assert all(count == 1 for count in ids.values()), [i for i, n in ids.items() if n > 1]
    durations: dict[str, float] = {}
    token = None
    while True:
        url = "/metrics?service=ci&limit=500" + (f"&next_token={token}" if token else "")
        body = client.http.get(url).json_body
        durations.update({item["id"]: item["duration_seconds"] for item in body["items"]})
        token = body["next_token"]
        if token is None:
            return durations


def test_one_call_in_five_failing_loses_nothing_and_duplicates_nothing(client, aws) -> None:
    # given 20% of all DynamoDB calls fail, in every way the boundary can fail
    injector = FaultInjector(rate=0.2, seed=3).attach(ddb())
    # when 8 batches of 40 events are posted, half of them are revised (without updated_at, so the
    # revision is newer by arrival) and 30 are deleted, by a client that retries 503s
    for batch in range(8):
        post_until_accepted(client, {"events": events(f"b{batch}", 40)})
    for batch in range(0, 8, 2):
        revised = [{**event, "duration_seconds": 1000.0 + i} for i, event in enumerate(events(f"b{batch}", 40))]
        post_until_accepted(client, {"events": revised})
    deleted = [f"b{batch}-{i}" for batch in range(1, 8, 2) for i in range(0, 40, 5)][:30]
    for event_id in deleted:
        delete_until_done(client, f"/metrics/build/{event_id}?service=ci")
    injector.detach(ddb())
    # then every event is stored once, at its newest revision, and no deleted event is
    assert len(injector.injected) > 15, injector.injected
    assert "TransactWriteItems:lost_answer" in injector.injected  # a write applied, its answer lost, sent again
    assert {kind.split(":")[1] for kind in injector.injected} == set(FAULTS)
    expected = {f"b{b}-{i}": (1000.0 + i if b % 2 == 0 else float(i)) for b in range(8) for i in range(40)}
    for event_id in deleted:
        del expected[event_id]
    assert contents(client) == expected


def test_a_persistent_outage_is_a_503_in_the_error_shape(client, aws) -> None:
    injector = FaultInjector(rate=1.0, kinds=("server_error",)).attach(ddb())
    response = post(client, {"events": events("o", 5)})
    injector.detach(ddb())
    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "service_unavailable"
    assert "Internal" not in json.dumps(response.json_body)  # nothing internal is echoed


@pytest.mark.parametrize("fault", ["dropped_connection", "lost_answer"])
@pytest.mark.parametrize("with_timestamp", [True, False])
def test_a_write_whose_transaction_fails_or_whose_answer_is_lost_is_whole_after_the_retry(
        client, aws, with_timestamp, fault) -> None:
    # given every TransactWriteItems fails: before it reaches DynamoDB, or after it was applied
    body = {"events": events("c", 12, with_timestamp)}
    injector = FaultInjector(rate=1.0, operations=frozenset({"TransactWriteItems"}), kinds=(fault,)).attach(ddb())
    assert post(client, body).status_code == 503
    injector.detach(ddb())
    # then the events were stored whole or not at all (one transaction holds an event and its record)
    assert stored(client) in (Counter(), Counter({f"c-{i}": 1 for i in range(12)}))
    # when the client retries the same body
    response = post(client, body)
    # then each event is stored once
    assert response.status_code == 201
    assert response.json_body["created"] + response.json_body["duplicates"] == 12
    assert stored(client) == Counter({f"c-{i}": 1 for i in range(12)})
    # and a further retry is a pure duplicate
    assert post(client, body).json_body == {"ids": [f"c-{i}" for i in range(12)], "created": 0, "updated": 0,
                                            "duplicates": 12, "stale": 0}


def test_unprocessed_batch_items_are_retried_until_written(client, aws) -> None:
    injector = FaultInjector(rate=0.5, operations=frozenset({"BatchWriteItem", "BatchGetItem"}),
                             kinds=("unprocessed",), seed=3).attach(ddb())
    response = post(client, {"events": events("u", 100)})
    injector.detach(ddb())
    assert response.status_code == 201, response.body
    assert injector.injected
    assert stored(client) == Counter({f"u-{i}": 1 for i in range(100)})


# ---- webhook deliveries --------------------------------------------------------------------------

def deliver_until_accepted(client: Any, aws: Any, source: str, event: str, payload: Any, delivery: str) -> list[int]:
    """What PagerDuty does (and a GitHub or GitLab redelivery): send the same delivery again after a 5xx."""
    from tests.integration.test_webhooks import deliver

    statuses = []
    for _ in range(20):
        response = deliver(client, aws, source, event, payload, delivery=delivery)
        statuses.append(response.status_code)
        if response.status_code < 500:
            assert response.status_code == 200, response.body
            return statuses
    raise AssertionError(f"never accepted: {statuses}")


def test_a_webhook_delivery_that_times_out_half_way_and_is_retried_stores_one_event(client, aws) -> None:
    from tests.integration.test_webhooks import deliver, event_of, fixture

    push = fixture("github/push.with-new-branch.json")["payload"]
    deploy = fixture("github/deployment_status.created.success.json")["payload"]
    deploy["deployment"]["sha"] = push["commits"][0]["id"]  # the deployment ships the pushed commit
    assert deliver_until_accepted(client, aws, "github", "push", push, "push-1") == [200]
    # given the event's transaction is applied and its answer lost, on every attempt of the request
    injector = FaultInjector(rate=1.0, operations=frozenset({"TransactWriteItems"}),
                             kinds=("lost_answer",)).attach(ddb())
    answer = deliver(client, aws, "github", "deployment_status", deploy, delivery="deploy-1")
    injector.detach(ddb())
    assert "TransactWriteItems:lost_answer" in injector.injected
    assert answer.status_code in (200, 503), answer.body
    # when the source delivers it again
    statuses = deliver_until_accepted(client, aws, "github", "deployment_status", deploy, "deploy-1")
    # then one deployment is stored, with its commit, and the delivery is now known
    listed = client.http.get("/metrics?service=Hello-World&kind=deployment").json_body["items"]
    assert [item["id"] for item in listed] == ["145988746"], (answer.status_code, statuses)
    assert [c["sha"] for c in event_of(client, "deployment", "145988746", "Hello-World")["commits"]] == [
        push["commits"][0]["id"]]
    again = deliver(client, aws, "github", "deployment_status", deploy, delivery="deploy-1")
    assert again.json_body["replayed"] is True


def test_pagerduty_deliveries_through_random_faults_end_in_one_resolved_incident(client, aws) -> None:
    from tests.integration.test_webhooks import event_of, fixture

    injector = FaultInjector(rate=0.3, seed=11).attach(ddb())
    for name in ("incident.triggered.json", "incident.acknowledged.json", "incident.resolved.json"):
        payload = fixture(f"pagerduty/{name}")["payload"]
        deliver_until_accepted(client, aws, "pagerduty", "", payload, payload["event"]["id"])
    injector.detach(ddb())
    assert len(injector.injected) >= 3, injector.injected
    listed = client.http.get("/metrics?service=Webhook-Tester&kind=incident").json_body["items"]
    assert [item["id"] for item in listed] == ["Q2CKYRLH85UNN4"]
    incident = event_of(client, "incident", "Q2CKYRLH85UNN4", "Webhook-Tester")
    assert incident["resolved_at"].startswith("2025-04-07T03:49:36.358")
    assert incident["acknowledged_at"].startswith("2025-04-07T03:47:13.546")
